"""Promotion reports and promotion: the stage matrix from ``deployed-assets``, the plan of deploys, and the
mapped deploys of ``example_dags/odc_promote_stage.py`` run end to end in a real Airflow (dag.test)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider_odc.api.portfolios import DeployedAsset, Stage
from airflow_provider_odc.api.promotion import StageMatrix, plan_promotions
from airflow_provider_odc.exceptions import OdcError
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.operators.promotion import OdcPromotionPlanOperator, OdcStageMatrixOperator

from ..lifecycle.conftest import run_operator

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
DEV, QA, PRD = (
    Stage(f"0000000{n}-0000-4000-8000-000000000000", name, n * 1000, None, None)
    for n, name in enumerate(("Development", "QA", "Production"), start=1)
)


def deployed(key: str, **revisions: int) -> DeployedAsset:
    stages = {"dev": DEV, "qa": QA, "prd": PRD}
    return DeployedAsset.from_json(
        {
            "key": key,
            "type": "WebApplication",
            "deployments": [
                {"environmentKey": stages[name].key, "revision": rev, "buildKey": f"build-{key}-{rev}", "name": key}
                for name, rev in revisions.items()
            ],
        }
    )


def test_plan_lists_only_assets_newer_upstream() -> None:
    matrix = StageMatrix.build(
        [PRD, DEV, QA],
        [
            deployed("newer", dev=5, qa=4),
            deployed("same", dev=3, qa=3),
            deployed("older", dev=2, qa=7),
            deployed("missing", dev=9),
            deployed("only-qa", qa=1),
        ],
    )
    assert [stage.name for stage in matrix.stages] == ["Development", "QA", "Production"]
    plan = plan_promotions(matrix, DEV, QA)
    assert [(p.asset_key, p.revision, p.target_revision, p.build_key) for p in plan] == [
        ("newer", 5, 4, "build-newer-5")
    ]
    with_missing = plan_promotions(matrix, DEV, QA, include_missing=True)
    assert sorted(p.asset_key for p in with_missing) == ["missing", "newer"]
    assert "build_key" not in plan[0].deploy_kwargs(QA, reuse_source_build=False)
    assert plan[0].deploy_kwargs(QA) == {"asset": "newer", "stage": QA.key, "revision": 5, "build_key": "build-newer-5"}
    twin = Stage("00000009-0000-4000-8000-000000000000", "QA", 1500, None, "other-portfolio")
    assert StageMatrix.build([DEV, QA, twin], []).labels() == ["Development", f"QA ({twin.key})", f"QA ({QA.key})"]
    report = matrix.report()
    assert {a["key"]: a["revisions"] for a in report["assets"]}["missing"] == {
        "Development": 9,
        "QA": None,
        "Production": None,
    }


def inventory_revisions(emulator: Any, stage: str) -> dict[str, int]:
    return {
        a["assetKey"]: a["deployed"][stage]["revision"]
        for a in emulator.inventory()["assets"]
        if stage in a["deployed"]
    }


def test_stage_matrix_matches_what_runs_where(odc_emulator: Any, odc_connection: str) -> None:
    matrix = OdcHook().stage_matrix()
    for stage in ("Development", "QA", "Production"):
        expected = inventory_revisions(odc_emulator, stage)
        assert expected, f"the seed deploys something to {stage}"
        found = {row.asset_key: row.revision(s) for row in matrix.rows for s in matrix.stages if s.name == stage}
        assert {k: v for k, v in found.items() if v is not None} == expected
    report, _ = run_operator(OdcStageMatrixOperator(task_id="matrix"))
    assert len(report["assets"]) == len(matrix.rows)
    assert odc_emulator.stats()["api_calls"]["GET /api/portfolios/v2/deployed-assets"] == 2  # one page each


def test_plan_operator_returns_deploy_kwargs_of_newer_assets(odc_emulator: Any, odc_connection: str) -> None:
    dev, qa = inventory_revisions(odc_emulator, "Development"), inventory_revisions(odc_emulator, "QA")
    newer = {key for key, rev in dev.items() if key in qa and rev > qa[key]}
    assert newer, "the seed has apps ahead on Development"
    plan, _ = run_operator(OdcPromotionPlanOperator(task_id="plan", source_stage="Development", target_stage="qa"))
    assert {kwargs["asset"] for kwargs in plan} == newer
    assert all(kwargs["revision"] == dev[kwargs["asset"]] and kwargs["build_key"] for kwargs in plan)
    qa_key = odc_emulator.inventory()["environments"]["QA"]
    assert {kwargs["stage"] for kwargs in plan} == {qa_key}

    missing = {key for key in dev if key not in qa}
    assert missing, "the seed has apps only on Development"
    wider, _ = run_operator(
        OdcPromotionPlanOperator(task_id="wider", source_stage="Development", target_stage="QA", include_missing=True)
    )
    assert {kwargs["asset"] for kwargs in wider} == newer | missing

    dry, _ = run_operator(
        OdcPromotionPlanOperator(task_id="dry", source_stage="Development", target_stage="QA", plan_only="True")
    )
    assert dry == []
    with pytest.raises(OdcError, match=rf"would deploy {len(newer)} assets, more than max_promotions=0"):
        run_operator(
            OdcPromotionPlanOperator(task_id="bound", source_stage="Development", target_stage="QA", max_promotions=0)
        )
    with pytest.raises(OdcError, match="to itself"):
        run_operator(OdcPromotionPlanOperator(task_id="same", source_stage="QA", target_stage="qa"))
    assert odc_emulator.stats()["operations_started"].get("deploy", 0) == 0


def promote_dag() -> Any:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    return DagBag(dag_folder=str(EXAMPLE_DAGS)).dags["odc_promote_stage"]


def test_promote_stage_dag_deploys_each_newer_app_once_then_nothing(
    airflow_db: None, odc_emulator: Any, odc_connection: str
) -> None:
    odc_emulator.configure(operation_duration=0.3)
    dev, qa = inventory_revisions(odc_emulator, "Development"), inventory_revisions(odc_emulator, "QA")
    apps = {
        a["assetKey"]
        for a in odc_emulator.inventory()["assets"]
        if a["assetType"] in ("WebApplication", "MobileApplication")
    }
    newer = {key for key, rev in dev.items() if key in qa and rev > qa[key] and key in apps}
    assert newer, "the seed has apps ahead on Development"
    conf = {"source_stage": "Development", "target_stage": "QA", "dry_run": False}

    dry = promote_dag().test(run_conf={**conf, "dry_run": True})
    assert dry.state == "success"
    assert odc_emulator.stats()["operations_started"].get("deploy", 0) == 0

    run = promote_dag().test(run_conf=conf)
    assert run.state == "success"
    assert odc_emulator.stats()["operations_started"]["deploy"] == len(newer)
    after = inventory_revisions(odc_emulator, "QA")
    assert {key: after[key] for key in newer} == {key: dev[key] for key in newer}
    dev_builds = {
        a["assetKey"]: a["deployed"]["Development"]["buildKey"]
        for a in odc_emulator.inventory()["assets"]
        if a["assetKey"] in newer
    }
    qa_builds = {
        a["assetKey"]: a["deployed"]["QA"]["buildKey"]
        for a in odc_emulator.inventory()["assets"]
        if a["assetKey"] in newer
    }
    assert qa_builds == dev_builds, "QA runs the very builds Development ran"

    again = promote_dag().test(run_conf=conf)
    assert again.state == "success"
    assert odc_emulator.stats()["operations_started"]["deploy"] == len(newer), "a second run deploys nothing"
