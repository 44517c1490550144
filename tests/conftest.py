"""Test-wide set-up: a throwaway AIRFLOW_HOME, set before anything imports Airflow.

Tests never touch a developer's real Airflow home or database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Generator
from pathlib import Path

_HOME = tempfile.mkdtemp(prefix="odc-tests-airflow-home-")
os.environ["AIRFLOW_HOME"] = _HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parents[1] / "example_dags")
os.environ.setdefault("AIRFLOW__CORE__TEST_CONNECTION", "Enabled")
# Everything runs at DEBUG, so the secret-hygiene tests see every line the provider could write.
os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "DEBUG"

import pytest  # noqa: E402

from airflow_provider_odc.cache.token_cache import TokenCache  # noqa: E402

from .required import IN_CI  # noqa: E402


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A migrated metadata database (SQLite) in the tests' throwaway AIRFLOW_HOME, for ``dag.test()``."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)


@pytest.fixture(autouse=True)
def _fresh_process_caches() -> None:
    """Each test starts like a new worker process: no token in memory."""
    TokenCache.forget_all()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Airflow logs 'Disposing DB connection pool' at exit, after pytest closed the captured streams."""
    import logging

    logging.getLogger("airflow.settings").disabled = True


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Under CI a skip is a failure, whoever raised it: CI has every piece, so a skip there hides a hole."""
    report: pytest.TestReport = yield
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = f"skipped, but CI is set and every test is required there: {reason}"
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line that CI logs can be searched for: how many tests were skipped (their reasons are above, -ra)."""
    skipped = len(terminalreporter.stats.get("skipped", []))
    terminalreporter.write_line(f"skipped tests: {skipped}" + (" (CI: a skip fails the run)" if IN_CI else ""))
