"""Why an alerting resource (an AlertException, a SecurityEventWebhook) is not in force (pure): the shape of
the `errorConditions` / `conditions` its status and `dnswatch ... get` show."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ResourceCondition"]


@dataclass(frozen=True)
class ResourceCondition:
    """A `type` (`InvalidSpec`, `InvalidSelector`, `InvalidQuery`, `InvalidConfig`) and a message naming the
    field."""

    type: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"type": self.type, "message": self.message}
