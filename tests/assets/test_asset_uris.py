"""The ``odc://`` Asset URI scheme: registered with Airflow, normalized and validated by Airflow's own
``Asset`` (which calls our normalizer through the providers manager), with clear errors for bad URIs."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from airflow.sdk import Asset
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_odc.assets import (
    ODC_EVENTS_ALIAS,
    OdcAssetUriError,
    OdcEventSubject,
    normalize_odc_uri,
    odc_asset,
    odc_asset_revisions,
    odc_stage_asset,
    portal_of,
)

STAGE = "0f6d3c1a-6b2e-4f7a-9c1d-2e3f4a5b6c7d"
APP = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"


def test_airflow_loads_the_normalizer_from_the_provider_info() -> None:
    try:
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime as Manager
    except ImportError:  # Airflow < 3.2: the Asset normalizers came from the core providers manager
        from airflow.providers_manager import ProvidersManager as Manager  # type: ignore[assignment]

    assert Manager().asset_uri_handlers["odc"] is normalize_odc_uri


@pytest.mark.parametrize(
    ("given_uri", "normalized"),
    [
        (
            f"odc://acme.outsystems.dev/stages/{STAGE}/assets/{APP}",
            f"odc://acme.outsystems.dev/stages/{STAGE}/assets/{APP}",
        ),
        (
            f"ODC://ACME.OutSystems.dev:443/stages/{STAGE.upper()}/assets/{APP.upper()}/#frag",
            f"odc://acme.outsystems.dev/stages/{STAGE}/assets/{APP}",
        ),
        (f"odc://acme.outsystems.dev/stages/{STAGE}//", f"odc://acme.outsystems.dev/stages/{STAGE}"),
        (f"odc://127.0.0.1:8080/assets/{APP}", f"odc://127.0.0.1:8080/assets/{APP}"),
        (f"odc://[::1]:8080/assets/{APP}", f"odc://[::1]:8080/assets/{APP}"),
    ],
)
def test_airflow_normalizes_odc_uris(given_uri: str, normalized: str) -> None:
    asset = Asset(uri=given_uri)
    assert asset.uri == normalized
    assert asset.normalized_uri == normalized


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("odc://acme.outsystems.dev/stages/Production", "Stage 'Production' in ODC Asset URI"),
        (f"odc://acme.outsystems.dev/stages/{STAGE}/assets/Claims Intake", "Asset 'Claims Intake'"),
        (f"odc://acme.outsystems.dev/stages/{{{STAGE}}}", "is not a key"),
        (f"odc://acme.outsystems.dev/stages/{STAGE.replace('-', '')}", "is not a key"),
        ("odc://acme.outsystems.dev", "is not one of odc://<portal>/stages/<stage_key>/assets/<asset_key>"),
        (f"odc://acme.outsystems.dev/apps/{APP}", "is not one of"),
        (f"odc://acme.outsystems.dev/stages/{STAGE}/assets", "is not one of"),
        (f"odc://acme.outsystems.dev/stages/{STAGE}/assets/{APP}/x", "is not one of"),
        (f"odc:///stages/{STAGE}", "names no portal domain"),
        (f"odc://user@acme.outsystems.dev/stages/{STAGE}", "has user info"),
        (f"odc://acme.outsystems.dev:99999/stages/{STAGE}", "no valid portal domain"),
        (f"odc://acme_portal.dev/stages/{STAGE}", "invalid portal domain"),
        (f"odc://acmé.outsystems.dev/stages/{STAGE}", "in ASCII"),
        (f"odc://acme.outsystems.dev/stages/{STAGE}?x=1", "has a query"),
    ],
)
def test_bad_uris_get_a_clear_error_from_airflows_asset(bad: str, says: str) -> None:
    with pytest.raises(OdcAssetUriError, match=None) as caught:
        Asset(uri=bad)
    assert says in str(caught.value)
    assert isinstance(caught.value, ValueError)  # what Airflow expects of a normalizer


def test_a_name_instead_of_a_key_says_where_to_find_the_key() -> None:
    with pytest.raises(OdcAssetUriError) as caught:
        odc_stage_asset("acme.outsystems.dev", "Production")
    assert "stageid=" in str(caught.value) and "resolve_stage" in str(caught.value)


def test_helpers_build_canonical_assets_whose_name_is_the_uri() -> None:
    app = odc_asset("https://ACME.outsystems.dev", STAGE.upper(), APP)
    assert app.uri == app.name == f"odc://acme.outsystems.dev/stages/{STAGE}/assets/{APP}"
    assert app == Asset(name=app.uri, uri=app.uri)
    stage = odc_stage_asset("acme.outsystems.dev", STAGE)
    assert stage.uri == stage.name == f"odc://acme.outsystems.dev/stages/{STAGE}"
    revisions = odc_asset_revisions("http://127.0.0.1:8080/", APP)
    assert revisions.uri == revisions.name == f"odc://127.0.0.1:8080/assets/{APP}"


def test_helpers_refuse_keys_that_would_reshape_the_uri() -> None:
    with pytest.raises(OdcAssetUriError, match="is not a key"):
        odc_stage_asset("acme.outsystems.dev", f"{STAGE}/assets/{APP}")
    with pytest.raises(OdcAssetUriError, match="not a portal domain"):
        portal_of("acme.outsystems.dev/stages")


@given(st.uuids(), st.uuids(), st.booleans())
def test_normalizing_twice_changes_nothing(stage: uuid.UUID, app: uuid.UUID, upper: bool) -> None:
    text = f"odc://acme.outsystems.dev/stages/{stage}/assets/{app}"
    keys = (str(stage).upper(), str(app).upper()) if upper else (str(stage), str(app))
    first = Asset(uri=f"odc://ACME.outsystems.dev/stages/{keys[0]}/assets/{keys[1]}").uri
    assert first == text
    assert Asset(uri=first).uri == first


def test_the_event_subject_lands_on_app_and_stage_or_on_the_revisions() -> None:
    common = {"portal": "acme.outsystems.dev", "asset_key": APP, "asset_name": "Claims", "revision": 3}
    in_stage = OdcEventSubject(operation="Deploy", stage_key=STAGE, stage_name="Production", **common)  # type: ignore[arg-type]
    assert [a.uri for a in in_stage.assets()] == [
        f"odc://acme.outsystems.dev/stages/{STAGE}/assets/{APP}",
        f"odc://acme.outsystems.dev/stages/{STAGE}",
    ]
    build = OdcEventSubject(operation="Build", **common)  # type: ignore[arg-type]
    assert [a.uri for a in build.assets()] == [f"odc://acme.outsystems.dev/assets/{APP}"]
    assert OdcEventSubject.from_extra(in_stage.extra) == in_stage
    assert ODC_EVENTS_ALIAS.name == "odc_events"


def test_a_dag_scheduled_on_a_bad_odc_uri_fails_to_import_with_the_clear_error(tmp_path: Any) -> None:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    (tmp_path / "bad_odc_schedule.py").write_text(
        "from airflow.sdk import DAG, Asset\n"
        "with DAG('bad_odc_schedule', schedule=Asset('odc://acme.outsystems.dev/stages/Production')):\n"
        "    pass\n"
    )
    bag = DagBag(dag_folder=str(tmp_path))
    assert bag.dag_ids == []
    (error,) = bag.import_errors.values()
    assert "OdcAssetUriError" in error and "Stage 'Production' in ODC Asset URI" in error


def test_the_emitting_operators_carry_the_alias_outlet_and_undeploy_does_not() -> None:
    from airflow_provider_odc.operators import lifecycle as ops

    emitting = [
        ops.OdcBuildOperator(task_id="b", asset="x"),
        ops.OdcDeployOperator(task_id="d", asset="x", stage="s"),
        ops.OdcApplyConfigsOperator(task_id="c", asset="x", stage="s"),
        ops.OdcPublishOperator(task_id="p", asset="x"),
        ops.OdcTagRevisionOperator(task_id="t", asset="x", revision=1, tag="1.0.0"),
    ]
    for operator in emitting:
        assert operator.outlets == [ODC_EVENTS_ALIAS], operator.task_id
    mine = Asset(name="mine", uri="s3://bucket/key")
    assert ops.OdcDeployOperator(task_id="d2", asset="x", stage="s", outlets=[mine]).outlets == [mine, ODC_EVENTS_ALIAS]
    assert ops.OdcUndeployOperator(task_id="u", asset="x", stage="s").outlets == []
