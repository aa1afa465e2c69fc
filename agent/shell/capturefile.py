"""A capture file's bytes, as `dnswatch-agent replay` is handed it: a path or `-` (standard input), plain or
compressed with gzip or zstd.

Compression is told by the first bytes, never by the name: `tcpdump -w - | zstd` and a `.pcap` that was gzipped
in place are both common. A compressed capture is unpacked into memory whole (the reader wants every byte at
hand, as it has them in a mapped file); a plain file is mapped, not read.
"""

from __future__ import annotations

import gzip
import io
import mmap
import sys
import zlib
from pathlib import Path

import zstandard

from dnswatch.errors import BadInput

__all__ = ["STDIN", "capture_label", "open_capture"]

STDIN = Path("-")
"""The path that stands for standard input."""

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def capture_label(path: Path) -> str:
    """How messages name a capture: its path, or `standard input`."""
    return "standard input" if path == STDIN else str(path)


def open_capture(path: Path) -> mmap.mmap | bytes:
    """The capture's bytes, unpacked when they are gzip or zstd; BadInput with one line when they cannot be read."""
    try:
        if path == STDIN:
            data: mmap.mmap | bytes = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as handle:
                try:
                    data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
                except ValueError:  # an empty file cannot be mapped
                    data = handle.read()
    except OSError as error:
        raise BadInput(f"cannot read capture {capture_label(path)}: {error.strerror or error}") from error
    return _unpacked(data, path)


def _unpacked(data: mmap.mmap | bytes, path: Path) -> mmap.mmap | bytes:
    head = bytes(data[:4])
    try:
        if head.startswith(_GZIP_MAGIC):
            return gzip.decompress(data)
        if head == _ZSTD_MAGIC:
            # Frames written by a streaming compressor carry no content size: read them as a stream.
            with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True) as reader:
                return reader.read()
    except (OSError, EOFError, zlib.error, zstandard.ZstdError) as error:
        kind = "gzip" if head.startswith(_GZIP_MAGIC) else "zstd"
        raise BadInput(f"{capture_label(path)}: a damaged {kind} capture ({error})") from None
    return data
