"""A mass redeploy on the real scheduler, paced across worker processes by the shared ledger (Variables).

Fifteen mapped deploy tasks (five apps, three stages) over the ``odc_paced`` connection against ODC's
documented limits (10 deployment POSTs a minute, no Retry-After). Counts, not times: every task succeeds on
its first try, ODC accepts exactly one POST per task, and at most 10 % of the POSTs are answered 429 (without
pacing the same run collects one 429 for every POST over the first ten: see the burst test). The 60-app,
timed version is ``benchmarks/pacing.py``.

The promotion test does the same for ``OdcPromotionPlanOperator`` over a whole stage: Development -> QA
(with the apps QA lacks) on an emulator of its own seeded with 40 assets plans 18 deploys, more than one
window's 10 POSTs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_odc.emulator.server import OdcEmulator
from devtools.mass_redeploy import (
    DAG_ID,
    PROMOTION_CONN_ID,
    PROMOTION_DAG_ID,
    promotion_connection,
    run_mass_redeploy,
    run_promotion,
)
from devtools.stack import AirflowStack

DEPLOYS = 15  # more than the 10 a minute: the ledger must make the last five wait for the next window
PROMOTION_ASSETS = 40  # Development -> QA with the missing apps: 18 deploys


def test_fifteen_paced_deploys_get_through_once_without_a_storm_of_429s(
    airflow_stack: AirflowStack, odc_emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    config = odc_emulator.config()
    assert (config["rate_limits"], config["post_limit_per_minute"], config["rate_limit_retry_after"]) == (
        True,
        10,
        None,
    ), "the test is only meaningful against the documented limits, without Retry-After"
    result = run_mass_redeploy(airflow_stack, odc_emulator.inventory(), odc_emulator.stats, DEPLOYS)
    with capsys.disabled():
        print(f"\nmass redeploy: {result}")

    assert result["state"] == "success", airflow_stack.explain(DAG_ID, result["run_id"])
    assert result["tasks_succeeded"] == DEPLOYS and result["max_try_number"] == 1, result
    assert result["posts_accepted"] == result["deployments_started"] == DEPLOYS, result
    assert result["distinct_operations"] == DEPLOYS, result
    assert result["posts_sent"] == DEPLOYS + result["posts_rate_limited"], result  # only refused POSTs re-sent
    assert result["posts_rate_limited"] <= DEPLOYS // 10, result  # at most 10 %: here at most one
    assert result["ledger_slots_at_the_end"], "no ledger in the Variables: the tasks did not pace"
    assert result["floor_s"] == 60.0, "15 POSTs at 10 a minute: the limit must have made the run wait a window"


@pytest.fixture
def promotion_emulator(airflow_stack: AirflowStack) -> Iterator[OdcEmulator]:
    """An emulator of its own (40 assets, ODC's documented limits, no Retry-After) and the paced
    ``odc_promotion`` connection to it, made through Airflow's REST API and deleted afterwards."""
    emulator = OdcEmulator(asset_count=PROMOTION_ASSETS).start()
    fields = promotion_connection(emulator.connection_dict())
    body = {"connection_id": PROMOTION_CONN_ID, **fields, "extra": json.dumps(fields["extra"])}
    response = airflow_stack.rest("POST", "/api/v2/connections", json=body)
    assert response.status_code == 201, response.text
    try:
        yield emulator
    finally:
        airflow_stack.rest("DELETE", f"/api/v2/connections/{PROMOTION_CONN_ID}")
        emulator.stop()


def test_a_whole_stage_promotion_is_paced_and_every_planned_deploy_gets_through_once(
    airflow_stack: AirflowStack, promotion_emulator: OdcEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = _planned(promotion_emulator)
    assert len(expected) > 10, f"the seed plans only {len(expected)} deploys: pacing would have nothing to do"
    promotion_emulator.reset()  # counters and rate windows back to zero after the planning above
    result = run_promotion(airflow_stack, promotion_emulator.stats)
    with capsys.disabled():
        print(f"\nmass promotion: {result}")

    assert result["state"] == "success", airflow_stack.explain(PROMOTION_DAG_ID, result["run_id"])
    assert result["planned_assets"] == sorted(expected), result
    deploys = len(expected)
    assert result["deploy_tasks"] == result["tasks_succeeded"] == deploys and result["max_try_number"] == 1, result
    assert result["posts_accepted"] == result["deployments_started"] == result["distinct_operations"] == deploys
    assert result["posts_sent"] == deploys + result["posts_rate_limited"], result  # only refused POSTs re-sent
    assert result["posts_rate_limited"] <= deploys // 10, result  # at most 10 %
    assert result["ledger_slots_at_the_end"], "no ledger in the Variables: the tasks did not pace"
    assert result["floor_s"] == 60.0, "18 POSTs at 10 a minute: the limit must have made the run wait a window"
    assert _planned(promotion_emulator, wait=True) == [], "QA does not run what Development runs after the promotion"


def _planned(emulator: OdcEmulator, *, wait: bool = False) -> list[str]:
    """The asset keys a Development -> QA promotion (with the missing apps) would deploy now, read by the
    provider's own hook with rate limits lifted; ``wait`` retries until the started deployments finished."""
    from airflow_provider_odc.hooks.odc import OdcHook

    emulator.configure(rate_limits=False)
    try:
        with pytest.MonkeyPatch.context() as patch:
            planner = {**emulator.connection_dict(), "extra": {"cache_mode": "off"}}
            patch.setenv("AIRFLOW_CONN_ODC_PLANNER", json.dumps(planner))
            deadline = time.monotonic() + (120 if wait else 0)
            while True:
                _, _, plan = OdcHook("odc_planner").promotion_plan("Development", "QA", include_missing=True)
                if not plan or time.monotonic() >= deadline:
                    return sorted(promotion.asset_key for promotion in plan)
                time.sleep(1)
    finally:
        emulator.configure(rate_limits=True)
