"""The ``odc_emulator`` / ``odc_connection`` pytest fixtures, used directly and by a user's own test file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import requests

from airflow_provider_odc.emulator.server import OdcEmulator

TIMEOUT = 10


def test_odc_emulator_fixture_is_running_and_fresh(
    odc_emulator: OdcEmulator, odc_emulator_session: OdcEmulator
) -> None:
    assert odc_emulator is odc_emulator_session and odc_emulator.running
    assert odc_emulator.stats()["api_calls_total"] == 0 and odc_emulator.pending_faults() == []
    assert requests.get(f"{odc_emulator.control_url}/stats", timeout=TIMEOUT).status_code == 200


def test_odc_connection_points_airflow_at_the_emulator(odc_connection: str, odc_emulator: OdcEmulator) -> None:
    from airflow.sdk import BaseHook

    assert odc_connection == "odc_default"
    assert json.loads(os.environ["AIRFLOW_CONN_ODC_DEFAULT"]) == odc_emulator.connection_dict()
    conn = BaseHook.get_connection(odc_connection)
    assert (conn.conn_type, conn.host, conn.login, conn.password) == (
        "odc",
        odc_emulator.base_url,
        odc_emulator.client_id,
        odc_emulator.client_secret,
    )


USER_TEST_FILE = '''
"""A user's DAG test: the task code talks to 'ODC' through the Airflow connection, fully offline."""
import pytest
import requests
from airflow.sdk import BaseHook


def stage_names(conn_id):
    """Stands in for a task callable of the user's DAG."""
    conn = BaseHook.get_connection(conn_id)
    session = requests.Session()
    discovery = session.get(conn.host + "/identity/.well-known/openid-configuration", timeout=10).json()
    form = {"grant_type": "client_credentials", "client_id": conn.login, "client_secret": conn.password}
    token = session.post(discovery["token_endpoint"], data=form, timeout=10).json()["access_token"]
    response = session.get(
        conn.host + "/api/portfolios/v2/environments", headers={"Authorization": "Bearer " + token}, timeout=10
    )
    response.raise_for_status()
    return [stage["name"] for stage in sorted(response.json()["results"], key=lambda s: s["order"])]


def test_task_reads_the_stages(odc_connection, odc_emulator):
    assert stage_names(odc_connection) == ["Development", "QA", "Production"]
    assert odc_emulator.stats()["token_exchanges"] == 1


def test_next_test_starts_clean(odc_emulator):
    assert odc_emulator.stats()["token_exchanges"] == 0


def test_task_surfaces_an_outage(odc_connection, odc_emulator):
    odc_emulator.add_fault(target="api", status=503, count=1)
    with pytest.raises(requests.HTTPError):
        stage_names(odc_connection)
'''


def test_a_users_test_file_runs_offline_with_the_plugin(tmp_path: Path) -> None:
    (tmp_path / "test_my_dag.py").write_text(textwrap.dedent(USER_TEST_FILE), encoding="utf-8")
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow-home")}
    env.pop("AIRFLOW_CONN_ODC_DEFAULT", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_dag.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_odc_airflow_without_the_dags_folder_setting_says_what_to_set(tmp_path: Path) -> None:
    """``odc_airflow`` isolates Airflow only when ``odc_dags_folder`` is set; without it the test fails clearly."""
    (tmp_path / "test_my_dag.py").write_text("def test_my_dag(odc_airflow):\n    pass\n", encoding="utf-8")
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow-home")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_dag.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'odc_airflow needs the odc_dags_folder setting: add `odc_dags_folder = "dags"`' in result.stdout


def test_odc_dags_folder_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\nodc_dags_folder = no-such-folder\n", encoding="utf-8")
    (tmp_path / "test_my_dag.py").write_text("def test_my_dag():\n    pass\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_dag.py"],
        cwd=tmp_path,
        env={**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow-home")},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 4, result.stdout + result.stderr  # pytest's usage error
    assert f"odc_dags_folder: {tmp_path / 'no-such-folder'} is not a directory" in result.stderr
