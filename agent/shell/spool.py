"""The outbox's on-disk spool: unacknowledged events that survive an agent restart (docs/operations.md).

One directory, one append-only log file, `spool.log`:

    b"DNSWSPL1"                                   file magic and format version
    record*                                       each: length u32 | crc32 u32 | kind u8 | payload
        kind E: event    payload = id length u16 | id (UTF-8) | the event JSON (UTF-8)
        kind A: settled  payload = JSON list of ids acknowledged (or dropped): forget them

Why a log and not SQLite: the spool is written as a queue (append an emission, later forget it), which a log
does with one write and, where wanted, one fsync; SQLite would add a B-tree, a journal and page-level size
accounting to hold what is only a short FIFO. The log's properties are also the ones to test directly: a
crash (kill -9) can only tear the last record, every record carries a CRC, so recovery keeps the intact
prefix and drops the torn tail.

Replaying the log gives the live events: the latest E record of each id not settled by a later A record,
ordered by their latest emission (the outbox's order). Only offsets are kept in memory; compaction copies the
live records into a new file and renames it over the old one (fsync'd, then the directory fsync'd), so a
crash during compaction leaves either the old log or the new one.

Every append is one write system call straight to the kernel (os.write, no user-space buffer), so a killed
process loses nothing it returned from: the agent appends each event before printing or sending it. fsync
points: after an `append` unless told `sync=False` (the agent's capture path, which must not wait on the disk:
the function `detach_sync()` returns then does it on another thread, before the events are sent, since an
event is an alert and should survive a node losing power), and around compaction. `acknowledge` writes without
fsync: losing an ack to a power cut only means resending events the collector already stored, and its
de-duplication by id makes that harmless.

Byte bound: the file never exceeds `max_bytes`. The live events are held to half of it (oldest dropped first,
counted), so a compaction always frees at least half the file: compaction work stays proportional to what
was appended (each compaction is paid for by max_bytes/2 of appends) rather than running on every write.
"""

from __future__ import annotations

import fcntl
import json
import os
import struct
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnswatch.errors import DnswatchError

MAGIC = b"DNSWSPL1"
LOG_NAME = "spool.log"
LOCK_NAME = "spool.lock"
_HEADER = struct.Struct("<IIB")  # payload length, crc32 of kind byte + payload, kind
_ID_LEN = struct.Struct("<H")
_EVENT = 0x45  # "E"
_SETTLED = 0x41  # "A"
MIN_BYTES = 4096
"""The smallest `max_bytes` accepted: less could not hold a single ordinary event."""


class SpoolError(DnswatchError):
    """The spool directory cannot be used (not a spool, locked by another agent, unwritable)."""


@dataclass(frozen=True, slots=True)
class SpoolStats:
    """Counters for metrics and the start-up log line."""

    events: int
    """Live (unacknowledged) events held."""
    live_bytes: int
    """Bytes of their records, the part bounded by max_bytes / 2."""
    file_bytes: int
    """Size of the log file now."""
    dropped: int
    """Events dropped because the byte bound was hit (or one event alone exceeded it), since open."""
    torn_bytes: int
    """Bytes of a damaged tail found, and discarded, when the spool was opened (a crash mid-write)."""
    compactions: int
    """Times the log was rewritten, since open (including the one at open)."""


def _record(kind: int, payload: bytes) -> bytes:
    return _HEADER.pack(len(payload), zlib.crc32(bytes((kind,)) + payload), kind) + payload


def _event_record(event_id: str, json_bytes: bytes) -> bytes:
    id_bytes = event_id.encode("utf-8")
    return _record(_EVENT, _ID_LEN.pack(len(id_bytes)) + id_bytes + json_bytes)


def _settled_record(ids: Iterable[str]) -> bytes:
    return _record(_SETTLED, json.dumps(list(ids), separators=(",", ":")).encode("utf-8"))


class Spool:
    """An open spool directory; use `Spool.open`. Not thread-safe: one owner (the outbox's driver)."""

    def __init__(self, directory: Path, max_bytes: int, lock_fd: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._live_cap = max_bytes // 2
        self._path = directory / LOG_NAME
        self._lock_fd = lock_fd
        self._fd = -1
        # id -> (offset of its E record, record length), in order of latest emission.
        self._live: dict[str, tuple[int, int]] = {}
        self._live_bytes = 0
        self._file_bytes = 0
        self._dropped = 0
        self._torn_bytes = 0
        self._compactions = 0
        self._unsynced = False  # events written without an fsync since the last detach_sync or compaction

    @classmethod
    def open(cls, directory: str | os.PathLike[str], max_bytes: int) -> Spool:
        """Open (creating if needed) the spool in `directory`, recover its log and compact it.

        Raises SpoolError when the directory is unusable, holds something else, or another process has it.
        """
        if max_bytes < MIN_BYTES:
            raise SpoolError(f"spool size {max_bytes} bytes is too small: give at least {MIN_BYTES}")
        path = Path(directory)
        try:
            path.mkdir(parents=True, exist_ok=True)
            lock_fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise SpoolError(f"cannot use spool directory {path}: {e.strerror}") from e
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(lock_fd)
            raise SpoolError(f"spool directory {path} is in use by another agent process") from e
        spool = cls(path, max_bytes, lock_fd)
        try:
            spool._load()
            spool._bound_live(0)
            spool._compact()
        except OSError as e:
            spool.close()
            raise SpoolError(f"cannot rewrite spool {spool._path}: {e.strerror}") from e
        except BaseException:
            spool.close()
            raise
        return spool

    def recover(self) -> list[dict[str, Any]]:
        """The events held (docs/event.md dicts), least recently emitted first: what to queue again on start."""
        events = []
        with open(self._path, "rb") as log:
            for offset, length in self._live.values():
                log.seek(offset + _HEADER.size)
                payload = log.read(length - _HEADER.size)
                (id_len,) = _ID_LEN.unpack_from(payload)
                events.append(json.loads(payload[_ID_LEN.size + id_len:]))
        return events

    def append(self, events: Iterable[Mapping[str, Any]], *, sync: bool = True) -> tuple[str, ...]:
        """Hold these emissions (each replacing any held under its `id`); returns ids dropped for room.

        Written with one write system call before returning, so a killed process loses none of them; with
        `sync`, fsync'd too (durable across a power cut), else made so by a later `detach_sync()`. The ids
        returned (older events, or an event larger than the whole bound) are no longer held. Raises SpoolError
        when the disk refuses the write; the spool stays usable, without these events.
        """
        return self.append_json(((str(event["id"]), json.dumps(event, separators=(",", ":"))) for event in events),
                                sync=sync)

    def append_json(self, events: Iterable[tuple[str, str]], *, sync: bool = True) -> tuple[str, ...]:
        """`append` for emissions already encoded: (id, the event's JSON text) pairs."""
        new: dict[str, bytes] = {}
        for event_id, json_text in events:
            new.pop(event_id, None)
            new[event_id] = _event_record(event_id, json_text.encode("utf-8"))
        if not new:
            return ()
        too_big = [event_id for event_id, record in new.items() if len(record) > self._live_cap]
        for event_id in too_big:
            # Like the outbox: an older emission of it, if held, stays held.
            del new[event_id]
            self._dropped += 1
        for event_id in new:
            self._forget(event_id)
        dropped = self._bound_live(sum(len(record) for record in new.values()))
        self._write(_settled_record(dropped) if dropped else b"", new, sync=sync)
        return tuple(event_id for event_id in too_big if event_id not in self._live) + tuple(dropped)

    def detach_sync(self) -> Callable[[], None] | None:
        """What makes every event appended so far durable (an fsync), as a function to call later, outside the
        lock its owner serializes the spool with: an fsync can take milliseconds, which appends should not wait
        for. None when everything appended is durable already. The function syncs its own duplicate of the
        file descriptor, so a compaction in between (which replaces the file, fsync'd) does it no harm; it
        raises SpoolError when the disk refuses (and so does this, out of file descriptors).
        """
        if not self._unsynced or self._fd < 0:
            return None
        path = self._path
        try:
            fd = os.dup(self._fd)
        except OSError as e:
            raise SpoolError(f"cannot sync spool {path}: {e.strerror}") from e
        self._unsynced = False

        def sync() -> None:
            try:
                os.fsync(fd)
            except OSError as e:
                raise SpoolError(f"cannot sync spool {path}: {e.strerror}") from e
            finally:
                os.close(fd)

        return sync

    def acknowledge(self, ids: Iterable[str]) -> None:
        """Forget these events (the collector stored them); ids not held are ignored.

        Raises SpoolError when the disk refuses the write; they are forgotten in memory anyway, and at worst a
        restart resends them, which the collector's de-duplication makes harmless.
        """
        settled = [event_id for event_id in dict.fromkeys(ids) if event_id in self._live]
        for event_id in settled:
            self._forget(event_id)
        if settled:
            self._write(_settled_record(settled), {}, sync=False)

    def stats(self) -> SpoolStats:
        return SpoolStats(events=len(self._live), live_bytes=self._live_bytes, file_bytes=self._file_bytes,
                          dropped=self._dropped, torn_bytes=self._torn_bytes, compactions=self._compactions)

    def close(self) -> None:
        """Sync and release the spool (another process may open it afterwards)."""
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals -----------------------------------------------------------------------------------------

    def _forget(self, event_id: str) -> None:
        held = self._live.pop(event_id, None)
        if held is not None:
            self._live_bytes -= held[1]

    def _bound_live(self, incoming: int) -> list[str]:
        """Drop the oldest live events until `incoming` more bytes fit under the live cap."""
        dropped = []
        while self._live and self._live_bytes + incoming > self._live_cap:
            oldest = next(iter(self._live))
            self._forget(oldest)
            self._dropped += 1
            dropped.append(oldest)
        return dropped

    def _write(self, settled_record: bytes, new: dict[str, bytes], sync: bool) -> None:
        """Append a settled record (if any) then the new event records, compacting first if they would not fit.

        A compaction rewrites only the live events, which already excludes whatever `settled_record` says,
        so that record is then not needed. A failed write is cut off again, so that nothing appended later
        ends up behind a torn record (recovery stops at the first one).
        """
        data = b"".join(new.values())
        try:
            if self._file_bytes + len(settled_record) + len(data) > self.max_bytes:
                self._compact()
                settled_record = b""
            try:
                _write_all(self._fd, settled_record + data)
                if sync:
                    os.fsync(self._fd)
                    self._unsynced = False
                elif new:
                    self._unsynced = True
            except OSError:
                os.ftruncate(self._fd, self._file_bytes)
                raise
        except OSError as e:
            raise SpoolError(f"cannot write spool {self._path}: {e.strerror}") from e
        offset = self._file_bytes + len(settled_record)
        for event_id, record in new.items():
            self._live[event_id] = (offset, len(record))
            self._live_bytes += len(record)
            offset += len(record)
        self._file_bytes = offset

    def _load(self) -> None:
        """Replay the log into `_live`, stopping at the first torn or damaged record."""
        try:
            with open(self._path, "rb") as log:
                content = log.read()
        except FileNotFoundError:
            return
        except OSError as e:
            raise SpoolError(f"cannot read spool {self._path}: {e.strerror}") from e
        if not content:
            return
        if not content.startswith(MAGIC):
            if MAGIC.startswith(content):  # the very first write was torn
                self._torn_bytes = len(content)
                return
            raise SpoolError(f"{self._path} is not a dnswatch spool; move it away or give another directory")
        offset = len(MAGIC)
        end = len(content)
        while offset + _HEADER.size <= end:
            length, crc, kind = _HEADER.unpack_from(content, offset)
            start = offset + _HEADER.size
            payload = content[start:start + length]
            if len(payload) < length or zlib.crc32(bytes((kind,)) + payload) != crc:
                break
            try:
                self._replay(kind, payload, offset, _HEADER.size + length)
            except (ValueError, struct.error):
                # A record whose CRC holds but whose content does not parse was not written by this format:
                # treat it like a torn tail rather than guess.
                break
            offset = start + length
        self._torn_bytes = end - offset

    def _replay(self, kind: int, payload: bytes, offset: int, length: int) -> None:
        if kind == _EVENT:
            (id_len,) = _ID_LEN.unpack_from(payload)
            event_id = payload[_ID_LEN.size:_ID_LEN.size + id_len].decode("utf-8")
            self._forget(event_id)
            self._live[event_id] = (offset, length)
            self._live_bytes += length
        elif kind == _SETTLED:
            ids = json.loads(payload)
            if not isinstance(ids, list):
                raise ValueError("settled record is not a list")
            for event_id in ids:
                self._forget(str(event_id))
        else:
            raise ValueError(f"unknown record kind {kind}")

    def _compact(self) -> None:
        """Rewrite the log with only the live events, atomically (write, fsync, rename, fsync directory)."""
        tmp = self._path.with_suffix(".tmp")
        live: dict[str, tuple[int, int]] = {}
        chunks = [MAGIC]
        offset = len(MAGIC)
        if self._live:
            with open(self._path, "rb") as old:
                for event_id, (at, length) in self._live.items():
                    old.seek(at)
                    chunks.append(old.read(length))
                    live[event_id] = (offset, length)
                    offset += length
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _write_all(fd, b"".join(chunks))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self._path)
        _fsync_directory(self.directory)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND)
        self._unsynced = False
        self._live = live
        self._file_bytes = offset
        self._compactions += 1


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
