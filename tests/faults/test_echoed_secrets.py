"""Fault matrix, part 7: servers that echo the client secret or the bearer token back, in every encoding.

A token endpoint or an API (or a proxy in front of it) may quote what it received: the form field as
sent (percent-encoded in either case, ``+`` for a space), decoded, JSON-escaped (``\\/``, ``\\uXXXX``),
as HTML, or the Basic credentials ``base64(client_id:secret)``. Each row serves such an echo in every
field the provider puts in a message (OAuth ``error`` and ``error_description``; ProblemDetails
``title``, ``detail``, ``errorCode`` and ``traceId``; a 3xx ``Location``; an operation's messages; a
trigger's status poll) and asserts that no spelling of the secret or the token appears in the exception
text, its repr, its attributes, its ``__cause__``/``__context__`` chain, the DEBUG logs or the trigger's
event, with Airflow's own redaction switched off (``airflow_masking_off``).
"""

from __future__ import annotations

import asyncio
import base64
import html
import json
import logging
import re
import time
from collections.abc import Iterator
from urllib.parse import quote, quote_plus

import pytest

from airflow_provider_odc.exceptions import OdcApiError, OdcAuthError, OdcError, OdcOperationFailed
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.operations import operation_kind
from airflow_provider_odc.retries import RetryPolicy
from airflow_provider_odc.triggers.odc import OdcOperationTrigger
from devtools.servers import LoopbackServer, MisbehavingRoutes

from ..hook.test_secret_hygiene import airflow_masking_off  # noqa: F401  (a fixture)
from ..lifecycle.conftest import first_event
from ._support import Matrix, outcome_of

ENVIRONMENTS = "/api/portfolios/v2/environments"
BUILD = operation_kind("build")
KEY = "0f0e0d0c-0000-4000-8000-000000000001"


def _lower_escapes(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda match: match.group().lower(), text)


def spellings(value: str, client_id: str) -> dict[str, str]:
    """``value`` as a server could echo it."""
    return {
        "plain": value,
        "percent": quote(value, safe=""),
        "percent-lower": _lower_escapes(quote(value, safe="")),
        "form": quote_plus(value),
        "form-lower": _lower_escapes(quote_plus(value)),
        "percent-twice": quote(quote(value, safe=""), safe=""),
        "json-escaped": json.dumps(value)[1:-1].replace("/", "\\/"),
        "json-unicode": "".join(f"\\u{ord(char):04x}" for char in value),
        "basic-auth": base64.b64encode(f"{client_id}:{value}".encode()).decode(),
        "html": html.escape(value),
        "html-numeric": "".join(f"&#{ord(char)};" for char in value),
    }


SPELLINGS = list(spellings("x", "y"))


@pytest.fixture
def portal(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    with LoopbackServer(wrap=MisbehavingRoutes) as server:
        conn = server.connection(extra={"cache_mode": "memory"})
        monkeypatch.setenv("AIRFLOW_CONN_ODC_DEFAULT", json.dumps(conn))
        yield server


@pytest.fixture
def debug_logs(airflow_masking_off: None, caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:  # noqa: F811
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="airflow.task")
    return caplog


def routes_of(portal: LoopbackServer) -> MisbehavingRoutes:
    assert isinstance(portal.app, MisbehavingRoutes)
    return portal.app


def hook() -> OdcHook:
    return OdcHook(retry_policy=RetryPolicy(max_retries=1, sleep=lambda seconds: None))


def chain_texts(error: BaseException | None) -> list[str]:
    """str, repr and attributes of an exception and of every exception chained to it."""
    texts: list[str] = []
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        texts += [str(error), repr(error), repr(vars(error))]
        error = error.__cause__ or error.__context__
    return texts


def assert_nothing_leaks(texts: list[str], *values: str, client_id: str) -> None:
    everything = "\n".join(texts)
    for value in values:
        for name, spelled in spellings(value, client_id).items():
            assert spelled not in everything, f"{name} spelling of a credential leaked:\n{everything[:3000]}"
        for piece in value.split("."):  # a JWT's parts leak as much as the whole
            assert len(piece) < 8 or piece not in everything, f"a part of a credential leaked:\n{everything[:3000]}"


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_token_endpoint_echoes_the_secret(
    spelling: str, portal: LoopbackServer, debug_logs: pytest.LogCaptureFixture, matrix: Matrix
) -> None:
    secret, client_id = portal.state.config().client_secret, portal.state.client_id
    echo = spellings(secret, client_id)[spelling]
    body = {"error": echo, "error_description": f"client_secret={echo} is not valid for {client_id}"}
    canned = routes_of(portal).answer(portal.state.token_path, 401, json.dumps(body).encode())
    with pytest.raises(OdcAuthError) as caught:
        hook().request("GET", ENVIRONMENTS)
    matrix.record(
        outcome_of(caught.value),
        {**portal.stats(), "token_requests": canned.hits},
        row=f"token-error-echoes-secret-{spelling}",
    )
    assert "***" in str(caught.value) and "was refused (HTTP 401)" in str(caught.value)
    assert caught.value.oauth_error is not None and "***" in caught.value.oauth_error
    assert_nothing_leaks([*chain_texts(caught.value), debug_logs.text], secret, client_id=client_id)


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_api_problem_details_echo_the_token_and_the_secret(
    spelling: str, portal: LoopbackServer, debug_logs: pytest.LogCaptureFixture, matrix: Matrix
) -> None:
    secret, client_id = portal.state.config().client_secret, portal.state.client_id
    api = hook()
    token = api.get_access_token()
    echoes = f"Bearer {spellings(token, client_id)[spelling]} / {spellings(secret, client_id)[spelling]}"
    problem = {"title": f"T {echoes}", "detail": f"D {echoes}", "errorCode": f"E {echoes}", "traceId": f"X {echoes}"}
    canned = routes_of(portal).answer(ENVIRONMENTS, 400, json.dumps(problem).encode(), "application/problem+json")
    with pytest.raises(OdcApiError) as caught:
        api.request("GET", ENVIRONMENTS)
    matrix.record(
        outcome_of(caught.value),
        {**portal.stats(), "api_calls_total": canned.hits},
        row=f"problem-details-echo-{spelling}",
    )
    assert caught.value.status == 400 and "failed with HTTP 400: T " in str(caught.value)
    assert all("***" in text for text in (caught.value.title, caught.value.detail, caught.value.error_code))
    assert_nothing_leaks([*chain_texts(caught.value), debug_logs.text], token, secret, client_id=client_id)


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_api_redirect_location_echoes_the_token(
    spelling: str, portal: LoopbackServer, debug_logs: pytest.LogCaptureFixture
) -> None:
    client_id = portal.state.client_id
    api = hook()
    token = api.get_access_token()
    location = f"{portal.base_url}/login?access_token={spellings(token, client_id)[spelling]}"
    routes_of(portal).answer("/api/moved", 302, headers={"Location": location})
    with pytest.raises(OdcApiError) as caught:
        api.request("GET", "/api/moved")
    assert caught.value.status == 302 and portal.base_url in str(caught.value)
    assert_nothing_leaks([*chain_texts(caught.value), debug_logs.text], token, client_id=client_id)


def test_operation_messages_echo_the_token(portal: LoopbackServer, debug_logs: pytest.LogCaptureFixture) -> None:
    secret, client_id = portal.state.config().client_secret, portal.state.client_id
    api = hook()
    token = api.get_access_token()
    items = [
        {"severity": "Error", "message": f"{name}: {spelled} and {spellings(secret, client_id)[name]}"}
        for name, spelled in spellings(token, client_id).items()
    ]
    body = {"results": items, "page": {"nextPageOffset": None, "totalResults": len(items)}}
    routes_of(portal).answer(BUILD.path(KEY), 200, json.dumps({"status": "FinishedWithErrors"}).encode())
    routes_of(portal).answer(str(BUILD.messages_path).format(key=KEY), 200, json.dumps(body).encode())
    error = OdcOperationFailed("build", KEY, "FinishedWithErrors", api.operation_errors(BUILD, KEY))
    assert len(error.messages) == len(items) and all("***" in line for line in error.messages)
    assert_nothing_leaks([*chain_texts(error), debug_logs.text], token, secret, client_id=client_id)


@pytest.mark.parametrize("answer", ["problem-details", "status-field"])
def test_trigger_events_carry_no_echo(
    answer: str, portal: LoopbackServer, debug_logs: pytest.LogCaptureFixture, matrix: Matrix
) -> None:
    """Airflow stores trigger events unmasked: an echo in an error or a status must be scrubbed first."""
    secret, client_id = portal.state.config().client_secret, portal.state.client_id
    token = hook().get_access_token()  # the process-wide cache: the trigger polls with this token
    echoes = " ".join(f"{spellings(token, client_id)[name]} {spellings(secret, client_id)[name]}" for name in SPELLINGS)
    if answer == "problem-details":
        body, status = {"title": "Bad", "detail": echoes, "traceId": echoes[:400]}, 400  # the latter cut short
    else:
        body, status = {"status": echoes}, 200  # never a terminal status: the trigger times out
    canned = routes_of(portal).answer(BUILD.path(KEY), status, json.dumps(body).encode())
    trigger = OdcOperationTrigger(
        odc_conn_id="odc_default",
        kind="build",
        operation_key=KEY,
        end_time=time.time() + 0.3,
        fast_interval=0.05,
        slow_interval=0.05,
    )
    event = asyncio.run(first_event(trigger))
    payload = json.dumps(event.payload)
    matrix.record(
        f"event {event.payload['status']}",
        {**portal.stats(), "api_calls_total": canned.hits},
        row=f"trigger-event-echo-{answer}",
    )
    assert event.payload["status"] == ("error" if answer == "problem-details" else "timeout")
    assert "***" in payload, payload
    assert_nothing_leaks([payload, repr(event), debug_logs.text], token, secret, client_id=client_id)


def test_transport_error_text_keeps_no_credential() -> None:
    """requests' own text quotes the URL (with its query); the message keeps only the scrubbed reason."""
    import requests

    from airflow_provider_odc.auth.transport import transport_failure

    secret = "s3cret+/=&value"
    try:
        requests.get("http://127.0.0.1:9/x", params={"client_secret": secret, "q": secret}, timeout=2)
    except requests.RequestException as exc:
        assert quote_plus(secret) in str(exc), "the URL with its query is in requests' text"
        failure = transport_failure(exc, [secret])
    else:
        pytest.fail("port 9 (discard) answered")
    assert failure.startswith("ConnectionError (") and "Connection refused" in failure
    assert_nothing_leaks([failure], secret, client_id="id")


def test_errors_raised_for_transport_failures_chain_nothing(portal: LoopbackServer) -> None:
    """The hook's transport error is raised outside the except block: no requests exception rides along."""
    api = hook()
    api.get_access_token()
    portal.stop()
    with pytest.raises(OdcError) as caught:
        api.request("GET", ENVIRONMENTS, params={"client_secret": portal.state.config().client_secret})
    assert caught.value.__context__ is None and caught.value.__cause__ is None
    assert "ConnectionError (" in str(caught.value)


def test_a_polled_status_echo_stays_out_of_the_sensor_log(
    portal: LoopbackServer, debug_logs: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """The sensor (and the worker-side poll) logs the status ODC sent: scrubbed like every server text."""
    from airflow_provider_odc.sensors.odc import OdcOperationSensor

    secret, client_id = portal.state.config().client_secret, portal.state.client_id
    token = hook().get_access_token()
    echo = f"Running {spellings(token, client_id)['json-unicode']} {spellings(secret, client_id)['form']}"
    routes_of(portal).answer(BUILD.path(KEY), 200, json.dumps({"status": echo}).encode())
    sensor = OdcOperationSensor(task_id="wait", kind="build", operation_key=KEY)
    assert sensor.poke(context={}) is False  # type: ignore[arg-type]
    captured = capsys.readouterr()  # operators log through structlog to the console
    logs = "\n".join([debug_logs.text, captured.out, captured.err])
    assert f"ODC build {KEY} is Running *** ***." in logs, "the sensor's log line was not captured"
    assert_nothing_leaks([logs], token, secret, client_id=client_id)
