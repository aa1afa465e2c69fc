"""This node's pods from the Kubernetes API, kept in a PodDirectory for attribution (docs/detection.md).

The watch is the loop of every list-and-watch here (dnswatch/listwatch.py): list the pods of this node
(fieldSelector `spec.nodeName`, all namespaces), watch from the list's resourceVersion with bookmarks, list again
after 410 Gone, and back off and resume after any other failure. `dnswatch.kubewatch` keeps the position and
reads the lines; `agent.core.podevents.PodTracker` turns pods and times into address history.

    directory, watcher = pod_directory_from_api(kubeconfig=None, node=os.environ["NODE_NAME"])  # in-cluster
    watcher.start()
    if not watcher.wait_synced(30):
        log.warning("pods not listed yet: queries are reported by address until they are")
    pipeline = EventPipeline(node, directory, ...)       # the capture thread looks up; the watcher writes
    ...
    watcher.stop()

Threads: the capture loop is synchronous, so the watch is a daemon thread rather than a task. It is the only
writer of the directory; the capture thread reads it without a lock (each address's history is an immutable
tuple swapped in by one dict store: attribution.py, "Threads"). `stop()` is prompt: it shuts the socket of
the open watch, which a real API server may otherwise keep quiet for minutes.

The `kubernetes` client does the HTTP (configuration, credentials, TLS), but pods are read as plain JSON
(`_preload_content=False`): the client's model objects cost far more than the few fields attribution reads.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import urllib3
from kubernetes import client
from kubernetes.watch.watch import iter_resp_lines

from agent.core.attribution import PodDirectory
from agent.core.podevents import PodTracker
from dnswatch.errors import BadInput
from dnswatch.kubewatch import Backoff, WatchPosition, decode_watch_line
from dnswatch.listwatch import ListWatch

__all__ = ["PodWatchSettings", "PodWatcher", "pod_directory_from_api"]

log = logging.getLogger(__name__)

_HINTS = {
    401: " (the agent's credentials were refused)",
    403: " (the agent's ServiceAccount needs get, list and watch on pods: deploy/ has the ClusterRole)",
}


@dataclass(frozen=True)
class PodWatchSettings:
    """How the pod watch behaves."""

    grace_seconds: float = 300.0
    """A deleted pod (or an address it gave up) stays resolvable this long: transactions complete and are
    attributed seconds after their packets, and late packets of a just-deleted pod still name it."""
    watch_timeout_seconds: int = 300
    """Each watch asks the server to end it after this long; it is then resumed from the last resourceVersion,
    so a connection that silently died is noticed at the latest after this plus `request_timeout_seconds`."""
    request_timeout_seconds: float = 30.0
    """Client-side timeout of the list (and of connecting, and the slack on a watch's read timeout)."""
    prune_interval_seconds: float = 30.0
    """How often ended tenures older than the grace period are forgotten (memory only: lookups are by time)."""
    backoff: Backoff = field(default_factory=lambda: Backoff(initial=0.5, maximum=30.0))
    """Delays between attempts after a failure; reset by a success."""


class PodWatcher:
    """Lists and watches the pods of `node` into `directory` from a daemon thread, between start() and stop()."""

    def __init__(
        self,
        api_client: client.ApiClient,
        node: str,
        directory: PodDirectory,
        settings: PodWatchSettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.node = node
        self.directory = directory
        self.settings = settings or PodWatchSettings()
        self._core = client.CoreV1Api(api_client)
        self._selector = f"spec.nodeName={node}"
        # Packets carry the kernel's wall-clock time: tenures must be on the same clock.
        self._clock = clock
        self._rng = rng or random.Random()
        self._tracker = PodTracker(directory, grace=self.settings.grace_seconds)
        self._position = WatchPosition()
        self._stopping = threading.Event()
        self._synced = threading.Event()
        self._response_lock = threading.Lock()
        self._response: urllib3.BaseHTTPResponse | None = None
        self._thread: threading.Thread | None = None
        self._last_prune = 0.0
        self.lists = 0
        """Successful lists (the first one, and one after each 410 Gone)."""
        self.relists = 0
        """Lists after the first: how often the server had compacted past our resourceVersion."""
        self.watches = 0
        """Watch requests the server accepted (a resume after a timeout or a failure is one more)."""
        self.errors = 0
        """Failed requests and broken watches, each followed by a backoff."""
        self.events = 0
        """Pod events applied (bookmarks not counted)."""
        self.last_error: str | None = None
        """The latest failure, as logged (`HTTP 403 Forbidden (the agent's ServiceAccount needs ...)`): what a
        caller whose `wait_synced` timed out can tell the user."""

    # -- lifecycle

    def start(self) -> PodWatcher:
        if self._thread is not None:
            raise RuntimeError("PodWatcher.start() called twice")
        self._thread = threading.Thread(target=self.run, name=f"podwatch-{self.node}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the watch thread, interrupting a watch that is waiting for events; returns once it has ended
        (or after `timeout`, when a list request is stuck: the thread is a daemon and ends with the process)."""
        self._stopping.set()
        with self._response_lock:
            if self._response is not None:
                # Unblocks the read in the watch thread (urllib3 >= 2.3; before that, close() is the best there is).
                getattr(self._response, "shutdown", self._response.close)()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def wait_synced(self, timeout: float | None = None) -> bool:
        """True once the first list has been applied: every pod of the node is in the directory."""
        return self._synced.wait(timeout)

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    def counters(self) -> dict[str, int]:
        """For metrics: the counters above, plus the pods known and the addresses in the directory."""
        return {
            "lists": self.lists,
            "relists": self.relists,
            "watches": self.watches,
            "errors": self.errors,
            "events": self.events,
            "pods": len(self._tracker),
            "addresses": len(self.directory),
            "skipped": self._tracker.skipped,
        }

    # -- the loop

    def run(self) -> None:
        """List and watch until stop(); never raises for the API's faults (they are logged and retried)."""
        ListWatch("pod watch", self._position, self._list, self._follow, self._stopping.is_set, self._back_off,
                  log, _HINTS).run()

    def _list(self) -> None:
        s = self.settings
        response = self._core.list_pod_for_all_namespaces(
            field_selector=self._selector, _preload_content=False, _request_timeout=s.request_timeout_seconds
        )
        try:
            listing = json.loads(response.data)
        finally:
            response.release_conn()
        if not isinstance(listing, dict) or not isinstance(listing.get("items"), list):
            raise ValueError("the pod list is not a PodList")
        seen = self._clock()
        self._tracker.relisted(listing["items"], seen)
        self._position.listed(listing)
        if self.lists:
            self.relists += 1
        self.lists += 1
        self._prune(seen, force=True)
        if not self._synced.is_set():
            log.info("pod watch: %d pods on node %s listed", len(self._tracker), self.node)
            self._synced.set()

    def _follow(self) -> bool:
        """One watch request, applied event by event; True when the server ended it in good order (after
        something arrived, or after a second at least)."""
        s = self.settings
        response = self._core.list_pod_for_all_namespaces(
            field_selector=self._selector, watch=True, resource_version=self._position.resource_version,
            allow_watch_bookmarks=True, timeout_seconds=s.watch_timeout_seconds, _preload_content=False,
            _request_timeout=(s.request_timeout_seconds, s.watch_timeout_seconds + s.request_timeout_seconds),
        )  # fmt: skip
        with self._response_lock:
            if self._stopping.is_set():
                response.close()
                return False
            self._response = response
        self.watches += 1
        started, arrived = time.monotonic(), False
        try:
            for line in iter_resp_lines(response):
                event = decode_watch_line(line)
                if event is None:
                    continue
                arrived = True
                seen = self._clock()
                if event.type in ("ADDED", "MODIFIED"):
                    self._tracker.applied(event.object, seen)
                    self.events += 1
                elif event.type == "DELETED":
                    self._tracker.deleted(event.object, seen)
                    self.events += 1
                # Only after the event is applied: a resume must not skip an event a failure interrupted.
                self._position.handled(event)
                self._prune(seen)
        finally:
            with self._response_lock:
                self._response = None
            response.close()
            response.release_conn()
        return not self._stopping.is_set() and (arrived or time.monotonic() - started >= 1.0)

    def _prune(self, now: float, force: bool = False) -> None:
        if force or now - self._last_prune >= self.settings.prune_interval_seconds:
            self._last_prune = now
            self._tracker.prune(now)

    def _back_off(self, failures: int, why: str) -> None:
        self.errors += 1
        self.last_error = why
        if self._stopping.is_set():
            return
        delay = self.settings.backoff.delay(failures, self._rng)
        log.warning("pod watch: %s; retrying in %.1fs (attempt %d)", why, delay, failures + 1)
        self._stopping.wait(delay)


def pod_directory_from_api(
    kubeconfig: Path | None, node: str, settings: PodWatchSettings | None = None
) -> tuple[PodDirectory, PodWatcher]:
    """An empty directory and a watcher (not started) that fills it with `node`'s pods, using `kubeconfig` or,
    when it is None, the in-cluster ServiceAccount. Raises BadInput with one line when neither can be used."""
    if not node:
        raise BadInput("watching pods needs this node's name: pass --node NAME (in a DaemonSet, NODE_NAME from "
                       "the downward API)")  # fmt: skip
    from kubernetes import config  # slow to import, and only this mode needs it

    try:
        if kubeconfig is not None:
            if not Path(kubeconfig).is_file():
                raise BadInput(f"--kubeconfig {kubeconfig}: no such file")
            api_client = config.new_client_from_config(config_file=str(kubeconfig))
        else:
            # Our own configuration, not the client's process-wide default; it renews the projected token.
            configuration = client.Configuration()
            config.load_incluster_config(client_configuration=configuration)
            api_client = client.ApiClient(configuration)
    except config.ConfigException as error:
        where = f"--kubeconfig {kubeconfig}" if kubeconfig is not None else "the in-cluster configuration"
        raise BadInput(f"cannot use {where}: {error} (outside a cluster, pass --kubeconfig or --pods)") from None
    directory = PodDirectory()
    return directory, PodWatcher(api_client, node, directory, settings)
