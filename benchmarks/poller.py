"""One poll for many waits, measured (``make bench-fleet``, issue 12 §3): 1,000 deployment waits in one process.

The triggers are driven as the triggerer drives them: made by the operator's code path (``OdcOperationTrigger``),
stored with ``serialize()`` as JSON, rebuilt from those kwargs, and their ``run()`` generators consumed
concurrently on one event loop, against the emulator over loopback, on ODC's documented schedule (5 s for
30 s, then 30 s). The same 1,000 waits run twice, side by side in one run, each in a child process of its
own (so CPU and peak RSS are the waits' alone): ``before`` each trigger polls its own operation
(``share_polls=False``), ``after`` they share the poller. The deployments end uniformly spread over
``--spread`` seconds, starting ``--warmup`` seconds after they start. Rate limits are lifted in the
emulator, so the figures are what the waits ask for (a limited ODC would answer the excess with 429s).
Writes ``benchmarks/poller_results.json``:

- requests to the Deployments API per minute (mean over the run, and the busiest 60 s);
- end-detection delay: from the instant the emulator ends an operation to the trigger's event (p50/p99/max);
- CPU seconds and peak RSS of the process holding the waits; every wait's outcome (none lost).

``make test`` runs a small version (``tests/poller``) that asserts request counts per scan and outcomes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report import ALONE, add_section, finish, new_results  # noqa: E402

RESULTS = ROOT / "benchmarks" / "poller_results.json"
SECTION = "shared_poller_deployment_waits"
DEPLOYMENTS_PREFIX = "GET /api/deployments/v1/deployment-operations"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def _drive(job: dict[str, Any]) -> dict[str, float]:
    """The child: every wait's trigger, rebuilt from its stored kwargs, run concurrently; the event times."""
    from airflow_provider_odc.triggers.odc import OdcOperationTrigger

    stored = [
        OdcOperationTrigger(
            odc_conn_id="odc_default",
            kind="deployment",
            operation_key=key,
            end_time=time.time() + 3600,
            started_at=job["started_at"],
            share_polls=job["share_polls"],
        ).serialize()[1]
        for key in job["ends"]
    ]
    triggers = [OdcOperationTrigger(**json.loads(json.dumps(kwargs))) for kwargs in stored]
    seen: dict[str, float] = {}
    outcomes: dict[str, str] = {}

    async def wait(trigger: Any) -> None:
        async for event in trigger.run():
            seen[trigger.operation_key] = time.time()
            outcomes[trigger.operation_key] = event.payload["status"]
            return

    await asyncio.gather(*(wait(trigger) for trigger in triggers))
    return {"seen": seen, "outcomes": outcomes}  # type: ignore[dict-item]


def child(job_path: Path) -> None:
    job = json.loads(job_path.read_text())
    started = time.monotonic()
    result: dict[str, Any] = asyncio.run(_drive(job))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result.update(
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_mib=usage.ru_maxrss / 1024,
        wall_seconds=time.monotonic() - started,
    )
    job_path.with_suffix(".out.json").write_text(json.dumps(result))


def run_phase(emulator: Any, name: str, waits: int, spread: float, warmup: float, workdir: Path) -> dict[str, Any]:
    """Start ``waits`` deployments ending over ``spread`` s after ``warmup`` s, wait for them in a child
    process, count requests."""
    emulator.reset()
    emulator.configure(rate_limits=False)
    inventory = emulator.inventory()
    app = next(
        {**a, "buildKey": b["buildKey"]}
        for a in inventory["assets"]
        for b in a["builds"]
        if a["assetType"] == "WebApplication"
        and a["deployable"]
        and b["buildType"] == "Release"
        and b["status"] == "Finished"
        and b["revision"] == a["latestRevision"]
    )
    stage = next(iter(inventory["environments"].values()))
    started_at = time.time()
    ends: dict[str, float] = {}
    for index in range(waits):
        duration = warmup + spread * index / max(1, waits - 1)
        emulator.configure(operation_duration=duration)
        created = time.time()
        operation = emulator.state.release.start_deployment_operation(
            "Deploy", stage, app["assetKey"], app["buildKey"], app["latestRevision"]
        )
        ends[str(operation["key"])] = created + duration
    job = workdir / f"{name}.json"
    job.write_text(json.dumps({"ends": ends, "started_at": started_at, "share_polls": name == "after"}))
    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(1.0):
            calls = emulator.stats()["api_calls"]
            samples.append((time.time(), sum(n for route, n in calls.items() if route.startswith(DEPLOYMENTS_PREFIX))))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    env = {**os.environ, "AIRFLOW_CONN_ODC_DEFAULT": emulator.connection_json()}
    subprocess.run([sys.executable, __file__, "--child", str(job)], check=True, env=env)
    done.set()
    sampler.join()
    out = json.loads(job.with_suffix(".out.json").read_text())
    calls = emulator.stats()["api_calls"]
    lists = calls.get(DEPLOYMENTS_PREFIX, 0)
    by_key = calls.get(DEPLOYMENTS_PREFIX + "/{operationKey}", 0)
    delays = [out["seen"][key] - end for key, end in ends.items() if key in out["seen"]]
    busiest = max(
        (later[1] - earlier[1] for earlier in samples for later in samples if 0 < later[0] - earlier[0] <= 60),
        default=lists + by_key,
    )
    minutes = out["wall_seconds"] / 60
    return {
        "waits": waits,
        "waits_ended": sum(1 for status in out["outcomes"].values() if status == "success"),
        "waits_lost": waits - len(out["seen"]),
        "requests": lists + by_key,
        "list_requests": lists,
        "get_by_key_requests": by_key,
        "requests_per_minute_mean": round((lists + by_key) / minutes, 1),
        "requests_per_minute_busiest": busiest,
        "end_detection_delay_p50_s": round(percentile(delays, 0.5), 2),
        "end_detection_delay_p99_s": round(percentile(delays, 0.99), 2),
        "end_detection_delay_max_s": round(max(delays), 2),
        "cpu_seconds": round(out["cpu_seconds"], 1),
        "peak_rss_mib": round(out["peak_rss_mib"]),
        "wall_seconds": round(out["wall_seconds"]),
    }


def real_triggerer(tasks: int) -> dict[str, Any]:
    """``tasks`` deferred ``OdcDeployOperator`` tasks on a real Airflow (scheduler, LocalExecutor,
    triggerer): ``tests/poller/test_real_triggerer.py`` at full size, its counts written to a file."""
    with tempfile.TemporaryDirectory() as workdir:
        report = Path(workdir) / "stack.json"
        env = {**os.environ, "ODC_POLLER_STACK_TASKS": str(tasks), "ODC_POLLER_STACK_REPORT": str(report)}
        test = ROOT / "tests" / "poller" / "test_real_triggerer.py"
        subprocess.run([sys.executable, "-m", "pytest", str(test), "-q", "-p", "no:cacheprovider"], env=env, cwd=ROOT)
        return dict(json.loads(report.read_text())) if report.exists() else {"deferred_tasks": tasks, "passed": False}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--waits", type=int, default=1000)
    parser.add_argument("--spread", type=float, default=60.0, help="the ends are spread over this many seconds")
    parser.add_argument(
        "--warmup",
        type=float,
        default=420.0,
        help="the first end comes this long after the start: 1,000 triggers take minutes to make their first poll"
        " (each reads its connection and token), and the steady state is what a triggerer lives in",
    )
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--stack-tasks", type=int, default=100, help="deferred deploys on a real triggerer; 0: none")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child)
        return 0
    from airflow_provider_odc.emulator.server import OdcEmulator

    began = time.monotonic()
    results = new_results(
        "make bench-fleet (benchmarks/poller.py)",
        {"waits": args.waits, "spread_seconds": args.spread, "warmup_seconds": args.warmup},
    )
    with OdcEmulator() as emulator, tempfile.TemporaryDirectory() as workdir:
        before = run_phase(emulator, "before", args.waits, args.spread, args.warmup, Path(workdir))
        after = run_phase(emulator, "after", args.waits, args.spread, args.warmup, Path(workdir))
    # One row per figure, before and after side by side (each phase ran alone, one after the other).
    add_section(results, SECTION, {name: {"before": before[name], "after": after[name]} for name in before}, load=ALONE)
    if args.stack_tasks:
        add_section(results, "shared_poller_real_triggerer", real_triggerer(args.stack_tasks), load=ALONE)
    finish(results, time.monotonic() - began)
    args.results.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({"before": before, "after": after}, indent=2))
    ok = after["waits_lost"] == 0 and after["requests_per_minute_busiest"] <= 100 and before["waits_lost"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
