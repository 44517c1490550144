"""``make bench``: the provider's cost and token economy, measured in one run.

Each section is a function that returns a dict of figures; ``add_section(results, name, figures, load=...)``
records it with the load it was measured under (``ALONE``, or ``beside(...)`` the sections that ran at the
same time), and the run writes everything, with the commit, the machine and the date, to
``benchmarks/results.json`` (``--output`` for another file). ``benchmarks/report.py`` renders that file: the
same tables are printed here and written into the README by ``make bench-readme``. Order: 1 and 2 alone;
on the scheduler 3 (Variable cache) and 4 alone; then 6 starts, and 3 (memory cache) and 5, which only count
token exchanges, run during its wait.

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
6. Worker-slot seconds held while waiting for a 10-minute deployment (``odc_bench_slot_wait``): poke
   (``OdcDeployOperator(deferrable=False)`` polls in its worker), deferrable (the triggerer waits) and
   ``OdcOperationSensor(mode="reschedule")`` after a task that only starts the deployment. A second
   emulator, whose deployments really take ``ODC_BENCH_DEPLOY_SECONDS`` (default 600; shorten it only
   while developing), serves them; the three waits run side by side in one DAG run, triggered after
   the timed sections, so that nothing timed runs during the 10 minutes. A thread polls the run's task instances over
   REST every 0.25 s and integrates the time each spends in ``running`` and ``queued`` (a queued task
   holds a LocalExecutor slot too); ``deferred``, ``up_for_reschedule`` and ``scheduled`` hold none.
   Also per wait: its wall time (from the first task leaving ``scheduled`` to the last one ending); from
   the emulator's request log, the status polls of its deployment and how long after the deployment's
   end the poll that saw it came (set by the poll schedule, not by Airflow); and the second emulator's
   token exchanges (goal 1 for all three waits: the encrypted Variable cache and the exchange lease).
   Goal: deferrable slot-seconds < 10% of poke. Cross-check: Airflow's own ``end_date - start_date`` of
   each wait's last task, which matches the poke task's time in ``running`` but is no slot measure for
   the other two (the whole wait when deferred, the last poke when rescheduled).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.rate_limits import rate_limit_burst  # noqa: E402
from benchmarks.report import ALONE, RESULTS, add_section, beside, finish, new_results, render, unmet_goals  # noqa: E402
from devtools.stack import AirflowStack  # noqa: E402

ENVIRONMENTS = "/api/portfolios/v2/environments"
ASSETS = "/api/asset-repository/v1/assets"
ROUNDS, CALLS_PER_ROUND = 20, 50
SEQUENTIAL_TASKS = 10
PAGED_ASSETS, PAGE_SIZE = 10_000, 1000
# Section 6. Three LocalExecutor slots can be busy with it at once (the poke task, a start or resume of the
# other two) while sections 3-5 need one more: 5 slots leave one spare (each worker costs about 180 MB).
PARALLELISM = 5
DEPLOY_SECONDS = float(os.environ.get("ODC_BENCH_DEPLOY_SECONDS", "600"))  # development only: shorten the wait
SLOT_DAG, SLOW_STAGE = "odc_bench_slot_wait", "QA"
SAMPLE_EVERY = 0.25
SLOT_STATES = ("running", "queued")
TERMINAL_TI_STATES = frozenset({"success", "failed", "upstream_failed", "skipped", "removed"})
DEPLOYMENTS = "/api/deployments/v1/deployment-operations"
WAITS = {  # name -> its tasks in odc_bench_slot_wait (the first one starts the deployment)
    "poke": ("deploy_poke",),
    "deferrable": ("deploy_deferrable",),
    "reschedule": ("start_deploy", "wait_reschedule"),
}


def start_emulator(assets: int, *flags: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_odc.emulator", "--port", "0", "--assets", str(assets), *flags],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, json.loads(process.stdout.readline())


def control(emulator: dict[str, Any], action: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
    """``/_emulator/<action>``: GET for the read-only ones (stats, inventory, requests), else POST ``body``."""
    method = "GET" if action in ("stats", "inventory", "requests") else "POST"
    url = f"{emulator['control_url']}/{action}"
    resp = requests.request(method, url, json=body, params=params or None, timeout=10)
    resp.raise_for_status()
    return resp.json()


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


def per_call_cost(emulator: dict[str, Any]) -> dict[str, Any]:
    """Section 1: ``OdcHook.request`` against a bare ``requests.Session`` call, in interleaved rounds."""
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
    # The ratio is the median of the rounds' own ratios: each pair ran back to back, so a slow spell of the
    # shared 2-core machine weighs on both sides of a pair instead of on one side of the medians.
    ratio = statistics.median(hook / bare for hook, bare in zip(timings["hook"], timings["bare"], strict=True))
    figures = {"hook_us": hook_us, "bare_us": bare_us, "ratio": ratio}
    return {"rounds": ROUNDS, "calls_per_round": CALLS_PER_ROUND, **figures}


def paging(emulator: dict[str, Any]) -> dict[str, Any]:
    """Section 2: page every asset with a fresh hook after a counter reset: requests, connections and time."""
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
        "assets": PAGED_ASSETS,
        "page_size": PAGE_SIZE,
        "requests": stats["api_calls"].get(f"GET {ASSETS}", 0),
        "connections": stats["connections"],
        "all_requests": stats["api_calls_total"] + stats["token_requests"] + stats["discovery_requests"],
        "ms": elapsed * 1000,
    }


class SlotSampler(threading.Thread):
    """Polls the task instances of one run over REST and adds up the seconds each spends in each state.

    Each sample is stamped at the middle of its REST call; the time up to the next sample is credited to the
    state it saw, so a state change is placed within one sampling period (``SAMPLE_EVERY`` plus the call).
    """

    def __init__(self, stack: AirflowStack, dag_id: str, run_id: str, timeout: float) -> None:
        super().__init__(name="slot-sampler", daemon=True)
        # A REST client of its own: the main thread keeps using ``stack`` and its HTTP session meanwhile.
        self.client = AirflowStack(stack.home, stack.dags_folder)
        self.client.base_url = stack.base_url
        self.dag_id, self.run_id, self.deadline = dag_id, run_id, time.monotonic() + timeout
        self.seconds: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))  # task -> state -> s
        self.began: dict[str, float] = {}  # task -> first sample past "scheduled"
        self.ended: dict[str, float] = {}  # task -> first sample in a terminal state
        self.states: dict[str, str | None] = {}
        self.durations: dict[str, float | None] = {}  # task -> Airflow's own end_date - start_date, last sample
        self.samples: list[float] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.states or not all(state in TERMINAL_TI_STATES for state in self.states.values()):
                if self.samples:
                    time.sleep(SAMPLE_EVERY)
                if time.monotonic() > self.deadline:
                    raise TimeoutError(f"{self.dag_id} still running: {self.states}")
                self.sample()
        except BaseException as error:  # reported by the main thread
            self.error = error

    def sample(self) -> None:
        before = time.monotonic()
        task_instances = self.client.task_instances(self.dag_id, self.run_id)
        now = (before + time.monotonic()) / 2
        if self.samples:
            for task, state in self.states.items():
                self.seconds[task][str(state)] += now - self.samples[-1]
        self.samples.append(now)
        self.states = {ti["task_id"]: ti["state"] for ti in task_instances}
        self.durations = {ti["task_id"]: ti["duration"] for ti in task_instances}
        for task, state in self.states.items():
            if state not in (None, "scheduled"):
                self.began.setdefault(task, now)
            if state in TERMINAL_TI_STATES:
                self.ended.setdefault(task, now)

    def period(self) -> float:
        """Mean seconds between two samples."""
        return (self.samples[-1] - self.samples[0]) / max(len(self.samples) - 1, 1)


def start_slot_waits(stack: AirflowStack, slow: dict[str, Any]) -> tuple[SlotSampler, dict[str, str]]:
    """Make the slow emulator's deployments last ``DEPLOY_SECONDS``, trigger the three waits, start sampling."""
    control(slow, "config", {"operation_duration": DEPLOY_SECONDS})
    apps = [
        asset["assetKey"]
        for asset in control(slow, "inventory")["assets"]
        if asset["assetType"] == "WebApplication"
        and any(
            (build["revision"], build["buildType"], build["status"]) == (asset["latestRevision"], "Release", "Finished")
            for build in asset["builds"]
        )
    ]
    if len(apps) < len(WAITS):
        raise SystemExit(f"the slow emulator has {len(apps)} web apps with a Release build, need {len(WAITS)}")
    conf = {"conn_id": "odc_slow", "stage": SLOW_STAGE}
    conf.update({f"{name}_asset": app for name, app in zip(WAITS, apps[: len(WAITS)], strict=True)})
    dag_path = f"/api/v2/dags/{SLOT_DAG}"
    stack.rest("PATCH", dag_path, json={"is_paused": False}).raise_for_status()
    resp = stack.rest("POST", f"{dag_path}/dagRuns", json={"logical_date": None, "conf": conf})
    resp.raise_for_status()
    sampler = SlotSampler(stack, SLOT_DAG, resp.json()["dag_run_id"], timeout=DEPLOY_SECONDS + 600)
    sampler.start()
    return sampler, conf


def seen_late(requests_seen: list[dict[str, Any]], asset_key: str, status_path: str) -> float:
    """Seconds from a deployment's end (its POST + ``DEPLOY_SECONDS``) to the status poll that saw it ended.

    The POST is the one on the TCP connection that also fetched the asset: the task's own keep-alive session.
    """
    client = next(r["client"] for r in requests_seen if r["path"] == f"{ASSETS}/{asset_key}")
    posted = next(
        r for r in requests_seen if r["method"] == "POST" and r["path"] == DEPLOYMENTS and r["client"] == client
    )
    last_poll = max(r["time"] for r in requests_seen if r["method"] == "GET" and r["path"] == status_path)
    return float(last_poll - posted["time"] - DEPLOY_SECONDS)


def slot_figures(
    stack: AirflowStack, slow: dict[str, Any], sampler: SlotSampler, conf: dict[str, str]
) -> dict[str, Any]:
    """Section 6: wait for the three waits to end. Per wait (``waits``): slot seconds, of which queued, wall time,
    status polls; for the section: the mean sampling period and the slow emulator's token exchanges."""
    sampler.join()
    if sampler.error is not None:
        raise SystemExit(f"sampling {SLOT_DAG} failed: {sampler.error!r}\n{stack.explain(SLOT_DAG, sampler.run_id)}")
    if any(state != "success" for state in sampler.states.values()):
        raise SystemExit(stack.explain(SLOT_DAG, sampler.run_id))
    operation_keys = stack.xcom_values(SLOT_DAG, sampler.run_id)  # the deploy tasks return their operation key
    requests_seen = control(slow, "requests", limit=1000)["requests"]
    if len(requests_seen) >= 1000:
        raise SystemExit("the slow emulator's request log is full: status polls would be undercounted")
    figures: dict[str, dict[str, float]] = {}
    for name, tasks in WAITS.items():
        status_path = f"{DEPLOYMENTS}/{quote(operation_keys[tasks[0]], safe='')}"
        figures[name] = {
            "slot_s": sum(sampler.seconds[task][state] for task in tasks for state in SLOT_STATES),
            "queued_s": sum(sampler.seconds[task]["queued"] for task in tasks),
            "wall_s": max(sampler.ended[task] for task in tasks) - min(sampler.began[task] for task in tasks),
            "polls": sum(1 for r in requests_seen if r["method"] == "GET" and r["path"] == status_path),
            "late_s": seen_late(requests_seen, conf[f"{name}_asset"], status_path),
            # Cross-check: Airflow's own end_date - start_date of the last task. For the poke task that is its
            # one stretch in running; for the deferred one the whole wait, for the sensor its last poke only.
            "airflow_duration_s": sampler.durations[tasks[-1]] or 0.0,
        }
    return {
        "deploy_seconds": DEPLOY_SECONDS,
        "period_s": sampler.period(),
        "token_exchanges": control(slow, "stats")["token_exchanges"],
        "waits": figures,
    }


def scheduler_sections(emulator: dict[str, Any], slow: dict[str, Any], results: dict[str, Any]) -> None:
    """Sections 3-6 on one stack. The timed ones (3 with the Variable cache, 4) run alone first; then the slot
    waits start, and the sections that only count token exchanges run while they wait."""
    env = {
        "AIRFLOW_CONN_ODC_DEFAULT": connection(emulator),
        "AIRFLOW_CONN_ODC_MEMORY_ONLY": connection(emulator, cache_mode="memory"),
        "AIRFLOW_CONN_ODC_SLOW": connection(slow),
    }
    with (
        tempfile.TemporaryDirectory(prefix="odc-bench-") as home,
        AirflowStack(Path(home), ROOT / "benchmarks" / "dags", env=env, parallelism=PARALLELISM) as stack,
    ):
        exchanges = sequential_tasks(stack, emulator, "odc_default")
        add_section(results, "sequential_variable_cache", exchanges, load=ALONE)
        # odc_default's token is in the Variable now: every first call below reads it, none exchanges.
        add_section(results, "first_call", first_call(stack, emulator), load=ALONE)

        sampler, slot_conf = start_slot_waits(stack, slow)
        waits_beside = ("sequential_memory_cache", "defer_resume")
        exchanges = sequential_tasks(stack, emulator, "odc_memory_only")
        add_section(results, "sequential_memory_cache", exchanges, load=beside("slot_waits"))
        add_section(results, "defer_resume", defer_resume(stack, emulator), load=beside("slot_waits"))
        add_section(results, "slot_waits", slot_figures(stack, slow, sampler, slot_conf), load=beside(*waits_beside))


def exchanges_during(
    emulator: dict[str, Any], stack: AirflowStack, dag_id: str, conf: dict[str, Any]
) -> tuple[int, str]:
    """Run ``dag_id`` to success on the stack: the token exchanges the emulator counted meanwhile, the run id."""
    before = control(emulator, "stats")["token_exchanges"]
    run = stack.run_dag(dag_id, conf=conf)
    if run["state"] != "success":
        raise SystemExit(stack.explain(dag_id, run["dag_run_id"]))
    return int(control(emulator, "stats")["token_exchanges"] - before), str(run["dag_run_id"])


def sequential_tasks(stack: AirflowStack, emulator: dict[str, Any], conn_id: str) -> dict[str, Any]:
    """Section 3: token exchanges of ``SEQUENTIAL_TASKS`` tasks in a row, each in its own process."""
    exchanges, _ = exchanges_during(emulator, stack, "odc_bench_sequential", {"conn_id": conn_id})
    return {"tasks": SEQUENTIAL_TASKS, "token_exchanges": exchanges}


def first_call(stack: AirflowStack, emulator: dict[str, Any]) -> dict[str, Any]:
    """Section 4: the first call of each task and its pieces (medians over the tasks), with a warm Variable."""
    exchanges, run_id = exchanges_during(emulator, stack, "odc_bench_first_call", {"conn_id": "odc_default"})
    per_task = list(stack.xcom_values("odc_bench_first_call", run_id).values())
    figures: dict[str, Any] = {name: statistics.median(task[name] for task in per_task) for name in per_task[0]}
    return {"tasks": len(per_task), **figures, "token_exchanges": exchanges}


def defer_resume(stack: AirflowStack, emulator: dict[str, Any]) -> dict[str, Any]:
    """Section 5: a defer/resume cycle with a warm token (the task, the triggerer and the resumed task)."""
    from airflow_provider_odc.hooks.odc import OdcHook

    query = {"assetTypes": "WebApplication", "limit": 1}
    asset = OdcHook("odc_bench").request_json("GET", ASSETS, params=query)["results"][0]
    exchanges, run_id = exchanges_during(emulator, stack, "odc_bench_defer", {"asset": asset["assetKey"]})
    if "defer" not in stack.task_log("odc_bench_defer", run_id, "build").lower():
        raise SystemExit("the build task did not defer")
    return {"token_exchanges": exchanges}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"results file (default {RESULTS})")
    args = parser.parse_args(argv)
    settings = {
        "rounds": ROUNDS,
        "calls_per_round": CALLS_PER_ROUND,
        "sequential_tasks": SEQUENTIAL_TASKS,
        "paged_assets": PAGED_ASSETS,
        "page_size": PAGE_SIZE,
        "deploy_seconds": DEPLOY_SECONDS,
        "parallelism": PARALLELISM,
    }
    results = new_results("make bench (benchmarks/run.py)", settings)
    started = time.monotonic()
    processes = []
    try:
        # Sections 1-5 measure the client's own cost: 2,000 calls would wait out ODC's 100-a-minute limit.
        process, emulator = start_emulator(PAGED_ASSETS, "--no-rate-limits")
        processes.append(process)
        add_section(results, "per_call_cost", per_call_cost(emulator), load=ALONE)
        add_section(results, "paging", paging(emulator), load=ALONE)
        process, slow = start_emulator(25)  # section 6: its own counters, deployments of DEPLOY_SECONDS
        processes.append(process)
        scheduler_sections(emulator, slow, results)
        # Section 7 (benchmarks/rate_limits.py): its own emulator with ODC's documented limits, its own stack.
        burst = {key: value for key, value in rate_limit_burst().items() if key != "run_id"}
        add_section(results, "rate_limit_burst", burst, load=ALONE)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
    finish(results, time.monotonic() - started)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(render(results))
    print(f"Results written to {args.output}; `make bench-readme` puts them in README.md.")
    missed = unmet_goals(results)
    if missed:
        print(f"Goals missed: {', '.join(missed)}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
