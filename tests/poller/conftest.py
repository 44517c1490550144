"""Shared-poller tests: many deployment operations in the emulator and a way to drive many triggers at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import pytest

from airflow_provider_odc.api import deployments

T = TypeVar("T")
LIST_CALLS = "list"
LIST_ROUTE = f"GET {deployments.DEPLOYMENTS}"
BY_KEY_ROUTE = f"GET {deployments.DEPLOYMENTS}/{{operationKey}}"


@pytest.fixture
def poller_emulator(odc_emulator: Any, odc_connection: str) -> Any:
    """Rate limits lifted: the tests run ODC's 5 s schedule at 0.2 s, which no per-minute window allows.
    What they assert is the number of requests, which the limits would only blur with 429 retries."""
    odc_emulator.configure(rate_limits=False)
    return odc_emulator


def release_app(emulator: Any) -> dict[str, Any]:
    for asset in emulator.inventory()["assets"]:
        builds = [b for b in asset["builds"] if b["revision"] == asset["latestRevision"]]
        release = [b for b in builds if b["buildType"] == "Release" and b["status"] == "Finished"]
        if asset["assetType"] == "WebApplication" and asset["deployable"] and release:
            return {**asset, "buildKey": release[0]["buildKey"]}
    raise AssertionError("the emulator seed has no deployable app with a Release build")


def start_deployments(
    emulator: Any, count: int, *, durations: Iterable[float], fail: bool = False, stage: str | None = None
) -> list[str]:
    """``count`` Deploy operations lasting ``durations`` (cycled), started in the emulator's state directly:
    setup, not what a test measures (POSTs are limited to 10 a minute)."""
    app = release_app(emulator)
    stage = stage or next(iter(emulator.inventory()["environments"].values()))
    if fail:
        emulator.fail_next("deploy", count)
    cycle = list(durations)
    keys = []
    for index in range(count):
        emulator.configure(operation_duration=cycle[index % len(cycle)])
        started = emulator.state.release.start_deployment_operation(
            "Deploy", stage, app["assetKey"], app["buildKey"], app["latestRevision"]
        )
        keys.append(str(started["key"]))
    return keys


async def first_event(trigger: Any) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")


async def drive(triggers: list[Any]) -> list[dict[str, Any]]:
    """Run every trigger's generator concurrently on this loop, as the triggerer does; their first events."""
    return list(await asyncio.gather(*(first_event(trigger) for trigger in triggers)))


async def wait_until(probe: Callable[[], T | None], attempts: int = 3000) -> T:
    """Yield to the loop until ``probe`` returns something (a bounded number of short sleeps)."""
    for _ in range(attempts):
        value = probe()
        if value:
            return value
        await asyncio.sleep(0.01)
    raise AssertionError("the awaited state never came")


def deployment_calls(emulator: Any) -> dict[str, int]:
    calls = emulator.stats()["api_calls"]
    listed, by_key = calls.get(LIST_ROUTE, 0), calls.get(BY_KEY_ROUTE, 0)
    return {LIST_CALLS: listed, "by_key": by_key, "total": listed + by_key}
