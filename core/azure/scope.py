"""Where ARM counts a request (its throttle scope)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ThrottleScope:
    """Where ARM counts a request: subscription, principal and ARM region (2024 model).

    One client is one principal talking to one ARM region, so the last two are the client's
    (empty when unknown); the subscription comes from each request's path.
    """

    subscription: str
    principal: str = ""
    region: str = ""

    @classmethod
    def of(cls, subscription: str, principal: str = "", region: str = "") -> ThrottleScope:
        return cls(subscription.lower(), principal.lower(), region.lower())

    def __str__(self) -> str:
        extra = "/".join(part for part in (self.principal, self.region) if part)
        return f"{self.subscription}{' (' + extra + ')' if extra else ''}"
