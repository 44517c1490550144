"""List the ODC stages and assets of a tenant: the provider's main example.

Three tasks, each calling ODC, all sharing one access token through the encrypted Variable cache.
Parses without network, connection or Variable access (nothing below runs at parse time).
Run it against the local emulator with ``make demo``.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_odc.api.assets import Asset
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.operators.odc import OdcApiOperator


def web_apps_by_name(items: list[Any]) -> list[dict[str, str]]:
    """The generic operator's items, read with the same typed result the hook's ``list_assets`` returns."""
    return [{"key": app.asset_key, "name": app.name} for app in map(Asset.from_json, items)]


with DAG(
    dag_id="odc_list_stages_and_assets",
    description="List ODC stages and assets through the ODC provider",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["odc", "example"],
) as dag:

    @task
    def list_stages() -> list[dict[str, Any]]:
        """Development -> QA -> Production: the hook returns stages in ODC's order (``order`` is not 1, 2, 3)."""
        return [{"key": s.key, "name": s.name, "purpose": s.purpose} for s in OdcHook().list_stages()]

    # Any endpoint, the way HttpOperator calls any URL: every WebApplication, 10 per page.
    list_web_apps = OdcApiOperator(
        task_id="list_web_apps",
        endpoint="/api/asset-repository/v1/assets",
        query_params={"assetTypes": "WebApplication", "sort": "name"},
        paginate=True,
        page_size=10,
        response_filter=web_apps_by_name,
    )

    @task
    def summarize(stages: list[dict[str, Any]], web_apps: list[dict[str, Any]]) -> dict[str, Any]:
        """Count every asset by type, and the assets deployed on each stage, with the hook's typed calls."""
        hook = OdcHook()
        by_type = Counter(asset.asset_type or "Unknown" for asset in hook.list_assets(page_size=100))
        deployed = Counter(
            stage["name"]
            for asset in hook.list_deployed_assets(page_size=100)
            for stage in stages
            if asset.on_stage(stage["key"]) is not None
        )
        summary = {
            "stages": [s["name"] for s in stages],
            "web_apps": len(web_apps),
            "assets_by_type": dict(by_type),
            "deployed_per_stage": dict(deployed),
        }
        print(f"ODC tenant summary: {summary}")
        return summary

    summarize(list_stages(), list_web_apps.output)
