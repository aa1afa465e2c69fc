"""`dnswatch`: the consumer's command against a collector (SPEC §5).

    dnswatch --collector HOST:PORT feeds list [-o json|table|yaml]
    dnswatch --collector HOST:PORT feeds get NAME [-o ...]
    dnswatch --collector HOST:PORT feeds sync NAME [-o ...]

`-o json` prints one object per line (the SPEC §5 fields: name, content, mode, entries, rejectedLines,
lastSuccessfulSync, errorConditions, version, sha256; `get` and `sync` add the spec's safe fields). Plaintext
gRPC for now (TLS and bearer tokens come with the Events issue). Exit status: 0 done, 1 the collector said no
(unknown feed, Disabled feed), 2 bad usage or no collector to talk to; always one line on stderr, never a
traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import grpc
import yaml

from collector.core.feedinfo import TABLE_COLUMNS, FeedInfo, table_row
from collector.shell.pbconvert import feed_from_pb
from dnswatch_pb.v1 import feeds_pb2, feeds_pb2_grpc

__all__ = ["main"]

PROG = "dnswatch"
EXIT_REFUSED = 1
EXIT_USAGE = 2

_TIMEOUT_SECONDS = 15.0
_SYNC_TIMEOUT_SECONDS = 600.0  # a sync waits for the pull, retries and backoff included
_UNREACHABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNIMPLEMENTED}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Ask a dnswatch collector about threat feeds.")
    parser.add_argument("--collector", required=True, metavar="HOST:PORT", help="the collector's gRPC address")
    commands = parser.add_subparsers(dest="topic", required=True)
    feeds = commands.add_parser("feeds", help="threat feeds and their status")
    actions = feeds.add_subparsers(dest="action", required=True)
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("-o", "--output", choices=("json", "table", "yaml"), default="table",
                        help="output format (default: table)")
    actions.add_parser("list", parents=[output], help="every feed with its status")
    get = actions.add_parser("get", parents=[output], help="one feed with its status")
    get.add_argument("name")
    sync = actions.add_parser("sync", parents=[output], help="pull a feed now and show it afterwards")
    sync.add_argument("name")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with grpc.insecure_channel(args.collector) as channel:
            feeds = _run(feeds_pb2_grpc.FeedsStub(channel), args)
    except grpc.RpcError as error:
        return _report(error, args)
    try:
        _print(feeds, args.output, detailed=args.action != "list")
    except BrokenPipeError:  # `| head`: the reader left
        return 0
    return 0


def _run(stub: feeds_pb2_grpc.FeedsStub, args: argparse.Namespace) -> list[FeedInfo]:
    if args.action == "list":
        response = stub.List(feeds_pb2.ListFeedsRequest(), timeout=_TIMEOUT_SECONDS)
        return [feed_from_pb(feed) for feed in response.feeds]
    if args.action == "get":
        return [feed_from_pb(stub.Get(feeds_pb2.GetFeedRequest(name=args.name), timeout=_TIMEOUT_SECONDS).feed)]
    response = stub.Sync(feeds_pb2.SyncFeedRequest(name=args.name), timeout=_SYNC_TIMEOUT_SECONDS)
    return [feed_from_pb(response.feed)]


def _report(error: grpc.RpcError, args: argparse.Namespace) -> int:
    code = error.code() if hasattr(error, "code") else None
    details = (error.details() if hasattr(error, "details") else None) or str(code)
    if code in _UNREACHABLE:
        what = "did not answer in time" if code == grpc.StatusCode.DEADLINE_EXCEEDED else "cannot be reached"
        if code == grpc.StatusCode.UNIMPLEMENTED:
            what = "does not serve dnswatch feeds (is it a dnswatch collector?)"
        print(f"{PROG}: error: the collector at {args.collector} {what}: {_one_line(details)}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{PROG}: error: {_one_line(details)}", file=sys.stderr)
    return EXIT_REFUSED


def _print(feeds: list[FeedInfo], output: str, *, detailed: bool) -> None:
    records = [feed.detail() if detailed else feed.record() for feed in feeds]
    if output == "json":
        for record in records:
            print(json.dumps(record, sort_keys=False))
    elif output == "yaml":
        body = records[0] if detailed and len(records) == 1 else records
        sys.stdout.write(yaml.safe_dump(body, sort_keys=False, allow_unicode=True))
    else:
        rows = [TABLE_COLUMNS, *(table_row(feed) for feed in feeds)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_COLUMNS))]
        for row in rows:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    sys.stdout.flush()


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


if __name__ == "__main__":
    sys.exit(main())
