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
6. Worker-slot seconds held while waiting for a 10-minute deployment (``odc_bench_slot_wait``): poke
   (``OdcDeployOperator(deferrable=False)`` polls in its worker), deferrable (the triggerer waits) and
   ``OdcOperationSensor(mode="reschedule")`` after a task that only starts the deployment. A second
   emulator, whose deployments really take ``ODC_BENCH_DEPLOY_SECONDS`` (default 600; shorten it only
   while developing), serves them; the three waits run side by side in one DAG run, triggered before
   sections 3-5 so that those run during the 10 minutes. A thread polls the run's task instances over
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
from tests.integration.stack import AirflowStack  # noqa: E402

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
WAITS = {  # name -> (row label, its tasks in odc_bench_slot_wait: the first one starts the deployment)
    "poke": ("poke: OdcDeployOperator(deferrable=False)", ("deploy_poke",)),
    "deferrable": ("deferrable: OdcDeployOperator(deferrable=True)", ("deploy_deferrable",)),
    "reschedule": (
        'reschedule: start task + OdcOperationSensor(mode="reschedule")',
        ("start_deploy", "wait_reschedule"),
    ),
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
    # The ratio is the median of the rounds' own ratios: each pair ran back to back, so a slow spell of the
    # shared 2-core machine weighs on both sides of a pair instead of on one side of the medians.
    ratio = statistics.median(hook / bare for hook, bare in zip(timings["hook"], timings["bare"], strict=True))
    return {"hook_us": hook_us, "bare_us": bare_us, "ratio": ratio}


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
) -> dict[str, dict[str, float]]:
    """Wait for the three waits to end; per wait: slot seconds, of which queued, wall time and status polls.

    ``"all"`` holds what the section shares: the mean sampling period and the slow emulator's token exchanges.
    """
    sampler.join()
    if sampler.error is not None:
        raise SystemExit(f"sampling {SLOT_DAG} failed: {sampler.error!r}\n{stack.explain(SLOT_DAG, sampler.run_id)}")
    if any(state != "success" for state in sampler.states.values()):
        raise SystemExit(stack.explain(SLOT_DAG, sampler.run_id))
    operation_keys = stack.xcom_values(SLOT_DAG, sampler.run_id)  # the deploy tasks return their operation key
    requests_seen = control(slow, "requests", limit=1000)["requests"]
    if len(requests_seen) >= 1000:
        raise SystemExit("the slow emulator's request log is full: status polls would be undercounted")
    figures = {}
    for name, (_, tasks) in WAITS.items():
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
    figures["all"] = {"period_s": sampler.period(), "token_exchanges": control(slow, "stats")["token_exchanges"]}
    return figures


def on_the_scheduler(
    emulator: dict[str, Any], slow: dict[str, Any]
) -> tuple[dict[str, int], dict[str, float], dict[str, dict[str, float]]]:
    """Sections 3-6 on one stack: the slot waits start first, the others run while they wait."""
    env = {
        "AIRFLOW_CONN_ODC_DEFAULT": connection(emulator),
        "AIRFLOW_CONN_ODC_MEMORY_ONLY": connection(emulator, cache_mode="memory"),
        "AIRFLOW_CONN_ODC_SLOW": connection(slow),
    }
    exchanges: dict[str, int] = {}
    with (
        tempfile.TemporaryDirectory(prefix="odc-bench-") as home,
        AirflowStack(Path(home), ROOT / "benchmarks" / "dags", env=env, parallelism=PARALLELISM) as stack,
    ):
        sampler, slot_conf = start_slot_waits(stack, slow)
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
        waits = slot_figures(stack, slow, sampler, slot_conf)
    first_call = {name: statistics.median(task[name] for task in per_task) for name in per_task[0]}
    return exchanges, first_call, waits


def main() -> int:
    processes = []
    try:
        # Sections 1-5 measure the client's own cost: 2,000 calls would wait out ODC's 100-a-minute limit.
        process, emulator = start_emulator(PAGED_ASSETS, "--no-rate-limits")
        processes.append(process)
        cost = per_call_cost(emulator)
        paged = paging(emulator)
        process, slow = start_emulator(25)  # section 6: its own counters, deployments of DEPLOY_SECONDS
        processes.append(process)
        exchanges, first, waits = on_the_scheduler(emulator, slow)
        burst = rate_limit_burst()  # section 7: benchmarks/rate_limits.py, ODC's documented limits
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)

    rows = [
        ("OdcHook.request, warm token (per call)", f"{cost['hook_us']:.0f} us", ""),
        ("bare requests.Session, fixed token (per call)", f"{cost['bare_us']:.0f} us", ""),
        ("ratio hook / bare (median of the paired rounds' ratios)", f"{cost['ratio']:.3f}", "<= 1.10"),
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
        (f"waiting for a {DEPLOY_SECONDS:.0f} s deployment, three waits side by side in one DAG run:", "", ""),
    ]
    poke = waits["poke"]["slot_s"]
    for name, (label, tasks) in WAITS.items():
        wait = waits[name]
        goal = f"< 10% of poke ({poke / 10:.1f} s)" if name == "deferrable" else ""
        rows += [
            (f"  {label}: worker-slot seconds", f"{wait['slot_s']:.1f} s", goal),
            ("    of which queued", f"{wait['queued_s']:.1f} s", ""),
            ("    wall time of the wait", f"{wait['wall_s']:.0f} s", ""),
            ("    ODC status polls of its deployment", str(wait["polls"]), ""),
            ("    the poll that saw it end came after the end by", f"{wait['late_s']:.1f} s", ""),
            (
                f"    Airflow's own duration of {tasks[-1]} (end_date - start_date)",
                f"{wait['airflow_duration_s']:.1f} s",
                "",
            ),
        ]
    slow_exchanges = int(waits["all"]["token_exchanges"])
    rows.append(("  token exchanges, all three waits (their own emulator)", str(slow_exchanges), "1"))
    rows += [(f"{burst['tasks']} deploy tasks released together, ODC's limits: {k}", str(burst[k]), "")
             for k in ("wall_s", "floor_s", "ratio", "posts_accepted", "rate_limited")]  # fmt: skip
    width = max(len(row[0]) for row in rows)
    print(f"\n{'measure':<{width}}  {'value':>10}  goal")
    for name, value, goal in rows:
        print(f"{name:<{width}}  {value:>10}  {goal}".rstrip())
    print(
        f"\nWorker-slot seconds: time in running + queued (a queued task holds a LocalExecutor slot too), from the"
        f" task\ninstances' states sampled over REST every {waits['all']['period_s']:.2f} s on average"
        f" ({SAMPLE_EVERY} s sleep + the call); deferred,\nup_for_reschedule and scheduled hold no slot."
    )
    ok = (
        cost["ratio"] <= 1.10
        and exchanges["odc_default"] == 1
        and exchanges["first_call"] == 0
        and exchanges["defer_resume"] == 0
        and paged["requests"] == PAGED_ASSETS // PAGE_SIZE
        and paged["connections"] == 1
        and waits["deferrable"]["slot_s"] < 0.10 * poke
        and slow_exchanges == 1
        and burst["state"] == "success"
        and burst["posts_accepted"] == burst["distinct_operations"] == burst["tasks"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
