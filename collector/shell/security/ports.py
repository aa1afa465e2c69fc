"""The collector's gRPC ports as the security settings want them: TLS (its files re-read when they are
rotated), a second port requiring client certificates for agents, or plaintext with --insecure.
"""

from __future__ import annotations

import logging
from pathlib import Path

import grpc

from collector.shell.security.settings import ServerSecurity, file_signature, reason

__all__ = ["add_secure_ports"]

# One logger for the collector's security, whichever of its modules writes the line.
log = logging.getLogger("collector.shell.security")


class _CertificateFiles:
    """The PEM files of one port's credentials, re-read when any of them changes (cert-manager rotates them)."""

    def __init__(self, cert: Path, key: Path, client_ca: Path | None) -> None:
        self._paths = (cert, key, client_ca)
        self._seen = self._signature()

    def _signature(self) -> tuple:
        return tuple(file_signature(path) for path in self._paths if path is not None)

    def configuration(self) -> grpc.ServerCertificateConfiguration:
        cert, key, client_ca = self._paths
        return grpc.ssl_server_certificate_configuration(
            [(key.read_bytes(), cert.read_bytes())],
            root_certificates=client_ca.read_bytes() if client_ca is not None else None)

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """gRPC asks before each handshake: None keeps the current certificates."""
        try:
            signature = self._signature()
            if signature == self._seen:
                return None
            configuration = self.configuration()
        except OSError as error:  # a Secret being swapped: keep serving the certificates already loaded
            log.warning("cannot re-read the TLS files (%s); keeping the current ones", reason(error))
            return None
        self._seen = signature
        log.info("TLS files changed: new connections get the new certificates")
        return configuration


def _server_credentials(security: ServerSecurity, *, client_ca: Path | None) -> grpc.ServerCredentials:
    files = _CertificateFiles(security.tls_cert, security.tls_key, client_ca)
    return grpc.dynamic_ssl_server_credentials(files.configuration(), files.fetch,
                                               require_client_authentication=client_ca is not None)


def add_secure_ports(server: grpc.aio.Server, security: ServerSecurity, listen: str) -> tuple[int, int | None]:
    """Bind `listen` (TLS, or plaintext with --insecure) and the mTLS port if any: (port, mTLS port or None).

    Raises RuntimeError as `add_*_port` does when an address cannot be bound.
    """
    if security.insecure:
        return server.add_insecure_port(listen), None
    port = server.add_secure_port(listen, _server_credentials(security, client_ca=None))
    mtls_port = None
    if security.mtls_listen is not None:
        mtls_port = server.add_secure_port(security.mtls_listen,
                                           _server_credentials(security, client_ca=security.client_ca))
    return port, mtls_port
