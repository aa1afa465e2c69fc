"""A real collector in this process: `collector.shell.main.serve` on 127.0.0.1 in its own thread and event loop.

    with RunningCollector(db_url, feeds_dir) as collector:
        address = collector.address          # "127.0.0.1:PORT", ready for calls
        ...
    # stopped as SIGTERM would stop it, and its thread joined

The feeds folder is polled every 0.1 s so a manifest change shows within a test's patience; `manifest` writes
a feed's manifest for it, and `pulled` is the condition `wait_for` waits on until feeds are pulled.
`alerting` holds the collector's exception and webhook keepers once it runs; `on_loop` calls them on its loop:

    config = collector.on_loop(lambda: collector.alerting.webhooks.resolved("soc"))
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar
from pathlib import Path

import grpc

from dnswatch.feeds.lines import DOMAIN_NAME_SET
from dnswatch.grpcchannel import PLAINTEXT, ChannelSecurity, open_channel
from collector.shell.main import AlertingParts, serve, settings_from_args
from collector.shell.puller import PullerSettings
from dnswatch_pb.v1 import distribution_pb2, distribution_pb2_grpc, feeds_pb2, feeds_pb2_grpc

_START_SECONDS = 15.0
T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a process that must be told its port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manifest(name: str, url: str, content: str = DOMAIN_NAME_SET, mode: str = "Enabled") -> str:
    return (f"apiVersion: dnswatch.dev/v1\nkind: GlobalThreatFeed\nmetadata:\n  name: \"{name}\"\nspec:\n"
            f"  content: {content}\n  mode: {mode}\n  pull:\n    period: 1h\n    http:\n      url: {url}\n")


def pulled(*names: str, version: int = 1):
    return lambda feeds: all(n in feeds and feeds[n].status.version >= version for n in names)


class RunningCollector:
    def __init__(self, db_url: str, feeds_dir: Path | None, *extra: str,
                 puller_settings: PullerSettings = PullerSettings()) -> None:
        """With `feeds_dir` None, pass the source in `extra` (`--kubeconfig FILE`); `puller_settings` sets
        short timeouts and retries for tests of failing feed servers."""
        self.puller_settings = puller_settings
        source = ["--feeds-dir", str(feeds_dir), "--feeds-dir-poll", "0.1"] if feeds_dir is not None else []
        plaintext = [] if "--tls-cert" in extra else ["--insecure"]  # TLS tests give their own security flags
        self.settings = settings_from_args(["--db", db_url, "--listen", "127.0.0.1:0", *source, *plaintext,
                                            *extra])
        self.port = 0
        self.client: ChannelSecurity = PLAINTEXT
        """How `channel()` (and so `feeds`, `wait_for`, `subscribe`) reaches it: TLS tests set their credentials."""
        self.error: BaseException | None = None
        self.alerting: AlertingParts | None = None
        """Its exception and webhook keepers (call them through `on_loop`)."""
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="collector", daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> RunningCollector:
        self._thread.start()
        if not self._ready.wait(_START_SECONDS) or self.error is not None or not self.port:
            self.__exit__()
            raise RuntimeError(f"the collector did not start: {self.error!r}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:
                pass  # its loop has ended already
        self._thread.join(timeout=15)
        assert not self._thread.is_alive(), "the collector did not stop"

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await serve(self.settings, self._stop, on_listening=self._listening,
                        puller_settings=self.puller_settings, on_assembled=self._assembled)

        try:
            asyncio.run(main())
        except BaseException as error:  # noqa: BLE001 - handed to the test
            self.error = error
        finally:
            self._ready.set()

    def _assembled(self, parts: AlertingParts) -> None:
        self.alerting = parts

    def on_loop(self, make: Callable[[], Awaitable[T]], timeout: float = 10.0) -> T:
        """Run `make()` on the collector's event loop (where its keepers live) and return what it gives."""
        assert self._loop is not None

        async def run() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def _listening(self, port: int) -> None:
        self.port = port
        self._ready.set()

    # -- clients

    def channel(self) -> grpc.Channel:
        return open_channel(self.address, self.client)

    def feeds(self) -> dict[str, feeds_pb2.Feed]:
        with self.channel() as channel:
            response = feeds_pb2_grpc.FeedsStub(channel).List(feeds_pb2.ListFeedsRequest(), timeout=5)
        return {feed.name: feed for feed in response.feeds}

    def wait_for(self, condition: Callable[[dict[str, feeds_pb2.Feed]], bool], what: str,
                 deadline: float = 10.0) -> dict[str, feeds_pb2.Feed]:
        end = time.monotonic() + deadline
        while True:
            feeds = self.feeds()
            if condition(feeds):
                return feeds
            if time.monotonic() > end:
                raise AssertionError(f"timed out waiting for {what}; feeds: {feeds}")
            time.sleep(0.05)

    def subscribe(self, have: dict[str, int] | None = None, node: str = "test-node", timeout: float = 10.0):
        """(channel, call): iterate the call for FeedUpdate messages; close the channel when done."""
        channel = self.channel()
        stub = distribution_pb2_grpc.FeedDistributionStub(channel)
        call = stub.Subscribe(distribution_pb2.SubscribeRequest(node=node, have=have or {}), timeout=timeout)
        return channel, call
