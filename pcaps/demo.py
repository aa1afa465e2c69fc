"""`make demo`: the whole dnswatch pipeline on one machine, on embedded defaults, no cluster.

    python -m pcaps.demo [-o table|json] [--workdir DIR] [--keep]

1. an HTTP server on 127.0.0.1 serves the demo feeds (pcaps/demo-*.txt), as a threat-intel site would;
2. `dnswatch-collector` (SQLite, loopback, plaintext) reads the demo's GlobalThreatFeed manifests from a
   folder, with their URLs pointed at that server, and pulls the feeds;
   and a Generic SecurityEventWebhook (pcaps/demo-webhook.yaml) pointed at a small webhook receiver
   (harness/webhookreceiver.py) that prints each event it is sent;
3. `dnswatch-agent replay --collector` takes the feeds from the collector, replays pcaps/demo.pcapng with the
   demo's pod list, and ships its events to the collector, which delivers each to the webhook;
4. `dnswatch events list` asks the collector what it stored and prints it;
5. the last line names the collector's web UI (its --http-listen, docs/ui.md).

Each step is the real command in its own process, as a newcomer would run them by hand; the commands are
printed as they run. Everything listens on 127.0.0.1 and is stopped at the end, whatever happens, except with
`--keep` (`make demo KEEP=1`): then the collector goes on serving the demo's events and its UI, in its own
session so that the terminal's Ctrl-C does not reach it, until `kill $(cat WORKDIR/collector.pid)`.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

PCAPS = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
NODE = "node-1"
FEEDS = ("c2", "exfil", "badips")
START_SECONDS = 30.0
ROOT = PCAPS.parent
_LISTENING = re.compile(r"listening on \S+ \(port (\d+)\)")
_HTTP_LISTENING = re.compile(r"HTTP API on \S+ \(port (\d+),")
_RECEIVING = re.compile(r"webhook receiver: listening on http://127\.0\.0\.1:(\d+)/")
_WEBHOOK = "demo-generic"


class DemoError(Exception):
    """A step failed; the message says which and shows its output."""


# ---------------------------------------------------------------------------------------------- the parts


@contextlib.contextmanager
def feed_site(folder: Path = PCAPS) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 serving the files of `folder` (pcaps/); yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="feed site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # the collector logs each pull already
        pass


def write_manifests(folder: Path, base_url: str) -> None:
    """The demo's manifests, their `file:` URLs turned into the feed site's."""
    text = (PCAPS / "demo-feeds.yaml").read_text(encoding="utf-8")
    text = re.sub(r"url: file:(\S+)", lambda m: f"url: {base_url}/{m.group(1)}", text)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "demo-feeds.yaml").write_text(text, encoding="utf-8")


def write_webhook(folder: Path, receiver_port: int) -> None:
    """The demo's Generic webhook, pointed at the receiver."""
    text = (PCAPS / "demo-webhook.yaml").read_text(encoding="utf-8").replace("RECEIVER_PORT", str(receiver_port))
    (folder / "demo-webhook.yaml").write_text(text, encoding="utf-8")


@contextlib.contextmanager
def webhook_receiver(workdir: Path) -> Iterator[tuple[int, Path]]:
    """harness/webhookreceiver.py on 127.0.0.1 (any free port); yields its port and the file of what it prints."""
    command = [sys.executable, "-m", "harness.webhookreceiver"]
    _show(["python", *command[1:]])
    out_path = workdir / "webhook-receiver.log"
    with open(out_path, "w+", encoding="utf-8") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
        try:
            deadline = time.monotonic() + START_SECONDS
            while not (found := _RECEIVING.search(out_path.read_text(encoding="utf-8", errors="replace"))):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise DemoError(f"the webhook receiver did not start:\n{_tail(out_path)}")
                time.sleep(0.05)
            yield int(found.group(1)), out_path
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_for_webhook(workdir: Path) -> None:
    """Until the collector follows the demo's webhook: events stored before it would not be sent to it."""
    deadline = time.monotonic() + START_SECONDS
    log_path = workdir / "collector.log"
    while f"SecurityEventWebhook {_WEBHOOK}: queueing" not in log_path.read_text(encoding="utf-8", errors="replace"):
        if time.monotonic() > deadline:
            raise DemoError(f"the collector did not take the demo's webhook within {START_SECONDS:.0f} s:\n"
                            f"{_tail(log_path)}")
        time.sleep(0.1)


def wait_for_deliveries(address: str, received: Path) -> list[str]:
    """Until the receiver has printed the newest emission of every stored event; the lines it printed."""
    import json

    stored = _dnswatch(address, "events", "list", "--limit", "1000", "-o", "json", show=False).stdout
    keys = {f"{_WEBHOOK}:{e['id']}:{e['record']['count']}" for e in map(json.loads, stored.splitlines())}
    deadline = time.monotonic() + START_SECONDS
    while True:
        lines = [line for line in received.read_text(encoding="utf-8").splitlines()
                 if line.startswith("webhook receiver: ") and "listening on" not in line]
        if all(any(f" {key}: " in line for line in lines) for key in keys):
            return lines
        if time.monotonic() > deadline:
            raise DemoError(f"the webhook receiver did not get every event within {START_SECONDS:.0f} s:\n"
                            f"{_tail(received)}")
        time.sleep(0.1)


@contextlib.contextmanager
def collector(workdir: Path, feeds_dir: Path, keep: bool = False) -> Iterator[tuple[str, str]]:
    """`dnswatch-collector` on 127.0.0.1 (any free ports); yields its gRPC address and its web UI's URL once
    it takes calls. `keep`: left running at the end, its pid in workdir/collector.pid."""
    command = [str(BIN / "dnswatch-collector"), "--db", f"sqlite:///{workdir / 'collector.sqlite'}",
               "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--feeds-dir", str(feeds_dir),
               "--feeds-dir-poll", "0.5", "--insecure"]
    _show(command)
    log_path = workdir / "collector.log"
    with open(log_path, "w+", encoding="utf-8") as log:
        process = subprocess.Popen(command, stdout=log, stderr=log, text=True, start_new_session=keep)
        stopped = True
        try:
            port = _wait_for_port(process, log_path, _LISTENING)
            ui_port = _wait_for_port(process, log_path, _HTTP_LISTENING)
            yield f"127.0.0.1:{port}", f"http://127.0.0.1:{ui_port}/"
            stopped = not keep
        finally:
            if stopped:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            else:
                (workdir / "collector.pid").write_text(f"{process.pid}\n", encoding="utf-8")


def _wait_for_port(process: subprocess.Popen, log_path: Path, pattern: re.Pattern = _LISTENING) -> int:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        found = pattern.search(log_path.read_text(encoding="utf-8", errors="replace"))
        if found:
            return int(found.group(1))
        if process.poll() is not None:
            raise DemoError(f"the collector exited with status {process.returncode}:\n{_tail(log_path)}")
        time.sleep(0.1)
    raise DemoError(f"the collector did not start listening within {START_SECONDS:.0f} s:\n{_tail(log_path)}")


def wait_for_feeds(address: str, names: tuple[str, ...] = FEEDS) -> None:
    """Until the collector has pulled every demo feed once (the agent takes the sets it holds at connect)."""
    import json

    deadline = time.monotonic() + START_SECONDS
    last = ""
    while time.monotonic() < deadline:
        result = _dnswatch(address, "feeds", "list", "-o", "json", show=False, check=False)
        last = result.stderr or result.stdout
        if result.returncode == 0:
            feeds = {f["name"]: f for f in map(json.loads, result.stdout.splitlines())}
            if all(feeds.get(name, {}).get("version", 0) >= 1 for name in names):
                return
        time.sleep(0.2)
    raise DemoError(f"the collector did not pull the demo feeds within {START_SECONDS:.0f} s: {last.strip()}")


def replay(address: str, workdir: Path) -> str:
    """`dnswatch-agent replay --collector`; returns its summary lines (stderr)."""
    command = [str(BIN / "dnswatch-agent"), "replay", str(PCAPS / "demo.pcapng"), "--collector", address,
               "--insecure", "--pods", str(PCAPS / "demo-pods.json"), "--node", NODE, "-o", "json"]
    _show(command)
    with open(workdir / "agent-events.jsonl", "w", encoding="utf-8") as out:
        result = subprocess.run(command, stdout=out, stderr=subprocess.PIPE, text=True, timeout=120)
    if result.returncode != 0:
        raise DemoError(f"the agent's replay failed (status {result.returncode}):\n{result.stderr}")
    return result.stderr


def _dnswatch(address: str, *args: str, show: bool = True, check: bool = True) -> subprocess.CompletedProcess:
    command = [str(BIN / "dnswatch"), "--collector", address, "--insecure", *args]
    if show:
        _show(command)
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise DemoError(f"`dnswatch {' '.join(args)}` failed (status {result.returncode}):\n{result.stderr}")
    return result


def _show(command: list[str]) -> None:
    shown = [Path(command[0]).name, *(os.path.relpath(a) if a.startswith(str(PCAPS)) else a for a in command[1:])]
    print(f"$ {shlex.join(shown)}", file=sys.stderr, flush=True)


def _tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


# ---------------------------------------------------------------------------------------------- the command


def run(output: str, workdir: Path, keep: bool = False) -> tuple[str, str]:
    """The whole pipeline; returns what `dnswatch events list -o OUTPUT` printed and the web UI's URL."""
    with feed_site() as base_url, webhook_receiver(workdir) as (receiver_port, received):
        feeds_dir = workdir / "feeds"
        write_manifests(feeds_dir, base_url)
        write_webhook(feeds_dir, receiver_port)
        with collector(workdir, feeds_dir, keep) as (address, ui_url):
            wait_for_feeds(address)
            wait_for_webhook(workdir)
            print(replay(address, workdir).rstrip(), file=sys.stderr)
            print("\n".join(wait_for_deliveries(address, received)), file=sys.stderr)
            return _dnswatch(address, "events", "list", "--limit", "1000", "-o", output).stdout, ui_url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pcaps.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")
    parser.add_argument("--workdir", type=Path, help="keep the collector's database and logs here "
                        "(default: a temporary folder, removed at the end)")
    parser.add_argument("--keep", action="store_true", help="leave the collector running with the demo's events "
                        "and its web UI (its pid in WORKDIR/collector.pid)")
    args = parser.parse_args(argv)
    try:
        if args.workdir is not None or args.keep:
            workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dnswatch-demo-"))
            workdir.mkdir(parents=True, exist_ok=True)
            printed, ui_url = run(args.output, workdir.resolve(), args.keep)
        else:
            with tempfile.TemporaryDirectory(prefix="dnswatch-demo-") as folder:
                printed, ui_url = run(args.output, Path(folder))
    except (DemoError, OSError, subprocess.TimeoutExpired) as error:
        print(f"demo: error: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(printed)
    sys.stdout.flush()
    if args.keep:
        pid_file = (workdir / "collector.pid").resolve()
        print(f"web UI: {ui_url} (the collector keeps running with the demo's events; stop it with "
              f"`kill $(cat {pid_file})`)", file=sys.stderr)
    else:
        print(f"web UI: {ui_url} (stopped with the demo; `make demo KEEP=1` keeps it running)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
