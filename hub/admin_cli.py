"""The hub's administrative subcommands: cluster and viewer tokens (``token``, ``viewer``),
forgetting a cluster (``cluster forget``), pausing and resuming rollouts and allowing a refused
prune (``rollout``). Each works on the hub's store directly, without a running hub.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from hub.contract import ContractError, check_cluster_name
from hub.store_options import add_store_options, database_from


def add_admin_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``token``, ``viewer``, ``cluster`` and ``rollout`` subcommands to ``commands``."""
    for kind, noun in (("token", "cluster"), ("viewer", "viewer")):
        group = commands.add_parser(kind, help=f"manage {noun} tokens")
        actions = group.add_subparsers(dest="action", metavar="ACTION", required=True)
        create = actions.add_parser("create", help=f"create a {noun} token (printed once, on the last line)")
        create.add_argument("owner", metavar=noun.upper(), nargs="?")
        create.add_argument(
            "--from-file",
            type=Path,
            metavar="FILE",
            help=f"create one token for every {noun} named in FILE (one per line; '-' is stdin) and print"
            f" '{noun.upper()}<TAB>TOKEN' lines",
        )
        add_store_options(create)
        create.set_defaults(handler=_create, kind=kind)
        listing = actions.add_parser("list", help=f"list {noun} tokens (never the tokens themselves)")
        add_store_options(listing)
        listing.set_defaults(handler=_list, kind=kind)
        revoke = actions.add_parser("revoke", help=f"revoke every token of a {noun}, or only one with --id")
        revoke.add_argument("owner", metavar=noun.upper())
        revoke.add_argument(
            "--id", dest="token_id", metavar="TOKEN_ID", help="revoke only this token (see list)"
        )
        add_store_options(revoke)
        revoke.set_defaults(handler=_revoke, kind=kind)

    cluster = commands.add_parser("cluster", help="manage the clusters the hub knows")
    cluster_actions = cluster.add_subparsers(dest="action", metavar="ACTION", required=True)
    forget = cluster_actions.add_parser(
        "forget", help="delete a cluster's state, history and tokens (a decommissioned or broken cluster)"
    )
    forget.add_argument("name", metavar="CLUSTER")
    forget.add_argument(
        "--keep-tokens", action="store_true", help="keep its tokens: its next report starts it afresh"
    )
    add_store_options(forget)
    forget.set_defaults(handler=_forget)

    rollout = commands.add_parser(
        "rollout", help="pause or resume a bundle's staged rollouts fleet-wide; allow a refused prune once"
    )
    rollout_actions = rollout.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in (("pause", "release no further wave and give no go"), ("resume", "continue")):
        command = rollout_actions.add_parser(action, help=f"{text} (audited in the hub log)")
        command.add_argument("bundle", metavar="BUNDLE")
        command.add_argument("--by", default=None, help="who does it, for the audit log (default: $USER)")
        add_store_options(command)
        command.set_defaults(handler=_rollout, action=action)
    allow = rollout_actions.add_parser(
        "allow-prune", help="let one prune the deletion brake refused through, once (audited in the hub log)"
    )
    allow.add_argument("cluster", metavar="CLUSTER")
    allow.add_argument("--id", required=True, dest="prune_id", help="the prune id the brake reported")
    allow.add_argument("--by", default=None, help="who does it, for the audit log (default: $USER)")
    add_store_options(allow)
    allow.set_defaults(handler=_allow_prune)


def _allow_prune(args: argparse.Namespace) -> int:
    """``rollout allow-prune CLUSTER --id ID``: a one-shot confirmation for the deletion brake."""
    import getpass

    import structlog

    from hub import logs, prune_allowances

    logs.configure()
    problem = prune_allowances.check_id(args.cluster, args.prune_id)
    if problem is not None:
        print(f"error: --id: {problem}", file=sys.stderr)
        return 2
    actor = args.by or getpass.getuser()
    added = database_from(args).connect().allow_prune(args.cluster, args.prune_id, actor)
    structlog.get_logger("hub").warning(
        "prune_allowed", cluster=args.cluster, prune_id=args.prune_id, by=actor, changed=added
    )
    print(
        f"The next pass of {args.cluster} may uninstall the releases of prune {args.prune_id}, once."
        if added
        else f"Prune {args.prune_id} of {args.cluster} was already allowed and is still waiting."
    )
    return 0


def _rollout(args: argparse.Namespace) -> int:
    """``rollout pause|resume BUNDLE``: an admin action (it needs the hub's data directory), audited."""
    import getpass

    import structlog

    from hub import logs

    logs.configure()
    actor = args.by or getpass.getuser()
    conn = database_from(args).connect()
    if args.action == "pause":
        changed, state = conn.pause_rollout(args.bundle, actor), "paused"
    else:
        changed, state = conn.resume_rollout(args.bundle), "resumed"
    structlog.get_logger("hub").warning(f"rollout_{state}", bundle=args.bundle, by=actor, changed=changed)
    print(
        f"Rollouts of {args.bundle} {state}."
        if changed
        else f"Rollouts of {args.bundle} were already {state}."
    )
    return 0


_KIND = {"token": "cluster", "viewer": "viewer"}


def _owners(args: argparse.Namespace) -> list[str] | None:
    """The owners named on the command line or in --from-file, checked; None after printing an error."""
    if (args.owner is None) == (args.from_file is None):
        print("flotilla-hub: give either a name or --from-file FILE", file=sys.stderr)
        return None
    if args.from_file is None:
        owners = [args.owner]
    else:
        text = sys.stdin.read() if str(args.from_file) == "-" else args.from_file.read_text(encoding="utf-8")
        owners = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    problems = []
    for number, owner in enumerate(owners, start=1):
        try:
            if args.kind == "token":
                check_cluster_name(
                    owner, "CLUSTER" if args.from_file is None else f"{args.from_file}:{number}"
                )
            elif not owner or len(owner) > 253:
                raise ContractError(f"{args.from_file}:{number}", "must be a name of 1 to 253 characters")
        except ContractError as exc:
            problems.append(str(exc))
    if len(set(owners)) != len(owners):
        problems.append(f"{args.from_file}: names a {_KIND[args.kind]} more than once")
    for problem in problems[:20]:
        print(f"flotilla-hub: {problem}", file=sys.stderr)
    return None if problems else owners


def _create(args: argparse.Namespace) -> int:
    owners = _owners(args)
    if owners is None:
        return 2
    conn = database_from(args).connect()
    created = conn.create_tokens(_KIND[args.kind], owners)
    if args.from_file is None:
        print(f"Created a {_KIND[args.kind]} token for {args.owner}. It is shown only once:")
        print(created[args.owner])
        return 0
    sys.stdout.write("".join(f"{owner}\t{token}\n" for owner, token in created.items()))
    print(f"Created {len(created)} {_KIND[args.kind]} tokens (shown only once).", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace) -> int:
    conn = database_from(args).connect(create=False)
    for info in conn.list_tokens(_KIND[args.kind]):
        created = datetime.fromtimestamp(info.created_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        print(f"{info.owner}\t{info.token_id}\t{created}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    conn = database_from(args).connect(create=False)
    count = conn.revoke_tokens(_KIND[args.kind], args.owner, args.token_id)
    if count == 0:
        which = f" with id {args.token_id!r}" if args.token_id else ""
        print(f"flotilla-hub: no {_KIND[args.kind]} token{which} for {args.owner!r}", file=sys.stderr)
        return 1
    print(f"Revoked {count} token(s) of {args.owner}.")
    return 0


def _forget(args: argparse.Namespace) -> int:
    conn = database_from(args).connect(create=False)
    result = conn.forget_cluster(args.name, keep_tokens=args.keep_tokens)
    if not (result.known or result.reports or result.tokens):
        print(f"flotilla-hub: the hub knows nothing of a cluster {args.name!r}", file=sys.stderr)
        return 1
    print(
        f"Forgot {args.name}: {result.reports} stored report(s), {result.tokens} token(s) revoked. "
        "A running hub drops it within seconds."
    )
    return 0
