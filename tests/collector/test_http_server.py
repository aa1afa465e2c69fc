"""The HTTP API's server and error machinery on a real uvicorn on 127.0.0.1: a failure of ours is a JSON 500
and one log line, never a traceback in the answer or the log; a failure mid-stream ends the stream; a
certificate rotated on disk is served to new connections."""

from __future__ import annotations

import asyncio
import logging
import ssl

import httpx
import pytest
import trustme
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from collector.shell.httpapi.errors import CatchAll, install_error_handlers
from collector.shell.httpapi.server import HttpListenError, HttpServer, bind_http

pytestmark = [pytest.mark.timeout(60), pytest.mark.anyio]


@pytest.fixture
def anyio_backend():
    return "asyncio"


def failing_app() -> CatchAll:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    async def boom() -> dict:
        raise RuntimeError("the disk caught fire")

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def lines():
            yield b"data: one\n\n"
            raise RuntimeError("mid-stream failure")

        return StreamingResponse(lines(), media_type="text/event-stream")

    return CatchAll(app)


async def test_an_unexpected_failure_is_a_json_500_and_one_log_line(caplog):
    server = HttpServer(failing_app(), bind_http("127.0.0.1:0"))
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            with caplog.at_level(logging.INFO):
                response = await client.get("/boom")
                assert response.status_code == 500
                assert response.json()["error"]["code"] == "internal"
                assert "fire" not in response.text and "Traceback" not in response.text
                streamed = await client.get("/stream")
                assert streamed.text.startswith("data: one")
    finally:
        await server.stop()
    failures = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert [record.getMessage() for record in failures] == [
        "HTTP GET /boom failed: RuntimeError: the disk caught fire",
        "HTTP GET /stream failed: RuntimeError: mid-stream failure"]
    assert not any(record.exc_info for record in caplog.records)


async def test_a_port_in_use_is_one_clear_error():
    taken = bind_http("127.0.0.1:0")
    try:
        with pytest.raises(HttpListenError, match="the port is in use"):
            bind_http(f"127.0.0.1:{taken.getsockname()[1]}")
    finally:
        taken.close()


async def test_a_rotated_certificate_is_served_to_new_connections(tmp_path):
    ca = trustme.CA()
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    first = ca.issue_cert("127.0.0.1")
    first.cert_chain_pems[0].write_to_path(str(cert))
    first.private_key_pem.write_to_path(str(key))
    server = HttpServer(failing_app(), bind_http("127.0.0.1:0"), tls_cert=cert, tls_key=key)
    await server.start()

    async def served_serial() -> int:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=context,
                                                       server_hostname="127.0.0.1")
        try:
            der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        finally:
            writer.close()
        from cryptography import x509

        return x509.load_der_x509_certificate(der).serial_number

    try:
        before = await served_serial()
        second = ca.issue_cert("127.0.0.1")
        second.private_key_pem.write_to_path(str(key))
        second.cert_chain_pems[0].write_to_path(str(cert))
        after = await served_serial()
        assert before != after
        from cryptography import x509

        assert after == x509.load_pem_x509_certificate(second.cert_chain_pems[0].bytes()).serial_number
    finally:
        await server.stop()
