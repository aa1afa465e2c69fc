"""A webhook receiver on 127.0.0.1, playing Slack's incoming webhooks, Jira's issue API or a generic endpoint,
with faults on demand: what the tests, the demo and the bench send webhooks to.

    with WebhookReceiver() as receiver:                   # TLS: WebhookReceiver(tls=(cert.pem, key.pem))
        receiver.fail_next(500, 500)                      # the next two requests get 500
        receiver.fail_next(FaultReply(429, retry_after="1"))
        receiver.fail_next(STALL)                         # holds the next request past the sender's timeout
        receiver.fail_next(RESET)                         # closes the next connection without an answer
        ... receiver.url("/hook") ...
        receiver.received                                 # [Received(path, headers, body, key, status)]

Every request is recorded with the answer it got; `acknowledged()` gives the Idempotency-Keys answered 2xx in
order, so a test can see that none was delivered twice after its acknowledgement. `python -m
harness.webhookreceiver [--port N] [--quiet]` runs one that prints each event it is sent (the demo's), and
answers `GET /` with how many it received (the bench's).
"""

from __future__ import annotations

import argparse
import collections
import http.server
import json
import socket
import ssl
import struct
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RESET", "STALL", "FaultReply", "Received", "WebhookReceiver"]


@dataclass(frozen=True)
class FaultReply:
    """An answer other than 200: a status, an optional Retry-After."""

    status: int
    retry_after: str | None = None


STALL = "stall"
"""Answer nothing until the receiver closes (or `stall_seconds`): the sender's timeout passes."""
RESET = "reset"
"""Close the connection with a TCP reset instead of answering."""


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    """What it was answered; 0 for a stall or a reset."""
    at: float

    @property
    def key(self) -> str:
        return self.headers.get("idempotency-key", "")

    def json(self):
        return json.loads(self.body)


class WebhookReceiver:
    def __init__(self, *, tls: tuple[Path, Path] | None = None, stall_seconds: float = 30.0,
                 port: int = 0, on_received=None, answer_after: float = 0.0, keep: bool = True) -> None:
        """`tls`: (certificate chain, key) PEM files to serve HTTPS with; `on_received(Received)` is called for
        each request, on the server's thread; `answer_after` seconds pass before each answer (a slow receiver,
        so that deliveries are still pending when a test kills the collector); without `keep` requests are only
        counted (a bench sends hundreds of thousands)."""
        self.answer_after = answer_after
        self._keep = keep
        self._counts = [0, 0]  # received, acknowledged
        self.received: list[Received] = []
        self._faults: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._stall_seconds = stall_seconds
        self._on_received = on_received
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Slack's and Jira's servers
            # The headers and the body go in two writes: with Nagle's algorithm the body would wait for the
            # client's delayed ACK, 40 ms an answer.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:  # noqa: N802 - the standard library's name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                fault = receiver._next_fault()
                headers = {name.lower(): value for name, value in self.headers.items()}
                if fault == STALL:
                    receiver._record(self.path, headers, body, 0)
                    receiver._closing.wait(receiver._stall_seconds)
                    self.close_connection = True
                    return
                if fault == RESET:
                    receiver._record(self.path, headers, body, 0)
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    return
                if receiver.answer_after:
                    time.sleep(receiver.answer_after)
                status = 200 if fault is None else fault.status
                answer = b"ok" if status < 300 else b"no"
                receiver._record(self.path, headers, body, status)  # before the answer: the sender may act on it
                self.send_response(status)
                if fault is not None and fault.retry_after is not None:
                    self.send_header("Retry-After", fault.retry_after)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                self.wfile.flush()

            def do_GET(self) -> None:  # noqa: N802 - how many were received: for a receiver in another process
                with receiver._lock:
                    answer = json.dumps({"received": receiver._counts[0], "acknowledged": receiver._counts[1]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = _Server(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook receiver", daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def url(self, path: str = "/hook") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def fail_next(self, *faults) -> None:
        """The next requests get these answers in turn (a status, a FaultReply, STALL or RESET); then 200."""
        with self._lock:
            self._faults.extend(FaultReply(f) if isinstance(f, int) else f for f in faults)

    def acknowledged(self) -> list[str]:
        """The Idempotency-Keys answered 2xx, in order (a key twice: delivered twice after an ack)."""
        with self._lock:
            return [one.key for one in self.received if 200 <= one.status < 300]

    def wait_for(self, condition, what: str, seconds: float = 30.0) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; received {len(self.received)}")
            time.sleep(0.02)

    def _next_fault(self):
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def _record(self, path: str, headers: dict[str, str], body: bytes, status: int) -> None:
        received = Received(path, headers, body, status, time.monotonic())
        with self._lock:
            self._counts[0] += 1
            self._counts[1] += 200 <= status < 300
            if self._keep:
                self.received.append(received)
        if self._on_received is not None:
            self._on_received(received)


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        # A sender that goes away mid-request (a collector killed on purpose) is no error of the receiver's.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _print_event(received: Received) -> None:
    from collector.core.webhookpayloads import looked_up

    try:
        event = received.json()
        record = event.get("record", {})
        source = f"{event.get('source_namespace')}/{event.get('source_name')}"
        line = (f"webhook receiver: POST {received.path} {received.key}: "
                f"{event.get('source_ip') if source == '-/-' else source} looked up {looked_up(event)}; "
                f"feeds {','.join(record.get('feeds', []))}, count {record.get('count')}")
    except (ValueError, AttributeError, TypeError):
        line = f"webhook receiver: POST {received.path} {received.key}: {len(received.body)} bytes"
    with _PRINTING:  # the server answers on a thread per connection: one whole line at a time
        print(line, flush=True)


_PRINTING = threading.Lock()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.webhookreceiver",
                                     description="A generic webhook receiver on 127.0.0.1 printing each event.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="print nothing per event (GET / counts them)")
    args = parser.parse_args(argv)
    with WebhookReceiver(port=args.port, on_received=None if args.quiet else _print_event,
                         keep=not args.quiet) as receiver:
        print(f"webhook receiver: listening on {receiver.url('/')}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
