"""Three waits for the same long deployment, side by side in one run (``make bench``).

* ``deploy_poke``: ``OdcDeployOperator(deferrable=False)`` polls in its worker until the deployment ends;
* ``deploy_deferrable``: ``OdcDeployOperator(deferrable=True)`` hands the wait to the triggerer;
* ``start_deploy`` >> ``wait_reschedule``: a deployment started without waiting, then an
  ``OdcOperationSensor`` in ``mode="reschedule"`` (what a deployment without a triggerer would use).

Each deploys its own asset to ``params.stage``. The bench measures the worker slots they hold from outside.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_odc.operators.lifecycle import OdcDeployOperator
from airflow_provider_odc.sensors.odc import OdcOperationSensor


class DeployOperator(OdcDeployOperator):
    """``OdcDeployOperator`` whose connection id is templated too, so the bench can pass it in ``conf``."""

    template_fields: Sequence[str] = (*OdcDeployOperator.template_fields, "odc_conn_id")


class OperationSensor(OdcOperationSensor):
    """``OdcOperationSensor`` whose connection id is templated too."""

    template_fields: Sequence[str] = (*OdcOperationSensor.template_fields, "odc_conn_id")


with DAG(
    dag_id="odc_bench_slot_wait",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={"conn_id": "odc_slow", "stage": "QA", "poke_asset": "", "deferrable_asset": "", "reschedule_asset": ""},
) as dag:
    conn_id, stage = "{{ params.conn_id }}", "{{ params.stage }}"
    DeployOperator(
        task_id="deploy_poke", asset="{{ params.poke_asset }}", stage=stage, odc_conn_id=conn_id, deferrable=False
    )
    DeployOperator(
        task_id="deploy_deferrable",
        asset="{{ params.deferrable_asset }}",
        stage=stage,
        odc_conn_id=conn_id,
        deferrable=True,
    )
    started = DeployOperator(
        task_id="start_deploy",
        asset="{{ params.reschedule_asset }}",
        stage=stage,
        odc_conn_id=conn_id,
        wait_for_completion=False,
    )
    started >> OperationSensor(
        task_id="wait_reschedule",
        kind="deployment",
        operation_key="{{ ti.xcom_pull(task_ids='start_deploy', key='operation_key') }}",
        odc_conn_id=conn_id,
        mode="reschedule",
        deferrable=False,
    )
