"""``make demo``: run the example DAGs against the local ODC emulator.

Everything is set up from scratch in ``.airflow-demo/`` (Airflow's embedded SQLite database,
``airflow db migrate``), the emulator is started on a free loopback port, an ``odc_default``
connection is added with the Airflow CLI, and ``airflow dags test`` runs two DAGs, each in its own
process: the stage and asset listing, then the deferrable release pipeline (build a revision, deploy
it to QA, then Production). The demo ends with how many ODC API calls the tasks made and how many
token exchanges they needed: the second process reuses the token the first stored, encrypted, in an
Airflow Variable.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from airflow_provider_odc.emulator.server import OdcEmulator

ROOT = Path(__file__).resolve().parents[1]
LIST_DAG = "odc_list_stages_and_assets"
RELEASE_DAG = "odc_release_pipeline"


def needs_a_build(asset: dict[str, Any]) -> bool:
    """A web app whose latest revision has no Release build yet: the pipeline has to build it."""
    releases = [b for b in asset["builds"] if b["buildType"] == "Release" and b["revision"] == asset["latestRevision"]]
    return asset["assetType"] == "WebApplication" and asset["deployable"] and not releases


def main() -> int:
    home = ROOT / ".airflow-demo"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags"),
    }
    airflow = [sys.executable, "-m", "airflow"]

    def run(*args: str, quiet: bool = False) -> None:
        print(f"$ airflow {' '.join(args[:3])} ...", flush=True)  # the rest may hold the secret
        result = subprocess.run([*airflow, *args], env=env, cwd=ROOT, text=True, capture_output=quiet, check=False)
        if result.returncode != 0:
            if quiet:
                sys.stderr.write(result.stdout + result.stderr)
            raise SystemExit(f"airflow {args[0]} {args[1]} failed with exit code {result.returncode}")

    run("db", "migrate", quiet=True)
    with OdcEmulator() as emulator:
        print(f"ODC emulator listening on {emulator.base_url}", flush=True)
        run(
            "connections", "add", "odc_default",
            "--conn-type", "odc",
            "--conn-host", emulator.base_url,
            "--conn-login", emulator.client_id,
            "--conn-password", emulator.client_secret,
            quiet=True,
        )  # fmt: skip
        run("dags", "test", LIST_DAG)
        app = next(a for a in emulator.inventory()["assets"] if needs_a_build(a))
        run("dags", "test", RELEASE_DAG, "--conf", json.dumps({"asset": app["name"], "revision": "latest"}))
        stats = emulator.stats()
        deployed = next(a for a in emulator.inventory()["assets"] if a["assetKey"] == app["assetKey"])["deployed"]

    api_calls = stats["api_calls_total"]
    exchanges = stats["token_exchanges"]
    print()
    print(f"Demo finished: {LIST_DAG} and {RELEASE_DAG} ran against the ODC emulator, each in its own process.")
    print(f"{app['name']} revision {app['latestRevision']} is now deployed to:")
    for stage in ("QA", "Production"):
        print(f"  {stage}: revision {deployed.get(stage, {}).get('revision')}")
    print("ODC API calls by route:")
    for route, count in sorted(stats["api_calls"].items()):
        print(f"  {count:4d}  {route}")
    print(f"ODC API calls: {api_calls}; token exchanges needed: {exchanges}.")
    released = all(deployed.get(stage, {}).get("revision") == app["latestRevision"] for stage in ("QA", "Production"))
    return 0 if exchanges == 1 and released else 1


if __name__ == "__main__":
    raise SystemExit(main())
