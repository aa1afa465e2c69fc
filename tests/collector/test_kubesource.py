"""GlobalThreatFeedSource against the fake API server (tests/kubeapi.py) with the real kubernetes client."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import queue
import threading
import time
from dataclasses import dataclass

import pytest
from kubernetes import client

from collector.core.watchloop import INVALID_SPEC, Backoff, FeedInvalid, FeedDeleted, FeedsSynced, FeedUpserted
from collector.shell.kubesource import GlobalThreatFeedSource, KubeSourceSettings
from tests.kubeapi import FakeKubeAPI

GROUP, VERSION, PLURAL = "dnswatch.dev", "v1", "globalthreatfeeds"
FAST = KubeSourceSettings(
    namespace="dnswatch",
    watch_timeout_seconds=5,
    request_timeout_seconds=2,
    backoff=Backoff(initial=0.01, maximum=0.05),
)


def feed(name: str, url: str = "https://feeds.example/c2.txt", period: str = "24h", **spec) -> dict:
    return {"apiVersion": "dnswatch.dev/v1", "kind": "GlobalThreatFeed", "metadata": {"name": name},
            "spec": {"content": "DomainNameSet", "pull": {"period": period, "http": {"url": url}}, **spec}}  # fmt: skip


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def summary(change) -> tuple:
    if isinstance(change, FeedUpserted):
        return ("upserted", change.spec.name, change.spec.url)
    if isinstance(change, FeedDeleted):
        return ("removed", change.name)
    if isinstance(change, FeedInvalid):
        return ("invalid", change.name)
    return ("synced", change.count)


class Running:
    """A source running in a thread, its changes in a queue."""

    def __init__(self, api: FakeKubeAPI, settings: KubeSourceSettings = FAST) -> None:
        self.api_client = api.api_client()
        self.source = GlobalThreatFeedSource(self.api_client, settings)
        self.changes: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self.source.run, args=(self.changes.put,))
        self.thread.start()

    def take(self, count: int, timeout: float = 10.0) -> list[tuple]:
        return [summary(self.changes.get(timeout=timeout)) for _ in range(count)]

    def quiet(self, seconds: float = 0.3) -> list[tuple]:
        """Whatever arrives in the next moment (expected: nothing)."""
        with contextlib.suppress(queue.Empty):
            return [summary(self.changes.get(timeout=seconds))]
        return []

    def stop(self) -> None:
        self.source.close()
        self.thread.join(5)
        assert not self.thread.is_alive()
        self.api_client.close()


@pytest.fixture
def api():
    with FakeKubeAPI(bookmark_interval=0.2) as server:
        yield server


@pytest.fixture
def running(api):
    started: list[Running] = []

    def start(settings: KubeSourceSettings = FAST) -> Running:
        started.append(Running(api, settings))
        return started[-1]

    yield start
    for source in started:
        source.stop()


def list_requests(api: FakeKubeAPI) -> int:
    return sum(1 for method, path in api.requests if method == "GET" and path.endswith("/globalthreatfeeds"))


def test_initial_list_reports_every_feed_then_synced(api, running):
    api.put(feed("c2"))
    api.put(feed("exfil", "https://feeds.example/exfil.txt"))
    api.put(feed("broken", "ftp://feeds.example/x"))
    source = running()
    assert source.take(4) == [
        ("invalid", "broken"),
        ("upserted", "c2", "https://feeds.example/c2.txt"),
        ("upserted", "exfil", "https://feeds.example/exfil.txt"),
        ("synced", 2),
    ]


def test_add_modify_delete_are_followed_and_status_writes_are_not_changes(api, running):
    api.put(feed("c2"))
    source = running()
    assert source.take(2) == [("upserted", "c2", "https://feeds.example/c2.txt"), ("synced", 1)]
    api.put(feed("new", "https://feeds.example/new.txt"))
    api.put(feed("c2", "https://feeds.example/c2-v2.txt"))
    api.put({**feed("c2", "https://feeds.example/c2-v2.txt"), "metadata": {"name": "c2", "labels": {"a": "b"}}})
    api.remove("globalthreatfeeds", "new")
    assert source.take(3) == [
        ("upserted", "new", "https://feeds.example/new.txt"),
        ("upserted", "c2", "https://feeds.example/c2-v2.txt"),
        ("removed", "new"),
    ]
    assert source.source.patch_status("c2", {"entries": 12, "lastSuccessfulSync": "2026-11-27T22:00:00Z"})
    assert source.quiet() == []  # our own status write, echoed as MODIFIED, changes no feed


def test_status_written_back_lands_in_status_only(api, running):
    api.put(feed("c2"))
    source = running()
    source.take(2)
    before = api.objects("globalthreatfeeds")[0]
    status = {"entries": 3, "errorConditions": [{"type": "PullFailed", "message": "HTTP 500"}], "version": 2}
    assert source.source.patch_status("c2", status)
    after = api.objects("globalthreatfeeds")[0]
    assert after["status"] == status
    assert after["spec"] == before["spec"] and after["metadata"]["generation"] == before["metadata"]["generation"]
    assert source.source.patch_status("c2", {"errorConditions": []})
    assert api.objects("globalthreatfeeds")[0]["status"] == {**status, "errorConditions": []}
    assert not source.source.patch_status("gone", {"entries": 1})  # deleted meanwhile: nothing to write


def test_a_compaction_while_away_relists_without_losing_or_repeating(api, running):
    for name in ("keep", "change", "drop"):
        api.put(feed(name, f"https://feeds.example/{name}.txt"))
    source = running()
    assert source.take(4)[-1] == ("synced", 3)
    with api.atomically():  # the open watch sees none of this; its resume finds the history compacted
        api.put(feed("change", "https://feeds.example/changed.txt"))
        api.remove("globalthreatfeeds", "drop")
        api.put(feed("added", "https://feeds.example/added.txt"))
        api.compact()
        api.end_watches()
    assert source.take(4) == [
        ("upserted", "added", "https://feeds.example/added.txt"),
        ("upserted", "change", "https://feeds.example/changed.txt"),
        ("removed", "drop"),
        ("synced", 3),
    ]
    assert source.quiet() == []
    assert list_requests(api) == 2
    api.put(feed("later", "https://feeds.example/later.txt"))
    assert source.take(1) == [("upserted", "later", "https://feeds.example/later.txt")]


@pytest.mark.parametrize("as_http", [False, True])
def test_410_as_event_or_as_http_status(api, running, as_http):
    api.gone_as_http = as_http
    api.put(feed("c2"))
    source = running()
    source.take(2)
    with api.atomically():
        api.put(feed("c2", "https://feeds.example/c2-v2.txt"))
        api.compact()
        api.end_watches()
    assert source.take(2) == [("upserted", "c2", "https://feeds.example/c2-v2.txt"), ("synced", 1)]


def test_server_errors_and_dropped_connections_back_off_and_resume_from_the_resource_version(api, running):
    api.put(feed("c2"))
    source = running()
    source.take(2)
    api.fail_next(3, code=503)
    api.end_watches()  # the reconnection meets three 503s, then resumes where it was
    api.put(feed("a", "https://feeds.example/a.txt"))
    assert source.take(1) == [("upserted", "a", "https://feeds.example/a.txt")]
    api.drop_watch_after(1)
    with api.atomically():
        api.end_watches()
        api.put(feed("b", "https://feeds.example/b.txt"))
        api.put(feed("c", "https://feeds.example/c.txt"))
    assert source.take(2) == [("upserted", "b", "https://feeds.example/b.txt"), ("upserted", "c", "https://feeds.example/c.txt")]
    assert source.quiet() == []
    assert list_requests(api) == 1  # resumed every time, never listed again
    assert sum(1 for _, path in api.requests if "watch=" in path) >= 5


def test_a_stalled_or_failing_first_list_is_retried(api, running):
    api.put(feed("c2"))
    api.stall_next(1, seconds=1.0)
    api.fail_next(1, code=500)
    api.drop_next(1)
    settings = KubeSourceSettings(watch_timeout_seconds=5, request_timeout_seconds=0.3,
                                  backoff=Backoff(initial=0.01, maximum=0.05))  # fmt: skip
    source = running(settings)
    assert source.take(2) == [("upserted", "c2", "https://feeds.example/c2.txt"), ("synced", 1)]


def test_an_invalid_spec_is_reported_in_its_status_until_fixed(api, running):
    api.put({**feed("c2"), "status": {"errorConditions": [{"type": "PullFailed", "message": "HTTP 500"}]}})
    api.put(feed("slow", period="1m"))
    source = running()
    assert source.take(3) == [("upserted", "c2", "https://feeds.example/c2.txt"), ("invalid", "slow"), ("synced", 1)]

    def conditions(name: str) -> list[dict]:
        obj = next(o for o in api.objects("globalthreatfeeds") if o["metadata"]["name"] == name)
        return (obj.get("status") or {}).get("errorConditions", [])

    wait_for(lambda: conditions("slow"))
    [condition] = conditions("slow")
    assert condition["type"] == INVALID_SPEC and "spec.pull.period" in condition["message"]
    custom = client.CustomObjectsApi(source.api_client)  # an update keeps the status, as the real server does
    custom.patch_cluster_custom_object(GROUP, VERSION, PLURAL, "c2", {"spec": {"description": "x" * 300}})
    assert source.take(1) == [("invalid", "c2")]
    wait_for(lambda: len(conditions("c2")) == 2)
    assert [c["type"] for c in conditions("c2")] == ["PullFailed", INVALID_SPEC]
    custom.patch_cluster_custom_object(GROUP, VERSION, PLURAL, "c2", {"spec": {"description": "fixed"}})
    assert source.take(1) == [("upserted", "c2", "https://feeds.example/c2.txt")]
    wait_for(lambda: len(conditions("c2")) == 1)
    assert [c["type"] for c in conditions("c2")] == ["PullFailed"]
    assert source.quiet() == []


@dataclass(frozen=True)
class Ref:
    kind: str
    name: str
    key: str


def test_lookup_reads_config_map_and_secret_keys(api):
    api.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "feeds", "namespace": "dnswatch"},
             "data": {"user": "alice"}, "binaryData": {"bin": base64.b64encode(b"raw").decode()}})  # fmt: skip
    api.put({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "feed-token", "namespace": "dnswatch"},
             "data": {"token": base64.b64encode(b"s3cret").decode()}})  # fmt: skip
    api.put({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "elsewhere", "namespace": "other"},
             "data": {"token": base64.b64encode(b"no").decode()}})  # fmt: skip
    with api.api_client() as api_client:
        source = GlobalThreatFeedSource(api_client, FAST)
        assert source.lookup(Ref("ConfigMap", "feeds", "user")) == "alice"
        assert source.lookup(Ref("ConfigMap", "feeds", "bin")) == "raw"
        assert source.lookup(Ref("Secret", "feed-token", "token")) == "s3cret"
        assert source.lookup(Ref("Secret", "feed-token", "other")) is None
        assert source.lookup(Ref("Secret", "elsewhere", "token")) is None  # only the collector's namespace
        assert source.lookup(Ref("ConfigMap", "missing", "user")) is None
        api.fail_next(1, code=403)
        with pytest.raises(LookupError) as error:
            source.lookup(Ref("Secret", "feed-token", "token"))
        assert "s3cret" not in str(error.value) and "403" in str(error.value)
        assert asyncio.run(source.resolve(Ref("Secret", "feed-token", "token"))) == "s3cret"


def test_changes_as_an_async_iterator(api):
    api.put(feed("c2"))

    async def main() -> list[tuple]:
        with api.api_client() as api_client:
            source = GlobalThreatFeedSource(api_client, FAST)
            seen = []
            async with contextlib.aclosing(source.changes()) as changes:
                async for change in changes:
                    seen.append(summary(change))
                    if isinstance(change, FeedsSynced):
                        api.put(feed("a", "https://feeds.example/a.txt"))
                    if len(seen) == 3:
                        break
            assert not await source.write_status("absent", {"entries": 1})
            assert await source.write_status("a", {"entries": 1})
            return seen

    assert asyncio.run(asyncio.wait_for(main(), 30)) == [
        ("upserted", "c2", "https://feeds.example/c2.txt"),
        ("synced", 1),
        ("upserted", "a", "https://feeds.example/a.txt"),
    ]
    assert not [t for t in threading.enumerate() if t.name == "globalthreatfeed-watch"]


def test_a_missing_crd_is_retried_with_a_hint(caplog):
    from tests.kubeapi import CORE_RESOURCES

    without_crd = tuple(r for r in CORE_RESOURCES if r.plural != "globalthreatfeeds")
    with FakeKubeAPI(resources=without_crd) as api, caplog.at_level("WARNING", "collector.shell.kubesource"):
        source = Running(api)
        try:
            wait_for(lambda: list_requests(api) >= 3)
        finally:
            source.stop()
    assert "kubectl apply -f deploy/base/crd-globalthreatfeed.yaml" in caplog.text
    assert source.changes.empty()
