"""``make bench``: the provider's cost and token economy, measured side by side in one run.

1. Per-call cost of ``OdcHook.request`` with a warm token against a bare ``requests.Session`` call
   with a fixed token, interleaved in rounds against the same emulator (a separate process, so the
   server does not share the client's interpreter). Goal: ratio <= 1.10.
2. Token exchanges for N sequential tasks on the real scheduler (LocalExecutor, each task its own
   process): with the encrypted Variable cache (goal 1) and with an in-memory cache only (N).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.stack import AirflowStack  # noqa: E402

ENVIRONMENTS = "/api/portfolios/v2/environments"
ROUNDS, CALLS_PER_ROUND = 20, 50
SEQUENTIAL_TASKS = 10


def start_emulator() -> tuple[subprocess.Popen[str], dict[str, Any]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_odc.emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, json.loads(process.stdout.readline())


def control(emulator: dict[str, Any], action: str) -> dict[str, Any]:
    method = "GET" if action == "stats" else "POST"
    return requests.request(method, f"{emulator['control_url']}/{action}", timeout=10).json()


def connection(emulator: dict[str, Any], **extra: Any) -> str:
    return json.dumps(
        {
            "conn_type": "odc",
            "host": emulator["base_url"],
            "login": emulator["client_id"],
            "password": emulator["client_secret"],
            "extra": extra,
        }
    )


def per_call_cost(emulator: dict[str, Any]) -> dict[str, float]:
    os.environ["AIRFLOW_CONN_ODC_BENCH"] = connection(emulator, cache_mode="memory")
    from airflow_provider_odc.hooks.odc import OdcHook

    hook = OdcHook("odc_bench")
    token = hook.get_access_token()
    bare = requests.Session()
    url = emulator["base_url"] + ENVIRONMENTS
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def hook_call() -> None:
        hook.request("GET", ENVIRONMENTS)

    def bare_call() -> None:
        bare.get(url, headers=headers, timeout=60, verify=True).raise_for_status()

    for warm_up in (hook_call, bare_call):
        for _ in range(CALLS_PER_ROUND):
            warm_up()
    timings: dict[str, list[float]] = {"hook": [], "bare": []}
    for round_number in range(ROUNDS):
        order = [("hook", hook_call), ("bare", bare_call)]
        for name, call in order if round_number % 2 == 0 else reversed(order):
            started = time.perf_counter()
            for _ in range(CALLS_PER_ROUND):
                call()
            timings[name].append((time.perf_counter() - started) / CALLS_PER_ROUND)
    hook_us = statistics.median(timings["hook"]) * 1e6
    bare_us = statistics.median(timings["bare"]) * 1e6
    return {"hook_us": hook_us, "bare_us": bare_us, "ratio": hook_us / bare_us}


def sequential_tasks(emulator: dict[str, Any]) -> dict[str, int]:
    env = {
        "AIRFLOW_CONN_ODC_DEFAULT": connection(emulator),
        "AIRFLOW_CONN_ODC_MEMORY_ONLY": connection(emulator, cache_mode="memory"),
    }
    exchanges: dict[str, int] = {}
    with (
        tempfile.TemporaryDirectory(prefix="odc-bench-") as home,
        AirflowStack(Path(home), ROOT / "benchmarks" / "dags", env=env) as stack,
    ):
        for conn_id in ("odc_default", "odc_memory_only"):
            before = control(emulator, "stats")["token_exchanges"]
            run = stack.run_dag("odc_bench_sequential", conf={"conn_id": conn_id})
            if run["state"] != "success":
                raise SystemExit(stack.explain("odc_bench_sequential", run["dag_run_id"]))
            exchanges[conn_id] = control(emulator, "stats")["token_exchanges"] - before
    return exchanges


def main() -> int:
    process, emulator = start_emulator()
    try:
        cost = per_call_cost(emulator)
        exchanges = sequential_tasks(emulator)
    finally:
        process.terminate()
        process.wait(timeout=10)

    rows = [
        ("OdcHook.request, warm token (per call)", f"{cost['hook_us']:.0f} us", ""),
        ("bare requests.Session, fixed token (per call)", f"{cost['bare_us']:.0f} us", ""),
        ("ratio hook / bare", f"{cost['ratio']:.3f}", "<= 1.10"),
        (f"token exchanges, {SEQUENTIAL_TASKS} sequential tasks, Variable cache", str(exchanges["odc_default"]), "1"),
        (
            f"token exchanges, {SEQUENTIAL_TASKS} sequential tasks, memory cache only",
            str(exchanges["odc_memory_only"]),
            f"{SEQUENTIAL_TASKS} (one per process)",
        ),
    ]
    width = max(len(row[0]) for row in rows)
    print(f"\n{'measure':<{width}}  {'value':>10}  goal")
    for name, value, goal in rows:
        print(f"{name:<{width}}  {value:>10}  {goal}")
    ok = cost["ratio"] <= 1.10 and exchanges["odc_default"] == 1
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
