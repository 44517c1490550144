"""Thirty deployment POSTs released together on a real Airflow stack, against ODC's documented limits.

Shared by the scheduler test (``test_rate_limit_burst.py``) and ``benchmarks/rate_limits.py``. The emulator
is reached through two callables (its stats and its request log), so the same code serves the in-process
emulator of the tests and the emulator process of the benchmark.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from .stack import AirflowStack

DAG_ID = "odc_rate_limit_burst"
TASKS = 30
POST_LIMIT_PER_MINUTE = 10  # ODC: deployment POSTs, per endpoint, per organization
WINDOW_SECONDS = 60.0
DEPLOYMENTS = "/api/deployments/v1/deployment-operations"
POST_ROUTE = f"POST {DEPLOYMENTS}"
#: Enough for 30 POSTs at 10 a minute (about 3 minutes) plus task start-up on a loaded machine.
RUN_TIMEOUT = 1200.0


def floor_seconds(posts: int = TASKS, limit: int = POST_LIMIT_PER_MINUTE) -> float:
    """The least time from the first accepted POST to the last that the limit allows: with a 60 s window,
    POSTs 1-10 may go at once, 11-20 a minute later, 21-30 two minutes later."""
    return (math.ceil(posts / limit) - 1) * WINDOW_SECONDS


def web_app_name(inventory: dict[str, Any]) -> str:
    """A deployable web app whose latest revision has a finished Release build (so a task POSTs nothing else)."""
    for asset in inventory["assets"]:
        built = any(
            build["revision"] == asset["latestRevision"]
            and build["buildType"] == "Release"
            and build["status"] == "Finished"
            for build in asset["builds"]
        )
        if asset["assetType"] == "WebApplication" and asset["deployable"] and built:
            return str(asset["name"])
    raise AssertionError("the emulator seed has no deployable web app with a Release build")


def run_burst(
    stack: AirflowStack,
    inventory: dict[str, Any],
    stats: Callable[[], dict[str, Any]],
    recent_requests: Callable[[int], list[dict[str, Any]]],
) -> dict[str, Any]:
    """Trigger the burst (on an emulator with fresh counters), wait for it, and return what was measured.

    ``wall_s``: from the trigger to the end of the run. ``posts_span_s``: from the first POST the emulator
    accepted to the last (what the limit governs). ``floor_s``: the least ``posts_span_s`` the limit allows.
    """
    triggered = time.monotonic()
    run_id = stack.trigger_dag(DAG_ID, conf={"asset": web_app_name(inventory)}, timeout=RUN_TIMEOUT)
    run = stack.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT)
    wall = time.monotonic() - triggered
    counted = stats()
    accepted_at = [
        record["time"]
        for record in recent_requests(1000)
        if record["method"] == "POST" and record["path"] == DEPLOYMENTS and record["status"] == 201
    ]
    sent = counted["api_calls"].get(POST_ROUTE, 0)
    refused = counted["rate_limited_calls"].get(POST_ROUTE, 0)
    keys = stack.xcom_values(DAG_ID, run_id)
    instances = stack.task_instances(DAG_ID, run_id)
    floor = floor_seconds()
    span = max(accepted_at) - min(accepted_at) if accepted_at else 0.0
    return {
        "run_id": run_id,
        "state": run["state"],
        "tasks": TASKS,
        "tasks_succeeded": sum(ti["state"] == "success" for ti in instances),
        "max_try_number": max((ti["try_number"] for ti in instances), default=0),
        "wall_s": round(wall, 1),
        "posts_span_s": round(span, 1),
        "floor_s": floor,
        "ratio": round(wall / floor, 2),
        "posts_sent": sent,
        "posts_accepted": sent - refused,
        "posts_accepted_logged": len(accepted_at),
        "rate_limited": refused,
        "rate_limited_total": counted["rate_limited"],
        "deployments_started": counted["operations_started"]["deploy"],
        "distinct_operations": len({value for value in keys.values() if value}),
    }
