"""The ``flotilla-hub`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from hub import __version__
from hub.contract import ContractError, check_cluster_name
from hub.database import URL_ENV, Database, StoreError, from_options
from hub.limits import add_limit_arguments, limits_from
from hub.options import numeric
from hub.readcache import DEFAULT_MAX_AGE
from hub.reportstore import Retention
from hub.rollout_book import DEFAULT_VIEW_SECONDS

DEFAULT_RETENTION = Retention()
DEFAULT_READ_PROCESSES = 1 if sys.platform == "linux" else 0  # memfd and SOCK_SEQPACKET are Linux's


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flotilla-hub",
        description="Flotilla hub: collects status reports from edge agents and serves the fleet's status.",
    )
    parser.add_argument("--version", action="version", version=f"flotilla-hub {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the hub (HTTP API, status page, ingest)")
    _data_dir(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port to bind (default: 8080)")
    serve.add_argument(
        "--public-read", action="store_true", help="serve the page and read API without credentials"
    )
    serve.add_argument("--stale-after-intervals", type=float, default=3.0, metavar="N")
    serve.add_argument("--offline-after-intervals", type=float, default=10.0, metavar="N")
    serve.add_argument(
        "--max-body", type=int, default=1024 * 1024, metavar="BYTES", help="largest report accepted"
    )
    numeric(serve, "--history-reports", DEFAULT_RETENTION.reports, "N", "stored reports kept per cluster")
    numeric(
        serve,
        "--history-days",
        DEFAULT_RETENTION.days,
        "DAYS",
        "age past which stored reports are deleted, the current one aside",
    )
    numeric(
        serve,
        "--history-bodies",
        DEFAULT_RETENTION.bodies,
        "N",
        "of those, how many newest keep their full body; older ones keep sequence, time, health and commit",
    )
    numeric(
        serve,
        "--read-cache-seconds",
        DEFAULT_MAX_AGE,
        "SECONDS",
        "how long a page or API answer is reused, so readers cannot slow ingest (0: off)",
    )
    numeric(
        serve,
        "--rollout-view-seconds",
        DEFAULT_VIEW_SECONDS,
        "SECONDS",
        "how long one evaluation of a staged rollout (it walks the rollout's clusters) answers gate "
        "questions and pages (0: every one evaluates afresh)",
    )
    numeric(
        serve,
        "--read-processes",
        DEFAULT_READ_PROCESSES,
        "N",
        "processes that serve the page and the read API, so people reading never slow agents "
        "reporting (0: this process serves everything)",
    )
    add_limit_arguments(serve)
    serve.set_defaults(handler=_serve)

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
        _data_dir(create)
        create.set_defaults(handler=_create, kind=kind)
        listing = actions.add_parser("list", help=f"list {noun} tokens (never the tokens themselves)")
        _data_dir(listing)
        listing.set_defaults(handler=_list, kind=kind)
        revoke = actions.add_parser("revoke", help=f"revoke every token of a {noun}, or only one with --id")
        revoke.add_argument("owner", metavar=noun.upper())
        revoke.add_argument(
            "--id", dest="token_id", metavar="TOKEN_ID", help="revoke only this token (see list)"
        )
        _data_dir(revoke)
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
    _data_dir(forget)
    forget.set_defaults(handler=_forget)

    rollout = commands.add_parser(
        "rollout", help="pause or resume a bundle's staged rollouts fleet-wide; allow a refused prune once"
    )
    rollout_actions = rollout.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in (("pause", "release no further wave and give no go"), ("resume", "continue")):
        command = rollout_actions.add_parser(action, help=f"{text} (audited in the hub log)")
        command.add_argument("bundle", metavar="BUNDLE")
        command.add_argument("--by", default=None, help="who does it, for the audit log (default: $USER)")
        _data_dir(command)
        command.set_defaults(handler=_rollout, action=action)
    allow = rollout_actions.add_parser(
        "allow-prune", help="let one prune the deletion brake refused through, once (audited in the hub log)"
    )
    allow.add_argument("cluster", metavar="CLUSTER")
    allow.add_argument("--id", required=True, dest="prune_id", help="the prune id the brake reported")
    allow.add_argument("--by", default=None, help="who does it, for the audit log (default: $USER)")
    _data_dir(allow)
    allow.set_defaults(handler=_allow_prune)
    return parser


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
    added = _database(args).connect().allow_prune(args.cluster, args.prune_id, actor)
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
    conn = _database(args).connect()
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


def _data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, help="directory of the hub's SQLite database (the default store)"
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help=f"a postgresql:// URL: the hub's store in PostgreSQL, shared by replicas (default: ${URL_ENV})",
    )


def _database(args: argparse.Namespace) -> Database:
    return from_options(args.data_dir, args.database_url)


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
    conn = _database(args).connect()
    created = conn.create_tokens(_KIND[args.kind], owners)
    if args.from_file is None:
        print(f"Created a {_KIND[args.kind]} token for {args.owner}. It is shown only once:")
        print(created[args.owner])
        return 0
    sys.stdout.write("".join(f"{owner}\t{token}\n" for owner, token in created.items()))
    print(f"Created {len(created)} {_KIND[args.kind]} tokens (shown only once).", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace) -> int:
    conn = _database(args).connect(create=False)
    for info in conn.list_tokens(_KIND[args.kind]):
        created = datetime.fromtimestamp(info.created_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        print(f"{info.owner}\t{info.token_id}\t{created}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    conn = _database(args).connect(create=False)
    count = conn.revoke_tokens(_KIND[args.kind], args.owner, args.token_id)
    if count == 0:
        which = f" with id {args.token_id!r}" if args.token_id else ""
        print(f"flotilla-hub: no {_KIND[args.kind]} token{which} for {args.owner!r}", file=sys.stderr)
        return 1
    print(f"Revoked {count} token(s) of {args.owner}.")
    return 0


def _forget(args: argparse.Namespace) -> int:
    conn = _database(args).connect(create=False)
    result = conn.forget_cluster(args.name, keep_tokens=args.keep_tokens)
    if not (result.known or result.reports or result.tokens):
        print(f"flotilla-hub: the hub knows nothing of a cluster {args.name!r}", file=sys.stderr)
        return 1
    print(
        f"Forgot {args.name}: {result.reports} stored report(s), {result.tokens} token(s) revoked. "
        "A running hub drops it within seconds."
    )
    return 0


def _serve(args: argparse.Namespace) -> int:
    from hub import logs, serving
    from hub.app import Writing, create_app
    from hub.connectivity import Thresholds
    from hub.context import HubConfig
    from hub.readproc import ReaderProcess, settings_message
    from hub.readsync import CommitCounter

    logs.configure()
    # The event loop releases the GIL on every socket call; with the default 5 ms switch interval it
    # can then wait that long behind the writer thread. 1 ms keeps ingest latency low.
    sys.setswitchinterval(0.001)
    database = _database(args)
    try:
        thresholds = Thresholds(args.stale_after_intervals, args.offline_after_intervals)
        retention = Retention(args.history_reports, args.history_days, args.history_bodies)
        limits = limits_from(args)
        if args.read_processes < 0:
            raise ValueError("--read-processes must be 0 or more")
        if args.read_processes and sys.platform != "linux":
            raise ValueError("--read-processes needs Linux; use --read-processes 0")
    except ValueError as exc:
        print(f"flotilla-hub: {exc}", file=sys.stderr)
        return 2
    config = HubConfig(
        data_dir=database.data_dir or Path(),
        database_url=database.url,
        public_read=args.public_read,
        thresholds=thresholds,
        max_body=args.max_body,
        retention=retention,
        read_cache_seconds=args.read_cache_seconds,
        rollout_view_seconds=args.rollout_view_seconds,
    )
    counter = CommitCounter() if args.read_processes else None
    readers = []
    if counter is not None:
        for index in range(1, args.read_processes + 1):
            name = f"reader-{index}"
            readers.append(ReaderProcess(name, settings_message(config, limits, name), counter))
    serving.run(create_app(config, Writing(counter)), args.host, args.port, limits, readers)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.handler(args))
    except StoreError as exc:
        print(f"flotilla-hub: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
