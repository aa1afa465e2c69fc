"""The collector's forwarding flags (docs/forwarding.md): `--forward TARGET` (repeatable), the file rotation
and the TLS material of syslog+tls targets.

    add_forward_arguments(parser)
    settings = forward_settings_from_args(args)          # ForwardUsageError for flags that cannot be used
    context = settings.ssl_context()                      # for syslog+tls targets
"""

from __future__ import annotations

import argparse
import ssl
from dataclasses import dataclass
from pathlib import Path

from collector.core.forwardtarget import SYSLOG_TLS, TARGET_FORMS, ForwardTarget, parse_target
from dnswatch.errors import DnswatchError

__all__ = ["ForwardSettings", "ForwardUsageError", "add_forward_arguments", "forward_settings_from_args"]

DEFAULT_MAX_BYTES = 100 << 20
DEFAULT_KEEP = 5


class ForwardUsageError(DnswatchError):
    """Forwarding flags that cannot be used; the message names the flag and what to do."""


@dataclass(frozen=True)
class ForwardSettings:
    """Where every event is forwarded, and how."""

    targets: tuple[ForwardTarget, ...] = ()
    """Every --forward, in the order given; none: no forwarding."""
    max_bytes: int = DEFAULT_MAX_BYTES
    """A file target is rotated before it would grow past this many bytes."""
    keep: int = DEFAULT_KEEP
    """Rotated files kept per file target: PATH.1 (the newest) ... PATH.keep."""
    ca: Path | None = None
    """The CA certificates syslog+tls receivers are checked against; None: the system's."""
    cert: Path | None = None
    """The collector's client certificate for syslog+tls receivers that ask for one."""
    key: Path | None = None
    """Its private key."""

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS client context of syslog+tls targets: the receiver's certificate checked against --forward-ca
        (or the system's CAs) and its host name, the client certificate presented if given."""
        context = ssl.create_default_context(cafile=str(self.ca) if self.ca else None)
        if self.cert is not None:
            context.load_cert_chain(str(self.cert), str(self.key) if self.key else None)
        return context


def add_forward_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("forwarding to a SIEM (docs/forwarding.md)")
    group.add_argument("--forward", action="append", default=[], metavar="TARGET",
                       help=f"forward every event to TARGET: {TARGET_FORMS}; repeat for several targets")
    group.add_argument("--forward-max-bytes", type=int, default=DEFAULT_MAX_BYTES, metavar="BYTES",
                       help="rotate a file target before it grows past this size (default: 100 MiB)")
    group.add_argument("--forward-keep", type=int, default=DEFAULT_KEEP, metavar="N",
                       help="rotated files kept per file target, PATH.1 newest (default: 5)")
    group.add_argument("--forward-ca", type=Path, metavar="FILE",
                       help="CA certificates (PEM) to check syslog+tls receivers against (default: the system's)")
    group.add_argument("--forward-cert", type=Path, metavar="FILE",
                       help="client certificate (PEM) for syslog+tls receivers that ask for one")
    group.add_argument("--forward-key", type=Path, metavar="FILE", help="the client certificate's private key")


def forward_settings_from_args(args: argparse.Namespace) -> ForwardSettings:
    """The forwarding the flags describe; ForwardUsageError when they cannot be used."""
    targets: list[ForwardTarget] = []
    for text in args.forward:
        try:
            target = parse_target(text)
        except ValueError as error:
            raise ForwardUsageError(f"--forward {error}") from None
        if any(target.name == other.name for other in targets):
            raise ForwardUsageError(f"--forward {text!r} is given twice")
        targets.append(target)
    if args.forward_max_bytes < 1:
        raise ForwardUsageError(f"--forward-max-bytes {args.forward_max_bytes}: expected a size in bytes, at least 1")
    if args.forward_keep < 1:
        raise ForwardUsageError(f"--forward-keep {args.forward_keep}: expected at least 1 rotated file")
    for flag, path in (("--forward-ca", args.forward_ca), ("--forward-cert", args.forward_cert),
                       ("--forward-key", args.forward_key)):
        if path is not None and not path.is_file():
            raise ForwardUsageError(f"{flag} {path}: no such file")
    if args.forward_key is not None and args.forward_cert is None:
        raise ForwardUsageError("--forward-key needs --forward-cert (the certificate it belongs to)")
    settings = ForwardSettings(targets=tuple(targets), max_bytes=args.forward_max_bytes, keep=args.forward_keep,
                               ca=args.forward_ca, cert=args.forward_cert, key=args.forward_key)
    if any(target.kind == SYSLOG_TLS for target in targets):
        try:
            settings.ssl_context()
        except (ssl.SSLError, OSError) as error:
            raise ForwardUsageError(f"--forward-ca / --forward-cert / --forward-key: not usable ({error})") from None
    return settings
