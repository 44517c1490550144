"""The trigger's async generator, driven directly against the emulator: every kind of event."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from typing import Any

import pytest

from airflow_provider_odc.cache.token_cache import TokenCache
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.triggers.odc import OdcOperationTrigger

from .conftest import first_event, web_app

BUILDS = "/api/builds/v1/build-operations"


def start_build(emulator: Any) -> str:
    app = web_app(emulator, with_release_build=False)
    body = {"assetKey": app["assetKey"], "assetRevision": app["latestRevision"], "buildType": "Release"}
    return str(OdcHook().request("POST", BUILDS, json=body).json()["buildKey"])


def trigger(key: str, **overrides: Any) -> OdcOperationTrigger:
    arguments: dict[str, Any] = {
        "odc_conn_id": "odc_default",
        "kind": "build",
        "operation_key": key,
        "end_time": time.time() + 30,
        "fast_interval": 0.05,
        "slow_interval": 0.05,
        **overrides,
    }
    return OdcOperationTrigger(**arguments)


def run(trigger: OdcOperationTrigger) -> dict[str, Any]:
    payload = asyncio.run(first_event(trigger)).payload
    json.dumps(payload)  # events are stored by Airflow: they must be JSON
    return dict(payload)


def test_success_event(fast_emulator: Any) -> None:
    key = start_build(fast_emulator)
    event = run(trigger(key))
    assert event == {"status": "success", "kind": "build", "operation_key": key, "operation_status": "Finished"}


def test_failed_event_carries_the_status_not_the_messages(fast_emulator: Any) -> None:
    fast_emulator.fail_next("build", messages=["Compilation failed"])
    key = start_build(fast_emulator)
    event = run(trigger(key))
    assert event["status"] == "failed" and event["operation_status"] == "FinishedWithErrors"
    assert "Compilation failed" not in json.dumps(event)  # the resumed task reads the messages itself


def test_timeout_event_at_the_absolute_deadline(fast_emulator: Any) -> None:
    fast_emulator.configure(build_durations={"pending": 30, "running": 30})
    key = start_build(fast_emulator)
    started = time.monotonic()
    event = run(trigger(key, end_time=time.time() + 0.5))
    assert event["status"] == "timeout" and event["operation_status"] == "Pending"
    assert 0.4 <= time.monotonic() - started < 5


def test_error_event_says_why_without_secrets(
    fast_emulator: Any, monkeypatch: pytest.MonkeyPatch, odc_connection: str
) -> None:
    key = start_build(fast_emulator)
    wrong = "wrong-secret-for-the-trigger"
    monkeypatch.setenv("AIRFLOW_CONN_ODC_WRONG", json.dumps({**fast_emulator.connection_dict(), "password": wrong}))
    event = run(trigger(key, odc_conn_id="odc_wrong"))
    assert event["status"] == "error" and "invalid_client" in event["message"]
    assert wrong not in json.dumps(event)


def test_401_in_the_trigger_refreshes_once(fast_emulator: Any) -> None:
    key = start_build(fast_emulator)
    fast_emulator.revoke_tokens()
    assert run(trigger(key))["status"] == "success"
    assert fast_emulator.stats()["token_exchanges"] == 2


def test_poll_schedule_is_fast_then_slow(fast_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """ODC's schedule, scaled down: fast polls during the first period, slow ones after it, never back."""
    import airflow_provider_odc.triggers.odc as trigger_module

    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def recording_sleep(seconds: float, *args: Any) -> None:
        caller = sys._getframe(1).f_globals.get("__name__")
        if caller == trigger_module.__name__:  # asyncio.sleep is global: keep only the trigger's own waits
            waits.append(round(seconds, 3))
        await real_sleep(seconds, *args)

    monkeypatch.setattr(asyncio, "sleep", recording_sleep)
    fast_emulator.configure(build_durations={"pending": 0.4, "running": 0.8})
    key = start_build(fast_emulator)
    run(trigger(key, fast_interval=0.05, fast_period=0.3, slow_interval=0.3, share_polls=False))  # its own polls
    assert waits[0] == 0.05 and waits[-1] == 0.3
    first_slow = waits.index(0.3)
    assert set(waits[:first_slow]) == {0.05} and set(waits[first_slow:]) == {0.3}


def test_polls_with_a_warm_token_stay_on_the_event_loop(fast_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the token in memory, a poll never waits for asgiref's single shared thread, where it would
    queue behind every other trigger's token fetch."""
    key = start_build(fast_emulator)  # leaves the token in the process-wide cache
    original = TokenCache.get
    off_the_loop: list[str] = []

    def on_the_loop_only(cache: TokenCache, *args: Any, **kwargs: Any) -> Any:
        if threading.current_thread() is not threading.main_thread():  # asyncio.run's loop runs on this one
            off_the_loop.append(threading.current_thread().name)
            raise AssertionError("the token was fetched through a worker thread although it was in memory")
        return original(cache, *args, **kwargs)

    monkeypatch.setattr(TokenCache, "get", on_the_loop_only)
    assert run(trigger(key))["status"] == "success"
    assert off_the_loop == []
    assert fast_emulator.stats()["token_exchanges"] == 1
