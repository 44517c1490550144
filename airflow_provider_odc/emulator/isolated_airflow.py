"""A throwaway Airflow for ``dag.test()`` in a user's own project (what the ``odc_airflow`` fixture sets up).

``dag.test()`` needs three things a fresh project does not have: a migrated metadata database, an
``AIRFLOW_HOME`` that is not the developer's real one, and (Airflow 3.3) a DAG bundle that contains the
DAG, since it only runs DAGs it finds serialized from a configured bundle. Airflow reads its home and its
database URL once, when it is first imported, so the environment is set before that: the pytest plugin
calls ``isolate_airflow`` from ``pytest_load_initial_conftests``, before any conftest or test module runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# The one bundle dag.test() walks: the user's DAG folder (Airflow's default bundle, with its path explicit).
BUNDLE_NAME = "dags-folder"
LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"


class DagTestSetupError(Exception):
    """The throwaway Airflow cannot be set up; the message says what to change."""


def isolate_airflow(dags_folder: Path) -> Path:
    """Point this process (and its children) at a new, empty ``AIRFLOW_HOME`` and at ``dags_folder``.

    Overrides any ``AIRFLOW_HOME`` or database URL in the environment, so a test session can never touch
    a developer's real Airflow. Returns the new home (the caller removes it at the end of the session).
    """
    if "airflow" in sys.modules:
        raise DagTestSetupError(
            "Airflow was imported before the odc_dags_folder setting could isolate it (by a plugin or an "
            "early import): remove that import, or set AIRFLOW_HOME yourself and do not use odc_dags_folder."
        )
    if not dags_folder.is_dir():
        raise DagTestSetupError(f"odc_dags_folder: {dags_folder} is not a directory")
    home = Path(tempfile.mkdtemp(prefix="odc-dag-test-airflow-home-"))
    bundles = [{"name": BUNDLE_NAME, "classpath": LOCAL_BUNDLE, "kwargs": {"path": str(dags_folder)}}]
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
    )
    return home


def migrate_database() -> None:
    """``airflow db migrate`` on the isolated home's SQLite database (a child process, like the CLI user)."""
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0:
        raise DagTestSetupError(f"airflow db migrate failed (exit {result.returncode}):\n{result.stderr[-4000:]}")


def forget_cached_tokens(conn_id: str) -> None:
    """Start a test like a new worker: no token in this process, none in the connection's Variable."""
    from airflow.models.variable import Variable

    from airflow_provider_odc.cache.stores import variable_key_for
    from airflow_provider_odc.cache.token_cache import TokenCache

    TokenCache.forget_all()
    Variable.delete(variable_key_for(conn_id))
