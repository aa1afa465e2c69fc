"""What to do when the collector cannot be reached: gRPC's failure read into a hint that names the flag to add
or drop, for `dnswatch` and the agent alike.

    hint = unreachable_hint(address, security, error.details())   # e.g. "it serves TLS: drop --insecure ..."

gRPC says why a connection failed in the words of its TLS library ("WRONG_VERSION_NUMBER", "Socket closed",
"CERTIFICATE_VERIFY_FAILED"), which tell an expert what happened and nobody what to type. The usual mistakes
have one reading each; the ambiguous one (a plaintext client's connection closed by the server) is settled by
a TLS handshake with the address, made only after the failure. The commands keep gRPC's own words for
`--log-level debug`.
"""

from __future__ import annotations

import socket
import ssl

from dnswatch.collectoraddress import split_host_port
from dnswatch.grpcchannel import ChannelSecurity

__all__ = ["speaks_tls", "unreachable_hint"]

_PROBE_SECONDS = 2.0


def unreachable_hint(address: str, security: ChannelSecurity | None, details: str) -> str | None:
    """One clause saying what is wrong and which flag fixes it, or None when the failure has no usual reading."""
    text = " ".join(str(details).split())
    insecure = security is not None and security.insecure
    if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text.lower():
        given = _tls_flags(security)
        drop = f"drop {', '.join(given)} and " if given else ""
        return f"it talks plaintext (it runs with --insecure): {drop}add --insecure"
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text.lower():
        if security is not None and security.ca_file is not None:
            return (f"its certificate is not signed by the CA in --ca {security.ca_file}: give --ca FILE with the "
                    "CA that signed it")
        return ("its certificate is not signed by a CA this machine trusts: give --ca FILE with the CA that "
                "signed it")
    if "Hostname Verification" in text or "No match found for server name" in text:
        if security is not None and security.server_name:
            return (f"its certificate does not carry the name --server-name {security.server_name}: give one it "
                    "carries")
        host = split_host_port(address)[0] or address
        return (f"its certificate does not carry the name {host}: connect by a name it carries, or give "
                "--server-name NAME")
    if "Connection refused" in text:
        return "nothing listens there: is the collector running, and is the port right?"
    if "lookup error" in text or "DNS resolution failed" in text or "Name or service not known" in text:
        host = split_host_port(address)[0] or address
        return f"the host {host} does not resolve"
    if insecure and ("Socket closed" in text or "Connection reset" in text or "failed to connect" in text):
        if speaks_tls(address):
            return "it serves TLS: drop --insecure and give --ca FILE (the CA of its certificate) if needed"
    return None


def speaks_tls(address: str, timeout: float = _PROBE_SECONDS) -> bool:
    """Whether a TLS handshake (its certificate not checked) succeeds with `address` (`HOST:PORT`)."""
    host, port = split_host_port(address)
    if not host or not port.isdigit():
        return False
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as raw:
            with context.wrap_socket(raw, server_hostname=host):
                return True
    except (OSError, ssl.SSLError, ValueError):
        return False


def _tls_flags(security: ChannelSecurity | None) -> list[str]:
    if security is None:
        return []
    return [flag for flag, value in (("--ca", security.ca_file), ("--cert", security.cert_file),
                                     ("--key", security.key_file), ("--token-file", security.token_file),
                                     ("--server-name", security.server_name)) if value]
