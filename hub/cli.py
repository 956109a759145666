"""The ``flotilla-hub`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from hub import __version__, store
from hub.contract import ContractError, check_cluster_name


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
    serve.set_defaults(handler=_serve)

    for kind, noun in (("token", "cluster"), ("viewer", "viewer")):
        group = commands.add_parser(kind, help=f"manage {noun} tokens")
        actions = group.add_subparsers(dest="action", metavar="ACTION", required=True)
        create = actions.add_parser("create", help=f"create a {noun} token (printed once, on the last line)")
        create.add_argument("owner", metavar=noun.upper())
        _data_dir(create)
        create.set_defaults(handler=_create, kind=kind)
        listing = actions.add_parser("list", help=f"list {noun} tokens (never the tokens themselves)")
        _data_dir(listing)
        listing.set_defaults(handler=_list, kind=kind)
        revoke = actions.add_parser("revoke", help=f"revoke every token of a {noun}")
        revoke.add_argument("owner", metavar=noun.upper())
        _data_dir(revoke)
        revoke.set_defaults(handler=_revoke, kind=kind)
    rollout = commands.add_parser("rollout", help="pause or resume a bundle's staged rollouts fleet-wide")
    rollout_actions = rollout.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in (("pause", "release no further wave and give no go"), ("resume", "continue")):
        command = rollout_actions.add_parser(action, help=f"{text} (audited in the hub log)")
        command.add_argument("bundle", metavar="BUNDLE")
        command.add_argument("--by", default=None, help="who does it, for the audit log (default: $USER)")
        _data_dir(command)
        command.set_defaults(handler=_rollout, action=action)
    return parser


def _rollout(args: argparse.Namespace) -> int:
    """``rollout pause|resume BUNDLE``: an admin action (it needs the hub's data directory), audited."""
    import getpass

    import structlog

    from hub import logs, rollout_store

    logs.configure()
    actor = args.by or getpass.getuser()
    conn = rollout_store.connect(args.data_dir)
    if args.action == "pause":
        changed, state = rollout_store.pause(conn, args.bundle, actor), "paused"
    else:
        changed, state = rollout_store.resume(conn, args.bundle), "resumed"
    structlog.get_logger("hub").warning(f"rollout_{state}", bundle=args.bundle, by=actor, changed=changed)
    print(
        f"Rollouts of {args.bundle} {state}."
        if changed
        else f"Rollouts of {args.bundle} were already {state}."
    )
    return 0


def _data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, required=True, help="directory of the hub's SQLite database")


_KIND = {"token": "cluster", "viewer": "viewer"}


def _create(args: argparse.Namespace) -> int:
    if args.kind == "token":
        try:
            check_cluster_name(args.owner, "CLUSTER")
        except ContractError as exc:
            print(f"flotilla-hub: {exc}", file=sys.stderr)
            return 2
    conn = store.connect(args.data_dir)
    token = store.create_token(conn, _KIND[args.kind], args.owner)
    print(f"Created a {_KIND[args.kind]} token for {args.owner}. It is shown only once:")
    print(token)
    return 0


def _list(args: argparse.Namespace) -> int:
    conn = store.connect(args.data_dir, create=False)
    for info in store.list_tokens(conn, _KIND[args.kind]):
        created = datetime.fromtimestamp(info.created_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        print(f"{info.owner}\t{info.token_id}\t{created}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    conn = store.connect(args.data_dir, create=False)
    count = store.revoke_tokens(conn, _KIND[args.kind], args.owner)
    if count == 0:
        print(f"flotilla-hub: no {_KIND[args.kind]} token for {args.owner!r}", file=sys.stderr)
        return 1
    print(f"Revoked {count} token(s) of {args.owner}.")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from hub import logs
    from hub.app import create_app
    from hub.connectivity import Thresholds
    from hub.context import HubConfig

    logs.configure()
    # The event loop releases the GIL on every socket call; with the default 5 ms switch interval it
    # can then wait that long behind the writer thread. 1 ms keeps ingest latency low.
    sys.setswitchinterval(0.001)
    try:
        thresholds = Thresholds(args.stale_after_intervals, args.offline_after_intervals)
    except ValueError as exc:
        print(f"flotilla-hub: {exc}", file=sys.stderr)
        return 2
    config = HubConfig(
        data_dir=args.data_dir, public_read=args.public_read, thresholds=thresholds, max_body=args.max_body
    )
    uvicorn.run(
        create_app(config),
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        http="httptools",
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.handler(args))
    except store.StoreError as exc:
        print(f"flotilla-hub: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
