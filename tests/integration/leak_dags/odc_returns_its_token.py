"""A deliberately leaky DAG: its task returns the access token, so the token lands in XCom.

Only ``test_leak_scan_reports_a_leak.py`` runs it, to show that the leak scan finds such a leak.
Never copy this: a task must not return or log the token.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

from airflow_provider_odc.hooks.odc import OdcHook

with DAG(
    dag_id="odc_returns_its_token",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["odc", "test"],
) as dag:

    @task
    def leak_the_token() -> str:
        return OdcHook().get_access_token()

    leak_the_token()
