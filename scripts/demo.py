"""``make demo``: run the example DAG against the local ODC emulator.

Everything is set up from scratch in ``.airflow-demo/`` (Airflow's embedded SQLite database,
``airflow db migrate``), the emulator is started on a free loopback port, an ``odc_default``
connection is added with the Airflow CLI, and ``airflow dags test`` runs the DAG. The demo ends with
how many ODC API calls the tasks made and how many token exchanges they needed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from airflow_provider_odc.emulator.server import OdcEmulator

ROOT = Path(__file__).resolve().parents[1]
DAG_ID = "odc_list_stages_and_assets"


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
        print(f"$ airflow {' '.join(args[:3])} ...", flush=True)
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
        run("dags", "test", DAG_ID)
        stats = emulator.stats()

    api_calls = stats["api_calls_total"]
    exchanges = stats["token_exchanges"]
    print()
    print(f"Demo finished: DAG {DAG_ID} ran 3 tasks against the ODC emulator.")
    for route, count in sorted(stats["api_calls"].items()):
        print(f"  {count:4d}  {route}")
    print(f"ODC API calls: {api_calls}; token exchanges needed: {exchanges}.")
    return 0 if exchanges == 1 and api_calls > 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
