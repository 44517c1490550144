"""The access token and the client secret never show up in logs (DEBUG included) or error messages."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

try:
    from airflow.sdk.log import redact
except ImportError:  # Airflow 3.0
    from airflow.sdk.execution_time.secrets_masker import redact

from airflow_provider_odc.exceptions import OdcError
from airflow_provider_odc.triggers.odc import OdcOperationTrigger

from ..lifecycle.conftest import first_event, web_app

ENVIRONMENTS = "/api/portfolios/v2/environments"
ASSETS = "/api/asset-repository/v1/assets"


@pytest.fixture
def airflow_masking_off(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Switch off Airflow's own log redaction (secrets masker, JWT pattern), so the test sees what the
    provider itself writes: ``airflow dags test`` masks nothing, and a provider must not rely on it."""
    import importlib

    # Airflow 3.1+ vendors its logging helpers twice (airflow._shared and airflow.sdk._shared): patch both.
    # Airflow 3.0 has them once, in the task SDK, and switches masking with a module-level setting.
    patched = 0
    for masker_module, jwt_module in (
        ("airflow._shared.secrets_masker.secrets_masker", "airflow._shared.logging.structlog"),
        ("airflow.sdk._shared.secrets_masker.secrets_masker", "airflow.sdk._shared.logging.structlog"),
        ("airflow.sdk.execution_time.secrets_masker", "airflow.sdk.log"),
    ):
        if patched and masker_module.startswith("airflow.sdk.execution_time"):
            break  # on 3.1+ a deprecated alias of the above
        try:
            masker, jwt = importlib.import_module(masker_module), importlib.import_module(jwt_module)
        except ModuleNotFoundError:
            continue
        if hasattr(masker.SecretsMasker, "mask_secrets_in_logs"):
            monkeypatch.setattr(masker.SecretsMasker, "mask_secrets_in_logs", False)
        else:  # Airflow 3.0
            monkeypatch.setattr(importlib.import_module("airflow.settings"), "MASK_SECRETS_IN_LOGS", False)
        monkeypatch.setattr(jwt, "JWT_PATTERN", re.compile("(?!)"))
        patched += 1
    assert patched, "found none of Airflow's secrets maskers"
    yield


def test_full_flow_at_debug_leaks_nothing(
    airflow_masking_off: None,
    make_hook: Any,
    odc_emulator: Any,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: ours, requests, urllib3
    caplog.set_level(logging.DEBUG, logger="airflow.task")  # where hooks log (Airflow sets it to INFO)
    tokens: set[str] = set()
    messages: list[str] = []

    def expect_error(call: Any) -> None:
        with pytest.raises(OdcError) as caught:
            call()
        messages.extend([str(caught.value), repr(caught.value), repr(vars(caught.value))])

    hook = make_hook()
    hook.request("GET", ENVIRONMENTS)
    list(hook.paginate(ASSETS, page_size=10))
    tokens.add(hook.get_access_token())

    odc_emulator.revoke_tokens()  # 401 -> refresh -> retry
    hook.request("GET", ENVIRONMENTS)
    tokens.add(hook.get_access_token())

    odc_emulator.add_fault(target="api", status=429, count=1, retry_after="0")
    odc_emulator.add_fault(target="api", status=503, count=1)
    hook.request("GET", ENVIRONMENTS)
    expect_error(lambda: hook.request("GET", ASSETS + "/00000000-0000-0000-0000-000000000000"))
    odc_emulator.add_fault(target="api", status=401, count=2)
    expect_error(lambda: hook.request("GET", ENVIRONMENTS))
    tokens.add(hook.get_access_token())

    secret = odc_emulator.client_secret
    wrong = "wrong-but-still-a-secret-value"
    expect_error(lambda: make_hook("odc_wrong", password=wrong).request("GET", ENVIRONMENTS))
    messages.append(make_hook("odc_wrong", password=wrong).test_connection()[1])
    messages.append(make_hook().test_connection()[1])

    captured = capsys.readouterr()
    everything = "\n".join([caplog.text, captured.out, captured.err, *messages])
    assert len(tokens) == 3, "the flow should have used three different tokens"
    assert "ODC GET /api/portfolios/v2/environments -> 401" in everything, "DEBUG lines were not captured"
    assert "invalid_client" in everything
    for value in [*tokens, secret, wrong]:
        assert value not in everything
        for piece in value.split("."):  # a JWT's parts, e.g. its payload, leak as much as the whole
            assert len(piece) < 8 or piece not in everything


def test_tokens_and_secret_are_registered_with_airflows_masker(make_hook: Any, odc_emulator: Any) -> None:
    hook = make_hook(extra={"cache_secret": "separate-cache-secret"})
    token = hook.get_access_token()
    assert redact(f"token={token}") == "token=***"
    assert redact(f"secret={odc_emulator.client_secret}") == "secret=***"
    assert redact("cache=separate-cache-secret") == "cache=***"


def test_trigger_path_at_debug_leaks_nothing(
    airflow_masking_off: None,
    make_hook: Any,
    odc_emulator: Any,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The triggerer's side (OdcAsyncHook over httpx, a 401 and a new token in the trigger), with
    Airflow's redaction off: its logs, its event and its serialized arguments hold no credential."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="airflow.task")
    hook = make_hook()
    app = web_app(odc_emulator, with_release_build=False)
    body = {"assetKey": app["assetKey"], "assetRevision": app["latestRevision"], "buildType": "Release"}
    build_key = hook.request_json("POST", "/api/builds/v1/build-operations", json=body)["buildKey"]
    revoked = hook.get_access_token()
    odc_emulator.revoke_tokens()  # the trigger's first poll gets 401 and fetches a new token
    trigger = OdcOperationTrigger(
        odc_conn_id=hook.odc_conn_id,
        kind="build",
        operation_key=build_key,
        end_time=time.time() + 30,
        fast_interval=0.05,
        slow_interval=0.05,
    )
    event = asyncio.run(first_event(trigger))
    fresh = hook.get_access_token()  # the process-wide cache holds the token the trigger fetched

    captured = capsys.readouterr()
    everything = "\n".join([caplog.text, captured.out, captured.err, repr(event.payload), repr(trigger.serialize())])
    assert event.payload["status"] == "success" and fresh != revoked
    assert "(async)" in everything and "-> 401" in everything, "the async hook's DEBUG lines were not captured"
    for value in (revoked, fresh, odc_emulator.client_secret):
        assert value not in everything
        for piece in value.split("."):
            assert len(piece) < 8 or piece not in everything
