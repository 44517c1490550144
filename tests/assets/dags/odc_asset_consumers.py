"""Consumer DAGs for the queueing test: scheduled on one app in one stage, on another app, and on the stage.

The portal and keys are only known once the emulator runs: the test puts them in the environment before
the bundle is parsed. Without them (any other parse of this folder) the file defines no DAG.
"""

from __future__ import annotations

import os

from airflow.sdk import DAG, task

from airflow_provider_odc.assets import odc_asset, odc_stage_asset

PORTAL = os.environ.get("ODC_TEST_PORTAL")
STAGE = os.environ.get("ODC_TEST_STAGE_KEY")
APP = os.environ.get("ODC_TEST_APP_KEY")
OTHER_APP = os.environ.get("ODC_TEST_OTHER_APP_KEY")


@task
def noop() -> None:
    """Nothing: the test only looks at what the scheduler would queue."""


if PORTAL and STAGE and APP and OTHER_APP:
    with DAG("odc_assets_on_one_app", schedule=odc_asset(PORTAL, STAGE, APP)):
        noop()
    with DAG("odc_assets_on_other_app", schedule=odc_asset(PORTAL, STAGE, OTHER_APP)):
        noop()
    with DAG("odc_assets_on_the_stage", schedule=odc_stage_asset(PORTAL, STAGE)):
        noop()
