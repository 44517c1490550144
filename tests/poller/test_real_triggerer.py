"""Deferred deploys on a real Airflow (scheduler, LocalExecutor, triggerer): their waits share one poller.

Every mapped ``OdcDeployOperator`` defers (the deployments take an hour on the emulator's clock). While they
wait, the triggerer's scans read the deployment list; GETs by key are only the safety net's few, not one per
wait per interval. Then the deployments end at once and every task resumes and succeeds. The size is
``ODC_POLLER_STACK_TASKS`` (12 in ``make test``; the benchmark-size run is 100).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_odc.emulator.server import OdcEmulator
from devtools.stack import AirflowStack

from .conftest import BY_KEY_ROUTE, LIST_ROUTE, release_app

DAGS = Path(__file__).parent / "dags"
TASKS = int(os.environ.get("ODC_POLLER_STACK_TASKS", "12"))
SCANS_OBSERVED = 10  # scans watched while every task is deferred
#: How long a run may take to get every task deferred, and then to finish: it grows with the tasks (4 run at once).
BOUND = max(600.0, 30.0 * TASKS)
REPORT = os.environ.get("ODC_POLLER_STACK_REPORT")  # benchmarks/poller.py: where to write the counts


@pytest.fixture(scope="module")
def poller_stack(tmp_path_factory: pytest.TempPathFactory, odc_emulator_session: OdcEmulator) -> Iterator[AirflowStack]:
    env = {"AIRFLOW_CONN_ODC_DEFAULT": odc_emulator_session.connection_json()}
    with AirflowStack(tmp_path_factory.mktemp("poller-home"), DAGS, env=env, parallelism=4) as stack:
        yield stack


def wait_for(probe: Any, what: str, attempts: int = int(BOUND / 0.25)) -> Any:
    for _ in range(attempts):
        value = probe()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"never saw {what}")


@pytest.mark.scheduler
def test_deferred_deploys_share_the_triggerers_poller(poller_stack: AirflowStack, odc_emulator: Any) -> None:
    odc_emulator.configure(rate_limits=False, operation_duration=3600)
    app = release_app(odc_emulator)
    stage = next(iter(odc_emulator.inventory()["environments"]))
    run_id = poller_stack.trigger_dag("odc_many_deploys", conf={"asset": app["name"], "stage": stage, "count": TASKS})

    def deferred() -> bool:
        states = [
            ti["state"] for ti in poller_stack.task_instances("odc_many_deploys", run_id) if ti["task_id"] == "deploy"
        ]
        return len(states) == TASKS and all(state == "deferred" for state in states)

    started = time.monotonic()
    wait_for(deferred, f"{TASKS} deploy tasks deferred")
    all_deferred = time.monotonic() - started
    calls = odc_emulator.stats()["api_calls"]
    lists, by_key = calls.get(LIST_ROUTE, 0), calls.get(BY_KEY_ROUTE, 0)
    # Two list reads a scan (one per terminal status): watch SCANS_OBSERVED more scans.
    wait_for(lambda: odc_emulator.stats()["api_calls"].get(LIST_ROUTE, 0) >= lists + 2 * SCANS_OBSERVED, "scans")
    gets_while_waiting = odc_emulator.stats()["api_calls"].get(BY_KEY_ROUTE, 0) - by_key
    watched = time.monotonic() - started - all_deferred
    assert gets_while_waiting < TASKS, gets_while_waiting  # polling alone: TASKS a scan, TASKS x 10 here

    odc_emulator.advance(3600)  # every deployment ends
    run = poller_stack.wait_for_run("odc_many_deploys", run_id, timeout=BOUND)
    assert run["state"] == "success", poller_stack.explain("odc_many_deploys", run_id)
    deploys = [ti for ti in poller_stack.task_instances("odc_many_deploys", run_id) if ti["task_id"] == "deploy"]
    assert len(deploys) == TASKS and all(ti["state"] == "success" and ti["try_number"] == 1 for ti in deploys)
    stats = odc_emulator.stats()
    assert stats["operations_started"]["deploy"] == TASKS  # each POST accepted once
    assert odc_emulator.client_secret not in poller_stack.log_text()
    if REPORT:
        Path(REPORT).write_text(
            json.dumps(
                {
                    "deferred_tasks": TASKS,
                    "seconds_until_all_deferred": round(all_deferred),
                    "scans_watched_while_all_deferred": SCANS_OBSERVED,
                    "seconds_watched": round(watched, 1),
                    "list_requests_while_all_deferred": 2 * SCANS_OBSERVED,
                    "get_by_key_requests_while_all_deferred": gets_while_waiting,
                    "per_wait_polls_the_same_scans_would_send": TASKS * SCANS_OBSERVED,
                    "tasks_succeeded": len(deploys),
                    "deploy_posts": stats["operations_started"]["deploy"],
                    "token_exchanges": stats["token_exchanges"],
                }
            )
        )
