"""Projected ServiceAccount tokens checked with the TokenReview API (docs/grpc-api.md): the collector in Kubernetes mode
against the fake API server (tests/kubeapi.py), whose `review_token` hook plays the API server's authenticator.
"""

from __future__ import annotations

import threading
import time
from concurrent import futures
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from dnswatch.grpcchannel import ChannelSecurity
from harness.collector import RunningCollector
from tests.collector.securitykit import AGENT_CALLS, CALLS, CONSUMER_CALLS, call_status, pki, tls_flags, token_file  # noqa: F401
from tests.collector.kubesetup import kubeconfig
from tests.kubeapi import ApiError, FakeKubeAPI

OK = grpc.StatusCode.OK
DENIED = grpc.StatusCode.PERMISSION_DENIED

ACCOUNTS = {
    "sa-agent": "system:serviceaccount:dnswatch:dnswatch-agent",
    "sa-ops-alice": "system:serviceaccount:ops:alice",
    "sa-ops-bob": "system:serviceaccount:ops:bob",
    "sa-ops-carol": "system:serviceaccount:ops:carol",
    "sa-default": "system:serviceaccount:default:default",
    "user-token": "alice@example.com",  # a person, not a ServiceAccount
    "wrong-audience": "system:serviceaccount:dnswatch:dnswatch-agent",
}


class Reviewer:
    """The fake API server's authenticator: knows ACCOUNTS, counts reviews, keeps the audiences asked for."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reviews: list[dict] = []
        self.failures = 0
        """Answer this many reviews with HTTP 500 (the other fault hooks would hit the feed watch as well)."""

    def __call__(self, spec: dict) -> dict:
        with self.lock:
            self.reviews.append(spec)
            if self.failures:
                self.failures -= 1
                raise ApiError(500, "InternalError", "etcd is having a bad day")
        if spec.get("token") == "sa-ops-carol":
            time.sleep(0.3)  # a slow API: the calls below arrive while the review is under way
        token = spec.get("token")
        if token not in ACCOUNTS:
            return {"authenticated": False, "error": "invalid bearer token"}
        audiences = ["https://kubernetes.default.svc"] if token == "wrong-audience" else spec.get("audiences") or []
        return {"authenticated": True, "user": {"username": ACCOUNTS[token], "groups": ["system:authenticated"]},
                "audiences": audiences}

    def count(self, token: str) -> int:
        with self.lock:
            return sum(1 for spec in self.reviews if spec.get("token") == token)


class Reviewed:
    def __init__(self, running: RunningCollector, api: FakeKubeAPI, reviewer: Reviewer, ca: Path, folder: Path):
        self.running, self.api, self.reviewer, self.ca, self.folder = running, api, reviewer, ca, folder

    def status(self, token: str, call: str) -> grpc.StatusCode:
        security = ChannelSecurity(ca_file=self.ca, token_file=token_file(self.folder, token, f"{token}.token"))
        return call_status(self.running.address, security, call)

    def statuses(self, token: str) -> dict[str, grpc.StatusCode]:
        return {call: self.status(token, call) for call in CALLS}


@pytest.fixture(scope="module")
def reviewed(pki, tmp_path_factory) -> Iterator[Reviewed]:  # noqa: F811
    folder = tmp_path_factory.mktemp("tokenreview")
    reviewer = Reviewer()
    with FakeKubeAPI(bookmark_interval=0.2) as api:
        api.review_token = reviewer
        config = kubeconfig(folder / "kubeconfig", api.url)
        running = RunningCollector(f"sqlite:///{folder / 'db.sqlite'}", None, "--kubeconfig", str(config),
                                   *tls_flags(pki), "--token-review", "--token-audience", "dnswatch-collector",
                                   "--agent-service-account", "dnswatch/dnswatch-agent",
                                   "--consumer-service-account", "ops/*")
        with running:
            yield Reviewed(running, api, reviewer, pki.ca, folder)


def test_a_reviewed_agent_service_account_is_an_agent(reviewed):
    assert reviewed.statuses("sa-agent") == {call: OK if call in AGENT_CALLS else DENIED for call in CALLS}


def test_every_service_account_of_a_listed_namespace_is_a_consumer(reviewed):
    for token in ("sa-ops-alice", "sa-ops-bob"):
        assert reviewed.statuses(token) == {call: OK if call in CONSUMER_CALLS else DENIED for call in CALLS}


def test_an_authenticated_but_unlisted_account_is_denied(reviewed):
    for token in ("sa-default", "user-token"):
        assert reviewed.statuses(token) == {call: DENIED for call in CALLS}


def test_a_token_the_api_refuses_or_meant_for_another_audience_is_unauthenticated(reviewed):
    for token in ("forged.jwt.token", "wrong-audience"):
        assert reviewed.status(token, "Feeds.List") == grpc.StatusCode.UNAUTHENTICATED


def test_reviews_ask_for_the_collector_audience_and_are_cached(reviewed):
    before = reviewed.reviewer.count("sa-ops-bob")
    for _ in range(3):
        assert reviewed.status("sa-ops-bob", "Feeds.List") == OK
    # At most one review for the three calls (none when an earlier test's answer is still cached).
    assert reviewed.reviewer.count("sa-ops-bob") - before <= 1
    assert reviewed.reviewer.count("sa-ops-bob") >= 1
    assert all(spec.get("audiences") == ["dnswatch-collector"] for spec in reviewed.reviewer.reviews)


def test_many_calls_with_a_new_token_at_once_bring_one_review(reviewed):
    security = ChannelSecurity(ca_file=reviewed.ca, token_file=token_file(reviewed.folder, "sa-ops-carol", "carol"))
    with futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: call_status(reviewed.running.address, security, "Feeds.List"), range(16)))
    assert codes == [OK] * 16
    assert reviewed.reviewer.count("sa-ops-carol") == 1


def test_an_api_that_cannot_review_makes_the_call_unavailable_not_unauthenticated(reviewed):
    reviewed.reviewer.failures = 1
    assert reviewed.status("sa-agent-never-seen", "FeedDistribution.Subscribe") == grpc.StatusCode.UNAVAILABLE
    # The failure is not cached: the next call is reviewed again (and this token is unknown to the API).
    assert reviewed.status("sa-agent-never-seen", "FeedDistribution.Subscribe") == grpc.StatusCode.UNAUTHENTICATED
