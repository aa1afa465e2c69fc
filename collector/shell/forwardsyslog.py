"""The syslog forwarding targets: RFC 5424 messages, octet-counted, over TCP or TLS (docs/forwarding.md; the
format is collector/core/rfc5424.py's).

    sink = SyslogSink(target, ssl_context=None)      # syslog+tcp; an ssl.SSLContext for syslog+tls
    await sink.send([frame, frame, ...])             # connects first if needed; OSError if the receiver is away
    await sink.close()

A send counts as done once its bytes are handed to the kernel: the transport keeps no buffer of its own
(write limits 0), so `drain` returns only then. TCP still acknowledges nothing to the application: bytes in
flight when the receiver goes away are lost without a word, so the forwarder sends again, after a failure,
what it sent in the last `resend_seconds` before it (at least once: those may repeat). Before each send the
connection is checked: a receiver that stopped has closed it (syslog receivers send nothing, so anything
readable is the end of it), and the frames go over a new one instead of into a dead socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl

from collector.core.forwardtarget import SYSLOG_TLS, ForwardTarget

__all__ = ["SyslogSink"]

log = logging.getLogger(__name__)

_CONNECT_SECONDS = 10.0
_SEND_SECONDS = 30.0


class SyslogSink:
    """One connection to a syslog receiver, opened when first needed and again after it broke."""

    resend_seconds = 2.0
    """After a failure, send again what was sent this long before it: it may have died in flight."""

    def __init__(self, target: ForwardTarget, *, ssl_context: ssl.SSLContext | None = None) -> None:
        if target.kind == SYSLOG_TLS and ssl_context is None:
            ssl_context = ssl.create_default_context()
        self.target = target
        self._ssl = ssl_context if target.kind == SYSLOG_TLS else None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._gone()

    async def send(self, frames: list[bytes]) -> None:
        """Send the frames, in order, in one write; OSError (or TimeoutError) when the receiver cannot be
        reached or the connection breaks, after which the next send connects again."""
        if self._writer is not None and self._gone():
            await self._drop()
        if self._writer is None:
            await self._connect()
        assert self._writer is not None
        try:
            self._writer.write(b"".join(frames))
            await asyncio.wait_for(self._writer.drain(), _SEND_SECONDS)
        except (OSError, asyncio.TimeoutError, ssl.SSLError):
            await self._drop()
            raise
        if self._gone():  # closed while we wrote: the frames may not have reached the receiver
            await self._drop()
            raise ConnectionResetError(f"{self.target.name}: the receiver closed the connection")

    async def settle(self) -> None:
        """Nothing to flush: sent is in the kernel's hands."""

    async def close(self) -> None:
        await self._drop()

    async def _connect(self) -> None:
        target = self.target
        try:
            self._reader, self._writer = await asyncio.wait_for(asyncio.open_connection(
                target.host, target.port, ssl=self._ssl, server_hostname=target.host if self._ssl else None),
                _CONNECT_SECONDS)
        except asyncio.TimeoutError:
            raise TimeoutError(f"{target.name}: no connection within {_CONNECT_SECONDS:g} s") from None
        # No buffer in the transport: drain() returns once every byte is in the kernel's.
        self._writer.transport.set_write_buffer_limits(0, 0)
        log.info("forwarding to %s: connected", target.name)

    def _gone(self) -> bool:
        """The receiver closed the connection, or it broke."""
        assert self._writer is not None and self._reader is not None
        return self._writer.is_closing() or self._reader.at_eof() or self._reader.exception() is not None

    async def _drop(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2.0)
