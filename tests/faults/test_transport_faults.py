"""Fault matrix, part 1: the token endpoint and the API misbehave (5xx, timeouts, 429, 401, refusals).

Every row goes through ``OdcHook`` to the emulator over loopback sockets and asserts the outcome and what
the emulator counted: token requests (answered or not), token exchanges (tokens issued) and API calls.
Retry waits are recorded instead of slept (``make_hook.sleeps``); request timeouts are real (1 s).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import pytest

from airflow_provider_odc.exceptions import OdcApiError, OdcAuthError, OdcError
from airflow_provider_odc.hooks.odc import OdcHook

from ._support import HookFactory, Matrix, outcome_of, wait_until_answered

ENVIRONMENTS = "/api/portfolios/v2/environments"
SEARCH = "/api/asset-repository/v1/assets/search"  # a POST route (the emulator answers 404 after its checks)
SEARCH_CALL = f"POST {SEARCH}"


def http_date(seconds_from_now: float) -> str:
    return format_datetime(datetime.now(timezone.utc) + timedelta(seconds=seconds_from_now), usegmt=True)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Row:
    """One row: how to break things, what the hook must do, what the emulator must have counted."""

    arrange: Callable[[Any], Any]
    error: type[Exception] | None  # None: the call succeeds
    words: tuple[str, ...]  # must all appear in the error message
    token_requests: int
    exchanges: int
    api_calls: int
    #: Checks the retry waits the hook chose. A row that names none expects none: no retry, no wait.
    sleeps: Callable[[list[float]], bool] = lambda sleeps: sleeps == []
    conn: dict[str, Any] = field(default_factory=dict)
    max_retries: int = 3
    rate_limit_wait: float = 300.0


def _no_fault(odc: Any) -> None:
    return None


TOKEN_ROWS = {
    "token-503-twice-then-ok": Row(
        lambda odc: odc.add_fault(target="token", status=503, count=2),
        None,
        (),
        token_requests=3,
        exchanges=1,
        api_calls=1,
        sleeps=lambda s: len(s) == 2,
    ),
    "token-503-outlasts-the-retries": Row(
        lambda odc: odc.add_fault(target="token", status=503, count=10),
        OdcAuthError,
        ("token request", "HTTP 503", "try again later"),
        token_requests=3,
        exchanges=0,
        api_calls=0,
        sleeps=lambda s: len(s) == 2,
        max_retries=2,
    ),
    "token-timeout-once-then-ok": Row(
        lambda odc: odc.add_fault(target="token", latency=2.0, count=1),
        None,
        (),
        token_requests=2,
        exchanges=1,
        api_calls=1,
        sleeps=lambda s: len(s) == 1,
        conn={"extra": {"timeout": 1}},
    ),
    "token-timeout-every-time": Row(
        lambda odc: odc.add_fault(target="token", latency=2.0, count=3),
        OdcAuthError,
        ("token request", "ReadTimeout", "reach the portal"),
        token_requests=3,
        exchanges=0,
        api_calls=0,
        sleeps=lambda s: len(s) == 2,
        conn={"extra": {"timeout": 1}},
        max_retries=2,
    ),
    "token-429-retry-after-seconds": Row(
        lambda odc: odc.add_fault(target="token", status=429, count=1, retry_after="4"),
        None,
        (),
        token_requests=2,
        exchanges=1,
        api_calls=1,
        sleeps=lambda s: s == [4.0],
    ),
    "token-429-retry-after-http-date": Row(
        lambda odc: odc.add_fault(target="token", status=429, count=1, retry_after=http_date(30)),
        None,
        (),
        token_requests=2,
        exchanges=1,
        api_calls=1,
        sleeps=lambda s: len(s) == 1 and 25 <= s[0] <= 30,
    ),
    "token-invalid_client-wrong-secret": Row(
        _no_fault,
        OdcAuthError,
        ("invalid_client", "Client secret (password)", "Revoked"),
        token_requests=1,
        exchanges=0,
        api_calls=0,
        sleeps=lambda s: s == [],
        conn={"password": "not-the-secret"},
    ),
    "token-invalid_client-secret-regenerated-in-portal": Row(
        lambda odc: odc.configure(client_secret="regenerated-in-the-portal"),
        OdcAuthError,
        ("invalid_client", "regenerated"),
        token_requests=1,
        exchanges=0,
        api_calls=0,
        sleeps=lambda s: s == [],
    ),
}

API_ROWS = {
    "api-401-always-one-refresh-then-error": Row(
        lambda odc: odc.add_fault(target="api", status=401, count=10),
        OdcApiError,
        ("HTTP 401", "not Revoked or Expired"),
        token_requests=2,
        exchanges=2,
        api_calls=2,
        sleeps=lambda s: s == [],
    ),
    "api-403-no-retry-no-refresh": Row(
        lambda odc: odc.add_fault(target="api", status=403, count=10),
        OdcApiError,
        ("HTTP 403", "permission"),
        token_requests=1,
        exchanges=1,
        api_calls=1,
        sleeps=lambda s: s == [],
    ),
    "api-429-retry-after-seconds": Row(
        lambda odc: odc.add_fault(target="api", status=429, count=1, retry_after="7"),
        None,
        (),
        token_requests=1,
        exchanges=1,
        api_calls=2,
        sleeps=lambda s: s == [7.0],
    ),
    "api-429-retry-after-http-date": Row(
        lambda odc: odc.add_fault(target="api", status=429, count=1, retry_after=http_date(30)),
        None,
        (),
        token_requests=1,
        exchanges=1,
        api_calls=2,
        sleeps=lambda s: len(s) == 1 and 25 <= s[0] <= 30,
    ),
    "api-429-outlasts-the-rate-limit-wait": Row(
        lambda odc: odc.add_fault(target="api", status=429, count=10, retry_after="2"),
        OdcApiError,
        ("HTTP 429", "rate limit", "rate_limit_wait_seconds"),
        token_requests=1,
        exchanges=1,
        api_calls=3,
        sleeps=lambda s: s == [2.0, 2.0],
        max_retries=0,  # 429s follow the wait budget, not max_retries
        rate_limit_wait=5,
    ),
    "api-429-no-retry-after-waits-out-the-minute": Row(
        lambda odc: odc.add_fault(target="api", status=429, count=2),
        None,
        (),
        token_requests=1,
        exchanges=1,
        api_calls=3,
        sleeps=lambda s: len(s) == 2 and all(60 <= x <= 72 for x in s),
        max_retries=0,
    ),
    "api-429-no-retry-after-outlasts-the-rate-limit-wait": Row(
        lambda odc: odc.add_fault(target="api", status=429, count=10),
        OdcApiError,
        ("HTTP 429", "up to 150 s"),
        token_requests=1,
        exchanges=1,
        api_calls=3,
        sleeps=lambda s: len(s) == 2 and all(60 <= x <= 72 for x in s),
        rate_limit_wait=150,
    ),
    "api-GET-503-twice-then-ok": Row(
        lambda odc: odc.add_fault(target="api", status=503, count=2),
        None,
        (),
        token_requests=1,
        exchanges=1,
        api_calls=3,
        sleeps=lambda s: len(s) == 2,
    ),
    "api-GET-read-timeout-once-then-ok": Row(
        lambda odc: odc.add_fault(target="api", latency=2.0, count=1),
        None,
        (),
        token_requests=1,
        exchanges=1,
        api_calls=2,
        sleeps=lambda s: len(s) == 1,
        conn={"extra": {"timeout": 1}},
    ),
}


def run_row(row: Row, make_hook: HookFactory, odc_emulator: Any, matrix: Matrix) -> Exception | None:
    hook = make_hook(max_retries=row.max_retries, rate_limit_wait=row.rate_limit_wait, **row.conn)
    row.arrange(odc_emulator)
    error: Exception | None = None
    try:
        assert hook.request("GET", ENVIRONMENTS).status_code == 200
    except OdcError as exc:
        error = exc
    wait_until_answered(odc_emulator)  # timed-out handlers end before counting (and before the next test)
    stats = odc_emulator.stats()
    matrix.record(outcome_of(error), stats)
    if row.error is None:
        assert error is None, f"expected success, got {error!r}"
    else:
        assert isinstance(error, row.error), f"expected {row.error.__name__}, got {error!r}"
        message = str(error)
        assert all(word in message for word in row.words), message
        assert "ODC connection 'odc_default'" in message and len(message) < 1000
        assert odc_emulator.client_secret not in message
        assert hook.settings.client_secret not in message  # the secret sent, when a row sends a wrong one
    assert (stats["token_requests"], stats["token_exchanges"], stats["api_calls_total"]) == (
        row.token_requests,
        row.exchanges,
        row.api_calls,
    ), stats
    assert row.sleeps(make_hook.sleeps), make_hook.sleeps
    return error


@pytest.mark.parametrize("row", TOKEN_ROWS.values(), ids=TOKEN_ROWS.keys())
def test_token_endpoint(row: Row, make_hook: HookFactory, odc_emulator: Any, matrix: Matrix) -> None:
    run_row(row, make_hook, odc_emulator, matrix)


@pytest.mark.parametrize("row", API_ROWS.values(), ids=API_ROWS.keys())
def test_api(row: Row, make_hook: HookFactory, odc_emulator: Any, matrix: Matrix) -> None:
    run_row(row, make_hook, odc_emulator, matrix)


def test_api_401_once_tokens_revoked(make_hook: HookFactory, odc_emulator: Any, matrix: Matrix) -> None:
    """The API client's tokens are revoked under a warm hook: exactly one new exchange, then success."""
    hook = make_hook()
    assert hook.request("GET", ENVIRONMENTS).status_code == 200
    refused = hook.get_access_token()
    odc_emulator.revoke_tokens()
    before = odc_emulator.stats()
    assert hook.request("GET", ENVIRONMENTS).status_code == 200
    after = odc_emulator.stats()
    delta = {key: after[key] - before[key] for key in ("token_requests", "token_exchanges", "api_calls_total")}
    matrix.record("ok", delta)
    assert delta == {"token_requests": 1, "token_exchanges": 1, "api_calls_total": 2}
    assert after["unauthorized"] - before["unauthorized"] == 1
    assert after["discovery_requests"] == 1, "the refresh reuses the known token endpoint"
    assert hook.get_access_token() != refused
    assert make_hook.sleeps == []


def test_portal_connection_refused(make_hook: HookFactory, odc_emulator: Any, matrix: Matrix) -> None:
    """Nothing listens at the portal address: retried (connect errors are surely not processed), then explained."""
    hook = make_hook(host=f"http://127.0.0.1:{closed_port()}", max_retries=2)
    with pytest.raises(OdcAuthError) as caught:
        hook.request("GET", ENVIRONMENTS)
    matrix.record(outcome_of(caught.value), odc_emulator.stats())
    message = str(caught.value)
    assert "OIDC discovery" in message and "ConnectionError" in message and "Portal domain (host)" in message
    assert len(make_hook.sleeps) == 2
    assert odc_emulator.stats()["token_requests"] == odc_emulator.stats()["api_calls_total"] == 0


# -- non-idempotent requests -----------------------------------------------------------------------------


def test_post_whose_response_times_out_is_not_sent_again(
    make_hook: HookFactory, odc_emulator: Any, matrix: Matrix
) -> None:
    """ODC may have acted on a POST whose answer never came: the hook must not send it a second time."""
    hook = make_hook(extra={"timeout": 1})
    hook.get_access_token()
    odc_emulator.add_fault(target="api", latency=2.0, count=1, path_prefix=SEARCH)
    with pytest.raises(OdcApiError) as caught:
        hook.request("POST", SEARCH, json={"assetVersionFilters": []})
    # A re-send would have happened inside request() (retries are synchronous), so it is counted by now;
    # the delayed first handler must end before counting, and before the next test resets the emulator.
    wait_until_answered(odc_emulator)
    stats = odc_emulator.stats()
    matrix.record(outcome_of(caught.value), stats)
    assert "ReadTimeout" in str(caught.value) and "not sent again" in str(caught.value)
    assert caught.value.status is None
    assert stats["api_calls"] == {SEARCH_CALL: 1}
    assert (stats["token_requests"], stats["token_exchanges"]) == (1, 1)
    assert make_hook.sleeps == []


@pytest.mark.parametrize(
    ("status", "retry_after", "sent", "sleeps"),
    [
        pytest.param(503, None, 1, [], id="POST-503-not-resent"),
        pytest.param(500, None, 1, [], id="POST-500-not-resent"),
        pytest.param(429, "1", 2, [1.0], id="POST-429-resent-once-429-means-not-processed"),
        pytest.param(429, None, 2, [61.5], id="POST-429-no-retry-after-resent-after-the-minute"),
    ],
)
def test_post_status_faults(
    status: int,
    retry_after: str | None,
    sent: int,
    sleeps: list[float],
    make_hook: HookFactory,
    odc_emulator: Any,
    matrix: Matrix,
) -> None:
    hook = make_hook()
    hook = OdcHook("odc_default", retry_policy=replace(hook.retry_policy, uniform=lambda low, high: 1.5))
    hook.get_access_token()
    odc_emulator.add_fault(target="api", status=status, count=1, retry_after=retry_after, path_prefix=SEARCH)
    with pytest.raises(OdcApiError) as caught:
        hook.request("POST", SEARCH, json={"assetVersionFilters": []})
    stats = odc_emulator.stats()
    matrix.record(outcome_of(caught.value), stats)
    # Not re-sent: the injected status; re-sent after the 429: the emulator's 404 for its unimplemented route.
    assert caught.value.status == (status if sent == 1 else 404)
    assert stats["api_calls"] == {SEARCH_CALL: sent}
    assert stats["token_exchanges"] == 1
    assert make_hook.sleeps == sleeps
