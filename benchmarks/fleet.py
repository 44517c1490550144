"""The token cache on a real multi-host Celery fleet, full size (``make bench-fleet``, issue 12 §1).

Two Celery workers, each on a host of its own (a network namespace), the second with its clock 90 s ahead;
api-server, scheduler, dag-processor, triggerer, PostgreSQL, Redis and the ODC emulator (https) on the host
(see ``devtools/fleet/fleet.py``). Needs root. Writes ``benchmarks/fleet_results.json``:

- ``fleet_many_tasks``: 100 tasks spread by Celery over both hosts, cold cache: token exchanges (goal 1);
- ``fleet_released_together``: 40 tasks (20 per host) released at one instant, cold cache (goal at most 2);
- ``fleet_expiry_mid_run``: a 240 s token from the punctual host; once the skewed host thinks it is due,
  4 tasks per host call ODC every 10 s for 270 s, past its expiry. Goals: no 401 (nobody uses an expired
  token), the skewed host's first refresh is its only early one, and no two exchanges closer than the
  refresh period minus the skew (each due token is refreshed once fleet-wide, not once per host).
- ``fleet_paced_redeploy``: ``OdcDeployOperator`` mapped over 60 apps on the paced connection
  (``request_pacing: variable``), spread over both hosts, against ODC's documented limits (issue 12 §2 across
  hosts; the emulator is seeded with 400 assets for 60 deployable built apps). Goals: every deploy once,
  at most 10 % of the POSTs answered 429, at most 1.2x the floor (``devtools/mass_redeploy.py``).

``make bench-fleet`` then renders the README's fleet table from that file (``scripts/render_bench.py``).
``make test`` runs a smaller version of each (``tests/fleet``) that asserts the same counts.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report import ALONE, add_section, finish, new_results  # noqa: E402
from devtools.fleet.fleet import Fleet, install  # noqa: E402
from devtools.fleet.scenarios import many_tasks, paced_redeploy, released_together, skewed_refresh  # noqa: E402

RESULTS = ROOT / "benchmarks" / "fleet_results.json"
SECTIONS = ("fleet_many_tasks", "fleet_released_together", "fleet_expiry_mid_run", "fleet_paced_redeploy")
DAGS = ROOT / "tests" / "fleet" / "dags"
TASKS = 100
CONCURRENCY = 20  # per worker: 40 tasks at one instant on two hosts
LIFETIME = 240
EXPIRY_TASKS_PER_HOST, EXPIRY_CALLS, EXPIRY_INTERVAL = 4, 28, 10.0  # 8 x 28 calls in 270 s: inside 100 a minute
PACED_DEPLOYS, ASSETS = 60, 400


def goals(results: dict[str, Any]) -> list[str]:
    """The goals each section missed (empty when all are met)."""
    sections = results["sections"]
    missed = []
    many = sections["fleet_many_tasks"]
    if many["token_exchanges"] != 1 or len(many["hosts"]) != 2 or many["unauthorized"]:
        missed.append("fleet_many_tasks: one exchange for 100 tasks on both hosts, no 401")
    together = sections["fleet_released_together"]
    if together["token_exchanges"] > 2 or together["unauthorized"] or len(together["hosts"]) != 2:
        missed.append("fleet_released_together: at most two exchanges, no 401")
    expiry = sections["fleet_expiry_mid_run"]
    period = expiry["lifetime"] / 2 - expiry["skew"]
    times = [0.0, *expiry["exchanges_after_first"]]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    if expiry["unauthorized"] or not expiry["run_covers_expiry"] or any(gap < period - 5 for gap in gaps):
        missed.append("fleet_expiry_mid_run: no 401 and each due token refreshed once fleet-wide")
    paced = sections["fleet_paced_redeploy"]
    if not (
        paced["tasks_succeeded"] == paced["posts_accepted"] == paced["distinct_operations"] == PACED_DEPLOYS
        and paced["max_try_number"] == 1
        and len(paced["hosts"]) == 2
        and (paced["post_429_share"] or 0) <= 0.10
        and paced["ratio"] is not None
        and paced["ratio"] <= 1.2
    ):
        missed.append("fleet_paced_redeploy: 60 deploys once each on both hosts, at most 10% 429s, at most 1.2x")
    return missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--only", choices=SECTIONS, action="append", help="run only this section (repeatable; results not goal-checked)"
    )
    args = parser.parse_args(argv)
    only = set(args.only or SECTIONS)
    if os.geteuid() != 0:
        print("make bench-fleet needs root (network namespaces)", file=sys.stderr)
        return 2
    result = install()
    if result.returncode != 0:
        print(result.stderr, file=sys.stderr)
        return result.returncode
    settings = {
        "workers": 2,
        "clock_offsets_s": [0, 90],
        "concurrency_per_worker": CONCURRENCY,
        "tasks": TASKS,
        "token_lifetime_s": LIFETIME,
        "expiry_run": {"tasks_per_host": EXPIRY_TASKS_PER_HOST, "calls": EXPIRY_CALLS, "interval_s": EXPIRY_INTERVAL},
        "paced_deploys": PACED_DEPLOYS,
        "assets": ASSETS,
    }
    results = new_results("make bench-fleet (benchmarks/fleet.py)", settings)
    started = time.monotonic()
    pg_dir = Path(tempfile.mkdtemp(prefix="odc-postgres-"))
    home = Path(tempfile.mkdtemp(prefix="odc-fleet-bench-"))
    script = ROOT / "scripts" / "postgres.sh"
    pg = subprocess.run(
        ["bash", str(script), "start", str(pg_dir)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
    )
    if pg.returncode != 0:
        print(pg.stderr, file=sys.stderr)
        return pg.returncode
    fleet = Fleet(home, DAGS, pg.stdout.strip().splitlines()[-1], concurrency=CONCURRENCY, asset_count=ASSETS)
    try:
        fleet.start()
        results["settings"]["start_seconds"] = {phase: round(value, 1) for phase, value in fleet.timings.items()}
        if "fleet_many_tasks" in only:
            add_section(results, "fleet_many_tasks", many_tasks(fleet, TASKS), load=ALONE)
        if "fleet_released_together" in only:
            add_section(results, "fleet_released_together", released_together(fleet, home / "barrier"), load=ALONE)
        if "fleet_expiry_mid_run" in only:
            expiry = skewed_refresh(
                fleet,
                LIFETIME,
                tasks_per_host=EXPIRY_TASKS_PER_HOST,
                calls=EXPIRY_CALLS,
                interval=EXPIRY_INTERVAL,
            )
            add_section(results, "fleet_expiry_mid_run", expiry, load=ALONE)
        if "fleet_paced_redeploy" in only:
            add_section(results, "fleet_paced_redeploy", paced_redeploy(fleet, PACED_DEPLOYS), load=ALONE)
    finally:
        leftovers = fleet.stop()
        subprocess.run(["bash", str(script), "stop", str(pg_dir)], capture_output=True)
        shutil.rmtree(pg_dir, ignore_errors=True)
    finish(results, time.monotonic() - started)
    results["leftovers"] = leftovers
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results["sections"], indent=1))
    print(f"Results written to {args.output}; Airflow home and logs kept in {home}.")
    missed = (goals(results) if only == set(SECTIONS) else []) + ([f"teardown left {leftovers}"] if leftovers else [])
    if missed:
        print(f"Goals missed: {', '.join(missed)}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
