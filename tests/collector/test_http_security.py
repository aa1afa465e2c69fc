"""Who may call the HTTP API, over TLS with trustme certificates and real token files: 401 for a missing or
unknown token, 403 for a role that may not, viewers read and change nothing, consumers do both, and the
dismissal records the caller; plaintext is refused on the TLS port; bad flags are one line."""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path

import grpc
import httpx
import pytest

from dnswatch.grpcchannel import ChannelSecurity, open_channel
from dnswatch_pb.v1 import events_pb2, events_pb2_grpc
from tests.collector.eventdata import event
from tests.collector.httpkit import ingest, with_http
from tests.collector.kubesetup import kubeconfig
from tests.collector.securitykit import AGENT_TOKENS, CONSUMER_TOKENS, pki, tls_flags, token_file  # noqa: F401
from tests.kubeapi import FakeKubeAPI

pytestmark = pytest.mark.timeout(120)

VIEWER_TOKEN = "viewer-token-1-c0ffee"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def secured_collector(pki, tmp_path):  # noqa: F811
    db = f"sqlite:///{tmp_path / 'collector.sqlite'}"
    ingest(db, [event(1), event(2)])
    agent = token_file(tmp_path, AGENT_TOKENS[0], "agent-tokens")
    consumer = token_file(tmp_path, CONSUMER_TOKENS[0], "consumer-tokens")
    viewer = token_file(tmp_path, VIEWER_TOKEN, "viewer-tokens")
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    running, port = with_http(db, feeds, *tls_flags(pki), "--agent-token-file", str(agent),
                              "--consumer-token-file", str(consumer), "--viewer-token-file", str(viewer))
    with running:
        yield running, port


@pytest.fixture
def secured(secured_collector, pki):  # noqa: F811
    _, port = secured_collector
    with httpx.Client(base_url=f"https://localhost:{port}/api/v1",
                      verify=ssl.create_default_context(cafile=str(pki.ca)), timeout=10) as client:
        yield client, port


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


READS = [("GET", "/events"), ("GET", f"/events/{event(1)['id']}"), ("GET", "/feeds"), ("GET", "/exceptions")]
WRITES = [("POST", "/events/dismiss", {"ids": [event(1)["id"]]}), ("POST", "/events/undismiss", {"ids": ["x"]}),
          ("POST", "/feeds", {"kind": "GlobalThreatFeed"}), ("DELETE", "/feeds/nothing", None),
          ("POST", "/feeds/nothing/sync", None), ("POST", "/exceptions", {"kind": "AlertException"})]


@pytest.mark.parametrize("headers", [{}, bearer("wrong-token"), {"Authorization": "Basic dXNlcjpwYXNz"},
                                     {"Authorization": "Bearer"}])
def test_missing_or_unknown_credentials_are_401_json_with_a_challenge(secured, headers):
    client, _ = secured
    for method, path, *body in READS + WRITES:
        response = client.request(method, path, headers=headers, json=body[0] if body else None)
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"]["code"] == "unauthenticated"
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "wrong-token" not in response.text


def test_an_agent_token_may_do_nothing_here(secured):
    client, _ = secured
    for method, path, *body in READS + WRITES:
        response = client.request(method, path, headers=bearer(AGENT_TOKENS[0]), json=body[0] if body else None)
        assert response.status_code == 403, (method, path)
        assert response.json()["error"]["code"] == "permission_denied"
        assert "agent" in response.json()["error"]["message"]


def test_a_viewer_reads_and_may_not_write(secured):
    client, _ = secured
    for method, path in READS:
        assert client.request(method, path, headers=bearer(VIEWER_TOKEN)).status_code == 200, path
    for method, path, body in WRITES:
        response = client.request(method, path, headers=bearer(VIEWER_TOKEN), json=body)
        assert response.status_code == 403, (method, path)
        assert "viewer" in response.json()["error"]["message"]


def test_a_consumer_reads_and_writes_and_its_dismissal_names_it(secured):
    client, _ = secured
    for method, path in READS:
        assert client.request(method, path, headers=bearer(CONSUMER_TOKENS[0])).status_code == 200, path
    target = event(1)["id"]
    done = client.post("/events/dismiss", json={"ids": [target]}, headers=bearer(CONSUMER_TOKENS[0]))
    assert done.status_code == 200 and done.json()["changed"] == [target]
    shown = client.get(f"/events/{target}", headers=bearer(VIEWER_TOKEN)).json()
    assert shown["dismissed_by"] == "consumer token"


def test_the_openapi_document_is_open_as_grpc_reflection_is(secured):
    client, _ = secured
    document = client.get("/openapi.json")
    assert document.status_code == 200 and "/api/v1/events" in document.json()["paths"]


def test_a_viewer_token_over_grpc_is_permission_denied(secured_collector, pki, tmp_path):  # noqa: F811
    running, _ = secured_collector
    security = ChannelSecurity(ca_file=pki.ca, token_file=token_file(tmp_path, VIEWER_TOKEN, "grpc-viewer"),
                               server_name="localhost")
    with open_channel(running.address, security) as channel, pytest.raises(grpc.RpcError) as refused:
        events_pb2_grpc.EventsStub(channel).List(events_pb2.ListEventsRequest(page_size=1), timeout=10)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "viewer" in refused.value.details()


def test_plaintext_on_the_tls_port_gets_no_answer(secured):
    _, port = secured
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/api/v1/events", headers=bearer(CONSUMER_TOKENS[0]), timeout=5)


def collector_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "collector.shell.main", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("address", ["nowhere", "127.0.0.1:99999", ":80", "127.0.0.1:http"])
def test_a_bad_http_listen_is_one_line_and_exit_2(tmp_path, address):
    result = collector_cli("--db", f"sqlite:///{tmp_path / 'db.sqlite'}", "--listen", "127.0.0.1:0",
                           "--feeds-dir", str(tmp_path), "--insecure", "--http-listen", address)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--http-listen" in result.stderr and "Traceback" not in result.stderr


def test_an_http_port_in_use_is_one_line_and_exit_2(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = collector_cli("--db", f"sqlite:///{tmp_path / 'db.sqlite'}", "--listen", "127.0.0.1:0",
                               "--feeds-dir", str(tmp_path), "--insecure", "--http-listen", f"127.0.0.1:{port}")
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "port is in use" in result.stderr


def test_serviceaccount_tokens_reviewed_by_kubernetes_get_their_roles(pki, tmp_path):  # noqa: F811
    """--viewer-service-account and --consumer-service-account with --token-review, the fake API server
    playing the authenticator: a viewer reads and may not write, a consumer writes as its ServiceAccount."""
    accounts = {"sa-ui": "system:serviceaccount:ops:ui", "sa-bot": "system:serviceaccount:ops:bot",
                "sa-other": "system:serviceaccount:default:default"}

    def review(spec: dict) -> dict:
        username = accounts.get(spec.get("token"))
        if username is None:
            return {"authenticated": False, "error": "invalid bearer token"}
        return {"authenticated": True, "user": {"username": username}, "audiences": spec.get("audiences") or []}

    db = f"sqlite:///{tmp_path / 'collector.sqlite'}"
    ingest(db, [event(1)])
    with FakeKubeAPI(bookmark_interval=0.2) as api:
        api.review_token = review
        config = kubeconfig(tmp_path / "kubeconfig", api.url)
        running, port = with_http(db, None, "--kubeconfig", str(config), *tls_flags(pki), "--token-review",
                                  "--viewer-service-account", "ops/ui", "--consumer-service-account", "ops/bot")
        with running, httpx.Client(base_url=f"https://localhost:{port}/api/v1", timeout=10,
                                   verify=ssl.create_default_context(cafile=str(pki.ca))) as client:
            assert client.get("/events", headers=bearer("sa-ui")).status_code == 200
            dismiss = {"ids": [event(1)["id"]]}
            assert client.post("/events/dismiss", json=dismiss, headers=bearer("sa-ui")).status_code == 403
            assert client.post("/events/dismiss", json=dismiss, headers=bearer("sa-bot")).status_code == 200
            shown = client.get(f"/events/{event(1)['id']}", headers=bearer("sa-ui")).json()
            assert shown["dismissed_by"] == "system:serviceaccount:ops:bot"
            assert client.get("/events", headers=bearer("sa-other")).status_code == 403
            assert client.get("/events", headers=bearer("sa-nobody")).status_code == 401
