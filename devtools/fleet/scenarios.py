"""What the fleet test (``make test``) and the fleet benchmark (``make bench-fleet``) run, and the figures
each run yields. The test asserts on the figures of a small run, the benchmark records those of a full one.
"""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from devtools.fleet.fleet import Fleet
from devtools.mass_redeploy import DAG_ID as MASS_REDEPLOY
from devtools.mass_redeploy import run_mass_redeploy
from devtools.stack import AirflowStackError, empty_the_token_cache

DAG_ID = "odc_fleet"
ENVIRONMENTS = "GET /api/portfolios/v2/environments"
#: Requests the emulator keeps in its log (by_host reads them all).
REQUEST_LOG = 1000


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
        "by_host": by_host(fleet),
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


def by_host(fleet: Fleet) -> dict[str, dict[str, int]]:
    """Token exchanges and 401 answers per worker host, told apart by the client address the emulator saw."""
    assert fleet.emulator is not None
    names = {host.address: host.name for host in fleet.hosts}
    token_path = fleet.emulator.state.token_path
    counts: dict[str, dict[str, int]] = {host.name: {"token_exchanges": 0, "unauthorized": 0} for host in fleet.hosts}
    for record in fleet.emulator.recent_requests(REQUEST_LOG):
        host = names.get((record["client"] or "").rpartition(":")[0], "other")
        entry = counts.setdefault(host, {"token_exchanges": 0, "unauthorized": 0})
        if record["method"] == "POST" and record["path"] == token_path and record["status"] == 200:
            entry["token_exchanges"] += 1
        if record["status"] == 401:
            entry["unauthorized"] += 1
    return counts


def _issued_at(fleet: Fleet) -> float:
    """When the emulator issued its latest token (its ``iat`` claim): the instant token ages count from."""
    assert fleet.emulator is not None
    payload = fleet.emulator.minted_tokens()[-1].split(".")[1]
    return float(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["iat"])


def _exchange_times(fleet: Fleet) -> list[float]:
    """Emulator-clock times of the successful token exchanges in its request log, oldest first."""
    assert fleet.emulator is not None
    token_path = fleet.emulator.state.token_path
    return [
        record["time"]
        for record in fleet.emulator.recent_requests(REQUEST_LOG)
        if record["method"] == "POST" and record["path"] == token_path and record["status"] == 200
    ]


def skewed_refresh(
    fleet: Fleet, lifetime: int, *, tasks_per_host: int, calls: int = 1, interval: float = 0.0
) -> dict[str, Any]:
    """A token from the punctual host, then tasks on every host once the skewed host thinks it is due.

    The punctual host (the first worker) makes the first exchange. A token is due ``lifetime / 2`` after
    its issue when the refresh margin (300 s by default) exceeds half the lifetime; the skewed host, its
    clock ``skew`` seconds ahead, sees that moment ``skew`` seconds early. The test waits for that moment,
    then runs ``tasks_per_host`` tasks pinned to each host at once, each making ``calls`` calls ``interval``
    seconds apart. With ``calls x interval`` past the lifetime, the first token expires mid-run.
    """
    punctual, skewed = fleet.workers[0], max(fleet.workers, key=lambda worker: worker.clock_offset)
    skew = skewed.clock_offset
    if not 0 < skew < lifetime / 2:
        raise ValueError(f"the skewed host must see a fresh token as valid: skew {skew} s, lifetime {lifetime} s")
    _cold(fleet)
    assert fleet.emulator is not None
    fleet.emulator.configure(token_lifetime=lifetime)
    started = time.monotonic()
    first_dag = f"{DAG_ID}_on_{punctual.name}"
    first = fleet.stack.run_dag(first_dag, conf={"tasks": 1}, timeout=300)
    if first["state"] != "success":
        raise AirflowStackError(f"the first run failed\n{fleet.stack.explain(first_dag, first['dag_run_id'])}")
    issued = _issued_at(fleet)
    while time.time() < issued + lifetime / 2 - skew + 1:
        time.sleep(0.2)
    age_at_second_run = time.time() - issued
    conf = {"tasks": tasks_per_host, "calls": calls, "interval": interval}
    timeout = 300 + calls * interval
    runs = {
        f"{DAG_ID}_on_{worker.name}": fleet.stack.trigger_dag(f"{DAG_ID}_on_{worker.name}", conf, timeout=timeout)
        for worker in fleet.workers
    }
    results, hosts = [], Counter[str]()
    for dag_id, run_id in runs.items():
        run = fleet.stack.wait_for_run(dag_id, run_id, timeout=timeout)
        if run["state"] != "success":
            raise AirflowStackError(f"run {run_id} ended {run['state']}\n{fleet.stack.explain(dag_id, run_id)}")
        results += fleet.stack.xcom_values(dag_id, run_id)["call"]
        hosts.update(ti["hostname"] for ti in fleet.stack.task_instances(dag_id, run_id) if ti["task_id"] == "call")
    stats = fleet.emulator.stats()
    exchanges = _exchange_times(fleet)
    return {
        "tasks": len(results),
        "hosts": dict(hosts),
        "statuses": dict(Counter(str(status) for result in results for status in result["statuses"])),
        "token_exchanges": stats["token_exchanges"],
        "unauthorized": stats["unauthorized"],
        "by_host": by_host(fleet),
        "exchanges_after_first": [round(when - exchanges[0], 1) for when in exchanges[1:]],
        "distinct_tokens": len({token for result in results for token in result["tokens"]}),
        "lifetime": lifetime,
        "skew": skew,
        "second_run_started_after_issue": round(age_at_second_run, 1),
        "run_covers_expiry": calls * interval > lifetime,
        "seconds": round(time.monotonic() - started, 1),
    }


def paced_redeploy(fleet: Fleet, deploys: int) -> dict[str, Any]:
    """``odc_mass_redeploy`` over ``deploys`` (app, stage) pairs on the paced connection, spread by Celery
    over both hosts, against ODC's documented limits: ``run_mass_redeploy``'s counts plus the hosts."""
    assert fleet.emulator is not None
    fleet.emulator.reset()  # fresh counters and rate windows, the documented limits, no Retry-After
    result = run_mass_redeploy(fleet.stack, fleet.emulator.inventory(), fleet.emulator.stats, deploys)
    if result["state"] != "success":
        raise AirflowStackError(
            f"run {result['run_id']} ended {result['state']}\n{fleet.stack.explain(MASS_REDEPLOY, result['run_id'])}"
        )
    instances = fleet.stack.task_instances(MASS_REDEPLOY, result["run_id"])
    return {**result, "hosts": dict(Counter(ti["hostname"] for ti in instances if ti["task_id"] == "deploy"))}
