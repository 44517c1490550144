"""OdcDeploymentEventTrigger in process: its ``run()`` against the emulator, deployments started in the
emulator itself (not by Airflow), as an AssetWatcher's triggerer would drive it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from airflow_provider_odc.assets import OdcEventSubject, odc_stage_asset
from airflow_provider_odc.triggers import shared_poller
from airflow_provider_odc.triggers.events import (
    Cursor,
    OdcDeploymentEventTrigger,
    cursor_variable_key,
    event_extra,
)

from ..poller.conftest import release_app, start_deployments

MASKED_WORDS = ("secret", "token", "password", "passwd", "api_key", "apikey", "auth", "bearer", "private_key")
EVENT_WAIT = 30.0  # seconds one expected event may take on a loaded machine (0.2 s scans)


class DictCursorStore:
    """The ``CursorStore`` contract on a dict shared by the triggers of a test (Airflow's ``Variable.set``
    works only inside a running task or triggerer; the real-scheduler test uses the real Variable)."""

    def __init__(self, key: str, shelf: dict[str, str]) -> None:
        self.key, self.shelf, self.writes = key, shelf, 0

    async def read(self) -> str | None:
        return self.shelf.get(self.key)

    async def write(self, value: str) -> None:
        self.writes += 1
        self.shelf[self.key] = value


@pytest.fixture
def emulator(odc_emulator: Any, odc_connection: str) -> Any:
    odc_emulator.configure(rate_limits=False)  # 0.2 s scans: what is asserted is counts, not pacing
    return odc_emulator


def stage_of(emulator: Any) -> str:
    return str(next(iter(emulator.inventory()["environments"].values())))


def trigger(stage: str, shelf: dict[str, str], **kwargs: Any) -> OdcDeploymentEventTrigger:
    built = OdcDeploymentEventTrigger(stage_key=stage, poll_interval=0.2, **kwargs)
    built.cursor_store = DictCursorStore(built.cursor_store.key, shelf)
    return built


async def next_event(events: Any) -> dict[str, Any]:
    event = await asyncio.wait_for(events.__anext__(), EVENT_WAIT)
    return dict(event.payload)


class Collector:
    """Drives a trigger's ``run()`` as the triggerer does: takes each event and asks for the next at once
    (so the code after each ``yield``, the cursor write, runs); ``stop`` cancels it mid-wait, like a restart."""

    def __init__(self, built: OdcDeploymentEventTrigger) -> None:
        self.events: list[dict[str, Any]] = []
        self.task = asyncio.ensure_future(self._drive(built))

    async def _drive(self, built: OdcDeploymentEventTrigger) -> None:
        async for event in built.run():
            self.events.append(dict(event.payload))

    def keys(self) -> list[str]:
        return [e["operation_key"] for e in self.events]

    async def until(self, count: int) -> list[str]:
        for _ in range(int(EVENT_WAIT * 100)):
            if len(self.events) >= count or self.task.done():
                break
            await asyncio.sleep(0.01)
        if self.task.done() and not self.task.cancelled() and self.task.exception():
            raise self.task.exception()  # type: ignore[misc]
        assert len(self.events) >= count, f"{len(self.events)} of {count} events came"
        return self.keys()

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def scans_pass(count: int) -> None:
    """Let ``count`` more scans of the shared poller happen (what a 'no more events' assertion waits for)."""
    (poller,) = shared_poller.pollers_on_this_loop()
    target = poller.scans + count
    for _ in range(int(EVENT_WAIT * 100)):
        if poller.scans >= target:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the shared poller stopped scanning")


async def started() -> None:
    """Let the watchers start (their cursor is 'now' on a first start) before a deployment begins."""
    await asyncio.sleep(0.5)


def test_kwargs_carry_no_secret_and_the_cursor_variable_no_masked_word(emulator: Any) -> None:
    stage = stage_of(emulator)
    watcher = OdcDeploymentEventTrigger(stage_key=stage.upper(), asset_name_pattern="Sales*")
    classpath, kwargs = watcher.serialize()
    assert classpath == "airflow_provider_odc.triggers.events.OdcDeploymentEventTrigger"
    assert kwargs == {
        "odc_conn_id": "odc_default",
        "stage_key": stage.lower(),
        "asset_keys": None,
        "asset_name_pattern": "Sales*",
        "include_failed": False,
        "poll_interval": 30.0,
    }
    text = json.dumps(kwargs)
    connection = json.loads(emulator.connection_json())
    assert connection["password"] and connection["password"] not in text  # the client secret
    assert not any(word in text.lower() for word in MASKED_WORDS)
    assert not any(word in watcher.cursor_store.key for word in MASKED_WORDS)
    # Same kwargs, same watcher: Airflow dedupes event triggers by this hash, and the cursor key follows.
    again = OdcDeploymentEventTrigger(**kwargs)
    assert OdcDeploymentEventTrigger.hash(classpath, again.serialize()[1]) == OdcDeploymentEventTrigger.hash(
        classpath, kwargs
    )
    assert again.cursor_store.key == watcher.cursor_store.key
    filters = {"assets": None, "names": "Sales*", "failed": True}
    assert cursor_variable_key("odc_default", stage, filters) != watcher.cursor_store.key


def test_one_event_per_finished_deployment_with_the_operators_extra(emulator: Any) -> None:
    stage, app, shelf = stage_of(emulator), release_app(emulator), {}

    async def scenario() -> tuple[list[str], list[dict[str, Any]]]:
        watcher = Collector(trigger(stage, shelf))
        await started()
        keys = start_deployments(emulator, 3, durations=[0.3, 0.6, 0.9], stage=stage)
        await watcher.until(3)
        await scans_pass(5)  # scans re-read the same ends (the overlap): none may come twice
        await watcher.stop()
        return keys, watcher.events

    keys, got = asyncio.run(scenario())
    assert [g["operation_key"] for g in got] == keys  # one each, oldest end first
    subject = OdcEventSubject.from_extra(got[0])
    assert subject.operation == "Deploy" and subject.asset_key == app["assetKey"] and subject.stage_key == stage
    assert subject.asset_name == app["name"] and subject.revision == app["latestRevision"]
    assert subject.build_key == app["buildKey"] and subject.stage_name
    assert subject.assets()[1] == odc_stage_asset(subject.portal, stage)  # the asset a watcher attaches to
    assert all(g["status"] == "Finished" and g["finished_at"].endswith("Z") for g in got)
    # What a consumer reads from the Asset event Airflow makes of the payload, and from an operator's.
    assert event_extra({"from_trigger": True, "payload": got[0]}) == got[0]
    assert event_extra(subject.extra) == subject.extra


def test_failed_deployments_only_with_include_failed_and_the_filters(emulator: Any) -> None:
    stage, app = stage_of(emulator), release_app(emulator)
    other_key = "0f0f0f0f-0000-4000-8000-000000000000"

    async def scenario() -> dict[str, list[str]]:
        watchers = {
            "plain": Collector(trigger(stage, {})),
            "failed_too": Collector(trigger(stage, {}, include_failed=True)),
            "this_app": Collector(trigger(stage, {}, asset_keys=[app["assetKey"].upper()], include_failed=True)),
            "other_app": Collector(trigger(stage, {}, asset_keys=[other_key], include_failed=True)),
            "by_name": Collector(trigger(stage, {}, asset_name_pattern=app["name"][:3].upper() + "*")),
            "not_by_name": Collector(trigger(stage, {}, asset_name_pattern="zz-no-such-app*", include_failed=True)),
        }
        await started()
        start_deployments(emulator, 1, durations=[0.2], fail=True, stage=stage)
        await watchers["failed_too"].until(1)
        start_deployments(emulator, 1, durations=[0.2], stage=stage)
        await watchers["failed_too"].until(2)
        await watchers["plain"].until(1)
        await scans_pass(5)
        for watcher in watchers.values():
            await watcher.stop()
        return {name: watcher.events for name, watcher in watchers.items()}  # type: ignore[misc]

    got: dict[str, Any] = asyncio.run(scenario())
    bad, good = (e["operation_key"] for e in got["failed_too"])
    assert [e["status"] for e in got["failed_too"]] == ["FinishedWithError", "Finished"]
    assert [e["operation_key"] for e in got["plain"]] == [good]  # a failed deployment only with include_failed
    assert [e["operation_key"] for e in got["this_app"]] == [bad, good]
    assert [e["operation_key"] for e in got["by_name"]] == [good]
    assert got["other_app"] == [] and got["not_by_name"] == []


def test_a_rebuilt_trigger_resumes_from_the_cursor_without_loss_or_repeat(emulator: Any) -> None:
    """A triggerer restart: the trigger is rebuilt from ``serialize()`` and finds its cursor where the
    last one left it; ends while no triggerer ran come once, those already sent never again."""
    stage, shelf = stage_of(emulator), {}
    _, kwargs = trigger(stage, shelf).serialize()

    def rebuilt() -> OdcDeploymentEventTrigger:
        again = OdcDeploymentEventTrigger(**kwargs)
        again.cursor_store = DictCursorStore(again.cursor_store.key, shelf)
        return again

    async def first_life() -> tuple[list[str], list[str]]:
        watcher = Collector(rebuilt())
        await started()
        keys = start_deployments(emulator, 2, durations=[0.2, 0.4], stage=stage)
        await watcher.until(2)
        await watcher.stop()  # the triggerer goes away while the trigger waits for the next end
        return keys, watcher.keys()

    async def second_life() -> list[str]:
        watcher = Collector(rebuilt())
        await watcher.until(2)
        await scans_pass(5)
        await watcher.stop()
        return watcher.keys()

    before, first = asyncio.run(first_life())
    assert first == before
    stored = Cursor.parse(shelf[rebuilt().cursor_store.key])
    assert stored is not None and set(before) <= set(stored.delivered)
    while_down = start_deployments(emulator, 2, durations=[0.2, 0.3], stage=stage)
    emulator.advance(1)  # both ended while no triggerer ran
    assert asyncio.run(second_life()) == while_down


def test_a_stop_between_yield_and_cursor_write_sends_that_event_again(emulator: Any) -> None:
    """The documented crash window: the event was handed over but its cursor not written. At-least-once:
    the rebuilt trigger sends that one event again, and nothing else."""
    stage, shelf = stage_of(emulator), {}

    async def first_life() -> list[str]:
        events = trigger(stage, shelf).run()
        pending = asyncio.ensure_future(next_event(events))
        await started()
        keys = start_deployments(emulator, 2, durations=[0.2, 0.6], stage=stage)
        assert (await pending)["operation_key"] == keys[0]
        await events.aclose()  # stopped at the yield: the cursor write after it never runs
        return keys

    async def second_life() -> list[str]:
        watcher = Collector(trigger(stage, shelf))
        await watcher.until(2)
        await scans_pass(5)
        await watcher.stop()
        return watcher.keys()

    keys = asyncio.run(first_life())
    assert asyncio.run(second_life()) == keys  # the first again (never acknowledged), the second once


def test_a_key_another_triggerer_already_sent_is_not_sent_again(emulator: Any) -> None:
    """HA failover: two live copies of one watcher share the cursor Variable; what one sent, the other skips."""
    stage, shelf = stage_of(emulator), {}

    async def scenario() -> tuple[list[str], list[str], list[str]]:
        first, second = Collector(trigger(stage, shelf)), Collector(trigger(stage, shelf))
        await started()
        keys = start_deployments(emulator, 2, durations=[0.2, 0.4], stage=stage)
        for _ in range(int(EVENT_WAIT * 100)):
            if len(first.events) + len(second.events) >= 2:
                break
            await asyncio.sleep(0.01)
        await scans_pass(5)
        await first.stop()
        await second.stop()
        return keys, first.keys(), second.keys()

    keys, one, other = asyncio.run(scenario())
    assert sorted(one + other) == sorted(keys)  # each end once across both copies
