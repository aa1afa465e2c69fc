"""TAXII 2.1 collections as a feed source (`pull.taxii`, collector/core/taxii.py and the puller), against a small
real TAXII server on 127.0.0.1: discovery, API root, collections and paged objects, with Basic authentication."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from collector.core.pulling import RetryPolicy
from collector.core.taxii import TaxiiError, TaxiiState, check_media_type, find_collection, merge, read_page
from collector.shell.puller import FeedPuller, PullerSettings
from dnswatch.feeds.formats import StixFormat
from dnswatch.feeds.lines import DOMAIN_NAME_SET, IP_SET
from dnswatch.feeds.outcomes import FAILED, UNCHANGED, UPDATED
from dnswatch.feeds.spec import FeedSpec, HeaderSpec, KeyRef, TaxiiSource
from dnswatch.feeds.status import PARSE_FAILED, PULL_FAILED

MEDIA = "application/taxii+json;version=2.1"
COLLECTION = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"
USER, PASSWORD = "feeds", "taxii-pw-7Qe2"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
SETTINGS = PullerSettings(connect_timeout=1.0, read_timeout=1.0, pull_timeout=10.0, max_body_bytes=256 * 1024,
                          retry=RetryPolicy(attempts=2, base_seconds=0.01, cap_seconds=0.02))  # fmt: skip
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)


def indicator(number: int, pattern: str, modified: str = "2026-11-01T10:00:00.000Z", **fields) -> dict:
    return {"type": "indicator", "spec_version": "2.1", "id": f"indicator--0b5b9a5e-6c43-4bd4-9ad4-{number:012d}",
            "created": "2026-11-01T10:00:00.000Z", "modified": modified, "pattern": pattern, "pattern_type": "stix",
            "pattern_version": "2.1", "valid_from": "2026-11-01T10:00:00Z", **fields}  # fmt: skip


class TaxiiServer:
    """A TAXII 2.1 server: one API root (`/api1/`) with a readable collection and one that cannot be read.

    Objects are served in the order they were added, at most `page_size` per page whatever the client asks,
    `next` being the offset; `added_after` keeps those added strictly after it.
    """

    def __init__(self, page_size: int = 2) -> None:
        self.page_size = page_size
        self.objects: list[tuple[str, dict]] = []  # (date_added, object), in the order added
        self.requests: list[tuple[str, dict[str, list[str]], dict[str, str]]] = []
        self.content_type = MEDIA
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    def add(self, date_added: str, *objects: dict) -> None:
        with self._lock:
            self.objects.extend((date_added, obj) for obj in objects)

    def __enter__(self) -> TaxiiServer:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _TaxiiHandler)
        self._httpd.daemon_threads = True
        self._httpd.taxii = self  # type: ignore[attr-defined]
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def base(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def api_root(self) -> str:
        return self.base + "/api1/"

    def paths(self) -> list[str]:
        return [path for path, _, _ in self.requests]

    def answer(self, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, dict, dict]:
        with self._lock:
            self.requests.append((path, query, headers))
            if headers.get("authorization") != BASIC:
                return 401, {"title": "Unauthorized"}, {"WWW-Authenticate": 'Basic realm="taxii"'}
            if MEDIA not in headers.get("accept", "").replace(" ", ""):
                return 406, {"title": "Not Acceptable"}, {}
            if path == "/taxii2/":
                return 200, {"title": "Test TAXII", "default": self.api_root, "api_roots": [self.api_root]}, {}
            if path == "/api1/":
                return 200, {"title": "api1", "versions": [MEDIA], "max_content_length": 10485760}, {}
            if path == "/api1/collections/":
                return 200, {"collections": [
                    {"id": COLLECTION, "title": "C2 indicators", "can_read": True, "can_write": False,
                     "media_types": [MEDIA]},
                    {"id": "52892447-4d7e-4f70-b94d-d7f22742ff63", "title": "Partners only", "can_read": False,
                     "can_write": False}]}, {}  # fmt: skip
            if path != f"/api1/collections/{COLLECTION}/objects/":
                return 404, {"title": "Not Found"}, {}
            after = query.get("added_after", [""])[0]
            items = [(added, obj) for added, obj in self.objects if not after or added > after]
            offset = int(query.get("next", ["0"])[0])
            limit = min(int(query.get("limit", ["100"])[0]), self.page_size)
            page = items[offset:offset + limit]
            if not page:
                return 200, {}, {}  # TAXII's empty envelope, without the date headers
            more = offset + len(page) < len(items)
            envelope = {"more": more, "objects": [obj for _, obj in page]}
            if more:
                envelope["next"] = str(offset + len(page))
            return 200, envelope, {"X-TAXII-Date-Added-First": page[0][0], "X-TAXII-Date-Added-Last": page[-1][0]}


class _TaxiiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet in tests
        pass

    def do_GET(self) -> None:  # noqa: N802 - the http.server hook's name
        server: TaxiiServer = self.server.taxii  # type: ignore[attr-defined]
        target = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, document, extra = server.answer(target.path, parse_qs(target.query), headers)
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", server.content_type if status == 200 else "application/taxii+json;version=2.1")
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def taxii():
    with TaxiiServer() as server:
        server.add("2026-11-01T10:00:01.000000Z",
                   indicator(1, "[domain-name:value = 'c2.evil.example']"),
                   indicator(2, "[ipv4-addr:value = '198.51.100.7']"),
                   {"type": "malware", "spec_version": "2.1", "id": "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b",
                    "created": "2026-11-01T10:00:00.000Z", "modified": "2026-11-01T10:00:00.000Z",
                    "name": "Cobalt Strike", "is_family": True})  # fmt: skip
        server.add("2026-11-02T08:30:00.000000Z",
                   indicator(3, "[url:value = 'https://dl.evil.example/stage2.bin']"),
                   indicator(4, "[domain-name:value = 'old.evil.example']", valid_until="2026-11-15T00:00:00Z"),
                   indicator(5, "[file:hashes.MD5 = '0123456789abcdef0123456789abcdef']"))  # fmt: skip
        yield server


def taxii_spec(server: TaxiiServer, collection: str = COLLECTION, content: str = DOMAIN_NAME_SET, **fields) -> FeedSpec:
    auth = (HeaderSpec(name="Authorization", secret_ref=KeyRef("taxii", "basic")),)
    return FeedSpec(name="cti", content=content, url=server.api_root, headers=fields.pop("headers", auth),
                    format=StixFormat(), taxii=TaxiiSource(collection), **fields)  # fmt: skip


def secrets(ref) -> str | None:
    return BASIC if (ref.kind, ref.name, ref.key) == ("Secret", "taxii", "basic") else None


async def syncs(spec: FeedSpec, times: int = 1, between=None):
    """`times` sync-nows of one TAXII feed through one puller; `between(i)` runs before sync i > 0."""
    results = []
    async with FeedPuller(SETTINGS, resolve=secrets, clock=lambda: NOW) as puller:
        puller.set_feed(spec)
        for index in range(times):
            if index and between is not None:
                between(index)
            results.append(await puller.sync_now(spec.name))
    return results


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, timeout=30))


def test_a_first_pull_reads_every_page_of_the_collection(taxii):
    (result,) = run(syncs(taxii_spec(taxii)))
    assert result.outcome == UPDATED
    # the expired indicator (4) is left out, the IP one (2) is for an IPSet, the hash (5) rejected
    assert result.parsed.entries == ("c2.evil.example", "dl.evil.example")
    assert (result.status.entries, result.status.rejected_lines) == (2, 1)
    objects = f"/api1/collections/{COLLECTION}/objects/"
    assert taxii.paths() == ["/api1/collections/", objects, objects, objects]  # 6 objects, 2 a page
    assert result.attempts == 4
    for _, query, headers in taxii.requests:
        assert headers["accept"] == MEDIA
        assert headers["authorization"] == BASIC  # from the Secret, on every request
        assert "added_after" not in query
    assert [query.get("next") for _, query, _ in taxii.requests[1:]] == [None, ["2"], ["4"]]
    assert result.state.taxii.added_after == "2026-11-02T08:30:00.000000Z"
    assert set(result.state.taxii.indicators) == {indicator(n, "")["id"] for n in range(1, 6)}


def test_later_pulls_ask_only_for_what_was_added_and_newer_versions_replace_older(taxii):
    seen: list[list] = []  # each pull's requests

    def publish(index: int) -> None:
        seen.append(list(taxii.requests))
        taxii.requests.clear()
        if index == 1:
            taxii.add("2026-11-20T00:00:00.000000Z",
                      indicator(6, "[domain-name:value = 'new.evil.example' OR domain-name:value = 'new2.evil.example']"),
                      # a new version of indicator 1 revokes it
                      indicator(1, "[domain-name:value = 'c2.evil.example']", modified="2026-11-20T00:00:00.000Z",
                                revoked=True))  # fmt: skip

    first, second, third = run(syncs(taxii_spec(taxii), times=3, between=publish))
    seen.append(list(taxii.requests))
    objects = f"/api1/collections/{COLLECTION}/objects/"
    assert first.parsed.entries == ("c2.evil.example", "dl.evil.example")
    assert second.outcome == UPDATED
    assert second.parsed.entries == ("dl.evil.example", "new.evil.example", "new2.evil.example")
    assert [path for path, _, _ in seen[1]] == ["/api1/collections/", objects]  # the 2 new objects: one page
    assert seen[1][1][1]["added_after"] == ["2026-11-02T08:30:00.000000Z"]
    assert second.state.taxii.added_after == "2026-11-20T00:00:00.000000Z"
    # nothing added since: an empty envelope, the same set, the same place to start from
    assert third.outcome == UNCHANGED
    assert seen[2][1][1]["added_after"] == ["2026-11-20T00:00:00.000000Z"]
    assert third.state.taxii.added_after == "2026-11-20T00:00:00.000000Z"


def test_an_older_version_arriving_later_does_not_replace_a_newer_one():
    newer = indicator(1, "[domain-name:value = 'a.example']", modified="2026-11-20T00:00:00Z", revoked=True)
    older = indicator(1, "[domain-name:value = 'a.example']", modified="2026-11-01T00:00:00+00:00")
    held = merge({}, [newer])
    assert merge(held, [older])[newer["id"]]["revoked"] is True
    assert "description" not in merge({}, [{**older, "description": "x" * 10_000}])[older["id"]]


def test_the_collection_may_be_named_by_its_title_and_the_api_root_found_by_discovery(taxii):
    discovery = httpx.get(taxii.base + "/taxii2/", headers={"Accept": MEDIA, "Authorization": BASIC}).json()
    assert discovery["default"] == taxii.api_root
    spec = taxii_spec(taxii, collection="C2 indicators", content=IP_SET)
    (result,) = run(syncs(spec))
    assert result.outcome == UPDATED and result.parsed.entries == ("198.51.100.7/32",)


@pytest.mark.parametrize(
    ("collection", "message"),
    [
        ("missing", f"the API root has no collection 'missing' (it has: {COLLECTION} (C2 indicators), "),
        ("Partners only", "collection 'Partners only' cannot be read with these credentials"),
    ],
)
def test_a_collection_that_cannot_be_read_fails_with_a_parse_condition(taxii, collection, message):
    (result,) = run(syncs(taxii_spec(taxii, collection=collection)))
    assert result.outcome == FAILED
    assert [c.type for c in result.status.error_conditions] == [PARSE_FAILED]
    assert message in result.message


def test_without_credentials_the_pull_fails_with_the_401_and_no_retry(taxii):
    (result,) = run(syncs(taxii_spec(taxii, headers=())))
    assert result.outcome == FAILED and result.attempts == 1
    assert [c.type for c in result.status.error_conditions] == [PULL_FAILED]
    assert f"GET {taxii.api_root}collections/: HTTP 401 Unauthorized" == result.message


def test_a_server_that_answers_plain_json_is_no_taxii_2_1_server(taxii):
    taxii.content_type = "application/json"
    (result,) = run(syncs(taxii_spec(taxii)))
    assert result.outcome == FAILED
    assert "the answer is application/json, not application/taxii+json;version=2.1" in result.message


def test_a_failed_pull_keeps_where_the_next_one_starts(taxii):
    def break_then_mend(index: int) -> None:
        taxii.requests.clear()
        taxii.content_type = "text/html" if index == 1 else MEDIA

    first, broken, mended = run(syncs(taxii_spec(taxii), times=3, between=break_then_mend))
    assert broken.outcome == FAILED and broken.state.taxii == first.state.taxii
    assert mended.outcome == UNCHANGED
    assert mended.parsed is None and mended.status.entries == 2


def test_pages_over_the_body_limit_together_are_refused(taxii):
    big = [indicator(100 + n, f"[domain-name:value = 'd{n}.evil.example']", description="x" * 60_000)
           for n in range(6)]  # fmt: skip
    taxii.add("2026-11-30T00:00:00.000000Z", *big)
    (result,) = run(syncs(taxii_spec(taxii)))
    assert result.outcome == FAILED
    assert "the collection's pages are over the limit of 262144 bytes together" in result.message


@pytest.mark.parametrize(
    ("content_type", "ok"),
    [(MEDIA, True), ("application/taxii+json; version=2.1", True), ("application/taxii+json", True),
     ("application/taxii+json;version=2.0", False), ("application/vnd.oasis.taxii+json; version=2.0", False),
     ("text/html", False), (None, False)],
)  # fmt: skip
def test_media_types(content_type, ok):
    if ok:
        check_media_type(content_type)
    else:
        with pytest.raises(TaxiiError):
            check_media_type(content_type)


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"[]", "not an envelope"), (b'{"objects": {}}', "not a list"), (b'{"more": true, "objects": []}', "no next"),
     (b"{", "not valid JSON")],
)  # fmt: skip
def test_envelopes_that_are_none(body, message):
    with pytest.raises(TaxiiError, match=message):
        read_page(body, None)


def test_collections_answers_that_are_none():
    with pytest.raises(TaxiiError, match="no list of collections"):
        find_collection(b'{"collections": 7}', "c")
    with pytest.raises(TaxiiError, match=r"no collection 'c' \(it has: none\)"):
        find_collection(b"{}", "c")


def test_a_new_spec_drops_what_the_feed_held(taxii):
    async def scenario():
        async with FeedPuller(SETTINGS, resolve=secrets, clock=lambda: NOW) as puller:
            puller.set_feed(taxii_spec(taxii))
            await puller.sync_now("cti")
            assert puller.state("cti").taxii != TaxiiState()
            puller.set_feed(taxii_spec(taxii, collection="C2 indicators"))
            assert puller.state("cti").taxii is None
            taxii.requests.clear()
            await puller.sync_now("cti")
            return [query for path, query, _ in taxii.requests if path.endswith("/objects/")]

    queries = run(scenario())
    assert all("added_after" not in query for query in queries)  # the whole collection again
