"""List the ODC stages and assets of a tenant: the provider's main example.

Three tasks, each calling ODC, all sharing one access token through the encrypted Variable cache.
Parses without network, connection or Variable access (nothing below runs at parse time).
Run it against the local emulator with ``make demo``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.operators.odc import OdcApiOperator


def stages_in_order(response: Any) -> list[dict[str, Any]]:
    """Development -> QA -> Production, as ODC orders them (``order`` values are not 1, 2, 3)."""
    stages = sorted(response.json()["results"], key=lambda stage: stage.get("order", 0))
    return [{"key": s["key"], "name": s["name"], "purpose": s.get("purpose")} for s in stages]


with DAG(
    dag_id="odc_list_stages_and_assets",
    description="List ODC stages and assets through the ODC provider",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["odc", "example"],
) as dag:
    list_stages = OdcApiOperator(
        task_id="list_stages",
        endpoint="/api/portfolios/v2/environments",
        response_filter=stages_in_order,
    )

    list_web_apps = OdcApiOperator(
        task_id="list_web_apps",
        endpoint="/api/asset-repository/v1/assets",
        query_params={"assetTypes": "WebApplication", "sort": "name"},
        paginate=True,
        page_size=10,
        response_filter=lambda assets: [{"key": a["assetKey"], "name": a["name"]} for a in assets],
    )

    @task
    def summarize(stages: list[dict[str, Any]], web_apps: list[dict[str, Any]]) -> dict[str, Any]:
        """Count every asset by type with the hook directly, and report alongside the other tasks' results."""
        by_type: dict[str, int] = {}
        for asset in OdcHook().paginate("/api/asset-repository/v1/assets", page_size=100):
            by_type[asset.get("assetType", "Unknown")] = by_type.get(asset.get("assetType", "Unknown"), 0) + 1
        summary = {"stages": [s["name"] for s in stages], "web_apps": len(web_apps), "assets_by_type": by_type}
        print(f"ODC tenant summary: {summary}")
        return summary

    summarize(list_stages.output, list_web_apps.output)
