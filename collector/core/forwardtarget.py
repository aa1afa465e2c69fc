"""A forwarding target as `--forward TARGET` names it (docs/forwarding.md): a JSON-lines file or a syslog
receiver over TCP or TLS.

    parse_target("file:/var/log/dnswatch/events.jsonl")     # ForwardTarget(kind="file", path=...)
    parse_target("syslog+tls://siem.example:6514")          # ForwardTarget(kind="syslog+tls", host=..., port=6514)

The text as given is the target's name: its cursor's key in the store and its metrics label, so the same
target under another spelling starts from the beginning again.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FILE", "SYSLOG_TCP", "SYSLOG_TLS", "TARGET_FORMS", "ForwardTarget", "parse_target"]

FILE = "file"
SYSLOG_TCP = "syslog+tcp"
SYSLOG_TLS = "syslog+tls"

TARGET_FORMS = "file:PATH, syslog+tcp://HOST:PORT or syslog+tls://HOST:PORT"
"""The forms we accept, for messages."""


@dataclass(frozen=True)
class ForwardTarget:
    """One place every event is forwarded to."""

    name: str
    """The --forward text as given: the cursor's key and the metrics label."""
    kind: str
    """FILE, SYSLOG_TCP or SYSLOG_TLS."""
    path: str = ""
    """The file's path (FILE)."""
    host: str = ""
    """The receiver's host name or address, without brackets (syslog)."""
    port: int = 0
    """The receiver's TCP port (syslog)."""

    @property
    def is_syslog(self) -> bool:
        return self.kind in (SYSLOG_TCP, SYSLOG_TLS)


def parse_target(text: str) -> ForwardTarget:
    """The target `text` names; ValueError saying what is wrong and which forms there are."""
    if text.startswith("file:"):
        path = text[len("file:"):]
        if path.startswith("//"):  # file:///var/log/x: the URL form, accepted too
            path = path[2:]
        if not path or path.endswith("/"):
            raise ValueError(f"{text!r}: file: needs a file's path, e.g. file:/var/log/dnswatch/events.jsonl")
        return ForwardTarget(text, FILE, path=path)
    scheme, separator, rest = text.partition("://")
    if not separator or scheme not in (SYSLOG_TCP, SYSLOG_TLS):
        raise ValueError(f"{text!r}: expected {TARGET_FORMS}")
    host, _, port = rest.rstrip("/").rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or "/" in host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise ValueError(f"{text!r}: expected {scheme}://HOST:PORT, e.g. {scheme}://siem.example:"
                         f"{6514 if scheme == SYSLOG_TLS else 601}")
    return ForwardTarget(text, scheme, host=host, port=int(port))
