"""OdcAsyncHook (the triggers' hook) when the portal cannot be reached or answers an error status.

Real sockets: the emulator for 500/403/404, a closed loopback port for a transport error. Each ends
in an OdcApiError that names the connection, the call and the status, says what to do, and holds no
token or secret; what is safe to retry is retried (counted by the retry warnings; the async retries
sleep with ``asyncio.sleep``, so the backoff is made short), the rest is not.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from typing import Any

import pytest

from airflow_provider_odc.auth.token import AccessToken
from airflow_provider_odc.cache.envelope import CachedToken
from airflow_provider_odc.cache.stores import variable_key_for
from airflow_provider_odc.exceptions import OdcApiError
from airflow_provider_odc.hooks.odc import OdcHook, envelope_codec_for
from airflow_provider_odc.hooks.odc_async import OdcAsyncHook
from airflow_provider_odc.retries import RetryPolicy
from airflow_provider_odc.settings import OdcConnectionSettings
from devtools.hook_factory import HookFactory

from ..faults._support import DictStore

ENVIRONMENTS = "/api/portfolios/v2/environments"
MISSING_ASSET = "/api/asset-repository/v1/assets/00000000-0000-0000-0000-000000000000"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def async_get(endpoint: str, caplog: pytest.LogCaptureFixture) -> tuple[OdcApiError, list[str]]:
    """GET through a fresh OdcAsyncHook (as a trigger does): the OdcApiError it must raise, and the
    retry warnings it logged."""

    async def call() -> None:
        async with OdcAsyncHook(retry_policy=RetryPolicy(max_retries=2, backoff_base=0.01)) as hook:
            await hook.get(endpoint)

    with caplog.at_level(logging.WARNING), pytest.raises(OdcApiError) as caught:
        asyncio.run(call())
    retries = [r.getMessage() for r in caplog.records if f"ODC GET {endpoint} got " in r.getMessage()]
    return caught.value, retries


def assert_clean(error: OdcApiError, *secrets: str) -> None:
    text = "\n".join([str(error), repr(error), repr(vars(error))])
    assert str(error).startswith("ODC connection 'odc_default': GET ")
    for secret in secrets:
        assert secret not in text


@pytest.mark.parametrize(
    ("status", "endpoint", "calls", "words"),
    [
        (500, ENVIRONMENTS, 3, ("HTTP 500",)),  # a GET is idempotent: retried, then reported
        (403, ENVIRONMENTS, 1, ("HTTP 403", "permission")),
        (404, MISSING_ASSET, 1, ("HTTP 404", "was not found")),
    ],
)
def test_error_statuses_become_a_clear_odc_api_error(
    status: int,
    endpoint: str,
    calls: int,
    words: tuple[str, ...],
    make_hook: HookFactory,
    odc_emulator: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = make_hook().get_access_token()  # the process-wide token the trigger will reuse
    if status != 404:
        odc_emulator.add_fault(target="api", status=status, count=10)
    error, retries = async_get(endpoint, caplog)
    assert error.status == status and error.method == "GET" and error.path == endpoint
    assert all(word in str(error) for word in words), str(error)
    assert_clean(error, token, odc_emulator.client_secret)
    stats = odc_emulator.stats()
    assert stats["api_calls_total"] == calls and len(retries) == calls - 1
    assert stats["token_exchanges"] == 1 and stats["unauthorized"] == 0


def test_a_portal_that_cannot_be_reached(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing listens at the portal: connection errors are retried (a GET), then explained."""
    port = closed_port()
    connection = {"conn_type": "odc", "host": f"http://127.0.0.1:{port}", "login": "client", "password": "s3cret-value"}
    monkeypatch.setenv("AIRFLOW_CONN_ODC_DEFAULT", json.dumps(connection))
    # A token the tasks left in the Variable, so the trigger goes straight to its GET.
    settings = OdcConnectionSettings("odc_default", f"http://127.0.0.1:{port}", "client", "s3cret-value")
    token = AccessToken("a-cached-token-value-for-the-trigger", "Bearer", time.time() + 3600, time.time())
    variables[variable_key_for("odc_default")] = envelope_codec_for(settings).seal(
        CachedToken(token, f"http://127.0.0.1:{port}/token")
    )
    error, retries = async_get(ENVIRONMENTS, caplog)
    assert error.status is None and error.path == ENVIRONMENTS
    assert "ConnectError" in str(error) and "triggerer can reach the portal" in str(error)
    assert len(retries) == 2 and all("ConnectError" in r for r in retries), "refused: nothing sent, retried"
    assert_clean(error, token.value, "s3cret-value")


@pytest.fixture
def variables(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values: dict[str, str] = {}
    monkeypatch.setattr(OdcHook, "token_store", lambda key: DictStore(values, key))
    return values
