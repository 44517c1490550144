"""One access token per connection, shared by every hook in a process and every task on every worker.

A token is looked for in three places, cheapest first:

1. this process's memory (every hook instance of the connection shares one ``TokenCache``);
2. the encrypted Airflow Variable, where another task or worker may have stored a fresh token;
3. a new client-credentials exchange, whose token goes back to memory and to the Variable.

Steps 2 and 3 run under a per-connection lock (single flight): twenty threads that want a token in a
cold process cause one exchange. The Variable is read again under the lock, just before exchanging,
because another worker may have stored a token a moment ago. Across processes, an optional
``ExchangeLease`` lets one worker exchange while the others wait for its token (see ``lease.py``). A
thread or worker whose token is due but still valid does not wait for another one's refresh: it keeps
using its token meanwhile.

A failed proactive refresh (the token is inside its refresh margin but still valid) does not cost an
exchange per call, as MSAL does it: the valid token stays in use and no new attempt is made for a
cool-down of ``min(COOLDOWN_MAX, COOLDOWN_SHARE * remaining lifetime)``, shortened at random by up to
``COOLDOWN_JITTER`` (so workers do not return in lockstep, and attempts come faster as expiry nears),
with one warning per cool-down. The cool-down is kept per process (this cache) and, when there is a
lease, noted in the lease Variable so that other workers with a still-valid token back off as well. A
token is never served within ``STILL_VALID_FOR`` seconds of its expiry, cool-down or not, and a token
the API refused (``reject``) always gets a new exchange.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import ClassVar

from airflow_provider_odc.auth.token import AccessToken
from airflow_provider_odc.cache.envelope import CachedToken, EnvelopeCodec, EnvelopeError, EnvelopeFailure
from airflow_provider_odc.cache.lease import ExchangeLease
from airflow_provider_odc.cache.stores import TokenStore
from airflow_provider_odc.compat import mask_secret
from airflow_provider_odc.exceptions import OdcAuthError

log = logging.getLogger(__name__)

# Spreads refreshes across processes so that workers rarely cross the refresh line together.
PROCESS_JITTER = random.uniform(0.0, 30.0)

#: After a failed proactive refresh, no new attempt for at most this many seconds ...
COOLDOWN_MAX = 60.0
#: ... and for at most this share of the token's remaining lifetime (shorter as expiry nears) ...
COOLDOWN_SHARE = 0.2
#: ... shortened at random by up to this fraction.
COOLDOWN_JITTER = 0.25
#: A token that expires within this many seconds is never served as a fallback.
STILL_VALID_FOR = 30.0

Fetch = Callable[[str | None], CachedToken]
"""Discovery (unless a token endpoint is known) plus the exchange; given the known token endpoint."""


def cooldown_after_failure(remaining: float, jitter: float) -> float:
    """Seconds without a refresh attempt after a failed one, for a token with ``remaining`` seconds to live.

    ``jitter`` in [0, 1) shortens it by up to ``COOLDOWN_JITTER``; the result never reaches the expiry.
    """
    return max(min(COOLDOWN_MAX, COOLDOWN_SHARE * remaining), 0.0) * (1.0 - COOLDOWN_JITTER * jitter)


class TokenCache:
    """The token of one connection identity within this process, backed by an optional store."""

    _shared: ClassVar[dict[tuple[str, ...], TokenCache]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        *,
        store: TokenStore | None,
        codec: EnvelopeCodec | None,
        refresh_margin: float,
        jitter: float = PROCESS_JITTER,
        lease: ExchangeLease | None = None,
        clock: Callable[[], float] = time.time,
        cooldown_jitter: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.codec = codec
        self.lease = lease
        self.refresh_margin = refresh_margin + jitter
        self.clock = clock
        self.cooldown_jitter = cooldown_jitter
        #: No refresh is attempted before this moment (a cool-down after a failed refresh; 0: none).
        self.retry_not_before = 0.0
        self.token_endpoint: str | None = None
        self._token: AccessToken | None = None
        self._lock = threading.Lock()
        self._last_warning: EnvelopeFailure | None = None

    @classmethod
    def shared(cls, identity: tuple[str, ...], factory: Callable[[], TokenCache]) -> TokenCache:
        """The process-wide cache for ``identity``, made by ``factory`` on first use."""
        with cls._shared_lock:
            cache = cls._shared.get(identity)
            if cache is None:
                cache = cls._shared[identity] = factory()
            return cache

    @classmethod
    def forget_all(cls) -> None:
        """Drop every in-process token (tests use this to simulate a new worker process)."""
        with cls._shared_lock:
            cls._shared.clear()

    def current(self, reject: AccessToken | None = None) -> AccessToken | None:
        """The in-memory token if ``get`` would return it as is: no lock, no I/O, safe on an event loop."""
        token = self._usable(self._token, reject)
        if token is None and self.clock() < self.retry_not_before:
            token = self._still_valid(self._token, reject)  # cooling down after a failed refresh
        return token

    def get(self, fetch: Fetch, *, reject: AccessToken | None = None) -> AccessToken:
        """A token that is not due for refresh and is not ``reject`` (one the API just refused).

        Or, after a failed refresh, the still-valid current token until the cool-down ends.
        """
        token = self.current(reject)
        if token is not None:
            return token
        if not self._lock.acquire(blocking=False):
            token = self._still_valid(self._token, reject)
            if token is not None:
                return token  # another thread is refreshing: keep the valid token meanwhile, do not wait
            self._lock.acquire()
        try:
            return self._get_locked(fetch, reject)
        finally:
            self._lock.release()

    def _get_locked(self, fetch: Fetch, reject: AccessToken | None) -> AccessToken:
        """``get`` under the lock: the Variable, then the lease, then the exchange."""
        token = self.current(reject)
        if token is not None:  # another thread refreshed (or failed to) while this one waited
            return token
        stored = self._load()
        token = self._usable(stored, reject)
        if token is not None:  # another task or worker stored a fresh token
            self._token = token
            return token
        fallback = _later(self._still_valid(self._token, reject), self._still_valid(stored, reject))
        holds_lease = False
        if self.lease is not None:
            if fallback is not None and self._adopt_shared_cooldown(self.lease, fallback):
                return fallback
            holds_lease = self.lease.claim()
            if holds_lease:
                # A rival that won earlier may have stored its token during our settle delay (a
                # process starved of CPU reads the lease back late, after the winner released it).
                token = self._usable(self._load(), reject)
            elif fallback is not None:
                return fallback  # another worker is refreshing: keep the valid token meanwhile
            else:
                token, holds_lease = self.lease.wait_for(lambda: self._usable(self._load(), reject))
            if token is not None:  # the lease holder's token
                if holds_lease:
                    self.lease.release()
                self._token = token
                return token
        cooldown_until = 0.0
        try:
            token, cooldown_until = self._exchange(fetch, fallback=fallback)
            return token
        finally:
            if holds_lease and self.lease is not None:
                self.lease.release(cooldown_until=cooldown_until)

    def _exchange(self, fetch: Fetch, *, fallback: AccessToken | None) -> tuple[AccessToken, float]:
        """The fetched token, or ``fallback`` and the end of the cool-down it starts (0.0 when fetched)."""
        try:
            fetched = fetch(self.token_endpoint)
        except OdcAuthError as exc:
            if self.token_endpoint is not None and exc.oauth_error is None:
                self.token_endpoint = None  # maybe the endpoint moved: rediscover next time
            if fallback is None:
                raise
            now = self.clock()
            until = now + cooldown_after_failure(fallback.expires_at - now, self.cooldown_jitter())
            self._token, self.retry_not_before = fallback, until
            log.warning(
                "Could not refresh the ODC access token (%s); the current one (%s) is still valid until "
                "%s and stays in use. The next attempt comes in %.0f s.",
                exc,
                fallback.fingerprint,
                time.strftime("%H:%M:%S UTC", time.gmtime(fallback.expires_at)),
                until - now,
            )
            return fallback, until
        mask_secret(fetched.token.value)
        self._token = fetched.token
        self.retry_not_before = 0.0
        self.token_endpoint = fetched.token_endpoint
        self._save(fetched)
        log.info("Obtained ODC access token %s, valid for %d s.", fetched.token.fingerprint, fetched.token.lifetime)
        return fetched.token, 0.0

    def _adopt_shared_cooldown(self, lease: ExchangeLease, fallback: AccessToken) -> bool:
        """Back off with ``fallback`` if another worker's refresh failed a moment ago (its lease note says so)."""
        noted = lease.cooldown_until()
        if not noted:
            return False
        now = self.clock()
        # Never longer than this process's own rule allows for this token (the note is not trusted blindly).
        until = min(noted, now + cooldown_after_failure(fallback.expires_at - now, 0.0))
        if until <= now:
            return False
        self._token, self.retry_not_before = fallback, until
        log.info(
            "Another worker could not refresh the ODC access token just now; keeping the current one (%s) "
            "for %.0f s more.",
            fallback.fingerprint,
            until - now,
        )
        return True

    def _usable(self, token: AccessToken | None, reject: AccessToken | None) -> AccessToken | None:
        if token is None or (reject is not None and token.value == reject.value):
            return None
        if token.needs_refresh(self.clock(), self.refresh_margin):
            return None
        return token

    def _still_valid(self, token: AccessToken | None, reject: AccessToken | None) -> AccessToken | None:
        if token is None or (reject is not None and token.value == reject.value):
            return None
        return None if token.is_expired(self.clock() + STILL_VALID_FOR) else token

    def _load(self) -> AccessToken | None:
        if self.store is None or self.codec is None:
            return None
        value = self.store.read()
        if not value:
            return None
        try:
            cached = self.codec.open(value)
        except EnvelopeError as exc:
            self._warn_unusable(exc.reason)
            return None
        mask_secret(cached.token.value)
        if self.token_endpoint is None:
            self.token_endpoint = cached.token_endpoint
        return cached.token

    def _save(self, cached: CachedToken) -> None:
        if self.store is None or self.codec is None:
            return
        self.store.write(self.codec.seal(cached))

    def _warn_unusable(self, reason: EnvelopeFailure) -> None:
        if reason == self._last_warning:
            return
        self._last_warning = reason
        store_key = self.store.key if self.store is not None else "?"
        log.warning(
            "Ignoring the cached ODC token in Variable %s: it %s. A new token will be fetched and stored.",
            store_key,
            reason.text,
        )


def _later(first: AccessToken | None, second: AccessToken | None) -> AccessToken | None:
    """Of two tokens (either may be None), the one that expires later."""
    if first is None or second is None:
        return first or second
    return first if first.expires_at >= second.expires_at else second
