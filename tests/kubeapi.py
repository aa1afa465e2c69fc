"""A small fake Kubernetes API server for tests: the real `kubernetes` client talks to it over HTTP.

What it keeps, the way the real server does: one resourceVersion counter shared by every resource, an event
log, list/get/create/replace/patch/delete of namespaced core resources (pods, configmaps, secrets, ...) and of
cluster-scoped custom resources (`/apis/dnswatch.dev/v1/globalthreatfeeds`, `alertexceptions`,
`securityeventwebhooks`, and Calico's
`/apis/projectcalico.org/v3/globalthreatfeeds` when given), API discovery of the groups (`GET /apis`), field selectors (any dotted path:
`metadata.name`, `spec.nodeName`, ...) and label selectors (`=`, `!=`, `in`, `notin`, `k`, `!k`), and watches
(`?watch=1&resourceVersion=N&timeoutSeconds=T&allowWatchBookmarks=true`) streamed in chunks from the given
resourceVersion, with selector transitions (an object leaving a watch's selection arrives as DELETED).
After `compact()` a watch from an older resourceVersion gets 410 Gone: an ERROR event (the default, as
current servers do) or an HTTP 410 (`gone_as_http = True`). Resources with a status subresource keep it
apart: `.../status` changes only `status`, and create/update/patch of the main resource keep the stored one.

Fault hooks for the code under test: `end_watches()` ends open watches (as a server restart would),
`atomically()` holds the server still while a test makes several changes, `fail_next(n, code)` answers the
next n requests with an error, `stall_next(n, seconds)` delays them, `drop_next(n)` closes the connection
without an answer, and `drop_watch_after(k)` cuts the next watch after k events without ending its body;
`pending_faults` says how many queued faults are still to come and `clear_faults()` drops them.

TokenReview (`POST /apis/authentication.k8s.io/v1/tokenreviews`) answers with `review_token(spec)`, a hook the
test sets: it gets the review's spec (`token`, `audiences`) and returns its status (`authenticated`, `user`,
`audiences`); without it no token is authenticated.

Not emulated: pagination (`limit`/`continue`), server-side apply, admission and schema validation, RBAC.
"""

from __future__ import annotations

import bisect
import contextlib
import copy
import json
import re
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Resource:
    """A resource type the fake server serves."""

    group: str
    """API group; "" for the core group (`/api/v1`)."""
    version: str
    plural: str
    kind: str
    namespaced: bool
    status_subresource: bool
    """Whether `/status` is a subresource kept apart from the main resource."""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


CORE_RESOURCES = (
    Resource("", "v1", "pods", "Pod", True, True),
    Resource("", "v1", "configmaps", "ConfigMap", True, False),
    Resource("", "v1", "secrets", "Secret", True, False),
    Resource("", "v1", "namespaces", "Namespace", False, True),
    Resource("", "v1", "nodes", "Node", False, True),
    Resource("dnswatch.dev", "v1", "globalthreatfeeds", "GlobalThreatFeed", False, True),
    Resource("dnswatch.dev", "v1", "alertexceptions", "AlertException", False, True),
    Resource("dnswatch.dev", "v1", "securityeventwebhooks", "SecurityEventWebhook", False, True),
)
CALICO_GLOBALTHREATFEEDS = Resource("projectcalico.org", "v3", "globalthreatfeeds", "GlobalThreatFeed", False, True)
"""Calico's GlobalThreatFeeds: `FakeKubeAPI((*CORE_RESOURCES, CALICO_GLOBALTHREATFEEDS))` serves both groups."""

_PATH = re.compile(
    r"^/(?:api/(?P<core_version>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<namespace>[^/]+)(?=/))?/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>status))?/?$"
)


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def status(self) -> dict:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "code": self.code}  # fmt: skip


@dataclass
class _Event:
    rv: int
    resource: Resource
    type: str
    obj: dict
    previous: dict | None


class FakeKubeAPI:
    """The fake server; `with FakeKubeAPI() as api:` starts it on 127.0.0.1 and stops it afterwards."""

    def __init__(self, resources: tuple[Resource, ...] = CORE_RESOURCES, bookmark_interval: float = 0.5) -> None:
        self.resources = {(r.group, r.version, r.plural): r for r in resources}
        self.bookmark_interval = bookmark_interval
        self.default_watch_timeout = 60.0
        self.gone_as_http = False
        self.requests: list[tuple[str, str]] = []
        """(method, path with query) of every request, for assertions."""
        self.watched: list[tuple[str, str]] = []
        """(type, name) of every event written down a watch stream, for waiting on its delivery."""
        self.review_token = None
        """TokenReview: `review_token(spec) -> status` decides each review (None: nobody is authenticated)."""
        self._lock = threading.Condition()
        self._rv = 1
        self._objects: dict[tuple, dict] = {}
        self._log: list[_Event] = []
        self._compacted = 0
        self._faults: list[tuple[str, object]] = []
        self._drop_watch_after: list[int] = []
        self._closing = False
        self._watch_epoch = 0
        self._sockets: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> FakeKubeAPI:
        handler = type("Handler", (_Handler,), {"api": self})
        self._server = _QuietServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            self._closing = True
            self._lock.notify_all()
            sockets = list(self._sockets)
        for sock in sockets:  # keep-alive connections of the client would otherwise hold handler threads
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)

    def __enter__(self) -> FakeKubeAPI:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def configuration(self):
        import kubernetes.client

        return kubernetes.client.Configuration(host=self.url)

    def api_client(self):
        import kubernetes.client

        return kubernetes.client.ApiClient(self.configuration())

    # -- test hooks

    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._rv

    def compact(self) -> None:
        """Forget the event log: a watch from any resourceVersion before now gets 410 Gone."""
        with self._lock:
            self._log.clear()
            self._compacted = self._rv

    def end_watches(self) -> None:
        """End every open watch cleanly, as an API server restart or a load balancer would."""
        with self._lock:
            self._watch_epoch += 1
            self._lock.notify_all()

    @contextlib.contextmanager
    def atomically(self):
        """Hold the server still: open watches see nothing of what happens inside until the block ends."""
        with self._lock:
            yield self

    def fail_next(self, count: int = 1, code: int = 500) -> None:
        with self._lock:
            self._faults += [("fail", code)] * count

    def stall_next(self, count: int = 1, seconds: float = 1.0) -> None:
        with self._lock:
            self._faults += [("stall", seconds)] * count

    @property
    def pending_faults(self) -> int:
        """Faults queued by fail_next / stall_next / drop_next that no request has met yet."""
        with self._lock:
            return len(self._faults)

    def clear_faults(self) -> None:
        """Forget the queued faults: the server answers normally again."""
        with self._lock:
            self._faults.clear()

    def drop_next(self, count: int = 1) -> None:
        with self._lock:
            self._faults += [("drop", None)] * count

    def drop_watch_after(self, events: int) -> None:
        """The next watch is cut (connection closed mid-stream) after sending this many events."""
        with self._lock:
            self._drop_watch_after.append(events)

    def objects(self, plural: str, group: str | None = None) -> list[dict]:
        """The objects of a resource (of one API group only, when given: two groups may share a plural)."""
        with self._lock:
            return [copy.deepcopy(o) for k, o in self._objects.items()
                    if k[0][2] == plural and (group is None or k[0][0] == group)]

    def put(self, obj: dict, plural: str | None = None) -> dict:
        """Create or replace an object directly (no fault hooks), status included; returns the stored copy.
        The resource is the one of the object's apiVersion, when two share its kind or plural."""
        resource = self._resource_for(obj, plural)
        meta = obj.get("metadata", {})
        key = (self._key(resource), meta.get("namespace") if resource.namespaced else None, meta["name"])
        with self._lock:
            old = self._objects.get(key)
            return self._store(resource, key, copy.deepcopy(obj), old, "MODIFIED" if old else "ADDED")

    def remove(self, plural: str, name: str, namespace: str | None = None, group: str | None = None) -> None:
        with self._lock:
            resource = next(r for r in self.resources.values()
                            if r.plural == plural and (group is None or r.group == group))
            self._delete(resource, (self._key(resource), namespace, name))

    # -- storage (callers hold the lock)

    @staticmethod
    def _key(resource: Resource) -> tuple:
        return (resource.group, resource.version, resource.plural)

    def _resource_for(self, obj: dict, plural: str | None) -> Resource:
        for r in self.resources.values():
            if r.api_version == obj.get("apiVersion") and (r.plural == plural or r.kind == obj.get("kind")):
                return r
        for r in self.resources.values():
            if r.plural == plural or (plural is None and r.kind == obj.get("kind")):
                return r
        raise KeyError(plural or obj.get("kind"))

    def _store(self, resource: Resource, key: tuple, obj: dict, old: dict | None, type_: str) -> dict:
        self._rv += 1
        meta = obj.setdefault("metadata", {})
        meta["name"], meta["resourceVersion"] = key[2], str(self._rv)
        if resource.namespaced:
            meta["namespace"] = key[1]
        obj["apiVersion"], obj["kind"] = resource.api_version, resource.kind
        if old is None:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            meta["generation"] = 1
        else:
            for kept in ("uid", "creationTimestamp"):
                meta[kept] = old["metadata"][kept]
            changed = {k: v for k, v in obj.items() if k not in ("metadata", "status")} != {
                k: v for k, v in old.items() if k not in ("metadata", "status")
            }
            meta["generation"] = old["metadata"].get("generation", 1) + (1 if changed else 0)
        self._objects[key] = obj
        self._log.append(_Event(self._rv, resource, type_, copy.deepcopy(obj), copy.deepcopy(old)))
        self._lock.notify_all()
        return copy.deepcopy(obj)

    def _delete(self, resource: Resource, key: tuple) -> dict:
        obj = self._objects.pop(key, None)
        if obj is None:
            raise ApiError(404, "NotFound", f'{resource.plural} "{key[2]}" not found')
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        self._log.append(_Event(self._rv, resource, "DELETED", copy.deepcopy(obj), None))
        self._lock.notify_all()
        return copy.deepcopy(obj)


# ---------------------------------------------------------------------------------------------- selectors

_SET_TERM = re.compile(r"^\s*(!?)([^\s!=(),]+)\s*(?:(notin|in)\s*\(([^)]*)\)|(==|=|!=)\s*(\S*))?\s*$")


def _field_value(obj: dict, path: str) -> str:
    value: object = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _matches_fields(obj: dict, selector: str) -> bool:
    for term in filter(None, selector.split(",")):
        negate = "!=" in term
        path, _, want = term.partition("!=" if negate else ("==" if "==" in term else "="))
        if (_field_value(obj, path.strip()) == want.strip()) == negate:
            return False
    return True


def _matches_labels(obj: dict, selector: str) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in filter(str.strip, re.split(r",(?![^(]*\))", selector)):
        m = _SET_TERM.match(term)
        if not m:
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {term!r}")
        bang, key, set_op, values, op, value = m.groups()
        if set_op:
            wanted = {v.strip() for v in values.split(",")}
            ok = (labels.get(key) in wanted) if set_op == "in" else (labels.get(key) not in wanted)
        elif op:
            ok = (labels.get(key) == value) if op != "!=" else (labels.get(key) != value)
        else:
            ok = (key in labels) != bool(bang)
        if not ok:
            return False
    return True


# ---------------------------------------------------------------------------------------------- patches


def _merge_patch(target: object, patch: object) -> object:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _json_patch(doc: dict, ops: list) -> dict:
    doc = copy.deepcopy(doc)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        if isinstance(parent, list):
            index = len(parent) if last == "-" else int(last)
            if op["op"] == "add":
                parent.insert(index, op["value"])
            elif op["op"] == "remove":
                parent.pop(index)
            elif op["op"] == "replace":
                parent[index] = op["value"]
            elif op["op"] == "test" and parent[index] != op["value"]:
                _fail_test(op)
        elif op["op"] in ("add", "replace"):
            parent[last] = op["value"]
        elif op["op"] == "remove":
            del parent[last]
        elif op["op"] == "test" and parent.get(last) != op["value"]:
            _fail_test(op)
    return doc


def _fail_test(op: dict) -> None:
    raise ApiError(422, "Invalid", f"test operation failed at {op['path']}")


# ---------------------------------------------------------------------------------------------- HTTP


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # Injected drops and shutdowns break pipes: expected. Anything else is a bug of this fake: say so.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    api: FakeKubeAPI
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet: pytest shows failures, not access logs
        pass

    def setup(self) -> None:
        super().setup()
        with self.api._lock:
            self.api._sockets.add(self.connection)

    def finish(self) -> None:
        with self.api._lock:
            self.api._sockets.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        api = self.api
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        with api._lock:
            api.requests.append((method, self.path))
            fault = api._faults.pop(0) if api._faults else None
        if fault and fault[0] == "stall":
            time.sleep(fault[1])
        elif fault and fault[0] == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        elif fault:
            error = ApiError(fault[1], "InternalError", "injected fault")
            return self._send(fault[1], error.status())
        try:
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if method == "POST" and url.path == "/apis/authentication.k8s.io/v1/tokenreviews":
                spec = (json.loads(raw) if raw else {}).get("spec") or {}
                status = api.review_token(spec) if api.review_token else {"authenticated": False}
                return self._send(201, {"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
                                        "metadata": {}, "spec": spec, "status": status})
            if method == "GET" and url.path.rstrip("/") == "/apis":
                return self._send(200, self._api_groups())
            m = _PATH.match(url.path)
            if not m:
                raise ApiError(404, "NotFound", f"the server could not find the requested resource ({url.path})")
            group = m["group"] or ""
            version = m["version"] or m["core_version"]
            resource = api.resources.get((group, version, m["plural"]))
            if resource is None or (m["namespace"] and not resource.namespaced):
                raise ApiError(404, "NotFound", f"the server could not find the requested resource ({url.path})")
            if resource.namespaced and not m["namespace"] and (m["name"] or method != "GET"):
                raise ApiError(404, "NotFound", "a namespaced resource needs a namespace")
            if m["sub"] and not resource.status_subresource:
                raise ApiError(404, "NotFound", f"{resource.plural} has no status subresource")
            body = json.loads(raw) if raw else None
            if method == "GET" and not m["name"] and query.get("watch") in ("1", "true", "True"):
                return self._watch(resource, m["namespace"], query)
            code, result = self._dispatch(method, resource, m["namespace"], m["name"], m["sub"], query, body)
            self._send(code, result)
        except ApiError as error:
            self._send(error.code, error.status())
        except (ValueError, KeyError, TypeError, IndexError) as error:
            self._send(400, ApiError(400, "BadRequest", f"bad request: {error}").status())

    def _api_groups(self) -> dict:
        """The APIGroupList of discovery: every group served but the core one."""
        versions: dict[str, list[str]] = {}
        for group, version, _plural in self.api.resources:
            if group and version not in versions.setdefault(group, []):
                versions[group].append(version)
        groups = [{"name": group, "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in found],
                   "preferredVersion": {"groupVersion": f"{group}/{found[0]}", "version": found[0]}}
                  for group, found in sorted(versions.items())]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def _dispatch(self, method, resource, namespace, name, sub, query, body) -> tuple[int, dict]:
        api = self.api
        key = (api._key(resource), namespace if resource.namespaced else None, name)
        with api._lock:
            if method == "GET" and not name:
                items = [
                    copy.deepcopy(obj)
                    for (res, ns, _), obj in sorted(api._objects.items(), key=lambda kv: (kv[0][1] or "", kv[0][2]))
                    if res == key[0] and (namespace is None or ns == namespace) and self._selected(obj, query)
                ]
                meta = {"resourceVersion": str(api._rv)}
                return 200, {"kind": f"{resource.kind}List", "apiVersion": resource.api_version,
                             "metadata": meta, "items": items}  # fmt: skip
            old = api._objects.get(key)
            if method == "GET":
                if old is None:
                    raise ApiError(404, "NotFound", f'{resource.plural} "{name}" not found')
                return 200, copy.deepcopy(old)
            if method == "DELETE":
                return 200, api._delete(resource, key)
            if method == "POST":
                if name or not isinstance(body, dict):
                    raise ApiError(405 if name else 400, "BadRequest", "POST a whole object to the collection")
                name = (body.get("metadata") or {}).get("name")
                if not name:
                    raise ApiError(422, "Invalid", "metadata.name: Required value")
                key = (key[0], key[1], name)
                if key in api._objects:
                    raise ApiError(409, "AlreadyExists", f'{resource.plural} "{name}" already exists')
                if resource.status_subresource:
                    body.pop("status", None)
                return 201, api._store(resource, key, body, None, "ADDED")
            if old is None:
                raise ApiError(404, "NotFound", f'{resource.plural} "{name}" not found')
            if method == "PATCH":
                content_type = self.headers.get("Content-Type", "")
                if "json-patch" in content_type:
                    if not isinstance(body, list):
                        raise ApiError(400, "BadRequest", "json: cannot unmarshal object into Go value of type jsonpatch.Patch")
                    new = _json_patch(old, body)
                elif "merge-patch" in content_type:
                    new = _merge_patch(old, body)
                else:
                    raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {content_type}")
            elif method == "PUT":
                new = body
                want = (body.get("metadata") or {}).get("resourceVersion")
                if want and want != old["metadata"]["resourceVersion"]:
                    raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {resource.plural} "{name}": '
                                   "the object has been modified; please apply your changes to the latest version")  # fmt: skip
            else:
                raise ApiError(405, "MethodNotAllowed", method)
            if resource.status_subresource:
                # The status subresource changes only status; the main resource never does.
                if sub:
                    new = {**copy.deepcopy(old), "status": new.get("status")}
                    if new["status"] is None:
                        del new["status"]
                else:
                    new = {k: v for k, v in new.items() if k != "status"}
                    if "status" in old:
                        new["status"] = copy.deepcopy(old["status"])
            return 200, api._store(resource, key, copy.deepcopy(new), old, "MODIFIED")

    @staticmethod
    def _selected(obj: dict, query: dict) -> bool:
        return _matches_fields(obj, query.get("fieldSelector", "")) and _matches_labels(
            obj, query.get("labelSelector", "")
        )

    def _watch(self, resource: Resource, namespace: str | None, query: dict) -> None:
        api = self.api
        timeout = float(query.get("timeoutSeconds") or api.default_watch_timeout)
        deadline = time.monotonic() + timeout
        bookmarks = query.get("allowWatchBookmarks") in ("1", "true", "True")
        rv_text = query.get("resourceVersion") or "0"
        with api._lock:
            start = int(rv_text)
            epoch = api._watch_epoch
            drop_after = api._drop_watch_after.pop(0) if api._drop_watch_after else None
            if start and start < api._compacted:
                error = ApiError(410, "Expired", f"too old resource version: {start} ({api._compacted})")
                if api.gone_as_http:
                    raise error
                pending = [{"type": "ERROR", "object": error.status()}]
                start = None
            elif start == 0:  # "any version": the current state as ADDED events, then what follows
                pending = [
                    {"type": "ADDED", "object": copy.deepcopy(obj)}
                    for (res, ns, _), obj in api._objects.items()
                    if res == api._key(resource) and (namespace is None or ns == namespace) and self._selected(obj, query)
                ]
                start = api._rv
            else:
                pending = []
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent = 0
        last_bookmark = time.monotonic()
        position = start
        while True:
            for event in pending:
                if drop_after is not None and sent >= drop_after:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self._chunk(json.dumps(event).encode() + b"\n")
                api.watched.append((event["type"], event["object"].get("metadata", {}).get("name", "")))
                sent += 1
            pending = []
            if position is None:
                break
            now = time.monotonic()
            if bookmarks and now - last_bookmark >= api.bookmark_interval:
                last_bookmark = now
                meta = {"resourceVersion": str(position)}
                self._chunk(json.dumps({"type": "BOOKMARK", "object": {"kind": resource.kind,
                            "apiVersion": resource.api_version, "metadata": meta}}).encode() + b"\n")  # fmt: skip
            if now >= deadline:
                break
            with api._lock:
                if api._closing or api._watch_epoch != epoch:
                    break
                pending, position = self._events_after(resource, namespace, query, position)
                if not pending:
                    wait = deadline - now
                    if bookmarks:
                        wait = min(wait, api.bookmark_interval)
                    api._lock.wait(max(wait, 0.001))  # then round again: the checks and the scan come first
        self._chunk(b"")

    def _events_after(self, resource, namespace, query, position) -> tuple[list[dict], int]:
        api = self.api
        log = api._log
        events = []  # the lock is held: every event up to api._rv is in this scan, so the watch is at api._rv
        for event in log[bisect.bisect_right(log, position, key=lambda e: e.rv):]:
            if event.resource is not resource:
                continue
            if namespace is not None and event.obj["metadata"].get("namespace") != namespace:
                continue
            now_in = self._selected(event.obj, query)
            was_in = event.previous is not None and self._selected(event.previous, query)
            type_ = event.type
            if type_ == "MODIFIED" and now_in != was_in:
                type_ = "ADDED" if now_in else "DELETED"
            elif not now_in:
                continue
            events.append({"type": type_, "object": copy.deepcopy(event.obj)})
        return events, api._rv

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _send(self, code: int, obj: dict) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
