"""Keeping webhook secrets out of the HTTP client's own log lines.

httpx logs every request at INFO with its URL, and a Slack incoming-webhook URL is its own credential; httpcore
logs at DEBUG what it connects to. Their lines are written by their loggers, not ours, so delivery installs this
filter on them: every line they log passes through `redact` with the secrets of the webhooks being delivered.

    redaction = SecretLogFilter()
    redaction.install()                   # on the httpx and httpcore loggers
    redaction.hold("soc-slack", config.secrets)
    ...
    redaction.uninstall()
"""

from __future__ import annotations

import logging

from dnswatch.alerting.webhooks import redact

__all__ = ["HTTP_LOGGERS", "SecretLogFilter"]

HTTP_LOGGERS = ("httpx", "httpcore", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy",
                "httpcore.socks")
"""Every logger of the HTTP client that may write a URL or a host: a filter applies only to the records its own
logger makes, so each is named."""


class SecretLogFilter(logging.Filter):
    """Redacts the secrets held (per webhook) from every record of the loggers it is installed on."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: dict[str, tuple[str, ...]] = {}
        self._all: tuple[str, ...] = ()

    def hold(self, webhook: str, secrets: tuple[str, ...]) -> None:
        if self._secrets.get(webhook) != secrets:
            self._secrets[webhook] = secrets
            self._all = tuple(sorted({s for held in self._secrets.values() for s in held}, key=len, reverse=True))

    def install(self) -> None:
        for name in HTTP_LOGGERS:
            logging.getLogger(name).addFilter(self)

    def uninstall(self) -> None:
        for name in HTTP_LOGGERS:
            logging.getLogger(name).removeFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        if self._all:
            message = record.getMessage()
            cleaned = redact(message, self._all)
            if cleaned != message:
                record.msg, record.args = cleaned, ()
        return True
