"""An impact gate that defers to the triggerer, then a configuration patch whose secret comes from a Variable."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_odc.operators.configurations import OdcPatchConfigurationsOperator
from airflow_provider_odc.operators.impact import OdcImpactAnalysisOperator

with DAG(
    dag_id="odc_governed_gate",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={"asset": ""},
) as dag:
    gate = OdcImpactAnalysisOperator(
        task_id="impact_gate", asset="{{ params.asset }}", stage="Production", deferrable=True, fast_interval=1
    )
    configure = OdcPatchConfigurationsOperator(
        task_id="configure",
        asset="{{ params.asset }}",
        stage="QA",
        settings={"ApiUrl": "https://partner-v2.example.test"},
        secret_settings={"ApiKey": "variable:partner_credential"},  # a key Airflow does not mask by itself
        deferrable=True,
        fast_interval=1,
    )
    gate >> configure
