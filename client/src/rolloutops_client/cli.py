"""`python -m rolloutops_client`: check a token, print a snapshot or one request's route.

Reads ROLLOUTOPS_URL and ROLLOUTOPS_TOKEN (or --url / --token). Exit status: 0 ok, 1 the server is
unreachable or answered an error, 3 the token is refused (401), 4 it lacks a scope or role (403),
5 the route is the fail-safe path (unknown agent); argparse's 2 for usage errors.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from .client import ROUTING_PATH, Client
from .errors import ApiError, Forbidden, NotFound, RolloutOpsError, Unauthorized
from .routing import SnapshotError

EXIT_ERROR, EXIT_UNAUTHORIZED, EXIT_FORBIDDEN, EXIT_FAIL_SAFE = 1, 3, 4, 5


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rolloutops_client", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("ROLLOUTOPS_URL"),
                        help="server base URL (default: $ROLLOUTOPS_URL)")
    parser.add_argument("--token", default=os.environ.get("ROLLOUTOPS_TOKEN"),
                        help="API token (default: $ROLLOUTOPS_TOKEN; prefer the variable, arguments show in ps)")
    parser.add_argument("--timeout", type=float, default=10.0, help="HTTP timeout in seconds (default 10)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("check", aliases=["whoami"],
                        help="check that the server accepts the token for routing (GET /api/v1/routing)")
    snapshot = commands.add_parser("snapshot", help="print the routing snapshot the token sees, as JSON")
    snapshot.add_argument("--agent", help="only this agent's entry")
    route = commands.add_parser("route", help="print where one request goes, computed as a runtime would")
    route.add_argument("agent")
    route.add_argument("key")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("no server: set ROLLOUTOPS_URL or pass --url")
    if not args.token:
        parser.error("no token: set ROLLOUTOPS_TOKEN or pass --token")
    client = Client(args.url, args.token, background=False, flush_at_exit_s=None, timeout_s=args.timeout)
    target = f"{client.base_url}{ROUTING_PATH}"
    try:
        client.refresh()
    except Unauthorized as exc:
        print(f"401 Unauthorized: {target} does not accept this token (unknown, revoked or expired). "
              f"Server said: {exc.detail}", file=sys.stderr)
        return EXIT_UNAUTHORIZED
    except Forbidden as exc:
        print(f"403 Forbidden: the token is valid but may not read routing: it needs the route:read (or user) "
              f"scope and an owner with the operator role. Server said: {exc.detail}", file=sys.stderr)
        return EXIT_FORBIDDEN
    except NotFound:
        print(f"404: {target} does not exist on this server (a rolloutops without the routing snapshot?)",
              file=sys.stderr)
        return EXIT_ERROR
    except (ApiError, RolloutOpsError, SnapshotError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        client.close(timeout=0)
    snapshot = client.snapshot
    assert snapshot is not None
    if args.command in ("check", "whoami"):
        print(f"ok: {client.base_url} accepts the token; it sees {len(snapshot.plans)} agent(s) "
              f"(snapshot generated {snapshot.generated_at or 'at an unknown time'}, ETag {snapshot.etag or 'none'})")
        if snapshot.invalid:
            print(f"warning: {len(snapshot.invalid)} agent entr(y/ies) this client cannot route by, they fail safe: "
                  + ", ".join(sorted(snapshot.invalid)), file=sys.stderr)
        return 0
    if args.command == "snapshot":
        body = snapshot.as_dict()
        if args.agent:
            entry = snapshot.entry(args.agent)
            if entry is None:
                print(f"no agent {args.agent!r} in the snapshot", file=sys.stderr)
                return EXIT_FAIL_SAFE
            body = {args.agent: entry}
        print(json.dumps(body, indent=2, sort_keys=True))
        return 0
    answer = client.route(args.agent, args.key)
    print(json.dumps(answer.as_dict(), indent=2))
    if answer.fail_safe:
        print(f"fail safe ({answer.reason}): the human path", file=sys.stderr)
        return EXIT_FAIL_SAFE
    return 0
