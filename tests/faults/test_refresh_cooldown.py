"""Fault matrix, part 4: the token endpoint fails while the current token is due for refresh but still valid.

Without a cool-down every call would rerun the whole retried exchange (and discovery) before falling back to
the valid token. These rows count, at the emulator, what N calls cost: one exchange attempt per cool-down,
one warning, and never an expired token. The cache's clock is a fake one set into the token's refresh
margin (the emulator keeps accepting the token: on its own clock it is fresh), so nothing here waits for
a real cool-down. The last row is the cross-worker lease under a slow identity provider, on real time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_odc.auth.token import AccessToken
from airflow_provider_odc.cache.lease import ExchangeLease, exchange_lease_ttl, lease_key_for
from airflow_provider_odc.cache.stores import variable_key_for
from airflow_provider_odc.cache.token_cache import COOLDOWN_JITTER, COOLDOWN_SHARE, TokenCache
from airflow_provider_odc.exceptions import OdcAuthError
from airflow_provider_odc.hooks.odc import OdcHook, envelope_codec_for
from airflow_provider_odc.retries import RetryPolicy

from ._support import DictStore, HookFactory, Matrix, outcome_of, wait_until_answered

ENVIRONMENTS = "/api/portfolios/v2/environments"
COOLDOWN_WARNING = "stays in use"
CALLS = 10


class FakeClock:
    """The token cache's (and lease's) clock; ``sleep`` moves it instead of waiting."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def worker_cache(
    hook: OdcHook, variables: dict[str, str], clock: FakeClock, *, jitter: float = 0.0, shared: bool = True
) -> TokenCache:
    """The cache one worker process builds (its memory, the shared Variables and lease unless not ``shared``:
    ``cache_mode: memory``), on ``clock``; given to ``hook``."""
    settings = hook.settings
    lease = ExchangeLease(
        DictStore(variables, lease_key_for(settings.conn_id)),
        ttl=exchange_lease_ttl(settings.timeout, hook.retry_policy),
        clock=clock,
        sleep=clock.sleep,
    )
    cache = TokenCache(
        store=DictStore(variables, variable_key_for(settings.conn_id)) if shared else None,
        codec=envelope_codec_for(settings) if shared else None,
        refresh_margin=settings.refresh_margin,
        jitter=0,
        lease=lease if shared else None,
        clock=clock,
        cooldown_jitter=lambda: jitter,
    )
    hook.token_cache = cache  # the cached_property's slot
    return cache


Warm = tuple[OdcHook, TokenCache, FakeClock, AccessToken]


def counts(odc: Any) -> dict[str, int]:
    stats = odc.stats()
    return {key: stats[key] for key in ("token_requests", "discovery_requests", "token_exchanges", "api_calls_total")}


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {key: after[key] - before[key] for key in after}


def cooldown_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if COOLDOWN_WARNING in r.getMessage()]


@pytest.fixture(params=["variable", "memory"], ids=["cache-variable", "cache-memory"])
def warm(
    request: pytest.FixtureRequest, make_hook: HookFactory, odc_emulator: Any, variables: dict[str, str]
) -> Iterator[Warm]:
    """A hook (one retry) with a token from the emulator, its cache's clock 200 s before the token expires.

    Once with the shared Variable and lease, once in memory only: the cool-down holds in each on its own.
    """
    clock = FakeClock()
    hook = make_hook(max_retries=1, extra={"timeout": 1})
    cache = worker_cache(hook, variables, clock, shared=request.param == "variable")
    assert hook.request("GET", ENVIRONMENTS).status_code == 200
    token = hook._token()
    clock.now = token.expires_at - 200  # inside the 300 s refresh margin, valid for 200 s more
    yield hook, cache, clock, token
    wait_until_answered(odc_emulator)


FAILURES = {
    "token-endpoint-503-in-refresh-margin": {"status": 503, "count": 1000},
    "token-endpoint-hangs-in-refresh-margin": {"latency": 2.0, "count": 1000},
}


@pytest.mark.parametrize("fault", FAILURES.values(), ids=FAILURES.keys())
def test_a_failing_refresh_costs_one_attempt_per_cooldown(
    fault: dict[str, Any],
    warm: Warm,
    make_hook: HookFactory,
    odc_emulator: Any,
    matrix: Matrix,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hook, cache, clock, token = warm
    first = token.value
    odc_emulator.add_fault(target="token", **fault)
    before = counts(odc_emulator)
    with caplog.at_level(logging.WARNING):
        for _ in range(CALLS):
            assert hook.request("GET", ENVIRONMENTS).status_code == 200
            clock.now += 3  # 30 s in all: inside the cool-down of min(60, 0.2 * 200) = 40 s
        wait_until_answered(odc_emulator)
        during = delta(counts(odc_emulator), before)
        # One exchange attempt (two token requests: one retry), then nothing until the cool-down ends.
        assert during == {"token_requests": 2, "discovery_requests": 0, "token_exchanges": 0, "api_calls_total": CALLS}
        assert len(make_hook.sleeps) == 1, make_hook.sleeps
        assert hook.get_access_token() == first
        warnings = cooldown_warnings(caplog)
        assert len(warnings) == 1, warnings
        assert "next attempt comes in 40 s" in warnings[0], warnings
        assert first not in caplog.text and odc_emulator.client_secret not in caplog.text

        clock.now = cache.retry_not_before + 0.1  # the cool-down is over: one new attempt (with rediscovery)
        before = counts(odc_emulator)
        assert hook.request("GET", ENVIRONMENTS).status_code == 200
        assert hook.request("GET", ENVIRONMENTS).status_code == 200
        wait_until_answered(odc_emulator)
        after = delta(counts(odc_emulator), before)
        assert after["token_requests"] == 2 and after["discovery_requests"] <= 1, after
        assert (after["token_exchanges"], after["api_calls_total"]) == (0, 2), after
        assert len(cooldown_warnings(caplog)) == 2
    matrix.record(f"ok, valid token served; {CALLS} calls, one attempt per cool-down", {**during, "token_exchanges": 0})


def test_the_cooldown_shrinks_as_expiry_nears_and_an_expired_token_is_never_served(
    warm: Warm, odc_emulator: Any, matrix: Matrix
) -> None:
    hook, cache, clock, token = warm
    odc_emulator.add_fault(target="token", status=503, count=1000)
    cooldowns = []
    for remaining in (200.0, 100.0, 50.0):
        clock.now = token.expires_at - remaining
        assert hook.request("GET", ENVIRONMENTS).status_code == 200
        assert hook.get_access_token() == token.value
        # The fake clock stands still after the failure (the lease's settle delay moved it a little before).
        cooldowns.append(cache.retry_not_before - clock.now)
        assert cooldowns[-1] == pytest.approx(COOLDOWN_SHARE * (token.expires_at - clock.now))
        assert cache.retry_not_before < token.expires_at
    assert cooldowns[0] > cooldowns[1] > cooldowns[2]
    before = counts(odc_emulator)
    clock.now = token.expires_at - 29  # within 30 s of expiry: no longer served, the failure surfaces
    with pytest.raises(OdcAuthError) as caught:
        hook.request("GET", ENVIRONMENTS)
    clock.now = token.expires_at + 1
    with pytest.raises(OdcAuthError):
        hook.request("GET", ENVIRONMENTS)
    after = delta(counts(odc_emulator), before)
    matrix.record(outcome_of(caught.value), after, row="token-endpoint-503-token-about-to-expire")
    assert after["api_calls_total"] == 0, "an expired token was sent"
    assert after["token_requests"] == 4, "each call tried (two requests): there is no token to fall back on"


def test_the_cooldown_is_jittered_within_its_bounds(
    make_hook: HookFactory, odc_emulator: Any, variables: dict[str, str]
) -> None:
    """With the largest jitter the cool-down is 25 % shorter; it never exceeds the bound."""
    clock = FakeClock()
    hook = make_hook(max_retries=0)
    cache = worker_cache(hook, variables, clock, jitter=0.999)
    token = hook._token()
    clock.now = token.expires_at - 200
    odc_emulator.add_fault(target="token", status=503, count=10)
    assert hook._token() == token
    bound = COOLDOWN_SHARE * (token.expires_at - clock.now)  # the clock stands still after the failure
    assert cache.retry_not_before - clock.now == pytest.approx(bound * (1 - COOLDOWN_JITTER * 0.999))


def test_a_refused_token_gets_a_new_exchange_even_during_a_cooldown(warm: Warm, odc_emulator: Any) -> None:
    """A 401 for the current token is not a proactive refresh: it must be replaced, cool-down or not."""
    hook, cache, clock, token = warm
    odc_emulator.add_fault(target="token", status=503, count=2)
    assert hook.get_access_token() == token.value  # one failed attempt (two requests): cool-down
    assert cache.retry_not_before > clock.now
    odc_emulator.revoke_tokens()
    before = counts(odc_emulator)
    unauthorized = odc_emulator.stats()["unauthorized"]
    assert hook.request("GET", ENVIRONMENTS).status_code == 200  # 401, a new token, 200
    assert delta(counts(odc_emulator), before)["token_exchanges"] == 1
    assert odc_emulator.stats()["unauthorized"] == unauthorized + 1


def test_other_workers_back_off_too(
    make_hook: HookFactory, odc_emulator: Any, variables: dict[str, str], matrix: Matrix,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """Worker A's refresh fails and notes the cool-down in the lease Variable; worker B, with the same valid
    token (from the shared Variable), makes no attempt of its own until it ends."""
    clock = FakeClock()
    worker_a, worker_b = make_hook(max_retries=0), make_hook(max_retries=0)
    cache_a, cache_b = worker_cache(worker_a, variables, clock), worker_cache(worker_b, variables, clock)
    token = worker_a._token()
    assert worker_b._token() == token  # from the Variable: no exchange
    clock.now = token.expires_at - 200
    odc_emulator.add_fault(target="token", status=503, count=1000)
    before = counts(odc_emulator)
    with caplog.at_level(logging.INFO):
        for _ in range(CALLS):
            assert worker_a.request("GET", ENVIRONMENTS).status_code == 200
            assert worker_b.request("GET", ENVIRONMENTS).status_code == 200
    during = delta(counts(odc_emulator), before)
    matrix.record("ok, both workers keep the valid token; one attempt in all", during)
    assert during == {"token_requests": 1, "discovery_requests": 0, "token_exchanges": 0, "api_calls_total": 2 * CALLS}
    assert cache_b.retry_not_before == pytest.approx(cache_a.retry_not_before)
    assert len(cooldown_warnings(caplog)) == 1
    assert sum("Another worker could not refresh" in r.getMessage() for r in caplog.records) == 1


def test_slow_identity_provider_under_the_lease_no_stampede(
    make_hook: HookFactory, odc_emulator: Any, variables: dict[str, str], matrix: Matrix,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """Twenty cold workers (threads, each with its own cache on the shared Variables, on real time). The
    holder's exchange times out twice (1 s each) before it succeeds: longer than the lease used to live
    (one timeout). The waiters wait for its token instead of giving up and exchanging all at once.

    The settle allowance is 1 s here (10 s in the product) so that a lease of the old length (timeout plus
    settle: 2 s) would expire during this exchange, which is what the test must be able to catch.
    """
    hooks = [make_hook(max_retries=3, extra={"timeout": 1}) for _ in range(20)]
    for hook in hooks:
        settings = hook.settings
        lease = ExchangeLease(
            DictStore(variables, lease_key_for(settings.conn_id)),
            ttl=exchange_lease_ttl(settings.timeout, RetryPolicy(max_retries=settings.max_retries)),
            settle_max=1.0,
        )
        hook.token_cache = TokenCache(  # the cached_property's slot
            store=DictStore(variables, variable_key_for(settings.conn_id)),
            codec=envelope_codec_for(settings),
            refresh_margin=settings.refresh_margin,
            jitter=0,
            lease=lease,
        )
    odc_emulator.add_fault(target="token", latency=1.5, count=2)
    barrier = threading.Barrier(len(hooks))
    statuses: list[int] = []
    errors: list[Exception] = []

    def work(hook: OdcHook) -> None:
        barrier.wait()
        try:
            statuses.append(hook.request("GET", ENVIRONMENTS).status_code)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(hook,)) for hook in hooks]
    with caplog.at_level(logging.INFO, logger="airflow_provider_odc.cache.lease"):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    wait_until_answered(odc_emulator)
    stats = odc_emulator.stats()
    matrix.record("ok, 20 tasks; the waiters outlast the slow holder", stats)
    assert not errors, errors
    assert statuses == [200] * 20
    assert stats["token_exchanges"] <= 2, stats
    assert stats["token_requests"] <= 2 * 3, stats  # at most two holders, each timing out twice at most
    assert stats["unauthorized"] == 0
    gave_up = [r.getMessage() for r in caplog.records if r.name == "airflow_provider_odc.cache.lease"]
    assert gave_up == [], "no waiter gave up on the slow holder (its lease outlives the retried exchange)"
