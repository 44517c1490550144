"""Thirty deploy tasks released together on the real scheduler, against ODC's documented limits.

The emulator keeps its stingy defaults: 10 deployment POSTs a minute, 100 requests a minute per API, no
Retry-After. Every task must succeed on its first try, and ODC must have accepted exactly 30 POSTs for 30
distinct deployments: a refused POST is re-sent after waiting out the window, a processed one never.
Takes about three minutes by construction (30 POSTs at 10 a minute); keep it the only test of its kind.
"""

from __future__ import annotations

from typing import Any

import pytest

from devtools.burst import DAG_ID, TASKS, floor_seconds, run_burst
from devtools.stack import AirflowStack


def test_thirty_deploys_released_together_all_get_through_once(
    airflow_stack: AirflowStack, odc_emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    config = odc_emulator.config()
    assert (config["rate_limits"], config["post_limit_per_minute"], config["rate_limit_retry_after"]) == (
        True,
        10,
        None,
    ), "the test is only meaningful against the documented limits, without Retry-After"
    result = run_burst(airflow_stack, odc_emulator.inventory(), odc_emulator.stats, odc_emulator.recent_requests)
    with capsys.disabled():
        print(f"\nrate-limit burst: {result}")

    assert result["state"] == "success", airflow_stack.explain(DAG_ID, result["run_id"])
    assert result["tasks_succeeded"] == TASKS and result["max_try_number"] == 1  # no Airflow retry helped
    assert result["posts_accepted"] == result["deployments_started"] == TASKS, result
    assert result["posts_accepted_logged"] == TASKS, result
    assert result["distinct_operations"] == TASKS, result
    assert result["rate_limited"] >= 1, "the burst never met the limit: the test proves nothing"
    assert result["posts_sent"] == TASKS + result["rate_limited"], result  # only refused POSTs were re-sent
    assert result["posts_span_s"] >= floor_seconds() - 1, "the emulator let more than 10 POSTs a minute through"
