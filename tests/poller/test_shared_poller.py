"""The shared poller: many deferred waits, one triggerer loop, a handful of requests per scan.

Triggers are driven as the triggerer drives them: rebuilt from ``serialize()``, their ``run()`` generators
consumed concurrently on one event loop, against the emulator over loopback. Operations are started in the
emulator's own state (setup, not what is measured: POSTs are rate limited to 10 a minute). Assertions are on
counts and outcomes, never on wall times.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from airflow_provider_odc.api import deployments
from airflow_provider_odc.triggers import shared_poller
from airflow_provider_odc.triggers.odc import OdcOperationTrigger

from .conftest import (
    LIST_CALLS,
    deployment_calls,
    drive,
    start_deployments,
    wait_until,
)

FAST = {"fast_interval": 0.2, "fast_period": 60.0, "slow_interval": 0.2}


def make_triggers(keys: list[str], **overrides: Any) -> list[OdcOperationTrigger]:
    """Triggers as Airflow stores and rebuilds them: through ``serialize()`` and JSON."""
    made = []
    for key in keys:
        arguments = {
            "odc_conn_id": "odc_default",
            "kind": "deployment",
            "operation_key": key,
            "end_time": time.time() + 120,
            "started_at": time.time() - 1,
            **FAST,
            **overrides,
        }
        path, kwargs = OdcOperationTrigger(**arguments).serialize()
        assert path == "airflow_provider_odc.triggers.odc.OdcOperationTrigger"
        made.append(OdcOperationTrigger(**json.loads(json.dumps(kwargs))))
    return made


def test_many_waits_cost_a_handful_of_requests_per_scan(poller_emulator: Any) -> None:
    keys = start_deployments(poller_emulator, 40, durations=[0.3 + 0.05 * i for i in range(40)])
    failing = start_deployments(poller_emulator, 2, durations=[0.5], fail=True)
    scans: list[int] = []

    async def scenario() -> list[dict[str, Any]]:
        events = await drive(make_triggers(keys + failing))
        scans.extend(p.scans for p in shared_poller.pollers_on_this_loop())
        return events

    events = asyncio.run(scenario())
    assert [e["operation_key"] for e in events] == keys + failing  # every wait ended, none lost
    assert all(e["status"] == "success" and e["operation_status"] == "Finished" for e in events[:40])
    assert all(e["status"] == "failed" and e["operation_status"] == "FinishedWithError" for e in events[40:])
    calls = deployment_calls(poller_emulator)
    (scan_count,) = scans
    # Per scan: one list read per terminal status (42 items fit one page), plus the safety net's few GETs.
    assert calls[LIST_CALLS] <= 2 * scan_count
    assert calls["by_key"] <= 3 + scan_count  # the bucket: 3 at once, then 6 a minute (far below a scan each)
    assert calls["total"] < 42 * 2  # less than two polls per wait, whatever the number of scans


def test_polling_alone_costs_a_request_per_wait_per_interval(poller_emulator: Any) -> None:
    """The 'before' of the test above, as a baseline: each wait polls its own operation."""
    keys = start_deployments(poller_emulator, 20, durations=[2.0])
    events = asyncio.run(drive(make_triggers(keys, share_polls=False)))
    assert all(e["status"] == "success" for e in events)
    calls = deployment_calls(poller_emulator)
    assert calls[LIST_CALLS] == 0 and calls["by_key"] >= 20  # one GET per wait at least, one per interval each


def test_a_failing_scan_loses_no_wait(poller_emulator: Any) -> None:
    """5xx and a 429 (Retry-After: 0) on the lists: retried by the hook or counted as a failed poll; all end."""
    keys = start_deployments(poller_emulator, 10, durations=[1.0])
    prefix = deployments.DEPLOYMENTS
    poller_emulator.add_fault(status=503, count=4, path_prefix=prefix, method="GET")
    poller_emulator.add_fault(status=429, count=2, path_prefix=prefix, method="GET", retry_after=0)
    events = asyncio.run(drive(make_triggers(keys)))
    assert [e["operation_key"] for e in events] == keys
    assert {e["status"] for e in events} == {"success"}
    assert poller_emulator.stats()["faults_served"] == 6


def test_scans_failing_past_the_limit_end_the_waits_as_their_own_polls_would(poller_emulator: Any) -> None:
    keys = start_deployments(poller_emulator, 3, durations=[600.0])
    poller_emulator.add_fault(status=503, count=1000, path_prefix=deployments.DEPLOYMENTS, method="GET")
    events = asyncio.run(drive(make_triggers(keys, poll_failure_limit=0)))
    assert {e["status"] for e in events} == {"error"}
    assert all("status polls in a row failed" in e["message"] and e["operation_key"] in e["message"] for e in events)


def test_a_permanent_list_error_sends_every_wait_back_to_its_own_polls(poller_emulator: Any) -> None:
    keys = start_deployments(poller_emulator, 5, durations=[0.5])
    poller_emulator.add_fault(status=403, count=1, path_prefix=deployments.DEPLOYMENTS, method="GET")
    events = asyncio.run(drive(make_triggers(keys)))
    assert {e["status"] for e in events} == {"success"}
    assert deployment_calls(poller_emulator)["by_key"] >= 5  # they polled alone after the 403


def test_a_cancelled_poller_task_is_restarted(poller_emulator: Any) -> None:
    keys = start_deployments(poller_emulator, 8, durations=[1.5])
    cancelled: list[int] = []

    async def scenario() -> list[dict[str, Any]]:
        running = asyncio.ensure_future(drive(make_triggers(keys)))
        poller = await wait_until(lambda: next(iter(shared_poller.pollers_on_this_loop()), None))
        await wait_until(lambda: poller.scans >= 1)
        assert poller._task is not None
        poller._task.cancel()
        cancelled.append(poller.crashes)
        events = await running
        cancelled.append(poller.crashes)
        return events

    events = asyncio.run(scenario())
    assert {e["status"] for e in events} == {"success"} and len(events) == 8
    assert cancelled == [0, 1]  # seen as a crash, restarted once


def test_a_poller_that_keeps_crashing_sends_waits_home(poller_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = start_deployments(poller_emulator, 4, durations=[0.5])

    async def broken_scan(self: Any, subscriptions: Any, endpoint: str) -> None:
        raise RuntimeError("a bug in the poller")

    monkeypatch.setattr(shared_poller.OperationPoller, "_scan_lists", broken_scan)
    events = asyncio.run(drive(make_triggers(keys)))
    assert {e["status"] for e in events} == {"success"}  # by their own polls
    assert deployment_calls(poller_emulator)[LIST_CALLS] == 0


def test_a_triggerer_restart_resumes_every_wait(poller_emulator: Any) -> None:
    """Stop the 'triggerer' mid-wait; the operations end while it is down; new triggers from the same
    kwargs on a new loop (a new process) find every end in their first scan."""
    keys = start_deployments(poller_emulator, 12, durations=[2.0])
    stored = [t.serialize()[1] for t in make_triggers(keys)]

    async def first_life() -> None:
        running = asyncio.ensure_future(drive([OdcOperationTrigger(**kwargs) for kwargs in stored]))
        poller = await wait_until(lambda: next(iter(shared_poller.pollers_on_this_loop()), None))
        await wait_until(lambda: poller.scans >= 1)
        running.cancel()  # the triggerer stops: every trigger is cancelled
        with pytest.raises(asyncio.CancelledError):
            await running
        assert not poller.waiting()  # every subscription was dropped in the triggers' cleanup

    asyncio.run(first_life())
    poller_emulator.advance(5)  # they all end while no triggerer runs
    scans: list[int] = []

    async def second_life() -> list[dict[str, Any]]:
        events = await drive([OdcOperationTrigger(**json.loads(json.dumps(kwargs))) for kwargs in stored])
        scans.extend(p.scans for p in shared_poller.pollers_on_this_loop())
        return events

    events = asyncio.run(second_life())
    assert [e["operation_key"] for e in events] == keys and {e["status"] for e in events} == {"success"}
    assert scans == [1]


def test_an_operation_outside_the_list_window_is_found_by_key(poller_emulator: Any) -> None:
    """``started_at`` says it began an hour after it did: ``createdDateSince`` leaves it out of every list.
    (``end_time`` is near: were the GETs by key missing, the trigger's own look at its deadline would end it.)"""
    (key,) = start_deployments(poller_emulator, 1, durations=[0.2])
    found: list[int] = []

    async def scenario() -> list[dict[str, Any]]:
        events = await drive(make_triggers([key], started_at=time.time() + 3600, end_time=time.time() + 30))
        found.extend(p.found_by_key for p in shared_poller.pollers_on_this_loop())
        return events

    events = asyncio.run(scenario())
    assert events[0]["status"] == "success" and found == [1]


def test_an_end_paged_out_of_a_scan_is_found_by_key(poller_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """More ends than a scan may page through: the waits it could not cover are checked by key first."""
    monkeypatch.setattr(deployments, "SCAN_PAGE_SIZE", 2)
    monkeypatch.setattr(shared_poller, "MAX_PAGES", 1)
    keys = start_deployments(poller_emulator, 7, durations=[0.0])
    poller_emulator.advance(1)
    found: list[int] = []

    async def scenario() -> list[dict[str, Any]]:
        events = await drive(make_triggers(keys, started_at=time.time() - 5, end_time=time.time() + 30))
        found.extend(p.found_by_key for p in shared_poller.pollers_on_this_loop())
        return events

    events = asyncio.run(scenario())
    assert {e["status"] for e in events} == {"success"} and len(events) == 7
    assert found[0] >= 1  # the first page showed 2 of the 7 ends; the others came by key


def test_builds_are_polled_by_key(poller_emulator: Any) -> None:
    """Builds have no list that fits: one GET per waiting build per scan at most, within the bucket."""
    from airflow_provider_odc.hooks.odc import OdcHook

    from .conftest import release_app

    poller_emulator.configure(build_durations={"pending": 0.2, "running": 0.6})
    app = release_app(poller_emulator)
    body = {"assetKey": app["assetKey"], "assetRevision": app["latestRevision"], "buildType": "Release"}
    hook = OdcHook()
    builds = "/api/builds/v1/build-operations"
    keys = [str(hook.request("POST", builds, json=body).json()["buildKey"]) for _ in range(5)]
    scans: list[int] = []

    async def scenario() -> list[dict[str, Any]]:
        events = await drive(make_triggers(keys, kind="build"))
        scans.extend(p.scans for p in shared_poller.pollers_on_this_loop())
        return events

    events = asyncio.run(scenario())
    assert [e["operation_key"] for e in events] == keys and {e["status"] for e in events} == {"success"}
    gets = poller_emulator.stats()["api_calls"].get("GET /api/builds/v1/build-operations/{operationKey}", 0)
    (scan_count,) = scans
    assert 5 <= gets <= 5 * scan_count


def test_the_bucket_never_lends_more_than_its_burst() -> None:
    bucket = shared_poller.TokenBucket(per_minute=6.0, burst=3.0)
    spent = 0
    for _ in range(10):
        if bucket.available() >= 1:
            bucket.spend()
            spent += 1
    assert spent == 3  # 6 a minute refills one in 10 s: none came back within this loop


def test_a_watch_gets_every_end_of_its_stage_after_its_cursor_once(poller_emulator: Any) -> None:
    """For the Assets issue's event trigger: all operations of a stage that end after a cursor, each once."""
    from airflow_provider_odc.operations import operation_kind
    from airflow_provider_odc.poll_schedule import PollSchedule

    stages = list(poller_emulator.inventory()["environments"].values())
    before = start_deployments(poller_emulator, 2, durations=[0.0])
    poller_emulator.advance(2)
    since = poller_emulator.state.now() - 0.5  # on ODC's clock: the two above ended before the cursor
    ours = start_deployments(poller_emulator, 3, durations=[0.3, 0.6, 0.9])
    elsewhere = start_deployments(poller_emulator, 2, durations=[0.3], stage=stages[1])
    delivered: list[str] = []

    async def scenario() -> None:
        poller = shared_poller.poller_for("odc_default", operation_kind("deployment"))
        watch = poller.watch(since=since, stage_key=stages[0], schedule=PollSchedule(0.2, 0.0, 0.2))
        try:
            for _ in range(3):
                delivered.append((await watch.queue.get())["key"])
            await wait_until(lambda: poller.scans > 8)  # scans that re-read the same ends (the overlap)
            late = start_deployments(poller_emulator, 1, durations=[0.2])
            delivered.append((await watch.queue.get())["key"])
            ours.extend(late)
            await wait_until(lambda: poller.scans > 12)
            while not watch.queue.empty():
                delivered.append(watch.queue.get_nowait()["key"])  # would show an end delivered twice
        finally:
            poller.unwatch(watch)

    asyncio.run(scenario())
    assert delivered == ours  # oldest end first, only this stage's, none from before the cursor
    assert not set(delivered) & set(before + elsewhere)
