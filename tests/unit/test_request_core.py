"""The request core decides a call from plain values: driven here step by step, with no transport at all.

The same generator is what the requests adapter (``OdcHook.request``) and the httpx adapter
(``OdcAsyncHook.get``) drive; these tests pin the steps it asks for and the errors it makes.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from airflow_provider_odc.auth.token import AccessToken
from airflow_provider_odc.exceptions import OdcApiError, OdcUrlRefusedError
from airflow_provider_odc.request_core import NeedToken, Reply, RequestCore, Send, Wait
from airflow_provider_odc.retries import RetryPolicy, Unanswered
from airflow_provider_odc.scrub import scrub

ORIGIN = "https://acme.outsystems.dev"
OLD = AccessToken(value="old-token-value-1234", token_type="Bearer", expires_at=2e9, issued_at=1e9)
NEW = AccessToken(value="new-token-value-5678", token_type="Bearer", expires_at=2e9, issued_at=1e9)


def core(**retry: Any) -> RequestCore:
    return RequestCore(
        conn_id="odc_test",
        origin=ORIGIN,
        secrets=("client-secret",),
        retry=RetryPolicy(uniform=lambda low, high: 0.0, **retry),
        scrub=lambda text, tokens, limit: scrub(text, [*tokens, "client-secret"], limit=limit),
        reached_from="workers",
        log=logging.getLogger("test"),
    )


def reply(status: int, body: bytes = b"", **headers: str) -> Reply[None]:
    return Reply(status, {"Content-Type": "application/json", **headers}, body, None)


def steps_of(flow: Any, answers: list[Any]) -> tuple[list[Any], Any]:
    """Run ``flow``: a token for each NeedToken (OLD, then NEW), the next answer for each Send."""
    steps: list[Any] = []
    tokens = iter([OLD, NEW])
    step = next(flow)
    while True:
        steps.append(step)
        result = next(tokens) if isinstance(step, NeedToken) else answers.pop(0) if isinstance(step, Send) else None
        try:
            step = flow.send(result)
        except StopIteration as done:
            return steps, done.value


def test_a_401_asks_for_a_new_token_rejecting_the_refused_one_and_sends_once_more() -> None:
    steps, result = steps_of(core().call("get", "/api/x"), [reply(401), reply(200, b"{}")])
    assert [type(step).__name__ for step in steps] == ["NeedToken", "Send", "NeedToken", "Send"]
    assert steps[0] == NeedToken(None) and steps[2] == NeedToken(OLD)
    assert steps[1].token == OLD and steps[3].token == NEW and steps[3].url == ORIGIN + "/api/x"
    assert steps[3].method == "GET" and result.status_code == 200


def test_a_second_401_is_an_error_with_its_hint_and_no_third_try() -> None:
    with pytest.raises(OdcApiError) as caught:
        steps_of(core().call("GET", "/api/x"), [reply(401), reply(401)])
    error = caught.value
    assert (error.conn_id, error.step, error.status, error.method, error.path) == (
        "odc_test",
        "GET /api/x",
        401,
        "GET",
        "/api/x",
    )
    assert str(error).startswith("ODC connection 'odc_test': GET /api/x failed with HTTP 401.")
    assert error.hint and "Revoked" in error.hint and error.describe(named=False).startswith("GET /api/x failed")


def test_a_503_on_a_get_waits_and_retries_but_not_on_a_post() -> None:
    steps, result = steps_of(core().call("GET", "/api/x"), [reply(503, **{"Retry-After": "7"}), reply(200)])
    assert [type(step).__name__ for step in steps] == ["NeedToken", "Send", "Wait", "Send"]
    assert steps[2] == Wait(7.0) and result.status_code == 200
    with pytest.raises(OdcApiError) as caught:
        steps_of(core().call("POST", "/api/x"), [reply(503), reply(200)])
    assert caught.value.status == 503


def test_no_answer_to_a_post_says_it_was_not_sent_again() -> None:
    lost = Unanswered(TimeoutError("read timed out"), not_sent=False, transient=True)
    with pytest.raises(OdcApiError) as caught:
        steps_of(core().call("POST", "/api/x"), [lost])
    message = str(caught.value)
    assert caught.value.status is None and "TimeoutError" in message and "not sent again" in message
    assert message.endswith("Check that the workers can reach the portal.")


def test_problem_details_are_kept_scrubbed() -> None:
    body = b'{"title": "Bad", "detail": "token new-token-value-5678 refused", "errorCode": "E1", "traceId": "t"}'
    with pytest.raises(OdcApiError) as caught:
        steps_of(core().call("GET", "/api/x"), [reply(401), reply(400, body)])
    error = caught.value
    assert error.problem["errorCode"] == "E1" and error.detail == "token *** refused"
    assert "new-token-value" not in str(error) and "[errorCode E1, traceId t]" in str(error)


def test_another_origin_is_refused_before_any_step() -> None:
    with pytest.raises(OdcUrlRefusedError, match=r"^ODC connection 'odc_test': refused the endpoint"):
        next(core().call("GET", "https://evil.example/api/x"))
