"""Lifecycle tests: a fast emulator (short builds and deployments) and a way to run operators directly.

Operators run through ``execute`` with a minimal context (only ``ti.xcom_push`` is used); the
deferrable path is driven by hand: ``execute`` raises TaskDeferred, the trigger's async generator is
run, and its event is handed to ``execute_complete``, exactly as Airflow does. End-to-end runs in a
real Airflow are in ``test_release_pipeline.py`` (dag.test) and ``tests/integration`` (scheduler).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

try:
    from airflow.sdk.exceptions import TaskDeferred
except ImportError:  # Airflow 3.0 and 3.1
    from airflow.exceptions import TaskDeferred  # type: ignore[no-redef]

from airflow_provider_odc.retries import RetryPolicy


class RecordingTI:
    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


@pytest.fixture
def fast_emulator(odc_emulator: Any, odc_connection: str) -> Any:
    odc_emulator.configure(build_durations={"pending": 0.1, "running": 0.2}, operation_duration=0.3)
    return odc_emulator


@pytest.fixture
def no_real_sleep(fast_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retry waits (Retry-After) pass on the emulator's clock instead of the test's."""
    waits: list[float] = []

    def advance(seconds: float) -> None:
        waits.append(seconds)
        fast_emulator.advance(seconds)

    from airflow_provider_odc.hooks.odc import OdcHook

    monkeypatch.setattr(
        OdcHook, "retry_policy", property(lambda hook: RetryPolicy(max_retries=3, sleep=advance)), raising=True
    )
    return waits


def run_operator(operator: Any) -> tuple[Any, RecordingTI]:
    """Run an operator like Airflow would, following a deferral through its trigger."""
    ti = RecordingTI()
    context: Any = {"ti": ti}
    try:
        return operator.execute(context), ti
    except TaskDeferred as deferred:
        event = asyncio.run(first_event(deferred.trigger))
        return getattr(operator, deferred.method_name)(context, event.payload), ti


async def first_event(trigger: Any) -> Any:
    async for event in trigger.run():
        return event
    raise AssertionError("the trigger ended without an event")


def web_app(emulator: Any, *, with_release_build: bool) -> dict[str, Any]:
    """A deployable seeded app whose latest revision has (or has not) a finished Release build."""
    for asset in emulator.inventory()["assets"]:
        if asset["assetType"] != "WebApplication" or not asset["deployable"]:
            continue
        has_build = any(
            b["revision"] == asset["latestRevision"] and b["buildType"] == "Release" and b["status"] == "Finished"
            for b in asset["builds"]
        )
        if has_build == with_release_build:
            return dict(asset)
    raise AssertionError("the emulator seed has no such app")
