"""Tasks that send the first events on a new ODC asset at the same instant all succeed, on a real scheduler.

Airflow creates an asset named by an alias event when it records the task's success; two tasks doing
that at once collide on the database's unique constraint and Airflow marks one of them failed
(``asset_first_events`` explains). Each round here starts four mapped tasks that wait for one shared
instant and send events on two assets no DAG has seen. Without the election in ``asset_first_events``
a round loses a task most of the time; with it every task succeeds and every event is recorded.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_odc.assets import odc_asset, odc_stage_asset
from devtools.stack import AirflowStack

pytestmark = pytest.mark.scheduler

DAGS = Path(__file__).parent / "race_dags"
DAG_ID, TASKS, ROUNDS = "odc_first_events_race", 4, 3
PORTAL = "race.outsystems.dev"


@pytest.fixture(scope="module")
def race_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    with AirflowStack(tmp_path_factory.mktemp("race-home"), DAGS, parallelism=TASKS) as stack:
        yield stack


def events_by_uri(stack: AirflowStack, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """The run's Asset events by asset URI (by source run: the asset list shows only declared assets)."""
    params = {"source_dag_id": DAG_ID, "source_run_id": run_id, "limit": 100}
    page = stack.rest("GET", "/api/v2/assets/events", params=params)
    assert page.ok, page.text
    events: dict[str, list[dict[str, Any]]] = {}
    for event in page.json()["asset_events"]:
        events.setdefault(event["uri"], []).append(event)
    return events


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_first_events_on_a_new_asset_fail_no_task(race_stack: AirflowStack, round_: int) -> None:
    stage_key, asset_key = str(uuid.uuid4()), str(uuid.uuid4())
    conf = {"portal": PORTAL, "stage_key": stage_key, "asset_key": asset_key, "at": time.time() + 20}
    run = race_stack.run_dag(DAG_ID, conf=conf)

    assert run["state"] == "success", race_stack.explain(DAG_ID, run["dag_run_id"])
    tis = race_stack.task_instances(DAG_ID, run["dag_run_id"])
    assert len(tis) == TASKS and all(ti["state"] == "success" and ti["try_number"] == 1 for ti in tis)
    events = events_by_uri(race_stack, run["dag_run_id"])
    new_assets = (odc_asset(PORTAL, stage_key, asset_key), odc_stage_asset(PORTAL, stage_key))
    assert set(events) == {asset.uri for asset in new_assets}
    for asset in new_assets:  # every task's event, once
        assert sorted(event["extra"]["revision"] for event in events[asset.uri]) == list(range(TASKS)), asset.uri
