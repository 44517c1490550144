"""Producer DAGs for the Asset event tests: each runs one ODC operator on the app and stage given in params."""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_odc.operators.lifecycle import (
    OdcApplyConfigsOperator,
    OdcBuildOperator,
    OdcDeployOperator,
    OdcPublishOperator,
    OdcTagRevisionOperator,
    OdcUndeployOperator,
)

PARAMS = {"asset": "", "stage": "Production", "tag": "99.0.0"}
FAST = {"fast_interval": 0.2, "fast_period": 30, "slow_interval": 0.2}
ASSET, STAGE = "{{ params.asset }}", "{{ params.stage }}"

with DAG("odc_assets_deploy", schedule=None, params=PARAMS):
    OdcDeployOperator(task_id="deploy", asset=ASSET, stage=STAGE, deferrable=False, **FAST)

with DAG("odc_assets_deploy_deferred", schedule=None, params=PARAMS):
    OdcDeployOperator(task_id="deploy", asset=ASSET, stage=STAGE, deferrable=True, **FAST)

with DAG("odc_assets_deploy_no_wait", schedule=None, params=PARAMS):
    OdcDeployOperator(task_id="deploy", asset=ASSET, stage=STAGE, wait_for_completion=False)

with DAG("odc_assets_deploy_then_configure", schedule=None, params=PARAMS):
    deploy = OdcDeployOperator(task_id="deploy", asset=ASSET, stage=STAGE, deferrable=False, **FAST)
    configure = OdcApplyConfigsOperator(task_id="apply_configs", asset=ASSET, stage=STAGE, deferrable=True, **FAST)
    undeploy = OdcUndeployOperator(task_id="undeploy", asset=ASSET, stage=STAGE, deferrable=False, **FAST)
    deploy >> configure >> undeploy

with DAG("odc_assets_build_publish_tag", schedule=None, params=PARAMS):
    build = OdcBuildOperator(task_id="build", asset=ASSET, reuse_existing_build=False, deferrable=True, **FAST)
    publish = OdcPublishOperator(task_id="publish", asset=ASSET, deferrable=False, **FAST)
    tag = OdcTagRevisionOperator(task_id="tag", asset=ASSET, revision="latest", tag="{{ params.tag }}")
    build >> publish >> tag
