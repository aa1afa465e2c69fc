"""The collector's address as a client flag takes it (`--collector HOST:PORT`), checked before any connection (pure).

    check_collector_address("collector.dnswatch:7443")      # returned as it is
    check_collector_address("https://collector:7443")       # BadInput: a URL; give collector:7443

gRPC reads a malformed address as a host name it cannot resolve ("Misformatted domain name"), which says
nothing of the fix; the mistakes people make are named here with the form to use instead: a URL, an IPv6
address without brackets, a missing or impossible port. gRPC's own target forms (`dns:///host:port`,
`unix:/path`, `ipv4:`, `ipv6:`) are left to gRPC.
"""

from __future__ import annotations

import ipaddress
import re

from dnswatch.errors import BadInput

__all__ = ["EXAMPLE_PORT", "check_collector_address", "split_host_port"]

EXAMPLE_PORT = 7443
"""The port the deployment's collector Service listens on, for examples in messages."""

_URL = re.compile(r"(?P<scheme>https?|grpcs?|tcp)://(?P<rest>[^/?#]*)(?P<path>.*)", re.IGNORECASE)
_GRPC_TARGET = re.compile(r"(dns|unix|unix-abstract|ipv4|ipv6|vsock):", re.IGNORECASE)


def check_collector_address(text: str, flag: str = "--collector") -> str:
    """`text` when it is HOST:PORT (or a gRPC target URI); BadInput with one line naming the mistake and the
    form to use otherwise."""
    address = text.strip()
    if not address:
        raise BadInput(f"{flag} is empty: give the collector's address, HOST:PORT (e.g. "
                       f"collector.dnswatch:{EXAMPLE_PORT})")
    url = _URL.fullmatch(address)
    if url:
        rest = url["rest"].rpartition("@")[2]
        fixed = rest if _has_port(rest) else f"{rest or 'HOST'}:PORT"
        raise BadInput(f"{flag} {text}: a URL, but {flag} takes HOST:PORT: give {flag} {fixed} (TLS is the "
                       "default; plaintext is --insecure, not the scheme)")
    if _GRPC_TARGET.match(address):
        return address
    host, port = split_host_port(address)
    if host is None:
        if _looks_like_ipv6(address):
            ip, _, maybe_port = address.rpartition(":")
            if maybe_port.isdigit() and _is_ipv6(ip):
                raise BadInput(f"{flag} {text}: an IPv6 address goes in brackets: {flag} [{ip}]:{maybe_port}")
            raise BadInput(f"{flag} {text}: an IPv6 address goes in brackets, followed by the port: "
                           f"{flag} [{address.strip('[]')}]:PORT")
        raise BadInput(f"{flag} {text}: no port: give HOST:PORT, e.g. {flag} {address}:{EXAMPLE_PORT}")
    if not host:
        raise BadInput(f"{flag} {text}: no host: give HOST:PORT, e.g. {flag} 127.0.0.1{address}")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise BadInput(f"{flag} {text}: the port must be a number from 1 to 65535 (HOST:PORT)")
    return address


def split_host_port(address: str) -> tuple[str | None, str]:
    """(host, port) of `HOST:PORT` or `[IPv6]:PORT`, brackets dropped; (None, "") when there is no port or an
    IPv6 address has no brackets."""
    if address.startswith("["):
        host, bracket, rest = address[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            return None, ""
        return host, rest[1:]
    if address.count(":") != 1:
        return None, ""
    host, _, port = address.partition(":")
    return host, port


def _has_port(host_port: str) -> bool:
    host, port = split_host_port(host_port)
    return host is not None and port.isdigit()


def _looks_like_ipv6(address: str) -> bool:
    return address.count(":") >= 2 and not address.startswith("[") or (
        address.startswith("[") and "]" not in address)


def _is_ipv6(text: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(text.strip("[]")), ipaddress.IPv6Address)
    except ValueError:
        return False
