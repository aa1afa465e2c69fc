"""A real HTTP feed server on 127.0.0.1 for tests and benchmarks: serves feed bodies per path, with faults
set per path.

    with FeedServer() as server:
        server.serve("/c2.txt", b"evil.example\\n")
        server.fault("/c2.txt", ERROR, times=2)        # two 500s, then the body
        url = server.url("/c2.txt")
        ...
        assert server.count("/c2.txt") == 3

Every path answers with an ETag and a Last-Modified and honours If-None-Match / If-Modified-Since with a 304
(switch off per path with `validators=False`). A path may require credentials as a feed vendor would:
`serve(path, body, basic_auth=("user", "password"))` and/or `query={"token": "..."}` (a 401 without them);
paths are matched without their query string, which `Request.query` keeps. Faults (`fault(path, mode, times=None, ...)`; `times` requests
get the fault, then the path answers normally; None means every request):

- ERROR: an HTTP error status (500 by default; `status=401`, `404`...).
- SLOW: the answer comes after `delay` seconds.
- TIMEOUT: no answer at all until the server stops (or `delay` seconds pass).
- HTML: a web page served with 200 and text/html.
- GZIP_ENCODING: the body gzipped with `Content-Encoding: gzip`.
- GZIP_BODY: the body gzipped as a .gz file (application/gzip, no Content-Encoding).
- HUGE: a body of `size` bytes of feed lines; `declare_length=False` streams it without Content-Length.
- EMPTY: 200 with an empty body.
- RESET: the connection is reset (TCP RST) without an answer.
- REDIRECT: a redirect (`status`, 302 unless a 3xx is given) to `location`.
- TRICKLE: 200 and the headers at once, then one byte of feed lines every `delay` seconds (0.1 by default)
  until `size` bytes (1 MB by default) are sent or the server stops: each read gets data well within any read
  timeout, and the body never ends in a test's lifetime.
- GZIP_BOMB: `size` bytes of feed lines gzipped as a .gz file (application/gzip), made once per size and
  cached: a body of a few hundred kB that unpacks to `size` bytes; `encoded=True` sends it as
  `Content-Encoding: gzip` instead.

The server runs in a thread; the context manager always stops it and wakes any request it holds.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import socket
import struct
import threading
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ERROR = "error"
SLOW = "slow"
TIMEOUT = "timeout"
HTML = "html"
GZIP_ENCODING = "gzip-encoding"
GZIP_BODY = "gzip-body"
HUGE = "huge"
EMPTY = "empty"
RESET = "reset"
REDIRECT = "redirect"
TRICKLE = "trickle"
GZIP_BOMB = "gzip-bomb"
MODES = (ERROR, SLOW, TIMEOUT, HTML, GZIP_ENCODING, GZIP_BODY, HUGE, EMPTY, RESET, REDIRECT, TRICKLE, GZIP_BOMB)

HTML_PAGE = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Please sign in</body></html>\n"


@dataclass
class Fault:
    """What the next requests to a path get instead of (or on top of) its body."""

    mode: str
    times: int | None = None
    """How many requests get the fault before the path answers normally again; None: all of them."""
    status: int = 500
    delay: float = 0.0
    size: int = 0
    declare_length: bool = True
    location: str = ""
    encoded: bool = False


@dataclass
class Resource:
    body: bytes | None
    """None: a path that only has faults, and answers 404 once they are used up."""
    content_type: str = "text/plain; charset=utf-8"
    validators: bool = True
    last_modified: float = 1_700_000_000.0
    faults: list[Fault] = field(default_factory=list)
    basic_auth: tuple[str, str] | None = None
    """Credentials a request must present (`Authorization: Basic`), or a 401."""
    query: dict[str, str] | None = None
    """Query parameters a request must carry with these values, or a 401."""

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body or b"").hexdigest()[:16] + '"'


@dataclass(frozen=True)
class Request:
    """One request the server received."""

    method: str
    path: str
    """Without the query string."""
    headers: dict[str, str]
    query: str = ""
    """The query string, as sent."""


class FeedServer:
    """The server; a context manager that starts it on a random port and always stops it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._resources: dict[str, Resource] = {}
        self._stopping = threading.Event()
        self.requests: list[Request] = []
        """Every request received, in order (the puller's retries show here)."""
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def __enter__(self) -> FeedServer:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        httpd.daemon_threads = True
        httpd.feed_server = self  # type: ignore[attr-defined]
        httpd.handle_error = lambda request, address: None  # type: ignore[method-assign]  # resets are on purpose
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()  # wakes held (TIMEOUT, SLOW) requests first, so no handler outlives the server
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        assert self._httpd is not None, "use FeedServer as a context manager"
        return self._httpd.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    # -- content and faults, settable while running

    def serve(self, path: str, body: bytes, *, content_type: str = "text/plain; charset=utf-8",
              validators: bool = True, last_modified: float = 1_700_000_000.0,
              basic_auth: tuple[str, str] | None = None, query: dict[str, str] | None = None) -> None:  # fmt: skip
        """Serve `body` at `path` (replacing what was there; its faults stay), to requests with the credentials
        given, if any."""
        with self._lock:
            faults = self._resources[path].faults if path in self._resources else []
            self._resources[path] = Resource(body, content_type, validators, last_modified, faults, basic_auth,
                                             query)

    def fault(self, path: str, mode: str, times: int | None = None, **options: object) -> None:
        """Add a fault to `path`; faults apply in the order added, each for its `times` requests."""
        if mode not in MODES:
            raise ValueError(f"unknown fault mode {mode!r}")
        with self._lock:
            resource = self._resources.setdefault(path, Resource(None))
            resource.faults.append(Fault(mode, times, **options))  # type: ignore[arg-type]

    def clear_faults(self, path: str) -> None:
        with self._lock:
            self._resources[path].faults.clear()

    def count(self, path: str) -> int:
        """Requests received for `path`."""
        with self._lock:
            return sum(1 for request in self.requests if request.path == path)

    # -- used by the handler

    def _take(self, request: Request) -> tuple[Resource | None, Fault | None]:
        with self._lock:
            self.requests.append(request)
            resource = self._resources.get(request.path)
            if resource is None or not resource.faults:
                return resource, None
            fault = resource.faults[0]
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    resource.faults.pop(0)
            return resource, fault


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "feedserver/1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet in tests
        pass

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass  # the client went away (or we reset the connection on purpose)

    def do_GET(self) -> None:  # noqa: N802 - the http.server hook's name
        feed_server: FeedServer = self.server.feed_server  # type: ignore[attr-defined]
        target = urlsplit(self.path)
        request = Request("GET", target.path, {k.lower(): v for k, v in self.headers.items()}, target.query)
        resource, fault = feed_server._take(request)
        try:
            self._answer(feed_server, resource, fault, request)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _answer(self, feed_server: FeedServer, resource: Resource | None, fault: Fault | None, request: Request):
        mode = fault.mode if fault else None
        if mode == RESET:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if mode == TIMEOUT:
            feed_server._stopping.wait(fault.delay or 60.0)
            self.close_connection = True
            return
        if mode == SLOW:
            if feed_server._stopping.wait(fault.delay):
                return
        if mode == REDIRECT:
            status = fault.status if 300 <= fault.status <= 399 else 302
            return self._send(status, b"", "text/plain", {"Location": fault.location})
        if mode == ERROR:
            return self._send(fault.status, b"error %d\n" % fault.status, "text/plain")
        if mode == HTML:
            return self._send(200, HTML_PAGE, "text/html; charset=utf-8")
        if mode == EMPTY:
            return self._send(200, b"", "text/plain; charset=utf-8")
        if mode == HUGE:
            return self._send_huge(fault)
        if mode == TRICKLE:
            return self._send_trickle(feed_server, fault)
        if mode == GZIP_BOMB:
            if fault.encoded:
                return self._send(200, gzip_bomb(fault.size), "text/plain", {"Content-Encoding": "gzip"})
            return self._send(200, gzip_bomb(fault.size), "application/gzip")
        if resource is None or resource.body is None:
            return self._send(404, b"not found\n", "text/plain")
        if not self._authorised(resource, request):
            return self._send(401, b"unauthorised\n", "text/plain", {"WWW-Authenticate": 'Basic realm="feeds"'})
        extra: dict[str, str] = {}
        if resource.validators:
            extra["ETag"] = resource.etag
            extra["Last-Modified"] = formatdate(resource.last_modified, usegmt=True)
            if self._not_modified(resource, request.headers):
                return self._send(304, b"", None, extra)
        body, content_type = resource.body, resource.content_type
        if mode == GZIP_ENCODING:
            body = gzip.compress(body)
            extra["Content-Encoding"] = "gzip"
        elif mode == GZIP_BODY:
            body, content_type = gzip.compress(body), "application/gzip"
        return self._send(200, body, content_type, extra)

    @staticmethod
    def _authorised(resource: Resource, request: Request) -> bool:
        if resource.basic_auth is not None:
            user, password = resource.basic_auth
            expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            if request.headers.get("authorization") != expected:
                return False
        if resource.query is not None:
            given = parse_qs(request.query, keep_blank_values=True)
            if any(given.get(name) != [value] for name, value in resource.query.items()):
                return False
        return True

    @staticmethod
    def _not_modified(resource: Resource, headers: dict[str, str]) -> bool:
        if "if-none-match" in headers:
            return resource.etag in [tag.strip() for tag in headers["if-none-match"].split(",")]
        if "if-modified-since" in headers:
            try:
                since = parsedate_to_datetime(headers["if-modified-since"]).timestamp()
            except (TypeError, ValueError):
                return False
            return int(resource.last_modified) <= since
        return False

    def _send(self, status: int, body: bytes, content_type: str | None, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 304:
            self.wfile.write(body)

    def _send_trickle(self, feed_server: FeedServer, fault: Fault) -> None:
        size = fault.size or 10**6
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        self.wfile.flush()
        line = b"trickle.example\n"
        for sent in range(size):
            if feed_server._stopping.wait(fault.delay or 0.1):
                break
            self.wfile.write(line[sent % len(line):][:1])
            self.wfile.flush()
        self.close_connection = True

    def _send_huge(self, fault: Fault) -> None:
        line = b"huge-feed-entry-0000000.example\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        if fault.declare_length:
            self.send_header("Content-Length", str(fault.size))
        else:
            self.send_header("Connection", "close")  # the body ends when the connection does
            self.close_connection = True
        self.end_headers()
        chunk = line * (65536 // len(line))
        left = fault.size
        while left > 0:
            self.wfile.write(chunk[:left])
            left -= len(chunk)


_BOMBS: dict[int, bytes] = {}


def gzip_bomb(size: int) -> bytes:
    """`size` bytes of feed lines, gzipped (about 1000:1); made once per size."""
    if size not in _BOMBS:
        line = b"bomb-feed-entry-00000000.example\n"
        block = line * (1024 * 1024 // len(line))
        buffer = io.BytesIO()
        compressor = gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9)
        left = size
        while left > 0:
            compressor.write(block[:left])
            left -= len(block)
        compressor.close()
        _BOMBS[size] = buffer.getvalue()
    return _BOMBS[size]
