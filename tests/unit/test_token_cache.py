"""The in-process cache: single flight, the double-checked store read, 401 rejection, best-effort store."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from airflow_provider_odc.auth.token import AccessToken
from airflow_provider_odc.cache.envelope import CachedToken, EnvelopeCodec
from airflow_provider_odc.cache.token_cache import (
    COOLDOWN_JITTER,
    COOLDOWN_MAX,
    COOLDOWN_SHARE,
    STILL_VALID_FOR,
    TokenCache,
    cooldown_after_failure,
)
from airflow_provider_odc.exceptions import OdcAuthError

ENDPOINT = "https://acme.outsystems.dev/auth/realms/r/protocol/openid-connect/token"


class DictStore:
    """A store with the Variable store's contract, for tests that do not run inside a task."""

    def __init__(self, key: str = "odc_access_token__odc_default", *, fail_writes: bool = False) -> None:
        self.key = key
        self.values: dict[str, str] = {}
        self.fail_writes = fail_writes

    def read(self) -> str | None:
        return self.values.get(self.key)

    def write(self, value: str) -> bool:
        if self.fail_writes:
            return False
        self.values[self.key] = value
        return True


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Exchanges:
    """Counts calls and hands out numbered tokens; can be slowed down or made to fail."""

    def __init__(self, clock: Clock, lifetime: float = 43_200, delay: float = 0.0) -> None:
        self.clock, self.lifetime, self.delay = clock, lifetime, delay
        self.calls = 0
        self.known_endpoints: list[str | None] = []
        self.error: OdcAuthError | None = None
        self._lock = threading.Lock()

    def __call__(self, known_endpoint: str | None) -> CachedToken:
        with self._lock:
            self.calls += 1
            number = self.calls
        self.known_endpoints.append(known_endpoint)
        time.sleep(self.delay)
        if self.error is not None:
            raise self.error
        now = self.clock()
        token = AccessToken(f"token-number-{number}", "Bearer", now + self.lifetime, now)
        return CachedToken(token, ENDPOINT)


def codec(secret: str = "secret-value") -> EnvelopeCodec:
    return EnvelopeCodec.for_connection(
        key_material=secret,
        origin="https://acme.outsystems.dev",
        client_id="cid",
        conn_id="odc_default",
        variable_key="odc_access_token__odc_default",
    )


def make_cache(store: DictStore | None, clock: Clock, secret: str = "secret-value") -> TokenCache:
    return TokenCache(store=store, codec=codec(secret) if store else None, refresh_margin=300, jitter=0, clock=clock)


def test_twenty_threads_in_a_cold_process_cause_one_exchange() -> None:
    clock = Clock()
    exchanges = Exchanges(clock, delay=0.2)
    cache = make_cache(DictStore(), clock)
    barrier = threading.Barrier(20)
    seen: list[str] = []

    def worker() -> None:
        barrier.wait()
        seen.append(cache.get(exchanges).value)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert exchanges.calls == 1
    assert seen == ["token-number-1"] * 20


def test_a_new_process_reuses_the_stored_token_without_exchanging() -> None:
    clock, store = Clock(), DictStore()
    first = Exchanges(clock)
    assert make_cache(store, clock).get(first).value == "token-number-1"
    assert "token-number-1" not in store.values[store.key]

    second_process = Exchanges(clock)
    clock.now += 3600
    assert make_cache(store, clock).get(second_process).value == "token-number-1"
    assert second_process.calls == 0


def test_refresh_happens_at_the_margin_and_skips_discovery() -> None:
    clock, store = Clock(), DictStore()
    exchanges = Exchanges(clock)
    cache = make_cache(store, clock)
    cache.get(exchanges)
    clock.now += 43_200 - 301
    assert cache.get(exchanges).value == "token-number-1"
    clock.now += 1
    assert cache.get(exchanges).value == "token-number-2"
    assert exchanges.known_endpoints == [None, ENDPOINT]


def test_the_store_is_read_again_under_the_lock() -> None:
    """Another worker stored a fresh token after this process's token went stale: use it, do not exchange."""
    clock, store = Clock(), DictStore()
    mine = make_cache(store, clock)
    mine.get(Exchanges(clock))
    clock.now += 43_200
    other_worker = Exchanges(clock)
    other_worker.calls = 41  # its token will be number 42
    make_cache(store, clock).get(other_worker)
    exchanges = Exchanges(clock)
    assert mine.get(exchanges).value == "token-number-42"
    assert exchanges.calls == 0


def test_reject_replaces_only_the_refused_token() -> None:
    clock, store = Clock(), DictStore()
    exchanges = Exchanges(clock)
    cache = make_cache(store, clock)
    refused = cache.get(exchanges)
    fresh = cache.get(exchanges, reject=refused)
    assert fresh.value == "token-number-2"
    # A second caller still holding the old token does not throw away the new one.
    assert cache.get(exchanges, reject=refused).value == "token-number-2"
    assert exchanges.calls == 2


def test_rotated_secret_is_a_miss_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    clock, store = Clock(), DictStore()
    make_cache(store, clock, secret="old-secret").get(Exchanges(clock))
    exchanges = Exchanges(clock)
    with caplog.at_level(logging.WARNING):
        token = make_cache(store, clock, secret="new-secret").get(exchanges)
    assert token.value == "token-number-1" and exchanges.calls == 1
    warnings = [r.getMessage() for r in caplog.records if "Ignoring the cached ODC token" in r.getMessage()]
    assert len(warnings) == 1 and "another key" in warnings[0]
    assert "old-secret" not in caplog.text and "new-secret" not in caplog.text
    # The store now holds a token sealed with the new secret.
    assert make_cache(store, clock, secret="new-secret").get(Exchanges(clock)).value == "token-number-1"


@pytest.mark.parametrize("garbage", ["", "garbage", "{}", '{"v":1,"alg":"A256GCM","kid":"x","nonce":"","ct":""}'])
def test_garbage_in_the_store_is_a_miss_not_a_crash(garbage: str) -> None:
    clock, store = Clock(), DictStore()
    store.values[store.key] = garbage
    exchanges = Exchanges(clock)
    assert make_cache(store, clock).get(exchanges).value == "token-number-1"
    assert exchanges.calls == 1


def test_failed_store_write_keeps_the_token_in_memory() -> None:
    clock = Clock()
    exchanges = Exchanges(clock)
    cache = make_cache(DictStore(fail_writes=True), clock)
    assert cache.get(exchanges).value == cache.get(exchanges).value == "token-number-1"
    assert exchanges.calls == 1


def test_failed_proactive_refresh_keeps_serving_the_valid_token(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    exchanges = Exchanges(clock)
    cache = make_cache(None, clock)
    cache.get(exchanges)
    clock.now += 43_200 - 200  # inside the refresh margin, not yet expired
    exchanges.error = OdcAuthError("token endpoint down", retryable=True)
    with caplog.at_level(logging.WARNING):
        assert cache.get(exchanges).value == "token-number-1"
    assert "stays in use" in caplog.text
    clock.now += 200  # expired now: the failure surfaces
    with pytest.raises(OdcAuthError):
        cache.get(exchanges)


@pytest.mark.parametrize("remaining", [10_000.0, 300.0, 100.0, 31.0, 0.0, -5.0])
@pytest.mark.parametrize("jitter", [0.0, 0.5, 0.999])
def test_the_cooldown_is_bounded_jittered_and_shorter_near_expiry(remaining: float, jitter: float) -> None:
    cooldown = cooldown_after_failure(remaining, jitter)
    bound = max(min(COOLDOWN_MAX, COOLDOWN_SHARE * remaining), 0.0)
    assert bound * (1 - COOLDOWN_JITTER) <= cooldown <= bound
    assert cooldown < max(remaining, 0.0) or cooldown == 0.0  # never reaches the expiry


def test_failed_refresh_starts_a_cooldown_served_without_lock_or_io(caplog: pytest.LogCaptureFixture) -> None:
    """``current()`` (what the async hook calls on the event loop) serves the token while cooling down."""
    clock = Clock()
    exchanges = Exchanges(clock)
    cache = TokenCache(store=None, codec=None, refresh_margin=300, jitter=0, clock=clock, cooldown_jitter=lambda: 0.0)
    first = cache.get(exchanges)
    clock.now = first.expires_at - 250
    assert cache.current() is None  # due for refresh
    exchanges.error = OdcAuthError("token endpoint down", retryable=True)
    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            assert cache.get(exchanges) == first
            clock.now += 9
    assert exchanges.calls == 2  # the first exchange and one failed refresh: 45 s inside a 50 s cool-down
    assert cache.current() == first
    assert len([r for r in caplog.records if "stays in use" in r.getMessage()]) == 1
    clock.now = cache.retry_not_before
    assert cache.current() is None  # the cool-down is over: the next get() tries again
    exchanges.error = None
    assert cache.get(exchanges).value == "token-number-3"
    assert cache.retry_not_before == 0.0


def test_other_threads_keep_the_valid_token_while_one_thread_refreshes() -> None:
    """A refresh that hangs (the whole retried exchange) holds the lock; threads with a valid token do not wait."""
    clock = Clock()
    exchanges = Exchanges(clock)
    cache = TokenCache(store=None, codec=None, refresh_margin=300, jitter=0, clock=clock)
    first = cache.get(exchanges)
    clock.now = first.expires_at - 200
    refreshing, may_finish = threading.Event(), threading.Event()
    refreshed: list[AccessToken] = []

    def hanging_fetch(endpoint: str | None) -> CachedToken:
        refreshing.set()
        assert may_finish.wait(10), "the other thread waited for the refresh"
        return exchanges(endpoint)

    refresher = threading.Thread(target=lambda: refreshed.append(cache.get(hanging_fetch)))
    refresher.start()
    assert refreshing.wait(10)
    assert cache.get(exchanges) == first  # served at once, while the refresh is still under way
    assert exchanges.calls == 1
    may_finish.set()
    refresher.join()
    assert refreshed[0].value == cache.get(exchanges).value == "token-number-2"


def test_a_token_about_to_expire_is_not_served_even_while_cooling_down() -> None:
    clock = Clock()
    exchanges = Exchanges(clock)
    cache = TokenCache(store=None, codec=None, refresh_margin=300, jitter=0, clock=clock)
    first = cache.get(exchanges)
    clock.now = first.expires_at - 100
    exchanges.error = OdcAuthError("token endpoint down", retryable=True)
    assert cache.get(exchanges) == first
    cache.retry_not_before = first.expires_at + 60  # even a cool-down running past the expiry (cannot happen)
    clock.now = first.expires_at - STILL_VALID_FOR
    assert cache.current() is None
    with pytest.raises(OdcAuthError):
        cache.get(exchanges)


def test_shared_returns_one_cache_per_identity() -> None:
    made: list[TokenCache] = []

    def factory() -> TokenCache:
        made.append(TokenCache(store=None, codec=None, refresh_margin=300))
        return made[-1]

    assert TokenCache.shared(("a",), factory) is TokenCache.shared(("a",), factory)
    assert TokenCache.shared(("b",), factory) is not TokenCache.shared(("a",), factory)
    assert len(made) == 2
