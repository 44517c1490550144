"""The release operators emit Airflow Asset events on ``odc://`` URIs, read back from Airflow's database
(AssetEvent rows) after ``dag.test()`` runs in a real Airflow against the emulator, deferrable too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.operators.lifecycle import OdcOperationOperator

from ..lifecycle.conftest import web_app

DAGS = Path(__file__).parent / "dags"


@pytest.fixture(autouse=True)
def _producers_bundle(airflow_db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The producer DAGs in a DAG bundle of their own next to the default one (``dag.test()`` needs a bundle)."""
    bundles = [
        {"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle", "kwargs": {}},
        {
            "name": "odc-assets",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(DAGS)},
        },
    ]
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(bundles))


def producer(dag_id: str) -> Any:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    return bag.dags[dag_id]


def events_of(run: Any) -> list[dict[str, Any]]:
    """The run's Asset events, oldest first: URI, extra, producing task, and the aliases they came through."""
    from airflow.models.asset import AssetAliasModel, AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(AssetEvent).where(AssetEvent.source_run_id == run.run_id).order_by(AssetEvent.id)
        ).all()
        uris = {a.id: a.uri for a in session.scalars(select(AssetModel)).all()}
        aliases = {a.name: a for a in session.scalars(select(AssetAliasModel)).all()}
        return [
            {
                "uri": uris[row.asset_id],
                "extra": dict(row.extra),
                "task": row.source_task_id,
                "aliases": sorted(name for name, alias in aliases.items() if row in alias.asset_events),
            }
            for row in rows
        ]


@pytest.fixture
def production(odc_emulator: Any, odc_connection: str) -> tuple[str, str, str]:
    """(portal, Production stage key, its name) as the operators see them."""
    odc_emulator.configure(build_durations={"pending": 0.2, "running": 0.4}, operation_duration=1.0)
    stage = OdcHook().resolve_stage("Production")
    return odc_emulator.base_url.split("://", 1)[1], stage.key, stage.name


def test_deploy_emits_on_the_app_in_the_stage_and_on_the_stage(
    airflow_db: None, odc_emulator: Any, production: tuple[str, str, str]
) -> None:
    portal, stage_key, stage_name = production
    app = web_app(odc_emulator, with_release_build=True)
    run = producer("odc_assets_deploy").test(run_conf={"asset": app["name"]})
    assert run.state == "success"

    deployed = next(a for a in odc_emulator.inventory()["assets"] if a["assetKey"] == app["assetKey"])["deployed"]
    operation_key = odc_emulator.stats()  # the deployment the task started is the only one
    assert operation_key["operations_started"]["deploy"] == 1
    events = events_of(run)
    assert [e["uri"] for e in events] == [
        f"odc://{portal}/stages/{stage_key}/assets/{app['assetKey']}",
        f"odc://{portal}/stages/{stage_key}",
    ]
    extra = events[0]["extra"]
    assert extra == events[1]["extra"]
    assert extra == {
        "portal": portal,
        "operation": "Deploy",
        "asset_key": app["assetKey"],
        "asset_name": app["name"],
        "revision": app["latestRevision"],
        "operation_key": extra["operation_key"],
        "build_key": deployed["Production"]["buildKey"],
        "stage_key": stage_key,
        "stage_name": stage_name,
        "tag": None,
    }
    assert len(extra["operation_key"]) == 36
    assert all(e["task"] == "deploy" and e["aliases"] == ["odc_events"] for e in events)


def test_deferred_deploy_emits_from_execute_complete(
    airflow_db: None, odc_emulator: Any, production: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    portal, stage_key, _ = production
    resumed: list[dict[str, Any]] = []
    original = OdcOperationOperator.execute_complete

    def spy(self: Any, context: Any, event: dict[str, Any]) -> str:
        resumed.append(event)
        return original(self, context, event)

    monkeypatch.setattr(OdcOperationOperator, "execute_complete", spy)
    app = web_app(odc_emulator, with_release_build=True)
    run = producer("odc_assets_deploy_deferred").test(run_conf={"asset": app["name"]})
    assert run.state == "success"
    assert len(resumed) == 1 and resumed[0]["status"] == "success", "the deploy should have deferred, resumed once"
    events = events_of(run)
    assert [e["uri"] for e in events] == [
        f"odc://{portal}/stages/{stage_key}/assets/{app['assetKey']}",
        f"odc://{portal}/stages/{stage_key}",
    ]
    assert events[0]["extra"]["operation_key"] == resumed[0]["operation_key"]
    assert events[0]["extra"]["operation"] == "Deploy" and events[0]["extra"]["revision"] == app["latestRevision"]


def test_apply_configs_emits_and_undeploy_does_not(
    airflow_db: None, odc_emulator: Any, production: tuple[str, str, str]
) -> None:
    portal, stage_key, stage_name = production
    app = web_app(odc_emulator, with_release_build=True)
    run = producer("odc_assets_deploy_then_configure").test(run_conf={"asset": app["name"]})
    assert run.state == "success"
    events = events_of(run)
    assert [(e["task"], e["extra"]["operation"]) for e in events] == [
        ("deploy", "Deploy"),
        ("deploy", "Deploy"),
        ("apply_configs", "ApplyConfigs"),
        ("apply_configs", "ApplyConfigs"),
    ]
    configured = events[2]["extra"]
    assert events[2]["uri"] == f"odc://{portal}/stages/{stage_key}/assets/{app['assetKey']}"
    assert configured["stage_name"] == stage_name and configured["revision"] is None  # ODC's deployed one
    assert configured["operation_key"] != events[0]["extra"]["operation_key"]


def test_build_publish_and_tag_emit_on_the_apps_revisions(
    airflow_db: None, odc_emulator: Any, production: tuple[str, str, str]
) -> None:
    portal, _, _ = production
    app = web_app(odc_emulator, with_release_build=False)
    run = producer("odc_assets_build_publish_tag").test(run_conf={"asset": app["name"], "tag": "99.0.0"})
    assert run.state == "success"
    events = events_of(run)
    revisions_uri = f"odc://{portal}/assets/{app['assetKey']}"
    assert [(e["task"], e["uri"]) for e in events] == [
        ("build", revisions_uri),
        ("publish", revisions_uri),
        ("tag", revisions_uri),
    ]
    build, publish, tag = (e["extra"] for e in events)
    builds = next(a for a in odc_emulator.inventory()["assets"] if a["assetKey"] == app["assetKey"])["builds"]
    assert build["operation"] == "Build" and build["build_key"] == build["operation_key"] == builds[-1]["buildKey"]
    assert publish["operation"] == "Publish" and publish["stage_key"] is None and publish["operation_key"]
    assert tag["operation"] == "Tag" and tag["tag"] == "99.0.0" and tag["operation_key"] is None
    assert build["revision"] == publish["revision"] == tag["revision"] == app["latestRevision"]


def test_no_event_without_a_finished_success(
    airflow_db: None, odc_emulator: Any, production: tuple[str, str, str]
) -> None:
    app = web_app(odc_emulator, with_release_build=True)
    odc_emulator.fail_next("deploy", messages=["Missing configuration for site property ApiUrl"])
    failed = producer("odc_assets_deploy").test(run_conf={"asset": app["name"]})
    assert failed.state == "failed"
    assert events_of(failed) == []
    not_waited = producer("odc_assets_deploy_no_wait").test(run_conf={"asset": app["name"]})
    assert not_waited.state == "success"
    assert events_of(not_waited) == []


def test_events_carry_no_token_or_secret(airflow_db: None, odc_emulator: Any, production: tuple[str, str, str]) -> None:
    app = web_app(odc_emulator, with_release_build=True)
    run = producer("odc_assets_deploy_deferred").test(run_conf={"asset": app["name"]})
    assert run.state == "success"
    everything = json.dumps(events_of(run))
    assert app["assetKey"] in everything  # the scan sees the extras
    tokens = odc_emulator.minted_tokens()
    assert tokens, "the run exchanged a token"
    for needle in [odc_emulator.client_secret, *tokens]:
        assert needle not in everything


def test_the_event_queues_the_dags_scheduled_on_that_app_or_its_stage_only(
    airflow_db: None, odc_emulator: Any, production: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the scheduler would run: AssetDagRunQueue rows for the consumers, right after the deploy."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.models.asset import AssetDagRunQueue
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select, update

    portal, stage_key, _ = production
    app = web_app(odc_emulator, with_release_build=True)
    other = next(a for a in odc_emulator.inventory()["assets"] if a["assetKey"] != app["assetKey"])
    for name, value in {
        "ODC_TEST_PORTAL": portal,
        "ODC_TEST_STAGE_KEY": stage_key,
        "ODC_TEST_APP_KEY": app["assetKey"],
        "ODC_TEST_OTHER_APP_KEY": other["assetKey"],
    }.items():
        monkeypatch.setenv(name, value)
    consumers = ["odc_assets_on_one_app", "odc_assets_on_other_app", "odc_assets_on_the_stage"]
    DagBundlesManager().sync_bundles_to_db()
    bag = BundleDagBag(dag_folder=str(DAGS), bundle_path=DAGS, bundle_name="odc-assets")
    assert set(consumers) <= set(bag.dag_ids), bag.import_errors
    sync_bag_to_db(bag, "odc-assets", None)
    with create_session() as session:
        session.execute(update(DagModel).where(DagModel.dag_id.in_(consumers)).values(is_paused=False))
        session.execute(AssetDagRunQueue.__table__.delete())

    run = producer("odc_assets_deploy").test(run_conf={"asset": app["name"]})
    assert run.state == "success"
    with create_session() as session:
        queued = sorted(session.scalars(select(AssetDagRunQueue.target_dag_id)).all())
    assert queued == ["odc_assets_on_one_app", "odc_assets_on_the_stage"]
