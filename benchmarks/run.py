"""``make bench``: the provider's cost and token economy, measured side by side in one run.

1. Per-call cost of ``OdcHook.request`` with a warm token against a bare ``requests.Session`` call
   with a fixed token, interleaved in rounds against the same emulator (a separate process, so the
   server does not share the client's interpreter). Goal: ratio <= 1.10.
2. Paging 10,000 assets with ``OdcHook.paginate`` (page size 1000): API requests (goal: one per page,
   10) and TCP connections the emulator saw (goal 1: discovery, token and every page on one keep-alive
   connection), and the wall time.
3. Token exchanges for N sequential tasks on the real scheduler (LocalExecutor, each task its own
   process): with the encrypted Variable cache (goal 1) and with an in-memory cache only (N).
4. The first ODC call of a task (no token in memory: connection lookup, encrypted Variable read,
   envelope open, new TCP connection) against a warm call, timed inside real tasks, with the pieces
   (Variable read, connection lookup, key derivation, envelope open) timed alone in the same tasks.
5. Token exchanges for one defer/resume cycle (a deferrable build waited for in the real triggerer)
   with a warm cache (goal 0).
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
ASSETS = "/api/asset-repository/v1/assets"
ROUNDS, CALLS_PER_ROUND = 20, 50
SEQUENTIAL_TASKS = 10
PAGED_ASSETS, PAGE_SIZE = 10_000, 1000


def start_emulator() -> tuple[subprocess.Popen[str], dict[str, Any]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_odc.emulator", "--port", "0", "--assets", str(PAGED_ASSETS)],
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


def paging(emulator: dict[str, Any]) -> dict[str, float]:
    """Page every asset with a fresh hook after a counter reset: requests, connections and time."""
    control(emulator, "reset")
    os.environ["AIRFLOW_CONN_ODC_BENCH_PAGING"] = connection(emulator, cache_mode="memory")
    from airflow_provider_odc.hooks.odc import OdcHook

    hook = OdcHook("odc_bench_paging")
    started = time.perf_counter()
    items = sum(1 for _ in hook.paginate(ASSETS, page_size=PAGE_SIZE))
    elapsed = time.perf_counter() - started
    stats = control(emulator, "stats")
    if items != PAGED_ASSETS:
        raise SystemExit(f"paginate returned {items} assets, expected {PAGED_ASSETS}")
    return {
        "requests": stats["api_calls"].get(f"GET {ASSETS}", 0),
        "connections": stats["connections"],
        "all_requests": stats["api_calls_total"] + stats["token_requests"] + stats["discovery_requests"],
        "ms": elapsed * 1000,
    }


def on_the_scheduler(emulator: dict[str, Any]) -> tuple[dict[str, int], dict[str, float]]:
    """Token exchanges of the sequential DAG per cache mode, then the first-call figures (one stack)."""
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
        # odc_default's token is in the Variable now: every first call below reads it, none exchanges.
        before = control(emulator, "stats")["token_exchanges"]
        run = stack.run_dag("odc_bench_first_call", conf={"conn_id": "odc_default"})
        if run["state"] != "success":
            raise SystemExit(stack.explain("odc_bench_first_call", run["dag_run_id"]))
        exchanges["first_call"] = control(emulator, "stats")["token_exchanges"] - before
        per_task = list(stack.xcom_values("odc_bench_first_call", run["dag_run_id"]).values())
        # A defer/resume cycle with that warm token: the task, the triggerer and the resumed task reuse it.
        from airflow_provider_odc.hooks.odc import OdcHook

        query = {"assetTypes": "WebApplication", "limit": 1}
        asset = OdcHook("odc_bench").request_json("GET", ASSETS, params=query)["results"][0]
        before = control(emulator, "stats")["token_exchanges"]
        run = stack.run_dag("odc_bench_defer", conf={"asset": asset["assetKey"]})
        if run["state"] != "success":
            raise SystemExit(stack.explain("odc_bench_defer", run["dag_run_id"]))
        if "defer" not in stack.task_log("odc_bench_defer", run["dag_run_id"], "build").lower():
            raise SystemExit("the build task did not defer")
        exchanges["defer_resume"] = control(emulator, "stats")["token_exchanges"] - before
    first_call = {name: statistics.median(task[name] for task in per_task) for name in per_task[0]}
    return exchanges, first_call


def main() -> int:
    process, emulator = start_emulator()
    try:
        cost = per_call_cost(emulator)
        paged = paging(emulator)
        exchanges, first = on_the_scheduler(emulator)
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
        (f"paging {PAGED_ASSETS:,} assets, page size {PAGE_SIZE}: API requests", str(paged["requests"]), "10"),
        (
            f"paging {PAGED_ASSETS:,} assets: TCP connections (discovery + token + pages)",
            str(paged["connections"]),
            "1",
        ),
        (f"paging {PAGED_ASSETS:,} assets: wall time", f"{paged['ms']:.0f} ms", ""),
        ("first ODC call of a task (median of 5 tasks)", f"{first['first_call_ms']:.1f} ms", ""),
        (
            "  same cold path again in that process (new hook, token from the Variable)",
            f"{first['cold_again_ms']:.1f} ms",
            "",
        ),
        ("  of which: Variable.get of the cached token, alone", f"{first['variable_get_ms']:.1f} ms", ""),
        ("  of which: BaseHook.get_connection, alone", f"{first['get_connection_ms']:.1f} ms", ""),
        ("  of which: HKDF key derivation, alone", f"{first['key_derivation_us']:.0f} us", ""),
        ("  of which: envelope open (AES-256-GCM), alone", f"{first['envelope_open_us']:.0f} us", ""),
        ("warm call in the same task (median)", f"{first['warm_call_us']:.0f} us", ""),
        ("token exchanges during those 5 first calls", str(exchanges["first_call"]), "0"),
        ("token exchanges, one defer/resume cycle (triggerer), warm cache", str(exchanges["defer_resume"]), "0"),
    ]
    width = max(len(row[0]) for row in rows)
    print(f"\n{'measure':<{width}}  {'value':>10}  goal")
    for name, value, goal in rows:
        print(f"{name:<{width}}  {value:>10}  {goal}")
    ok = (
        cost["ratio"] <= 1.10
        and exchanges["odc_default"] == 1
        and exchanges["first_call"] == 0
        and exchanges["defer_resume"] == 0
        and paged["requests"] == PAGED_ASSETS // PAGE_SIZE
        and paged["connections"] == 1
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
