"""The collector's Kubernetes feed source: `dnswatch.dev/v1` GlobalThreatFeeds, and Calico's
`projectcalico.org/v3` ones beside them when the API server serves that group.

API discovery (`GET /apis`) says at start which groups there are; each is listed and watched by a
`GlobalThreatFeedSource` of its own, and `collector.core.feedgroups.FeedMerge` makes their changes those of
one source (a name both hold is ours). A status goes back to the object the feed came from: the whole of it
to a `dnswatch.dev/v1` object, Calico's fields to a Calico one (`calico_status`).

    feeds = KubeFeeds(api_client, KubeSourceSettings(namespace="dnswatch"))
    async with contextlib.aclosing(feeds.changes()) as changes:
        async for change in changes:
            ...
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from kubernetes import client

from collector.core.feedgroups import CALICO_GROUP, FeedMerge, calico_status
from collector.core.watchloop import FeedChange
from collector.shell.customresources import CALICO_VERSION, discover_groups
from collector.shell.kubesource import GlobalThreatFeedSource, KeyReference, KubeSourceSettings
from dnswatch.feeds.feedinfo import RefusedManifest

__all__ = ["CALICO_VERSION", "KubeFeeds"]

log = logging.getLogger(__name__)


class KubeFeeds:
    """Every GlobalThreatFeed the cluster holds, of either group; one instance serves one `changes()`."""

    def __init__(self, api_client: client.ApiClient, settings: KubeSourceSettings | None = None) -> None:
        self._api_client = api_client
        self._settings = settings or KubeSourceSettings()
        self._sources: list[GlobalThreatFeedSource] = []
        self._merge = FeedMerge(0)
        self._lookup = GlobalThreatFeedSource(api_client, self._settings)  # for header values only

    async def changes(self) -> AsyncIterator[FeedChange]:
        """The merged changes of every group's source, from discovery on, until closed."""
        groups = await discover_groups(self._api_client, self._settings, "GlobalThreatFeed", log)
        self._sources = [GlobalThreatFeedSource(self._api_client, s) for s in groups]
        self._merge = FeedMerge(len(self._sources))
        queue: asyncio.Queue[tuple[int, FeedChange]] = asyncio.Queue()

        async def pump(index: int, source: GlobalThreatFeedSource) -> None:
            async for change in source.changes():
                await queue.put((index, change))

        tasks = [asyncio.create_task(pump(i, source), name=f"feeds of {source.api_version}")
                 for i, source in enumerate(self._sources)]
        try:
            while True:
                index, change = await queue.get()
                for merged in self._merge.take(index, change):
                    yield merged
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def refusals(self) -> list[RefusedManifest]:
        """Every group's refused objects, and those shadowed by an object of the same name in ours."""
        return [r for source in self._sources for r in source.refusals()] + self._merge.shadowed()

    async def write_status(self, name: str, status: dict) -> bool:
        """Write the status to the object the feed came from; False when there is none."""
        index = self._merge.winner(name)
        if index is None:
            return False
        source = self._sources[index]
        if source.settings.group == CALICO_GROUP:
            status = calico_status(status)
        return await source.write_status(name, status)

    async def resolve(self, ref: KeyReference) -> str | None:
        """A header's ConfigMap or Secret key, in the collector's namespace (`GlobalThreatFeedSource.resolve`)."""
        return await self._lookup.resolve(ref)
