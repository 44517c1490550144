"""Fault matrix, part 6: inputs that are numbers, strings and ports in name only, and malformed redirects.

Connection fields come from a real Airflow connection (``AIRFLOW_CONN_*`` JSON, which Python's json
reads ``NaN`` and ``Infinity`` from); each refusal is an ``OdcConfigError`` naming the connection and the
field, raised before anything is sent. A token endpoint's ``expires_in`` of ``"Infinity"``, 1e308 or
0.0001 is an ``OdcAuthError`` (no token is used). A 3xx whose ``Location`` does not parse is an
``OdcApiError`` (or ``OdcAuthError`` from the token endpoint), sync and async, never a bare ``ValueError``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_odc.exceptions import OdcApiError, OdcAuthError, OdcConfigError
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.hooks.odc_async import OdcAsyncHook
from airflow_provider_odc.retries import RetryPolicy
from devtools.servers import LoopbackServer, MisbehavingRoutes

from ._support import HookFactory, Matrix, outcome_of

ENVIRONMENTS = "/api/portfolios/v2/environments"

BAD_FIELDS = {
    "extra-refresh_margin_seconds-nan": (
        {"extra": {"refresh_margin_seconds": float("nan")}},
        "'refresh_margin_seconds'",
    ),
    "extra-timeout-1e12": ({"extra": {"timeout": 1e12}}, "'timeout'"),
    "extra-timeout-infinity": ({"extra": {"timeout": float("inf")}}, "'timeout'"),
    "extra-max_retries-nan": ({"extra": {"max_retries": float("nan")}}, "'max_retries'"),
    "extra-max_retries-true": ({"extra": {"max_retries": True}}, "'max_retries'"),
    "extra-cache_secret-12345": ({"extra": {"cache_secret": 12345}}, "'cache_secret'"),
    "extra-ca_bundle_path-list": ({"extra": {"ca_bundle_path": ["x"]}}, "'ca_bundle_path'"),
    "extra-verify-missing-bundle": ({"extra": {"verify": "/no/such/ca.pem"}}, "'verify'"),
    "port-70000": ({"port": 70000}, "Port 70000"),
    "port-minus-1": ({"port": -1}, "Port -1"),
}


@pytest.mark.parametrize(("fields", "names"), BAD_FIELDS.values(), ids=BAD_FIELDS.keys())
def test_connection_field_in_name_only(
    fields: dict[str, Any], names: str, make_hook: HookFactory, odc_emulator: Any, matrix: Matrix
) -> None:
    with pytest.raises(OdcConfigError) as caught:
        make_hook(**fields).request("GET", ENVIRONMENTS)
    stats = odc_emulator.stats()
    matrix.record(outcome_of(caught.value), stats)
    message = str(caught.value)
    assert message.startswith("ODC connection 'odc_default': ") and names in message, message
    assert caught.value.__suppress_context__ or caught.value.__context__ is None, "no internals in the traceback"
    assert (stats["discovery_requests"], stats["token_requests"], stats["api_calls_total"]) == (0, 0, 0)


@pytest.fixture
def portal(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    with LoopbackServer(wrap=MisbehavingRoutes) as server:
        monkeypatch.setenv("AIRFLOW_CONN_ODC_DEFAULT", json.dumps(server.connection()))
        yield server


def routes_of(portal: LoopbackServer) -> MisbehavingRoutes:
    assert isinstance(portal.app, MisbehavingRoutes)
    return portal.app


def hook() -> OdcHook:
    return OdcHook(retry_policy=RetryPolicy(max_retries=2, sleep=lambda seconds: None))


EXPIRES_IN = {
    "expires_in-string-Infinity": b'"Infinity"',
    "expires_in-bare-Infinity": b"Infinity",
    "expires_in-1e308": b"1e308",
    "expires_in-0.0001": b"0.0001",
    "expires_in-true": b"true",
}


@pytest.mark.parametrize("expires_in", EXPIRES_IN.values(), ids=EXPIRES_IN.keys())
def test_token_lifetime_in_name_only(expires_in: bytes, portal: LoopbackServer, matrix: Matrix) -> None:
    body = b'{"access_token": "a-token-never-used", "token_type": "Bearer", "expires_in": ' + expires_in + b"}"
    canned = routes_of(portal).answer(portal.state.token_path, 200, body)
    with pytest.raises(OdcAuthError) as caught:
        hook().request("GET", ENVIRONMENTS)
    stats = {**portal.stats(), "token_requests": canned.hits}
    matrix.record(outcome_of(caught.value), stats)
    assert "expires_in" in str(caught.value) and "from 1 to 604800" in str(caught.value)
    assert str(caught.value).startswith("ODC connection 'odc_default': ")
    assert "a-token-never-used" not in str(caught.value)
    assert (canned.hits, stats["api_calls_total"]) == (1, 0), "an unusable lifetime is not retried or used"


MALFORMED_LOCATIONS = {
    "3xx-location-invalid-ipv6": "http://[::1/next",
    "3xx-location-port-not-a-number": "http://127.0.0.1:abc/next",
    "3xx-location-port-out-of-range": "http://127.0.0.1:99999/next",
    "3xx-location-scheme-relative-invalid-ipv6": "//[::1/next",
}


@pytest.mark.parametrize("location", MALFORMED_LOCATIONS.values(), ids=MALFORMED_LOCATIONS.keys())
def test_api_redirect_with_a_malformed_location(location: str, portal: LoopbackServer, matrix: Matrix) -> None:
    canned = routes_of(portal).answer("/api/moved", 302, headers={"Location": location})
    with pytest.raises(OdcApiError) as caught:
        hook().request("GET", "/api/moved")
    matrix.record(outcome_of(caught.value), {**portal.stats(), "api_calls_total": canned.hits})
    assert caught.value.status == 302 and "which is not followed" in str(caught.value)
    assert canned.hits == 1, "a redirect is an answer: not retried"

    async def poll() -> None:
        async with OdcAsyncHook(retry_policy=RetryPolicy(max_retries=2)) as async_hook:
            await async_hook.get("/api/moved")

    with pytest.raises(OdcApiError) as async_caught:
        asyncio.run(poll())
    assert async_caught.value.status == 302 and "which is not followed" in str(async_caught.value)
    assert canned.hits == 2, "the async hook does not retry it either"


def test_token_endpoint_redirect_with_a_malformed_location(portal: LoopbackServer, matrix: Matrix) -> None:
    canned = routes_of(portal).answer(portal.state.token_path, 307, headers={"Location": "http://[::1/token"})
    with pytest.raises(OdcAuthError) as caught:
        hook().request("GET", ENVIRONMENTS)
    matrix.record(outcome_of(caught.value), {**portal.stats(), "token_requests": canned.hits})
    assert "redirect (HTTP 307)" in str(caught.value) and canned.hits == 1
