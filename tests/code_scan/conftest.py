"""Code scanning tests: operators run against the emulator over loopback sockets, the deferrable path driven
by hand (``execute`` raises TaskDeferred, the real trigger runs, its event and the deferral's kwargs go to
``execute_complete``, as Airflow does)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

try:
    from airflow.sdk.exceptions import TaskDeferred
except ImportError:  # Airflow 3.0 and 3.1
    from airflow.exceptions import TaskDeferred  # type: ignore[no-redef]

SPEEDY = {"fast_interval": 0.05, "fast_period": 30.0, "slow_interval": 0.05}


class RecordingTI:
    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


@pytest.fixture
def fast_emulator(odc_emulator: Any, odc_connection: str) -> Any:
    odc_emulator.configure(build_durations={"pending": 0.1, "running": 0.2}, operation_duration=0.3)
    return odc_emulator


def run_operator(operator: Any) -> tuple[Any, RecordingTI, list[Any]]:
    """Run an operator like Airflow would; returns its result, its XComs and the deferrals it went through."""
    ti = RecordingTI()
    context: Any = {"ti": ti}
    deferrals: list[Any] = []
    try:
        return operator.execute(context), ti, deferrals
    except TaskDeferred as deferred:
        deferrals.append(deferred)
        event = asyncio.run(first_event(deferred.trigger))
        resumed = getattr(operator, deferred.method_name)(context, event.payload, **(deferred.kwargs or {}))
        return resumed, ti, deferrals


async def first_event(trigger: Any) -> Any:
    async for event in trigger.run():
        return event
    raise AssertionError("the trigger ended without an event")


def app_with_builds(emulator: Any, asset_type: str = "WebApplication") -> dict[str, Any]:
    return dict(next(a for a in emulator.inventory()["assets"] if a["assetType"] == asset_type and a["builds"]))
