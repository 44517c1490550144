"""Fault matrix, part 5: answers that are huge (20 MB) or not JSON where JSON is due.

The emulator app is served with canned answers in front of some routes (``MisbehavingRoutes``), so
discovery, the token endpoint or an API route can misbehave while the rest stays real. The hook must
fail with a short, clear ``OdcError`` (never a crash, never the body in the message).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from airflow_provider_odc.emulator.app import DISCOVERY_PATH
from airflow_provider_odc.exceptions import OdcApiError, OdcAuthError, OdcError
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.operators.odc import OdcApiOperator
from airflow_provider_odc.retries import RetryPolicy
from devtools.servers import LoopbackServer, MisbehavingRoutes

from ._support import Matrix, outcome_of

MB20 = 20 * 1024 * 1024
HUGE_HTML = b"<html><body>" + b"x" * MB20 + b"</body></html>"
PAGE = "/api/asset-repository/v1/assets"
MAX_MESSAGE = 1000


@pytest.fixture
def portal(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    with LoopbackServer(wrap=MisbehavingRoutes) as server:
        monkeypatch.setenv("AIRFLOW_CONN_ODC_DEFAULT", json.dumps(server.connection()))
        yield server


def routes_of(portal: LoopbackServer) -> MisbehavingRoutes:
    assert isinstance(portal.app, MisbehavingRoutes)
    return portal.app


def hook(max_retries: int = 1) -> OdcHook:
    return OdcHook(retry_policy=RetryPolicy(max_retries=max_retries, sleep=lambda seconds: None))


def counts(portal: LoopbackServer, api_hits: int = 0, token_hits: int = 0) -> dict[str, int]:
    stats = portal.stats()
    return {
        "token_requests": stats["token_requests"] + token_hits,
        "token_exchanges": stats["token_exchanges"],
        "api_calls_total": stats["api_calls_total"] + api_hits,
    }


def check_message(error: BaseException, *words: str) -> None:
    message = str(error)
    assert len(message) < MAX_MESSAGE, f"{len(message)} characters"
    assert "xxxxxxxxxx" not in message, "the body leaked into the message"
    assert all(word in message for word in words), message


def test_discovery_answers_20mb_of_html(portal: LoopbackServer, matrix: Matrix) -> None:
    canned = routes_of(portal).answer(DISCOVERY_PATH, 200, HUGE_HTML, "text/html")
    with pytest.raises(OdcAuthError) as caught:
        hook().request("GET", PAGE)
    matrix.record(outcome_of(caught.value), counts(portal))
    check_message(caught.value, "OIDC discovery", "did not return JSON")
    assert canned.hits == 1 and counts(portal) == {"token_requests": 0, "token_exchanges": 0, "api_calls_total": 0}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(b"x" * MB20, "text/plain", id="token-endpoint-200-with-20MB-not-json"),
        pytest.param(b"<html>Sign in</html>", "text/html", id="token-endpoint-200-with-html"),
        pytest.param(b'["a", "list"]', "application/json", id="token-endpoint-200-with-a-json-list"),
    ],
)
def test_token_endpoint_answers_no_json_object(
    body: bytes, content_type: str, portal: LoopbackServer, matrix: Matrix
) -> None:
    canned = routes_of(portal).answer(portal.state.token_path, 200, body, content_type)
    with pytest.raises(OdcAuthError) as caught:
        hook().request("GET", PAGE)
    matrix.record(outcome_of(caught.value), counts(portal, token_hits=canned.hits))
    check_message(caught.value, "token request", "without a JSON object")
    assert canned.hits == 1 and counts(portal)["api_calls_total"] == 0


def test_token_endpoint_error_with_a_20mb_description(portal: LoopbackServer, matrix: Matrix) -> None:
    body = json.dumps({"error": "invalid_client", "error_description": "y" * MB20}).encode()
    canned = routes_of(portal).answer(portal.state.token_path, 401, body)
    with pytest.raises(OdcAuthError) as caught:
        hook().request("GET", PAGE)
    matrix.record(outcome_of(caught.value), counts(portal, token_hits=canned.hits))
    check_message(caught.value, "invalid_client", "Client secret (password)")
    assert "y" * 301 not in str(caught.value), "the description is cut at 300 characters"
    assert canned.hits == 1, "invalid_client fails at once"


def test_api_error_with_a_20mb_body(portal: LoopbackServer, matrix: Matrix) -> None:
    canned = routes_of(portal).answer(PAGE, 500, b'{"detail": "' + b"x" * MB20 + b'"}', "application/problem+json")
    with pytest.raises(OdcApiError) as caught:
        hook(max_retries=1).request("GET", PAGE)
    matrix.record(outcome_of(caught.value), counts(portal, api_hits=canned.hits))
    check_message(caught.value, "HTTP 500")
    assert caught.value.status == 500 and canned.hits == 2  # GET: retried once


def test_api_error_with_a_60kb_problem_detail(portal: LoopbackServer, matrix: Matrix) -> None:
    problem = {"title": "Bad Request", "detail": "x" * 60_000, "errorCode": "OS-APPS-40001", "traceId": "00-ab-cd-00"}
    canned = routes_of(portal).answer(PAGE, 400, json.dumps(problem).encode(), "application/problem+json")
    with pytest.raises(OdcApiError) as caught:
        hook().request("GET", PAGE)
    matrix.record(outcome_of(caught.value), counts(portal, api_hits=canned.hits))
    assert len(str(caught.value)) < MAX_MESSAGE
    assert "OS-APPS-40001" in str(caught.value) and caught.value.error_code == "OS-APPS-40001"
    assert canned.hits == 1


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"<html>maintenance</html>", id="paginate-page-is-html"),
        pytest.param(HUGE_HTML, id="paginate-page-is-20MB-html"),
    ],
)
def test_paginate_page_that_is_not_json(body: bytes, portal: LoopbackServer, matrix: Matrix) -> None:
    canned = routes_of(portal).answer(PAGE, 200, body, "text/html")
    error: Exception | None = None
    try:
        list(hook().paginate(PAGE, page_size=100))
    except Exception as exc:
        error = exc
    matrix.record(outcome_of(error), counts(portal, api_hits=canned.hits))
    assert isinstance(error, OdcError), f"expected an OdcError, got {error!r}"
    check_message(error, PAGE, "JSON")


def test_operator_on_a_body_that_is_not_json(portal: LoopbackServer, matrix: Matrix) -> None:
    canned = routes_of(portal).answer(PAGE, 200, HUGE_HTML, "text/html")
    with pytest.raises(OdcError) as caught:
        OdcApiOperator(task_id="list_assets", endpoint=PAGE).execute(context={})  # type: ignore[arg-type]
    matrix.record(outcome_of(caught.value), counts(portal, api_hits=canned.hits))
    check_message(caught.value, PAGE, "a body that is not JSON")
    assert canned.hits == 1


def test_paginate_a_20mb_json_page(portal: LoopbackServer, matrix: Matrix) -> None:
    """A valid but huge page is read, not refused: the provider sets no size limit on JSON answers."""
    items = [{"assetKey": f"{n:08d}", "name": "x" * 200} for n in range(MB20 // 240)]
    body = json.dumps({"page": {"nextPageOffset": None, "totalResults": len(items)}, "results": items}).encode()
    assert len(body) > 20_000_000
    canned = routes_of(portal).answer(PAGE, 200, body)
    assert sum(1 for _ in hook().paginate(PAGE, page_size=1000)) == len(items)
    matrix.record(
        f"ok ({len(items)} items from one {len(body) / 1e6:.0f} MB page)", counts(portal, api_hits=canned.hits)
    )
    assert canned.hits == 1
