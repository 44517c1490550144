"""What the fleet test (``make test``) and the fleet benchmark (``make bench-fleet``) run, and the figures
each run yields. The test asserts on the figures of a small run, the benchmark records those of a full one.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from ..integration.stack import AirflowStackError
from ..integration.test_cold_start import empty_the_token_cache
from .fleet import Fleet

DAG_ID = "odc_fleet"
ENVIRONMENTS = "GET /api/portfolios/v2/environments"


def _results(fleet: Fleet, run_id: str) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = fleet.stack.xcom_values(DAG_ID, run_id)["call"]
    return results


def _figures(fleet: Fleet, run: dict[str, Any], started: float) -> dict[str, Any]:
    """Outcome and emulator counts of one run; ``hosts`` counts the ``call`` task instances by hostname."""
    run_id = run["dag_run_id"]
    if run["state"] != "success":
        raise AirflowStackError(f"run {run_id} ended {run['state']}\n{fleet.stack.explain(DAG_ID, run_id)}")
    assert fleet.emulator is not None
    stats = fleet.emulator.stats()
    results = _results(fleet, run_id)
    hosts = Counter(ti["hostname"] for ti in fleet.stack.task_instances(DAG_ID, run_id) if ti["task_id"] == "call")
    statuses = Counter(status for result in results for status in result["statuses"])
    return {
        "tasks": len(results),
        "hosts": dict(hosts),
        "hosts_in_xcom": dict(Counter(result["host"] for result in results)),
        "processes": len({(result["host"], result["pid"]) for result in results}),
        "statuses": {str(status): count for status, count in statuses.items()},
        "token_exchanges": stats["token_exchanges"],
        "token_requests": stats["token_requests"],
        "environment_calls": stats["api_calls"].get(ENVIRONMENTS, 0),
        "unauthorized": stats["unauthorized"],
        "distinct_tokens": len({token for result in results for token in result["tokens"]}),
        "seconds": round(time.monotonic() - started, 1),
    }


def _cold(fleet: Fleet, conn_id: str = "odc_default") -> None:
    """Empty the connection's shared token cache and reset the emulator's counters (and tokens)."""
    empty_the_token_cache(fleet.stack, conn_id)
    assert fleet.emulator is not None
    fleet.emulator.reset()


def many_tasks(fleet: Fleet, tasks: int, timeout: float = 600) -> dict[str, Any]:
    """``tasks`` tasks, one ODC call each, spread by Celery over the workers, starting from a cold cache."""
    _cold(fleet)
    started = time.monotonic()
    run = fleet.stack.run_dag(DAG_ID, conf={"tasks": tasks}, timeout=timeout)
    return _figures(fleet, run, started)


def released_together(fleet: Fleet, barrier: Path, timeout: float = 600) -> dict[str, Any]:
    """As many tasks as the fleet has slots, held until every one has arrived, then released at once.

    Each worker runs ``concurrency`` tasks at a time, so all tasks arriving means every host holds its
    full share; the release is a file every host sees, so no host's clock (one is skewed) decides it.
    """
    tasks = fleet.concurrency * len(fleet.workers)
    barrier.mkdir(parents=True)
    _cold(fleet)
    started = time.monotonic()
    run_id = fleet.stack.trigger_dag(DAG_ID, conf={"tasks": tasks, "barrier": str(barrier)}, timeout=timeout)
    deadline = time.monotonic() + timeout
    while len(list(barrier.glob("arrived-*"))) < tasks:
        if time.monotonic() > deadline:
            raise AirflowStackError(
                f"only {len(list(barrier.glob('arrived-*')))} of {tasks} tasks arrived\n"
                f"{fleet.stack.explain(DAG_ID, run_id)}"
            )
        time.sleep(0.1)
    arrived = time.monotonic() - started
    (barrier / "release").touch()
    run = fleet.stack.wait_for_run(DAG_ID, run_id, timeout=max(deadline - time.monotonic(), 1))
    figures = _figures(fleet, run, started)
    figures["all_arrived_after"] = round(arrived, 1)
    return figures
