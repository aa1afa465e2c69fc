"""Certificates, tokens and calls for the security tests (tests/collector/test_security*.py).

`pki` is made once per test session with trustme: the collector's CA and server certificate (for `localhost`
and 127.0.0.1), the agents' client CA and one agent certificate, and a stranger CA that signed nothing of ours.
`calls` are one cheap call per service, each giving back the status code (OK when the call got through).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import trustme

from dnswatch.grpcchannel import ChannelSecurity, open_channel
from dnswatch_pb.v1 import (alerting_pb2, alerting_pb2_grpc, distribution_pb2, distribution_pb2_grpc, events_pb2,
                            events_pb2_grpc, feeds_pb2, feeds_pb2_grpc)

AGENT_TOKENS = ("agent-token-1-5f0c9e", "agent-token-2-77ab01")
CONSUMER_TOKENS = ("consumer-token-1-a93d4e",)


@dataclass(frozen=True)
class Pki:
    ca: Path
    """The CA of the collector's certificate."""
    server_cert: Path
    server_key: Path
    client_ca: Path
    """The CA of agents' client certificates."""
    agent_cert: Path
    agent_key: Path
    stranger_ca: Path
    """A CA that signed nothing of ours."""
    stranger_cert: Path
    """A client certificate the collector must not accept (signed by the stranger CA)."""
    stranger_key: Path
    folder: Path


def _write(folder: Path, name: str, blob: trustme.Blob) -> Path:
    path = folder / name
    blob.write_to_path(str(path))
    return path


def make_pki(folder: Path) -> Pki:
    server_ca, client_ca, stranger = trustme.CA(), trustme.CA(), trustme.CA()
    server = server_ca.issue_cert("localhost", "127.0.0.1", "collector.dnswatch.svc")
    agent = client_ca.issue_cert("node-1.agents.dnswatch")
    impostor = stranger.issue_cert("node-1.agents.dnswatch")
    return Pki(
        ca=_write(folder, "ca.crt", server_ca.cert_pem),
        server_cert=_write(folder, "tls.crt", server.cert_chain_pems[0]),
        server_key=_write(folder, "tls.key", server.private_key_pem),
        client_ca=_write(folder, "agents-ca.crt", client_ca.cert_pem),
        agent_cert=_write(folder, "agent.crt", agent.cert_chain_pems[0]),
        agent_key=_write(folder, "agent.key", agent.private_key_pem),
        stranger_ca=_write(folder, "stranger-ca.crt", stranger.cert_pem),
        stranger_cert=_write(folder, "stranger.crt", impostor.cert_chain_pems[0]),
        stranger_key=_write(folder, "stranger.key", impostor.private_key_pem),
        folder=folder,
    )


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def token_files(tmp_path: Path) -> tuple[Path, Path]:
    agent = tmp_path / "agent-tokens"
    agent.write_text("".join(f"{token}\n" for token in AGENT_TOKENS))
    consumer = tmp_path / "consumer-tokens"
    consumer.write_text("\n".join(CONSUMER_TOKENS) + "\n")
    return agent, consumer


def tls_flags(pki: Pki) -> list[str]:
    return ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)]


def token_file(folder: Path, token: str, name: str = "token") -> Path:
    path = folder / name
    path.write_text(token + "\n")
    return path


# ---------------------------------------------------------------------------------------------- calls


def _feeds_list(channel: grpc.Channel) -> None:
    feeds_pb2_grpc.FeedsStub(channel).List(feeds_pb2.ListFeedsRequest(), timeout=5)


def _subscribe(channel: grpc.Channel) -> None:
    call = distribution_pb2_grpc.FeedDistributionStub(channel).Subscribe(
        distribution_pb2.SubscribeRequest(node="test-node"), timeout=5)
    try:
        next(iter(call))  # the first update (or `synced`): the call got through
    finally:
        call.cancel()


def _events_list(channel: grpc.Channel) -> None:
    events_pb2_grpc.EventsStub(channel).List(events_pb2.ListEventsRequest(page_size=1), timeout=5)


def _events_watch(channel: grpc.Channel) -> None:
    call = events_pb2_grpc.EventsStub(channel).Watch(events_pb2.WatchEventsRequest(), timeout=5)
    try:
        next(iter(call))  # the first message (a resume token): the call got through
    finally:
        call.cancel()


def _ingest(channel: grpc.Channel) -> None:
    # An empty request stream: the collector answers it with no acks once it was let in.
    call = events_pb2_grpc.EventIngestStub(channel).Send(iter(()), timeout=5)
    for _ack in call:
        pass


def _feeds_push(channel: grpc.Channel) -> None:
    try:
        feeds_pb2_grpc.FeedsStub(channel).Push(feeds_pb2.PushFeedRequest(name="no-such-feed", body=b"a.example\n"),
                                               timeout=5)
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:  # NOT_FOUND: let in, then told there is no such feed
            raise


def _webhooks_list(channel: grpc.Channel) -> None:
    alerting_pb2_grpc.WebhooksStub(channel).List(alerting_pb2.ListWebhooksRequest(), timeout=5)


def _webhooks_test(channel: grpc.Channel) -> None:
    try:
        alerting_pb2_grpc.WebhooksStub(channel).Test(alerting_pb2.TestWebhookRequest(name="no-such-webhook"),
                                                     timeout=5)
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:  # NOT_FOUND: let in, then told there is no such webhook
            raise


CALLS = {"Feeds.List": _feeds_list, "Feeds.Push": _feeds_push, "FeedDistribution.Subscribe": _subscribe, "Events.List": _events_list,
         "Events.Watch": _events_watch, "EventIngest.Send": _ingest, "Webhooks.List": _webhooks_list,
         "Webhooks.Test": _webhooks_test}
AGENT_CALLS = ("FeedDistribution.Subscribe", "EventIngest.Send")
CONSUMER_CALLS = ("Feeds.List", "Feeds.Push", "Events.List", "Events.Watch", "Webhooks.List", "Webhooks.Test")


def call_status(address: str, security: ChannelSecurity, call: str) -> grpc.StatusCode:
    """The status of one call: OK when it got through, else the code the collector (or the channel) gave."""
    with open_channel(address, security) as channel:
        try:
            CALLS[call](channel)
        except grpc.RpcError as error:
            return error.code()
    return grpc.StatusCode.OK
