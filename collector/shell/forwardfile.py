"""The file forwarding target: a JSON-lines file rotated by size, for a log shipper's tail input (Fluent Bit,
Vector, Filebeat) to follow (docs/forwarding.md).

    sink = FileSink(Path("/var/log/dnswatch/events.jsonl"), max_bytes=100 << 20, keep=5)
    await sink.send([line, line, ...])      # each line whole, in order (no newline in them)
    await sink.settle()                     # fsync: what was sent survives a power loss
    await sink.close()

- Lines are appended with one write() of whole lines per file; a write that fails part-way is cut back, so
  the file only ever ends with a whole line, and a line torn by a crash in the middle of a write (kill -9) is
  cut off when the file is opened again (its event was not counted as sent, and is written again).
- Rotation by rename, as logrotate does and as tail inputs expect: before a line would take the file past
  `max_bytes`, PATH.keep is removed, PATH.N renamed PATH.N+1, PATH renamed PATH.1 (newest first) and a new
  PATH begun. A line longer than `max_bytes` goes alone into a file of its own.
- fsync: `settle` flushes the file to the disk before the forwarder records its cursor (at most once a
  second), and a rotation flushes the file it closes and the folder; between two, a power loss may lose the
  lines written since the last, which the cursor does not count yet and so sends again.

The blocking calls run on a thread of their own, off the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
from pathlib import Path

__all__ = ["FileSink"]


class FileSink:
    """A JSON-lines file with size-based rotation; one per `file:` target."""

    resend_seconds = 0.0
    """What was written is in the file: nothing sent needs sending again after a failure."""

    def __init__(self, path: Path, *, max_bytes: int, keep: int) -> None:
        if max_bytes < 1 or keep < 1:
            raise ValueError("max_bytes and keep must be at least 1")
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self._fd: int | None = None
        self._size = 0
        self._dirty = False
        self._thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="dnswatch-forward-file")

    async def send(self, lines: list[bytes]) -> None:
        """Append the lines, each followed by a newline, rotating as needed; OSError if the file cannot take
        them (then none of the lines it could not take is in the file)."""
        await asyncio.get_running_loop().run_in_executor(self._thread, self._write, lines)

    async def settle(self) -> None:
        """Flush what was written to the disk."""
        await asyncio.get_running_loop().run_in_executor(self._thread, self._fsync)

    async def close(self) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        finally:
            self._thread.shutdown(wait=True)

    # -- on the sink's thread ------------------------------------------------------------------------------

    def _write(self, lines: list[bytes]) -> None:
        if self._fd is None:
            self._open()
        chunk: list[bytes] = []
        size = 0
        for line in lines:
            length = len(line) + 1
            if self._size + size + length > self.max_bytes and (self._size + size) > 0:
                self._append(chunk)
                chunk, size = [], 0
                if self._size > 0:
                    self._rotate()
            chunk.append(line)
            size += length
        self._append(chunk)

    def _append(self, chunk: list[bytes]) -> None:
        if not chunk:
            return
        data = b"\n".join(chunk) + b"\n"
        assert self._fd is not None
        written = 0
        try:
            with memoryview(data) as view:
                while written < len(data):
                    written += os.write(self._fd, view[written:])
        except BaseException:
            if written:  # never leave half a line: cut back to where this chunk began
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._size)
            raise
        self._size += len(data)
        self._dirty = True

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            size = os.fstat(fd).st_size
            if size:
                # A crash in the middle of a write may have left a torn last line: cut it off (its event is sent
                # again, the cursor not counting it).
                whole = _whole_lines_end(self.path, size)
                if whole != size:
                    os.ftruncate(fd, whole)
                    size = whole
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._size = fd, size

    def _rotate(self) -> None:
        self._fsync()
        self._close()
        oldest = self._rotated(self.keep)
        with contextlib.suppress(FileNotFoundError):
            oldest.unlink()
        for number in range(self.keep - 1, 0, -1):
            with contextlib.suppress(FileNotFoundError):
                os.rename(self._rotated(number), self._rotated(number + 1))
        os.rename(self.path, self._rotated(1))
        self._fsync_folder()
        self._open()

    def _rotated(self, number: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{number}")

    def _fsync(self) -> None:
        if self._fd is not None and self._dirty:
            os.fsync(self._fd)
            self._dirty = False

    def _fsync_folder(self) -> None:
        folder = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

    def _close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                self._fsync()
            os.close(self._fd)
            self._fd = None


def _whole_lines_end(path: Path, size: int) -> int:
    """The offset just after the file's last newline (0 if it has none)."""
    with open(path, "rb") as file:
        position = size
        while position > 0:
            start = max(0, position - 65536)
            file.seek(start)
            block = file.read(position - start)
            newline = block.rfind(b"\n")
            if newline >= 0:
                return start + newline + 1
            position = start
    return 0
