"""Thirty deploy tasks released together against ODC's documented rate limits (``make bench``).

The emulator runs as its own process with its defaults: every documented limit (10 deployment POSTs a
minute, 100 requests a minute per API) and no ``Retry-After``, as ODC documents none. A stack serving
``tests/integration/dags`` runs the burst DAG the scheduler test runs (``devtools/burst.py``), so
the figures are those of the test: the run's wall time against the floor the limit sets (the 30th POST
cannot be accepted sooner than two minutes after the first), POSTs accepted, and 429s answered.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devtools.burst import run_burst  # noqa: E402
from devtools.stack import AirflowStack  # noqa: E402

DAGS = ROOT / "tests" / "integration" / "dags"
PARALLELISM = 5  # as the other scheduler benchmarks: every idle LocalExecutor worker costs about 180 MB
TIMEOUT = 10


def _control(base: str, action: str, **params: Any) -> Any:
    response = requests.get(f"{base}/{action}", params=params or None, timeout=TIMEOUT)
    response.raise_for_status()
    return response.json()


def rate_limit_burst() -> dict[str, Any]:
    """Run the 30-task burst once; a plain dict of what was measured (see ``devtools.burst``)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_odc.emulator", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        emulator = json.loads(process.stdout.readline())
        control = emulator["control_url"]
        conn = {
            "conn_type": "odc",
            "host": emulator["base_url"],
            "login": emulator["client_id"],
            "password": emulator["client_secret"],
        }
        with (
            tempfile.TemporaryDirectory(prefix="odc-bench-burst-") as home,
            AirflowStack(
                Path(home), DAGS, env={"AIRFLOW_CONN_ODC_DEFAULT": json.dumps(conn)}, parallelism=PARALLELISM
            ) as stack,
        ):
            result = run_burst(
                stack,
                _control(control, "inventory"),
                lambda: _control(control, "stats"),
                lambda limit: _control(control, "requests", limit=limit)["requests"],
            )
    finally:
        process.terminate()
        process.wait(timeout=10)
    result["parallelism"] = PARALLELISM
    return result


if __name__ == "__main__":
    print(json.dumps(rate_limit_burst(), indent=1))
