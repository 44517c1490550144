"""The access token as a value: what it is, when it expires, when to replace it."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

#: The token lifetimes accepted from a token endpoint, in seconds. ODC issues 43200 (12 hours). Below one
#: second a token is spent before its first call; above seven days it is not ODC (or a typo such as
#: milliseconds), and trusting it would keep serving the token long after ODC dropped it. ``nan``,
#: infinity and 1e308 would make the expiry meaningless (never expired, or an overflowed clock).
LIFETIME_RANGE = (1.0, 7 * 24 * 3600.0)


def lifetime_from(expires_in: object) -> float | None:
    """The token lifetime an ``expires_in`` value gives, or None when it is not a usable number.

    A JSON number or a numeric string (some identity providers send one), finite and within
    ``LIFETIME_RANGE``; booleans are refused although Python counts them as numbers.
    """
    if isinstance(expires_in, bool) or not isinstance(expires_in, (int, float, str)):
        return None
    try:
        lifetime = float(expires_in)
    except (ValueError, OverflowError):
        return None
    low, high = LIFETIME_RANGE
    return lifetime if math.isfinite(lifetime) and low <= lifetime <= high else None


@dataclass(frozen=True)
class AccessToken:
    """An ODC access token with its absolute expiry (epoch seconds on the clock that received it).

    ``value`` is kept out of ``repr`` so a token never lands in a log line or a traceback by accident;
    use ``fingerprint`` to tell tokens apart in logs.
    """

    value: str = field(repr=False)
    token_type: str
    expires_at: float
    issued_at: float

    @property
    def lifetime(self) -> float:
        return max(self.expires_at - self.issued_at, 0.0)

    @property
    def fingerprint(self) -> str:
        """A short, one-way name for this token, safe to log."""
        return hashlib.sha256(self.value.encode()).hexdigest()[:12]

    def refresh_due_at(self, margin: float) -> float:
        """When to fetch a new token: ``margin`` before expiry, but never earlier than half-life.

        Capping at half the lifetime keeps a short-lived token (a test emulator's, or a misconfigured
        margin) usable instead of refreshing it on every call.
        """
        return self.expires_at - min(max(margin, 0.0), self.lifetime / 2)

    def needs_refresh(self, now: float, margin: float) -> bool:
        return now >= self.refresh_due_at(margin)

    def is_expired(self, now: float) -> bool:
        return now >= self.expires_at
