"""The access token as a value: what it is, when it expires, when to replace it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


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
