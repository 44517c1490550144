"""A best-effort lease so that workers starting cold together make one token exchange, not twenty.

Airflow Variables have no compare-and-set, so the lease is claimed in three steps:

1. read the lease Variable; if another worker holds an unexpired lease, wait for its token;
2. otherwise write a lease naming this process, wait a short settle delay while rivals do the same
   (longer when the write itself was slow: a loaded machine or database delays the rivals' writes too);
3. read it back: the last writer wins, everyone else waits.

Waiting means polling the token Variable until a usable token appears, the holder releases the lease
without a token (it failed: the waiter exchanges itself), or the lease expires. The lease lives as long
as one whole token fetch may take under the retry policy (``exchange_lease_ttl``: discovery and the
exchange, every attempt timing out, the longest backoff between them), so waiters never give up on a
holder that is merely slow. A lease that expires anyway (its holder died, or waited out a long
``Retry-After``) is claimed again, so the waiters elect one new holder instead of all exchanging at once.

A holder whose refresh failed while its token is still valid releases the lease with a cool-down note
(``cooldown_until``): other workers holding a still-valid token then back off until that moment too.
Whatever goes wrong, the fallback is the old behaviour: exchange. The lease holds no secret: an owner
id, an expiry and the cool-down moment.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from airflow_provider_odc.cache.stores import TokenStore
from airflow_provider_odc.retries import RetryPolicy

log = logging.getLogger(__name__)
T = TypeVar("T")

#: How often a waiter claims a lease that expired under it, before it gives up coordinating.
MAX_RECLAIMS = 2


def lease_key_for(conn_id: str) -> str:
    return f"odc_cache_lease__{conn_id}"


def exchange_lease_ttl(timeout: float, retry: RetryPolicy) -> float:
    """How long one token fetch may take under ``retry``: the lease must outlive it.

    A fetch is OIDC discovery (unless the endpoint is known) and the exchange; each is up to
    ``max_retries + 1`` attempts that may each run into ``timeout``, with the longest backoff the
    policy can choose between them (``min(backoff_max, backoff_base * 2**n)``; the jitter only shortens
    it). A ``Retry-After`` longer than that backoff is not covered: the lease then expires during the
    wait and the waiters elect a new holder (see ``ExchangeLease.wait_for``).
    """
    attempts = retry.max_retries + 1
    backoff = sum(min(retry.backoff_max, retry.backoff_base * 2.0**n) for n in range(retry.max_retries))
    return 2 * (attempts * timeout + backoff)


@dataclass
class _LeaseState:
    owner: str
    expires_at: float
    cooldown_until: float


@dataclass
class ExchangeLease:
    """Cross-process single flight for the token exchange of one connection.

    ``ttl`` is how long the holder may take to fetch a token (``exchange_lease_ttl``); the lease it
    writes lasts that plus the longest settle delay, which is spent before the fetch starts.
    """

    store: TokenStore
    ttl: float
    settle: float = 0.5
    #: The settle delay is at least this many times as long as our own lease write took, up to
    #: ``settle_max`` seconds.
    settle_per_write: float = 3.0
    settle_max: float = 10.0
    poll: float = 0.2
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def lifetime(self) -> float:
        """How long a claimed lease lasts: the settle delay plus the whole fetch."""
        return self.settle_max + self.ttl

    def claim(self) -> bool:
        """True when this process should exchange: it holds the lease, or no lease can be kept."""
        holder = self._holder()
        if holder is not None and holder[0] != self.owner:
            return False
        started = self.clock()
        if not self.store.write(json.dumps({"owner": self.owner, "expires_at": started + self.lifetime})):
            return True  # Variables are not writable here: nothing to coordinate with
        write_time = max(self.clock() - started, 0.0)
        self.sleep(min(max(self.settle, self.settle_per_write * write_time), self.settle_max))
        holder = self._holder()
        return holder is None or holder[0] == self.owner

    def wait_for(self, find: Callable[[], T | None]) -> tuple[T | None, bool]:
        """Poll ``find`` while another process holds the lease.

        Returns ``(found, False)`` when ``find`` found something, ``(None, False)`` when the holder gave
        up without a token (time to exchange here), and ``(None, True)`` when this process claimed a
        lease that expired under it (exchange here, then ``release``).
        """
        reclaims = 0
        deadline = self.clock() + self.lifetime
        while True:
            if self.clock() >= deadline:
                # The holder is dead or slower than its lease: one of the waiters takes over, not all.
                if reclaims == MAX_RECLAIMS:
                    break
                reclaims += 1
                if self.claim():
                    log.info("Another worker's ODC token exchange lease expired; fetching the token here.")
                    return find(), True
                deadline = self.clock() + self.lifetime
            self.sleep(self.poll)
            found = find()
            if found is not None:
                return found, False
            state = self._state()
            if state is None or state.owner == self.owner or state.expires_at <= 0:
                break  # released without a token: the holder failed
            deadline = min(deadline, state.expires_at)
        log.info("No ODC token appeared while another worker held the exchange lease; fetching one here.")
        return None, False

    def release(self, *, cooldown_until: float = 0.0) -> None:
        """Give the lease up, unless another process holds it now (never clobber a live rival's lease).

        ``cooldown_until``: the refresh failed and the current token stays in use until then; other
        workers read it with ``cooldown_until()`` and back off as well.
        """
        holder = self._holder()
        if holder is None or holder[0] == self.owner:
            state: dict[str, str | float] = {"owner": self.owner, "expires_at": 0}
            if cooldown_until > 0:
                state["cooldown_until"] = cooldown_until
            self.store.write(json.dumps(state))

    def cooldown_until(self) -> float:
        """Until when another worker's failed refresh asks everyone with a valid token to back off (0: no)."""
        state = self._state()
        return state.cooldown_until if state is not None and state.cooldown_until > self.clock() else 0.0

    def _holder(self) -> tuple[str, float] | None:
        """The live lease's (owner, expires_at), or None when there is none or it expired."""
        state = self._state()
        if state is None or state.expires_at <= self.clock():
            return None
        return state.owner, state.expires_at

    def _state(self) -> _LeaseState | None:
        raw = self.store.read()
        try:
            lease = json.loads(raw) if raw else {}
            state = _LeaseState(
                str(lease["owner"]), float(lease["expires_at"]), float(lease.get("cooldown_until", 0.0))
            )
        except (TypeError, ValueError, KeyError, AttributeError):
            return None
        if not (state.expires_at == state.expires_at and state.cooldown_until == state.cooldown_until):
            return None  # NaN
        return state
