"""A mass redeploy on the real scheduler, paced across worker processes by the shared ledger (Variables).

Fifteen mapped deploy tasks (five apps, three stages) over the ``odc_paced`` connection against ODC's
documented limits (10 deployment POSTs a minute, no Retry-After). Counts, not times: every task succeeds on
its first try, ODC accepts exactly one POST per task, and at most 10 % of the POSTs are answered 429 (without
pacing the same run collects one 429 for every POST over the first ten: see the burst test). The 60-app,
timed version is ``benchmarks/pacing.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from devtools.mass_redeploy import DAG_ID, run_mass_redeploy
from devtools.stack import AirflowStack

DEPLOYS = 15  # more than the 10 a minute: the ledger must make the last five wait for the next window


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
