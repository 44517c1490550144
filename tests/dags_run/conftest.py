"""Runs of DAG files in a real Airflow with ``dag.test()``, on a migrated SQLite database."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A migrated metadata database (SQLite) in the tests' throwaway AIRFLOW_HOME."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
