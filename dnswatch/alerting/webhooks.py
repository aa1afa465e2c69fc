"""SecurityEventWebhook resources (pure): their validation, the events each one wants, and its configuration
once the values it takes from Secrets and ConfigMaps are known.

    apiVersion: dnswatch.dev/v1            # or projectcalico.org/v3, accepted as it is
    kind: SecurityEventWebhook
    metadata: {name: soc-slack}
    spec:
      consumer: Slack                      # Slack | Jira | Generic
      state: Enabled                       # Enabled | Disabled | Test | Debug
      description: every suspicious lookup in shop
      query: source_namespace = shop       # the selector language (dnswatch/selector.py); empty: every event
      config:
        - name: url
          valueFrom:
            secretKeyRef: {name: soc-slack, key: url}

The configuration each consumer takes (`config` names, case-sensitive, as Calico's):

| consumer | required                                          | optional          |
|----------|---------------------------------------------------|-------------------|
| Slack    | url                                               | caCert            |
| Jira     | url, project, issueType, username, apiToken       | caCert            |
| Generic  | url                                               | token, caCert     |

A value is written in place (`value`) or read from a key of a Secret (`valueFrom.secretKeyRef`) or a ConfigMap
(`valueFrom.configMapKeyRef`) in the collector's namespace. What comes from a Secret, and `url`, `apiToken` and
`token` wherever they come from (a Slack webhook URL is its own credential), are secrets: `redact` takes them
out of any text before it is logged or shown.

A spec that cannot be used is never an error raised at the caller: the webhook is kept with its `conditions`
and delivers nothing, so that `dnswatch webhooks get` and the resource's status say why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from dnswatch.alerting.conditions import API_VERSIONS, ResourceCondition, read_envelope
from dnswatch.selector import Selector, SelectorError, parse_selector

__all__ = ["API_VERSIONS", "CONSUMERS", "KIND", "STATES", "ConfigItem", "ResolvedConfig", "SecurityEventWebhook",
           "ValueRef", "WebhookCondition", "read_security_event_webhook", "redact", "resolve_config"]

KIND = "SecurityEventWebhook"
CONSUMERS = ("Slack", "Jira", "Generic")
STATES = ("Enabled", "Disabled", "Test", "Debug")
"""Enabled delivers; Disabled delivers nothing; Test sends one sample event and then nothing; Debug delivers
as Enabled and also logs each payload, with its secrets redacted."""

REQUIRED_CONFIG: Mapping[str, tuple[str, ...]] = {
    "Slack": ("url",),
    "Jira": ("url", "project", "issueType", "username", "apiToken"),
    "Generic": ("url",),
}
OPTIONAL_CONFIG: Mapping[str, tuple[str, ...]] = {
    "Slack": ("caCert",),
    "Jira": ("caCert",),
    "Generic": ("token", "caCert"),
}
SECRET_NAMES = frozenset({"url", "apiToken", "token"})
"""Config names whose values are secrets wherever they come from."""
REDACTED = "[redacted]"
MAX_DESCRIPTION = 256
_SPEC_FIELDS = {"consumer", "state", "description", "query", "config"}
_REF_KINDS = {"secretKeyRef": "Secret", "configMapKeyRef": "ConfigMap"}


WebhookCondition = ResourceCondition
"""Why a webhook delivers nothing: `InvalidSpec`, `InvalidQuery` or `InvalidConfig`, naming the field."""


@dataclass(frozen=True)
class ValueRef:
    """A key of a Secret or a ConfigMap in the collector's namespace."""

    kind: str
    """`Secret` or `ConfigMap`."""
    name: str
    key: str

    def describe(self) -> str:
        return f"{self.kind} {self.name} key {self.key}"


@dataclass(frozen=True)
class ConfigItem:
    """One `config` entry: a value written in place, or where to read it."""

    name: str
    value: str | None = None
    ref: ValueRef | None = None

    @property
    def secret(self) -> bool:
        return self.name in SECRET_NAMES or (self.ref is not None and self.ref.kind == "Secret")

    def to_dict(self) -> dict[str, Any]:
        """As the spec writes it; a value in place that is a secret is shown redacted."""
        if self.ref is not None:
            key = "secretKeyRef" if self.ref.kind == "Secret" else "configMapKeyRef"
            return {"name": self.name, "valueFrom": {key: {"name": self.ref.name, "key": self.ref.key}}}
        return {"name": self.name, "value": REDACTED if self.secret else self.value}


@dataclass(frozen=True)
class SecurityEventWebhook:
    """One SecurityEventWebhook as read: its spec and, when it cannot be used, why (`conditions`)."""

    name: str
    consumer: str = "Generic"
    state: str = "Disabled"
    description: str = ""
    query_text: str = ""
    """The query as written; empty: every event."""
    query: Selector | None = field(default=None, compare=False)
    """The parsed query; None when it is empty or does not parse (see `conditions`)."""
    config: tuple[ConfigItem, ...] = ()
    conditions: tuple[WebhookCondition, ...] = ()
    """Why it delivers nothing; empty when the spec is valid (its config may still fail to resolve)."""
    api_version: str = API_VERSIONS[0]

    @property
    def valid(self) -> bool:
        return not self.conditions

    @property
    def delivers(self) -> bool:
        """Whether it takes events from the store (Enabled or Debug, and valid)."""
        return self.valid and self.state in ("Enabled", "Debug")

    def wants(self, event: Mapping[str, Any]) -> bool:
        """Whether `event` (docs/event.md) is one this webhook delivers: its query matches (an empty query
        matches every event). Excepted and dismissed events are left out by the caller
        (dnswatch.alerting.visibility)."""
        if not self.valid:
            return False
        return self.query is None or self.query.matches(event)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """The spec as `dnswatch webhooks get -o json` shows it, secrets redacted; the caller adds the status."""
        return {"name": self.name,
                "spec": {"consumer": self.consumer, "state": self.state, "description": self.description,
                         "query": self.query_text, "config": [item.to_dict() for item in self.config]}}


def read_security_event_webhook(manifest: Mapping[str, Any], name: str | None = None) -> SecurityEventWebhook:
    """The SecurityEventWebhook a manifest says. Never raises for a bad spec: the problems are its `conditions`.

    `name` is the resource's name when the caller knows it already (else metadata.name)."""
    problems: list[WebhookCondition] = []

    def invalid(message: str, kind: str = "InvalidSpec") -> None:
        problems.append(WebhookCondition(kind, message))

    envelope = read_envelope(manifest, name, _SPEC_FIELDS)
    name, api_version, spec = envelope.name, envelope.api_version, envelope.spec
    for problem in envelope.problems:
        invalid(problem)
    consumer = _choice(spec, "consumer", CONSUMERS, None, invalid)
    state = _choice(spec, "state", STATES, "Enabled", invalid)
    description = spec.get("description", "")
    if not isinstance(description, str):
        invalid("spec.description: must be text")
        description = ""
    elif len(description) > MAX_DESCRIPTION:
        invalid(f"spec.description: longer than {MAX_DESCRIPTION} characters")
    query_text = spec.get("query", "")
    query = None
    if not isinstance(query_text, str):
        invalid("spec.query: must be text, a selector such as source_namespace = shop")
        query_text = ""
    elif query_text.strip():
        try:
            query = parse_selector(query_text)
        except SelectorError as error:
            invalid(f"query: {error}", "InvalidQuery")
    config = _config(spec.get("config", []), consumer, invalid)
    return SecurityEventWebhook(name=name, consumer=consumer or "Generic", state=state or "Enabled",
                                description=description, query_text=query_text, query=query, config=config,
                                conditions=tuple(problems), api_version=api_version)


def _choice(spec: Mapping[str, Any], key: str, allowed: tuple[str, ...], default: str | None,
            invalid: Callable[[str], None]) -> str | None:
    value = spec.get(key, default)
    if value not in allowed:
        shown = "required" if value is None else f"{value!r} is not"
        invalid(f"spec.{key}: {shown} one of {', '.join(allowed)}")
        return None
    return value


def _config(items: Any, consumer: str | None, invalid: Callable[[str], None]) -> tuple[ConfigItem, ...]:
    if not isinstance(items, list):
        invalid("spec.config: must be a list of {name, value} or {name, valueFrom}")
        return ()
    read: list[ConfigItem] = []
    for index, item in enumerate(items):
        where = f"spec.config[{index}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) or not item["name"]:
            invalid(f"{where}.name: required, text")
            continue
        name = item["name"]
        if any(earlier.name == name for earlier in read):
            invalid(f"{where}.name: {name!r} is given twice")
            continue
        has_value, has_ref = "value" in item, "valueFrom" in item
        if has_value == has_ref:
            invalid(f"{where}: give value or valueFrom, exactly one")
            continue
        if has_value:
            if not isinstance(item["value"], str):
                invalid(f"{where}.value: must be text")
                continue
            read.append(ConfigItem(name, value=item["value"]))
            continue
        ref = _value_ref(item["valueFrom"], f"{where}.valueFrom", invalid)
        if ref is not None:
            read.append(ConfigItem(name, ref=ref))
    if consumer is not None:
        known = REQUIRED_CONFIG[consumer] + OPTIONAL_CONFIG[consumer]
        names = {item.name for item in read}
        for missing in (name for name in REQUIRED_CONFIG[consumer] if name not in names):
            invalid(f"spec.config: {consumer} needs {missing!r} (needs {', '.join(REQUIRED_CONFIG[consumer])})")
        for unknown in sorted(names - set(known)):
            invalid(f"spec.config: {unknown!r} is not a {consumer} setting (known: {', '.join(known)})")
        for item in read:
            if item.name == "url" and item.value is not None:
                problem = _url_problem(item.value)
                if problem:
                    invalid(f"spec.config url: {problem}")
    return tuple(read)


def _value_ref(value_from: Any, where: str, invalid: Callable[[str], None]) -> ValueRef | None:
    if not isinstance(value_from, Mapping) or len(value_from) != 1 or next(iter(value_from)) not in _REF_KINDS:
        invalid(f"{where}: must hold exactly one of secretKeyRef, configMapKeyRef")
        return None
    (which, ref), = value_from.items()
    if not isinstance(ref, Mapping) or not all(isinstance(ref.get(key), str) and ref.get(key)
                                               for key in ("name", "key")):
        invalid(f"{where}.{which}: needs name and key")
        return None
    return ValueRef(_REF_KINDS[which], ref["name"], ref["key"])


def _url_problem(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an absolute http:// or https:// URL"
    return ""


@dataclass(frozen=True)
class ResolvedConfig:
    """A webhook's configuration with every value read: `values` by name, and the secret ones (`secrets`) to
    take out of anything logged; `conditions` say what could not be read (the webhook then delivers nothing)."""

    values: Mapping[str, str]
    secrets: tuple[str, ...] = ()
    conditions: tuple[WebhookCondition, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.conditions


def resolve_config(webhook: SecurityEventWebhook,
                   lookup: Callable[[ValueRef], str | None]) -> ResolvedConfig:
    """Read each config value: in place, or `lookup(ref)` (None: the object or the key does not exist)."""
    values: dict[str, str] = {}
    secrets: list[str] = []
    problems: list[WebhookCondition] = []
    for item in webhook.config:
        value = item.value if item.ref is None else lookup(item.ref)
        if value is None:
            where = item.ref.describe() if item.ref else "its value"
            problems.append(WebhookCondition("InvalidConfig", f"config {item.name}: {where} does not exist"))
            continue
        if item.name == "url" and item.ref is not None and _url_problem(value):
            problems.append(WebhookCondition("InvalidConfig", f"config url: the value of {item.ref.describe()} "
                                             f"{_url_problem(value)}"))
            continue
        values[item.name] = value
        if item.secret and value:
            secrets.append(value)
    return ResolvedConfig(values=values, secrets=tuple(sorted(set(secrets), key=len, reverse=True)),
                          conditions=tuple(problems))


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret in it replaced by [redacted]: longest first, so that a secret holding
    another is taken out whole."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, REDACTED)
    return text
