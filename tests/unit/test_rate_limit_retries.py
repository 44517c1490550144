"""How long the retry policy waits after a 429, with recorded sleeps and pinned jitter (nothing really waits).

ODC promises no ``Retry-After`` and limits per minute and per organization, so a bare 429 waits out the
one-minute window plus jitter, within the call's ``rate_limit_wait`` budget; a 429 was not processed, so
POSTs are re-sent too. Every test asserts the waits the policy chose and how many requests it sent.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import requests

from airflow_provider_odc.exceptions import OdcConfigError
from airflow_provider_odc.get_provider_info import get_provider_info
from airflow_provider_odc.retries import RATE_LIMIT_MAX_RETRIES, RetryPolicy
from airflow_provider_odc.settings import OdcConnectionSettings


@dataclass
class Conn:
    conn_id: str = "odc_test"
    host: str | None = "acme.outsystems.dev"
    login: str | None = "client-id"
    password: str | None = "client-secret"
    port: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def extra_dejson(self) -> dict[str, Any]:
        return self.extra


def response(status: int, retry_after: str | None = None) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    if retry_after is not None:
        answer.headers["Retry-After"] = retry_after
    return answer


class Server:
    """Answers with the given statuses in order (the last one forever) and counts what it was sent."""

    def __init__(self, *answers: int | tuple[int, str]) -> None:
        self.answers = list(answers)
        self.sent = 0

    def _next(self) -> tuple[int, str | None]:
        answer = self.answers[min(self.sent, len(self.answers) - 1)]
        self.sent += 1
        return (answer, None) if isinstance(answer, int) else answer

    def __call__(self) -> requests.Response:
        return response(*self._next())

    async def async_send(self) -> httpx.Response:
        status, retry_after = self._next()
        return httpx.Response(status, headers={} if retry_after is None else {"Retry-After": retry_after})


def policy(sleeps: list[float], *, jitter: float = 0.25, **options: Any) -> RetryPolicy:
    """A policy whose jitter draw is ``jitter`` of its range, recording waits instead of sleeping."""
    return RetryPolicy(sleep=sleeps.append, uniform=lambda low, high: low + (high - low) * jitter, **options)


@pytest.mark.parametrize("idempotent", [True, False], ids=["GET", "POST"])
def test_a_bare_429_waits_out_the_minute_plus_jitter_for_gets_and_posts(idempotent: bool) -> None:
    sleeps: list[float] = []
    server = Server(429, 429, 201)
    answer = policy(sleeps, jitter=0.5).call(server, idempotent=idempotent, describe="ODC call")
    assert answer.status_code == 201 and server.sent == 3
    assert sleeps == [66.0, 66.0]  # 60 s window + half of the 12 s jitter range (pinned here)


def test_the_jitter_spreads_a_fleet_over_twenty_percent_of_the_window() -> None:
    draws: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        draws.append((low, high))
        return high

    sleeps: list[float] = []
    RetryPolicy(sleep=sleeps.append, uniform=uniform).call(Server(429, 200), idempotent=True, describe="x")
    assert draws == [(0.0, 12.0)] and sleeps == [72.0]


def test_real_jitter_differs_between_waits() -> None:
    sleeps: list[float] = []
    RetryPolicy(sleep=sleeps.append).call(Server(429, 429, 429, 200), idempotent=True, describe="x")
    assert len(sleeps) == 3 and all(60 <= s <= 72 for s in sleeps) and len(set(sleeps)) == 3


def test_429s_are_bounded_by_the_wait_budget_not_by_max_retries() -> None:
    sleeps: list[float] = []
    server = Server(429)
    answer = policy(sleeps, max_retries=0, rate_limit_wait=200).call(server, idempotent=False, describe="x")
    assert answer.status_code == 429  # handed back for the hook to explain
    assert sleeps == [63.0, 63.0, 63.0] and server.sent == 4  # a fourth wait would pass 200 s


def test_a_zero_budget_fails_at_the_first_429() -> None:
    sleeps: list[float] = []
    server = Server(429, 200)
    assert policy(sleeps, rate_limit_wait=0).call(server, idempotent=True, describe="x").status_code == 429
    assert sleeps == [] and server.sent == 1


def test_retry_after_is_honoured_and_counts_against_the_budget() -> None:
    sleeps: list[float] = []
    server = Server((429, "20"))
    policy(sleeps, rate_limit_wait=50).call(server, idempotent=True, describe="x")
    assert sleeps == [20.0, 20.0] and server.sent == 3


def test_retry_after_zero_forever_is_still_bounded() -> None:
    sleeps: list[float] = []
    server = Server((429, "0"))
    policy(sleeps).call(server, idempotent=True, describe="x")
    assert sleeps == [0.0] * RATE_LIMIT_MAX_RETRIES and server.sent == RATE_LIMIT_MAX_RETRIES + 1


def test_errors_still_follow_max_retries_beside_429s() -> None:
    sleeps: list[float] = []
    server = Server(503, 429, 503, 429, 503, 200)
    answer = policy(sleeps, max_retries=2).call(server, idempotent=True, describe="x")
    assert answer.status_code == 503 and server.sent == 5  # the third 503 ends it: two error retries used
    assert [s for s in sleeps if s >= 60] == [63.0, 63.0] and len(sleeps) == 4


def test_a_post_answered_5xx_is_still_not_sent_again() -> None:
    sleeps: list[float] = []
    server = Server(503, 201)
    assert policy(sleeps).call(server, idempotent=False, describe="x").status_code == 503
    assert server.sent == 1 and sleeps == []


def test_the_async_path_waits_the_same_way() -> None:
    sleeps: list[float] = []

    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    server = Server(429, (429, "5"), 200)
    retry = RetryPolicy(async_sleep=record, uniform=lambda low, high: 0.0)
    answer = asyncio.run(retry.acall(server.async_send, idempotent=True, describe="x"))
    assert answer.status_code == 200 and server.sent == 3 and sleeps == [60.0, 5.0]


def test_each_call_has_its_own_budget() -> None:
    sleeps: list[float] = []
    retry = policy(sleeps, rate_limit_wait=70)
    for _ in range(3):
        assert retry.call(Server(429, 200), idempotent=True, describe="x").status_code == 200
    assert sleeps == [63.0] * 3


# -- the connection extra ----------------------------------------------------------------------------------


def test_rate_limit_wait_seconds_defaults_to_300_and_is_read_from_the_extra() -> None:
    assert OdcConnectionSettings.from_connection(Conn()).rate_limit_wait == 300
    settings = OdcConnectionSettings.from_connection(Conn(extra={"rate_limit_wait_seconds": "90"}))
    assert settings.rate_limit_wait == 90
    assert OdcConnectionSettings.from_connection(Conn(extra={"rate_limit_wait_seconds": 0})).rate_limit_wait == 0


@pytest.mark.parametrize("value", [-1, 1801, "soon", True, [60]])
def test_rate_limit_wait_seconds_out_of_bounds_is_a_clear_error(value: Any) -> None:
    with pytest.raises(OdcConfigError) as caught:
        OdcConnectionSettings.from_connection(Conn(extra={"rate_limit_wait_seconds": value}))
    message = str(caught.value)
    assert "ODC connection 'odc_test'" in message and "rate_limit_wait_seconds" in message


def test_the_hook_builds_its_policy_from_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_odc.hooks.odc import OdcHook

    conn = {"conn_type": "odc", "host": "acme.outsystems.dev", "login": "id", "password": "pw"}
    monkeypatch.setenv("AIRFLOW_CONN_ODC_RL", json.dumps({**conn, "extra": {"rate_limit_wait_seconds": 120}}))
    retry = OdcHook("odc_rl").retry_policy
    assert (retry.rate_limit_wait, retry.max_retries) == (120, 3)


def test_the_form_offers_the_extra_under_a_name_airflow_does_not_mask() -> None:
    fields = get_provider_info()["connection-types"][0]["conn-fields"]
    spec = fields["rate_limit_wait_seconds"]
    assert spec["label"] and "429" in spec["description"] and "300" in spec["description"]
    assert spec["schema"]["minimum"] == 0 and spec["schema"]["maximum"] == 1800
    try:
        from airflow.sdk._shared.secrets_masker import should_hide_value_for_key
    except ImportError:  # Airflow 3.0 and 3.1
        from airflow.sdk.execution_time.secrets_masker import should_hide_value_for_key
    assert should_hide_value_for_key("cache_secret"), "the check itself must be able to fail"
    assert not should_hide_value_for_key("rate_limit_wait_seconds"), "not a secret: it must show in the UI"
