"""`dnswatch`: the consumer's command against a collector.

    dnswatch --collector HOST:PORT feeds list [-o table|wide|json|yaml]
    dnswatch --collector HOST:PORT feeds get NAME [-o ...]
    dnswatch --collector HOST:PORT feeds sync NAME [-o ...]
    dnswatch --collector HOST:PORT feeds push NAME FILE [--format FORMAT] [-o ...]
    dnswatch --collector HOST:PORT events list [filters] [--limit N] [-o table|wide|json|yaml]
    dnswatch --collector HOST:PORT events watch [filters] [--resume-token TOKEN] [-o ...]
    dnswatch --collector HOST:PORT exceptions list|get NAME [-o ...]
    dnswatch --collector HOST:PORT webhooks list|get NAME|test NAME [-o ...]
    dnswatch completion bash|zsh|tcsh

    filters: --namespace N --pod P --feed F --domain D --type T --node H --since T --until T
             (T: RFC 3339, e.g. 2026-11-27T20:00:00Z, or a duration before now: 30s, 15m, 2h, 1d, 1h30m)

The global flags (--collector, the connection flags, --log-level, -o) go before or after the subcommand, and
the connection comes from the environment when the flags do not say it: DNSWATCH_COLLECTOR, DNSWATCH_CA,
DNSWATCH_TOKEN_FILE, DNSWATCH_INSECURE (1/true/yes or 0/false/no). A flag wins over the environment: with
--insecure given, DNSWATCH_CA and DNSWATCH_TOKEN_FILE are left alone; with a TLS flag given, DNSWATCH_INSECURE.

`-o json` prints one object per line: for feeds the fields (name, content, mode, entries,
rejectedLines, lastSuccessfulSync, errorConditions, version, sha256; `get`, `sync` and `push` add the spec's
safe fields, the rejected samples and, for `get`, the matching rules), for events each event exactly as
stored; nothing when nothing matches, so a pipeline reading one object a line never meets anything else.
`-o yaml` prints a list (`[]` when empty), a watch one document per event; `-o wide` is the table with more
columns. An empty table says so on stderr. `feeds get` in table mode is a describe-style view
(consumer/feeddescribe.py); `feeds list` shows after its table the manifests the collector refused (with
`-o json|yaml`, records with `refused: true`). `feeds push` replaces a push feed's set with FILE (`-` for
stdin), read as newline-delimited lines or as `--format` says (a `pull.http.format` object:
`'{json: {path: "$.data[*].domain"}}'`). `events list` prints the newest `--limit` events (default 100, 0 for
all), newest first. `events watch` follows events as they are stored until SIGINT or
SIGTERM, reconnecting with backoff when the stream breaks and resuming from the last resume token; when it
stops it prints that token on stderr, so a later `--resume-token` carries on with nothing missed or repeated.
`webhooks get` in table mode is a describe-style view (consumer/webhookview.py), with no secret in it: the
collector never sends one. `webhooks test NAME` sends one sample event to the webhook now, whatever its state,
and says whether it was delivered.

The connection flags (--insecure, --ca, --token-file, ...) are the agent's (dnswatch/grpcchannel.py): TLS
unless --insecure; `_open_channel` is the one place a channel is made. A collector that cannot be reached gets
a hint naming the flag to add or drop (dnswatch/channelhints.py); gRPC's own words need --log-level debug.
Exit status: 0 done (a watch stopped by a signal included), 1 the collector said no (unknown feed, Disabled
feed, credentials refused, a push refused, or a `feeds sync` whose pull failed or was refused: the feed is
still printed, and a line on stderr says why; a `webhooks test` whose event was not delivered, likewise),
2 bad usage or no collector to talk to; always one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import logging
import os
import random
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

# Before gRPC is imported, which reads it once: its C core would otherwise print each failed TLS handshake (a
# wrong --ca, plaintext against TLS) on stderr, next to the one line this command says about it.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import grpc  # noqa: E402
import yaml

from consumer.eventview import TABLE_COLUMNS as EVENT_COLUMNS
from consumer.eventview import WIDE_COLUMNS as EVENT_WIDE_COLUMNS
from consumer.eventview import parse_when
from consumer.eventview import table_row as event_row
from consumer.eventview import wide_row as event_wide_row
from consumer.exceptionview import TABLE_COLUMNS as EXCEPTION_COLUMNS
from consumer.exceptionview import exception_record
from consumer.exceptionview import table_row as exception_row
from consumer.webhookview import TABLE_COLUMNS as WEBHOOK_COLUMNS
from consumer.webhookview import describe as describe_webhook
from consumer.webhookview import table_row as webhook_row
from consumer.webhookview import test_line, test_record, webhook_record
from consumer.feeddescribe import describe, whole
from consumer.feedtable import REFUSED_COLUMNS, TABLE_COLUMNS, WIDE_COLUMNS, refused_row, table_row, wide_row
from dnswatch.channelhints import unreachable_hint
from dnswatch.collectoraddress import check_collector_address
from dnswatch.completion import add_completion_command, completion_script
from dnswatch.errors import BadInput
from dnswatch.eventfilter import EventFilter
from dnswatch.feeds.feedinfo import FeedInfo, RefusedManifest
from dnswatch.feeds.outcomes import FAILED, REFUSED
from dnswatch.grpcchannel import add_channel_arguments, channel_security_from_args, open_channel
from dnswatch.logfmt import LOG_LEVELS, configure_logging
from dnswatch.version import version_line
from dnswatch.pbconvert.events import BadWatchResponse, decompressed_events, event_from_pb, filter_to_pb
from dnswatch.pbconvert.feeds import feed_from_pb, refused_from_pb, sync_from_pb
from dnswatch_pb.v1 import alerting_pb2, alerting_pb2_grpc, events_pb2, events_pb2_grpc, feeds_pb2, feeds_pb2_grpc

__all__ = ["main"]

PROG = "dnswatch"
EXIT_REFUSED = 1
EXIT_USAGE = 2
OUTPUTS = ("table", "wide", "json", "yaml")
"""`-o`, the same for feeds and events."""
# The connection settings the environment may give, by the flag each stands in for.
ENVIRONMENT = {"--collector": "DNSWATCH_COLLECTOR", "--ca": "DNSWATCH_CA", "--token-file": "DNSWATCH_TOKEN_FILE",
               "--insecure": "DNSWATCH_INSECURE"}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")

log = logging.getLogger("dnswatch.consumer")

_TIMEOUT_SECONDS = 15.0
_SYNC_TIMEOUT_SECONDS = 600.0  # a sync waits for the pull, retries and backoff included
_UNREACHABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNIMPLEMENTED}
# A watch gives up at once on these (retrying cannot help); on anything else it reconnects.
_FINAL = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED,
          grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.FAILED_PRECONDITION}
_LIST_PAGE = 1000  # the collector's largest page
_WATCH_PAGE = 10_000  # events per compressed watch response at most (the collector's largest)
# A watch is idle for as long as nothing happens: ping the collector so that one which vanished (no FIN, no
# RST) is noticed within about 40 s and the watch reconnects (the collector accepts pings every 10 s).
_CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
)
_BACKOFF_MIN_SECONDS = 0.5
_BACKOFF_MAX_SECONDS = 30.0


class _Parser(argparse.ArgumentParser):
    """Bad flags are one line on stderr and exit 2, not the usage text."""

    def error(self, message: str) -> NoReturn:
        print(f"{PROG}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def build_parser(now: dt.datetime | None = None) -> argparse.ArgumentParser:
    now = now or dt.datetime.now(dt.timezone.utc)
    parser = _Parser(prog=PROG, description="Ask a dnswatch collector about threat feeds and security events.",
                     parents=[_global_flags(suppressed=False)])
    parser.add_argument("--version", action="version", version=version_line(PROG))
    # Every subcommand takes the global flags again, their defaults suppressed: given after the subcommand a
    # flag lands on the same name, and left out it leaves what was given before the subcommand.
    late = _global_flags(suppressed=True)
    commands = parser.add_subparsers(dest="topic", required=True, parser_class=_Parser)

    feeds = commands.add_parser("feeds", help="threat feeds and their status")
    actions = feeds.add_subparsers(dest="action", required=True, parser_class=_Parser)
    actions.add_parser("list", parents=[late], help="every feed with its status")
    get = actions.add_parser("get", parents=[late], help="one feed with its status")
    get.add_argument("name")
    sync = actions.add_parser("sync", parents=[late], help="pull a feed now and show it afterwards")
    sync.add_argument("name")
    push = actions.add_parser("push", parents=[late], help="replace a push feed's set and show it afterwards")
    push.add_argument("name")
    push.add_argument("file", help="the whole set (- for stdin), gzip-compressed or not")
    push.add_argument("--format", type=_push_format, default="", metavar="FORMAT",
                      help="the body's format, as a pull.http.format object (default: newline-delimited "
                           "lines): newlineDelimited, '{json: {path: \"$.data[*]\"}}', '{csv: {fieldNum: 1}}'")

    events = commands.add_parser("events", help="security events the agents reported")
    event_actions = events.add_subparsers(dest="action", required=True, parser_class=_Parser)
    filters = argparse.ArgumentParser(add_help=False)
    group = filters.add_argument_group("filters (each one given must hold)")
    group.add_argument("--namespace", help="the client pod's namespace")
    group.add_argument("--pod", help="the client pod's name, or its workload's aggregated name (web-7d4b9c-*)")
    group.add_argument("--feed", help="a feed that matched")
    group.add_argument("--domain", help="a suspicious domain that was queried or answered")
    group.add_argument("--type", help="the event type (gtf_suspicious_dns_query)")
    group.add_argument("--node", help="the node whose agent reported it")
    when = lambda text: _when(text, now)  # noqa: E731
    group.add_argument("--since", type=when, metavar="TIME",
                       help="events at or after TIME: RFC 3339 (2026-11-27T20:00:00Z) or a duration ago (15m, 2h, 1d)")
    group.add_argument("--until", type=when, metavar="TIME", help="events before TIME (same forms as --since)")
    group.add_argument("--include-excepted", action="store_true",
                       help="also events an active alert exception matched (left out by default)")
    group.add_argument("--include-dismissed", action="store_true", help="also dismissed events (left out by default)")
    listing = event_actions.add_parser("list", parents=[filters, late], help="stored events, newest first")
    listing.add_argument("--limit", type=_count, default=100, metavar="N",
                         help="print at most N events, the newest (default: 100; 0: all)")
    listing.add_argument("--dismissed", action="store_true", help="only dismissed events")
    watch = event_actions.add_parser("watch", parents=[filters, late], help="follow events as they are stored")
    watch.add_argument("--resume-token", default="", metavar="TOKEN",
                       help="carry on after the event this token (printed when a watch stops) stands for; "
                            "default: from now")
    for action, says in (("dismiss", "dismiss events: left out of list and watch from now on"),
                         ("undismiss", "take the dismissal of events back")):
        dismissal = event_actions.add_parser(action, parents=[late], help=says)
        dismissal.add_argument("ids", nargs="+", metavar="ID", help="an event's id")

    exceptions = commands.add_parser("exceptions", help="alert exceptions and their status")
    exception_actions = exceptions.add_subparsers(dest="action", required=True, parser_class=_Parser)
    exception_actions.add_parser("list", parents=[late], help="every alert exception with its status")
    exception_get = exception_actions.add_parser("get", parents=[late], help="one alert exception with its status")
    exception_get.add_argument("name")

    webhooks = commands.add_parser("webhooks", help="SecurityEventWebhooks and their status")
    webhook_actions = webhooks.add_subparsers(dest="action", required=True, parser_class=_Parser)
    webhook_actions.add_parser("list", parents=[late], help="every webhook with its status")
    webhook_get = webhook_actions.add_parser("get", parents=[late], help="one webhook with its config and status")
    webhook_get.add_argument("name")
    webhook_test = webhook_actions.add_parser("test", parents=[late],
                                              help="send one sample event to a webhook now, whatever its state")
    webhook_test.add_argument("name")
    add_completion_command(commands)
    return parser


def _global_flags(*, suppressed: bool) -> argparse.ArgumentParser:
    """The flags every subcommand takes, before or after it; `suppressed`: with no defaults, for the copy after."""
    flags = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS if suppressed else None)

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppressed else value

    flags.add_argument("--collector", metavar="HOST:PORT",
                       help="the collector's gRPC address (default: $DNSWATCH_COLLECTOR)")
    add_channel_arguments(flags)
    flags.add_argument("--log-level", choices=LOG_LEVELS, type=str.upper, default=default("WARNING"),
                       help="DEBUG also prints gRPC's own words when a call fails (default WARNING)")
    flags.add_argument("-o", "--output", choices=OUTPUTS, default=default("table"),
                       help="output format (default: table)")
    return flags


def _when(text: str, now: dt.datetime) -> dt.datetime:
    try:
        return parse_when(text, now)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _push_format(text: str) -> str:
    """`--format` as the JSON text the Push request carries; the collector validates what it says."""
    if not text.strip():
        return ""  # the feed's own format
    if text.strip() == "newlineDelimited":
        return json.dumps({"newlineDelimited": {}})
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a YAML or JSON object: {str(error).splitlines()[0]}"
                                         ) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"{text!r} is not a format object such as '{{csv: {{fieldNum: 1}}}}'")
    return json.dumps(value)


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of events (0 or more)")
    return int(text)


def main(argv: Sequence[str] | None = None, environ: dict[str, str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.topic == "completion":
        sys.stdout.write(completion_script(parser, args.shell))
        return 0
    if args.log_level == "DEBUG":
        # Only then: this command says what it has to say with print, and the root logger of a caller that runs
        # main() in its own process (a test, an embedding) is not this command's to replace.
        configure_logging(args.log_level)
    try:
        _take_environment(args, os.environ if environ is None else environ)
        if args.collector is None:
            raise BadInput("no collector: give --collector HOST:PORT, or set DNSWATCH_COLLECTOR")
        args.collector = check_collector_address(args.collector)
        args.security = channel_security_from_args(args)
    except BadInput as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        body = _push_body(args.file) if args.topic == "feeds" and args.action == "push" else b""
    except OSError as error:
        print(f"{PROG}: error: {args.file}: {error.strerror or error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.topic == "events":
            return _events(args)
        if args.topic == "exceptions":
            return _exceptions(args)
        if args.topic == "webhooks":
            return _webhooks(args)
        with _open_channel(args) as channel:
            feeds, refused, failure = _run(feeds_pb2_grpc.FeedsStub(channel), args, body)
    except grpc.RpcError as error:
        return _report(error, args)
    except BrokenPipeError:  # `| head`: the reader left
        return _reader_left()
    try:
        if args.action == "get":
            _print_described(feeds[0], args.output)
        else:
            _print(feeds, args.output, detailed=args.action != "list", refused=refused)
    except BrokenPipeError:
        return _reader_left()
    if failure:
        print(f"{PROG}: feed {args.name}: {_one_line(failure)}", file=sys.stderr)
        return EXIT_REFUSED
    return 0


def _take_environment(args: argparse.Namespace, environ: dict[str, str]) -> None:
    """Fill in from the environment what the connection flags left unsaid (ENVIRONMENT); a flag wins."""
    if args.collector is None:
        args.collector = environ.get(ENVIRONMENT["--collector"], "").strip() or None
    tls_given = any((args.ca, args.cert, args.key, args.token_file, args.server_name))
    if not args.insecure and not tls_given:
        value = environ.get(ENVIRONMENT["--insecure"], "").strip().lower()
        if value not in _TRUE + _FALSE:
            raise BadInput(f"{ENVIRONMENT['--insecure']}={value!r}: expected 1, true or yes (or 0, false, no)")
        args.insecure = value in _TRUE
    if args.insecure:
        return  # --insecure sends no credentials: a CA or token from the environment is not for this call
    for flag, dest in (("--ca", "ca"), ("--token-file", "token_file")):
        if getattr(args, dest) is None and environ.get(ENVIRONMENT[flag], "").strip():
            setattr(args, dest, Path(environ[ENVIRONMENT[flag]].strip()))


def _open_channel(args: argparse.Namespace) -> grpc.Channel:
    """The one place a channel to the collector is made, secured as the connection flags say."""
    return open_channel(args.collector, args.security, _CHANNEL_OPTIONS)


def _run(stub: feeds_pb2_grpc.FeedsStub, args: argparse.Namespace, body: bytes
         ) -> tuple[list[FeedInfo], list[RefusedManifest], str]:
    """The feeds to print, the refused manifests (for a list), and for a sync whose pull failed or was
    refused, what it did and why."""
    if args.action == "list":
        response = stub.List(feeds_pb2.ListFeedsRequest(), timeout=_TIMEOUT_SECONDS)
        return ([feed_from_pb(feed) for feed in response.feeds],
                [refused_from_pb(refused) for refused in response.refused], "")
    if args.action == "get":
        return [feed_from_pb(stub.Get(feeds_pb2.GetFeedRequest(name=args.name),
                                      timeout=_TIMEOUT_SECONDS).feed)], [], ""
    if args.action == "push":
        response = stub.Push(feeds_pb2.PushFeedRequest(name=args.name, body=body, format=args.format),
                             timeout=_SYNC_TIMEOUT_SECONDS)
        return [feed_from_pb(response.feed)], [], ""
    feed, outcome, message = sync_from_pb(stub.Sync(feeds_pb2.SyncFeedRequest(name=args.name),
                                                    timeout=_SYNC_TIMEOUT_SECONDS))
    failure = f"the pull {outcome.lower()}: {message}" if outcome in (FAILED, REFUSED) else ""
    return [feed], [], failure


def _push_body(path: str) -> bytes:
    """FILE's bytes, gzip-compressed unless they are already: a gRPC message holds 4 MiB, and feeds compress
    tenfold (the collector unpacks a gzip body, within its size limit)."""
    raw = sys.stdin.buffer.read() if path == "-" else open(path, "rb").read()  # noqa: SIM115 - read at once
    return raw if raw[:2] == b"\x1f\x8b" else gzip.compress(raw, compresslevel=6, mtime=0)


def _report(error: grpc.RpcError, args: argparse.Namespace) -> int:
    code = error.code() if hasattr(error, "code") else None
    details = (error.details() if hasattr(error, "details") else None) or str(code)
    log.debug("the collector at %s: %s: %s", args.collector, code, _one_line(details))
    if code in _UNREACHABLE:
        what = "did not answer in time" if code == grpc.StatusCode.DEADLINE_EXCEEDED else "cannot be reached"
        if code == grpc.StatusCode.UNIMPLEMENTED:
            what = f"does not serve dnswatch {args.topic} (is it a dnswatch collector?)"
        why = unreachable_hint(args.collector, args.security, details) if code == grpc.StatusCode.UNAVAILABLE else None
        if why is None:
            why = _one_line(details)
        print(f"{PROG}: error: the collector at {args.collector} {what}: {why}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{PROG}: error: {_one_line(details)}", file=sys.stderr)
    return EXIT_USAGE if code == grpc.StatusCode.INVALID_ARGUMENT else EXIT_REFUSED


def _print(feeds: list[FeedInfo], output: str, *, detailed: bool, refused: list[RefusedManifest]) -> None:
    records = [feed.detail() if detailed else feed.record() for feed in feeds]
    records += [{**manifest.record(), "refused": True} for manifest in refused]
    if output == "json":
        for record in records:
            print(json.dumps(record, sort_keys=False))
    elif output == "yaml":
        body = records[0] if detailed and len(records) == 1 else records
        sys.stdout.write(yaml.safe_dump(body, sort_keys=False, allow_unicode=True))
    else:
        if not feeds:
            print(f"{PROG}: no feeds", file=sys.stderr)
        elif output == "wide":
            _print_table(WIDE_COLUMNS, [wide_row(feed) for feed in feeds])
        else:
            _print_table(TABLE_COLUMNS, [table_row(feed) for feed in feeds])
        if refused:
            print(f"\nRefused manifests ({len(refused)}):" if feeds else f"Refused manifests ({len(refused)}):")
            _print_table(REFUSED_COLUMNS, [refused_row(manifest) for manifest in refused])
    sys.stdout.flush()


def _print_described(feed: FeedInfo, output: str) -> None:
    if output == "json":
        print(json.dumps(whole(feed), sort_keys=False))
    elif output == "yaml":
        sys.stdout.write(yaml.safe_dump(whole(feed), sort_keys=False, allow_unicode=True))
    else:
        print("\n".join(describe(feed)))
    sys.stdout.flush()


def _print_table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    cells = [columns, *rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for row in cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _reader_left() -> int:
    # Point stdout at /dev/null so the interpreter's last flush does not complain about the closed pipe.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


# ---------------------------------------------------------------------------------------------- events


def _event_filter(args: argparse.Namespace) -> events_pb2.EventFilter:
    return filter_to_pb(EventFilter(namespace=args.namespace or None, pod=args.pod or None, feed=args.feed or None,
                                    domain=args.domain or None, type=args.type or None, host=args.node or None,
                                    since=args.since, until=args.until, include_excepted=args.include_excepted,
                                    include_dismissed=args.include_dismissed,
                                    dismissed_only=getattr(args, "dismissed", False)))


def _dismissal(args: argparse.Namespace) -> int:
    """`events dismiss|undismiss ID...`: what changed on stdout, unknown ids on stderr (exit 1)."""
    with _open_channel(args) as channel:
        stub = events_pb2_grpc.EventsStub(channel)
        method = stub.Dismiss if args.action == "dismiss" else stub.Undismiss
        response = method(events_pb2.DismissEventsRequest(ids=args.ids), timeout=_TIMEOUT_SECONDS)
    done = "dismissed" if args.action == "dismiss" else "undismissed"
    changed = set(response.changed)
    for event_id in dict.fromkeys(args.ids):
        if event_id in changed:
            print(f"{event_id} {done}")
        elif event_id not in response.unknown:
            print(f"{event_id} {done} already")
    for event_id in response.unknown:
        print(f"{PROG}: no stored event has the id {event_id}", file=sys.stderr)
    sys.stdout.flush()
    return EXIT_REFUSED if response.unknown else 0


def _exceptions(args: argparse.Namespace) -> int:
    """`exceptions list|get NAME`."""
    with _open_channel(args) as channel:
        stub = alerting_pb2_grpc.AlertExceptionsStub(channel)
        if args.action == "list":
            found = list(stub.List(alerting_pb2.ListAlertExceptionsRequest(), timeout=_TIMEOUT_SECONDS).exceptions)
        else:
            found = [stub.Get(alerting_pb2.GetAlertExceptionRequest(name=args.name), timeout=_TIMEOUT_SECONDS)]
    if args.output in ("json", "yaml"):
        _print_records([exception_record(message) for message in found], args)
    elif not found:
        print(f"{PROG}: no alert exceptions", file=sys.stderr)
    else:
        _print_table(EXCEPTION_COLUMNS, [exception_row(message) for message in found])
    sys.stdout.flush()
    return 0


def _webhooks(args: argparse.Namespace) -> int:
    """`webhooks list|get NAME|test NAME`."""
    with _open_channel(args) as channel:
        stub = alerting_pb2_grpc.WebhooksStub(channel)
        if args.action == "test":
            # The receiver may be slow: the collector bounds the attempt, this only bounds the wait for it.
            result = stub.Test(alerting_pb2.TestWebhookRequest(name=args.name), timeout=_SYNC_TIMEOUT_SECONDS)
        elif args.action == "list":
            found = list(stub.List(alerting_pb2.ListWebhooksRequest(), timeout=_TIMEOUT_SECONDS).webhooks)
        else:
            found = [stub.Get(alerting_pb2.GetWebhookRequest(name=args.name), timeout=_TIMEOUT_SECONDS)]
    if args.action == "test":
        return _print_test(args.name, result, args.output)
    if args.output in ("json", "yaml"):
        _print_records([webhook_record(message) for message in found], args)
    elif not found:
        print(f"{PROG}: no webhooks", file=sys.stderr)
    elif args.action == "get":
        print("\n".join(describe_webhook(found[0])))
    else:
        _print_table(WEBHOOK_COLUMNS, [webhook_row(message) for message in found])
    sys.stdout.flush()
    return 0


def _print_records(records: list[dict], args: argparse.Namespace) -> None:
    """Print the records as `-o json` (one a line) or `-o yaml` (the one of `get`, else a list) asks."""
    if args.output == "json":
        for record in records:
            print(json.dumps(record))
    else:
        body = records[0] if args.action == "get" else records
        sys.stdout.write(yaml.safe_dump(body, sort_keys=False, allow_unicode=True))


def _print_test(name: str, result: alerting_pb2.TestWebhookResponse, output: str) -> int:
    if output == "json":
        print(json.dumps(test_record(name, result)))
    elif output == "yaml":
        sys.stdout.write(yaml.safe_dump(test_record(name, result), sort_keys=False))
    elif result.delivered:
        print(test_line(name, result))
    sys.stdout.flush()
    if result.delivered:
        return 0
    print(f"{PROG}: {test_line(name, result)}", file=sys.stderr)
    return EXIT_REFUSED


def _events(args: argparse.Namespace) -> int:
    if args.action in ("dismiss", "undismiss"):
        return _dismissal(args)
    if args.since is not None and args.until is not None and args.since >= args.until:
        print(f"{PROG}: error: --since must be before --until", file=sys.stderr)
        return EXIT_USAGE
    if args.action == "list":
        with _open_channel(args) as channel:
            events, more = _list_events(events_pb2_grpc.EventsStub(channel), args)
            _print_events(events, args.output, marks=args.include_excepted or args.include_dismissed
                          or args.dismissed)
        if more:
            print(f"{PROG}: the newest {args.limit} shown; --limit N for more (0: all)", file=sys.stderr)
        return 0
    return _watch_events(args)


def _list_events(stub: events_pb2_grpc.EventsStub, args: argparse.Namespace
                 ) -> tuple[list[events_pb2.Event], bool]:
    """The newest `--limit` matching events and whether more match."""
    where = _event_filter(args)
    found: list[events_pb2.Event] = []
    token = ""
    while True:
        size = _LIST_PAGE if args.limit == 0 else min(_LIST_PAGE, args.limit - len(found))
        response = stub.List(events_pb2.ListEventsRequest(filter=where, page_size=size, page_token=token),
                             timeout=_TIMEOUT_SECONDS)
        found += response.events
        token = response.next_page_token
        if not token:
            return found, False
        if args.limit and len(found) >= args.limit:
            return found[:args.limit], True


def _print_events(events: Sequence[events_pb2.Event], output: str, *, marks: bool = False) -> None:
    """The events; with `marks` (marked events asked for) the table says why each is hidden by default (the
    JSON and YAML stay the event exactly as stored)."""
    if output == "json":
        for message in events:
            print(_json_line(message))
    elif output == "yaml":
        sys.stdout.write(yaml.safe_dump([event_from_pb(message) for message in events], sort_keys=False,
                                        allow_unicode=True))
    elif not events:
        print(f"{PROG}: no events match", file=sys.stderr)
    elif marks:
        _print_table((*EVENT_COLUMNS, "HIDDEN BY"),
                     [(*event_row(event_from_pb(message)), _hidden_by(message)) for message in events])
    elif output == "wide":
        _print_table(EVENT_WIDE_COLUMNS, [event_wide_row(event_from_pb(message)) for message in events])
    else:
        _print_table(EVENT_COLUMNS, [event_row(event_from_pb(message)) for message in events])
    sys.stdout.flush()


def _hidden_by(message: events_pb2.Event) -> str:
    reasons = [f"exception {message.excepted_by}"] if message.excepted_by else []
    if message.dismissed:
        reasons.append(f"dismissed by {message.dismissed_by}" if message.dismissed_by else "dismissed")
    return ", ".join(reasons) or "-"


def _json_line(message: events_pb2.Event) -> str:
    """The event's JSON text exactly as stored, unless it spans lines (then compacted: one event a line)."""
    if "\n" not in message.json and "\r" not in message.json:
        return message.json
    return json.dumps(event_from_pb(message), separators=(",", ":"), ensure_ascii=False)


class _Stop(Exception):
    """SIGINT or SIGTERM: the watch ends, and exits 0."""


class _Stopper:
    """The SIGINT/SIGTERM handler of a watch: it raises _Stop (which interrupts the wait for the next
    response), except while a response is being printed and its token taken, when the stop waits for the
    end of that: a token printed at the stop must stand for exactly the events printed before it."""

    def __init__(self) -> None:
        self.printing = False
        self.asked = False

    def __call__(self, signum: int, frame: object) -> None:
        if self.printing:
            self.asked = True
            return
        raise _Stop

    def printed(self) -> None:
        """The response is printed and its token taken: a stop asked meanwhile happens now."""
        self.printing = False
        if self.asked:
            raise _Stop


def _watch_events(args: argparse.Namespace) -> int:
    """Follow events until SIGINT/SIGTERM: connect, follow, and when the stream breaks back off and resume
    from the last token received (the first message of a stream already carries one)."""
    request = events_pb2.WatchEventsRequest(filter=_event_filter(args), resume_token=args.resume_token,
                                            max_events=_WATCH_PAGE,
                                            compression=events_pb2.WATCH_COMPRESSION_ZSTD)
    columns, row, widths = ((EVENT_WIDE_COLUMNS, event_wide_row, [20, 30, 15, 40, 6, 9, 16, 16, 5, 16, 32])
                            if args.output == "wide" else (EVENT_COLUMNS, event_row, [20, 30, 40, 16, 5]))
    printed_header = False
    answered = False
    backoff = _BACKOFF_MIN_SECONDS
    stopper = _Stopper()
    previous = {signum: signal.signal(signum, stopper) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            call = None
            try:
                with _open_channel(args) as channel:
                    call = events_pb2_grpc.EventsStub(channel).Watch(request)
                    for message in call:
                        # A collector from before pages sends one event per response, in `event`, and one
                        # from before compression sends `events`.
                        try:
                            events = decompressed_events(message)
                        except BadWatchResponse as error:
                            raise _Broken(str(error)) from None
                        stopper.printing = True
                        answered = True
                        backoff = _BACKOFF_MIN_SECONDS
                        if events:
                            # A page at a time: one write and one flush per response, not per event.
                            if args.output == "json":
                                lines = [_json_line(event) for event in events]
                            elif args.output == "yaml":  # one document per event: a stream never ends a list
                                lines = ["---\n" + yaml.safe_dump(event_from_pb(event), sort_keys=False,
                                                                  allow_unicode=True).rstrip("\n")
                                         for event in events]
                            else:
                                lines = [_fixed(row(event_from_pb(event)), widths) for event in events]
                                if not printed_header:
                                    lines.insert(0, _fixed(columns, widths))
                                    printed_header = True
                            sys.stdout.write("\n".join(lines) + "\n")
                            sys.stdout.flush()
                        request.resume_token = message.resume_token
                        stopper.printed()
                    raise _Broken("the collector ended the stream")
            except _Stop:
                if call is not None:
                    call.cancel()
                raise
            except (grpc.RpcError, _Broken) as error:
                code = error.code() if isinstance(error, grpc.RpcError) else None
                if code in _FINAL or (not answered and code in _UNREACHABLE):
                    return _report(error, args)
                reason = _one_line(error.details() if isinstance(error, grpc.RpcError) else error)
                wait = backoff * random.uniform(0.5, 1.0)
                print(f"{PROG}: the watch broke ({reason}); reconnecting in {wait:.1f} s", file=sys.stderr)
                time.sleep(wait)
                backoff = min(backoff * 2, _BACKOFF_MAX_SECONDS)
    except _Stop:
        pass
    except BrokenPipeError:
        return _reader_left()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if request.resume_token:
        print(f"{PROG}: stopped; resume with --resume-token {request.resume_token}", file=sys.stderr)
    else:
        print(f"{PROG}: stopped before the collector answered", file=sys.stderr)
    return 0


class _Broken(Exception):
    """The stream ended without an error status (a collector does not end a watch on its own)."""


def _fixed(cells: tuple[str, ...], widths: list[int]) -> str:
    """A table row for a stream: the widths are fixed up front, since the rows to come are unknown."""
    return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()


if __name__ == "__main__":
    sys.exit(main())
