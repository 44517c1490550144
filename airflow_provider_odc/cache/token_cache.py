"""One access token per connection, shared by every hook in a process and every task on every worker.

A token is looked for in three places, cheapest first:

1. this process's memory (every hook instance of the connection shares one ``TokenCache``);
2. the encrypted Airflow Variable, where another task or worker may have stored a fresh token;
3. a new client-credentials exchange, whose token goes back to memory and to the Variable.

Steps 2 and 3 run under a per-connection lock (single flight): twenty threads that want a token in a
cold process cause one exchange. The Variable is read again under the lock, just before exchanging,
because another worker may have stored a token a moment ago. Across processes, an optional
``ExchangeLease`` lets one worker exchange while the others wait for its token (see ``lease.py``).
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

Fetch = Callable[[str | None], CachedToken]
"""Discovery (unless a token endpoint is known) plus the exchange; given the known token endpoint."""


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
    ) -> None:
        self.store = store
        self.codec = codec
        self.lease = lease
        self.refresh_margin = refresh_margin + jitter
        self.clock = clock
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
        return self._usable(self._token, reject)

    def get(self, fetch: Fetch, *, reject: AccessToken | None = None) -> AccessToken:
        """A token that is not due for refresh and is not ``reject`` (one the API just refused)."""
        token = self.current(reject)
        if token is not None:
            return token
        with self._lock:
            token = self._usable(self._token, reject)
            if token is not None:  # another thread refreshed while this one waited
                return token
            stored = self._load()
            token = self._usable(stored, reject)
            if token is not None:  # another task or worker stored a fresh token
                self._token = token
                return token
            holds_lease = False
            if self.lease is not None:
                holds_lease = self.lease.claim()
                if holds_lease:
                    # A rival that won earlier may have stored its token during our settle delay (a
                    # process starved of CPU reads the lease back late, after the winner released it).
                    token = self._usable(self._load(), reject)
                else:
                    token = self.lease.wait_for(lambda: self._usable(self._load(), reject))
                if token is not None:  # the lease holder's token
                    if holds_lease:
                        self.lease.release()
                    self._token = token
                    return token
            try:
                return self._exchange(fetch, fallback=self._still_valid(self._token or stored, reject))
            finally:
                if holds_lease and self.lease is not None:
                    self.lease.release()

    def _exchange(self, fetch: Fetch, *, fallback: AccessToken | None) -> AccessToken:
        try:
            fetched = fetch(self.token_endpoint)
        except OdcAuthError as exc:
            if self.token_endpoint is not None and exc.oauth_error is None:
                self.token_endpoint = None  # maybe the endpoint moved: rediscover next time
            if fallback is None:
                raise
            log.warning(
                "Could not refresh the ODC access token (%s); the current one (%s) is still valid until "
                "%s and stays in use.",
                exc,
                fallback.fingerprint,
                time.strftime("%H:%M:%S UTC", time.gmtime(fallback.expires_at)),
            )
            return fallback
        mask_secret(fetched.token.value)
        self._token = fetched.token
        self.token_endpoint = fetched.token_endpoint
        self._save(fetched)
        log.info("Obtained ODC access token %s, valid for %d s.", fetched.token.fingerprint, fetched.token.lifetime)
        return fetched.token

    def _usable(self, token: AccessToken | None, reject: AccessToken | None) -> AccessToken | None:
        if token is None or (reject is not None and token.value == reject.value):
            return None
        if token.needs_refresh(self.clock(), self.refresh_margin):
            return None
        return token

    def _still_valid(self, token: AccessToken | None, reject: AccessToken | None) -> AccessToken | None:
        if token is None or (reject is not None and token.value == reject.value):
            return None
        return None if token.is_expired(self.clock() + 30) else token

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
