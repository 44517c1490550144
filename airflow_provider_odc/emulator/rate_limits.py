"""ODC's documented rate limits, enforced per emulator (one emulator = one organization).

Source: ODC's "Rate limiting" page (see ``../shared/reference/odc-api.md`` section 1.7). Every API domain has
a domain-wide limit shared by all its endpoints; some endpoints have a tighter limit of their own, which also
counts toward the domain-wide one. Going over any of them is ``429 Too Many Requests``; ODC documents no
``Retry-After`` header, so the emulator sends none unless a test opts in.

Windows slide: a request is accepted only when fewer than ``limit`` requests were accepted in the 60 s
before it, on the emulator clock. That is the stingiest reading of "N requests per minute" (a fixed,
clock-aligned window would let up to 2N through across a minute boundary), and a client that waits a full
60 s after a 429 gets in under either reading: the requests that filled the window are all older by then.
Refused requests are not recorded, as in a fixed window, so retries cannot push the window out forever.
Nothing here knows about HTTP or locks; ``EmulatorState`` calls it under its lock.
"""

from __future__ import annotations

import collections
import math
import re
from dataclasses import dataclass

RATE_WINDOW = 60.0

# Domain-wide limits (requests per minute), by the path prefix of the API domain.
DOMAIN_LIMITS = {
    "/api/identity/v1": 100,
    "/api/portfolios/v2": 100,
    "/api/builds/v1": 100,
    "/api/deployments/v1": 100,
    "/api/asset-repository/v1": 100,
    "/api/asset-configurations/v1": 100,
    "/api/dependency-management/v1": 100,
    "/api/environment-configurations/v1": 10,
    "/api/external-libraries/v1": 100,
    "/api/code-quality/v1": 100,
    "/api/native-mobile-builds/v1": 100,
    "/api/subscription/v1": 100,
}
#: Domains whose POST endpoints share the configurable ``post_limit_per_minute`` (documented: 10 each).
POST_LIMITED_DOMAINS = ("/api/builds/v1", "/api/deployments/v1")
DEFAULT_DOMAIN_LIMIT = 100
DEFAULT_POST_LIMIT = 10


@dataclass(frozen=True)
class EndpointRule:
    """A per-endpoint limit: ``method`` on routes of ``domain`` whose path (after the domain) matches."""

    domain: str
    method: str
    path: re.Pattern[str]
    limit: int


# Documented per-endpoint limits other than the build and deployment POSTs (those follow post_limit_per_minute).
ENDPOINT_RULES = (
    EndpointRule("/api/identity/v1", "POST", re.compile(r"/users/bulk"), 5),
    EndpointRule("/api/asset-repository/v1", "POST", re.compile(r"/assets"), 10),
    EndpointRule("/api/code-quality/v1", "POST", re.compile(r"/code-analyses"), 10),
    EndpointRule("/api/external-libraries/v1", "POST", re.compile(r"/.*"), 10),
    EndpointRule("/api/native-mobile-builds/v1", "POST", re.compile(r"/.*"), 5),
    EndpointRule("/api/native-mobile-builds/v1", "PATCH", re.compile(r"/.*"), 10),
)


@dataclass(frozen=True)
class LimitSettings:
    """What is enforced: everything documented (the default), with two knobs tests may tighten or lift."""

    enabled: bool = True
    post_limit_per_minute: int | None = DEFAULT_POST_LIMIT  # build and deployment POSTs, per endpoint
    domain_limit_per_minute: int | None = DEFAULT_DOMAIN_LIMIT  # the domains documented at 100


@dataclass(frozen=True)
class Refusal:
    """Which limit refused a request, and when (emulator clock) that limit lets one more in."""

    scope: str  # "domain" or "endpoint"
    key: str
    limit: int
    frees_at: float

    def seconds_until_free(self, now: float) -> int:
        return max(1, math.ceil(self.frees_at - now))


def domain_of(path: str) -> str | None:
    return next((domain for domain in DOMAIN_LIMITS if path == domain or path.startswith(domain + "/")), None)


def limits_for(method: str, template: str, settings: LimitSettings) -> list[tuple[str, str, int]]:
    """``(scope, window key, limit)`` of every limit a request to ``method template`` counts toward."""
    if not settings.enabled:
        return []
    domain = domain_of(template)
    if domain is None:
        return []
    found: list[tuple[str, str, int]] = []
    rest = template[len(domain) :]
    endpoint = f"{method} {template}"
    if method == "POST" and domain in POST_LIMITED_DOMAINS:
        if settings.post_limit_per_minute is not None:
            found.append(("endpoint", endpoint, settings.post_limit_per_minute))
    else:
        for rule in ENDPOINT_RULES:
            if rule.domain == domain and rule.method == method and rule.path.fullmatch(rest):
                found.append(("endpoint", endpoint, rule.limit))
                break
    documented = DOMAIN_LIMITS[domain]
    if documented != DEFAULT_DOMAIN_LIMIT:
        found.append(("domain", domain, documented))
    elif settings.domain_limit_per_minute is not None:
        found.append(("domain", domain, settings.domain_limit_per_minute))
    return found


class SlidingWindows:
    """The accepted requests of the last 60 s, per window key (an endpoint or a domain)."""

    def __init__(self) -> None:
        self._windows: dict[str, collections.deque[float]] = {}

    def admit(self, limits: list[tuple[str, str, int]], now: float) -> Refusal | None:
        """Accept (and record in every window) or refuse without recording anything."""
        refusals = []
        for scope, key, limit in limits:
            window = self._windows.setdefault(key, collections.deque())
            while window and window[0] <= now - RATE_WINDOW:
                window.popleft()
            if len(window) >= limit:  # until enough requests leave the window to let one more in
                refusals.append(Refusal(scope, key, limit, window[len(window) - limit] + RATE_WINDOW))
        if refusals:
            return max(refusals, key=lambda refusal: refusal.frees_at)
        for _, key, _ in limits:
            self._windows[key].append(now)
        return None
