"""The example DAGs: they parse without I/O, and run end to end in a real Airflow with ``dag.test()``."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
DAG_ID = "odc_list_stages_and_assets"


def test_example_dags_parse_without_network_connection_or_variable_access(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]
    from airflow.sdk import Variable

    from airflow_provider_odc.compat import BaseHook

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("I/O at DAG parse time")

    monkeypatch.setattr(socket.socket, "connect", forbidden)
    monkeypatch.setattr(BaseHook, "get_connection", classmethod(forbidden))
    monkeypatch.setattr(Variable, "get", staticmethod(forbidden))
    monkeypatch.setattr(Variable, "set", staticmethod(forbidden))
    bag = DagBag(dag_folder=str(EXAMPLE_DAGS))
    assert bag.import_errors == {}
    assert DAG_ID in bag.dag_ids
    assert len(bag.dags[DAG_ID].tasks) == 3


def test_example_dag_runs_with_one_token_exchange(airflow_db: None, odc_emulator: Any, odc_connection: str) -> None:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    dag = DagBag(dag_folder=str(EXAMPLE_DAGS)).dags[DAG_ID]
    run = dag.test()
    assert run.state == "success"

    stats = odc_emulator.stats()
    assert stats["token_exchanges"] == 1
    assert stats["api_calls"]["GET /api/portfolios/v2/environments"] == 1
    # list_web_apps pages through WebApplication assets 10 at a time, summarize reads all 25 in one page.
    assert stats["api_calls"]["GET /api/asset-repository/v1/assets"] >= 2

    with create_session() as session:
        rows = session.scalars(XComModel.get_many(run_id=run.run_id, dag_ids=DAG_ID, key="return_value")).all()
        xcoms = {row.task_id: XComModel.deserialize_value(row) for row in rows}
    assert [stage["name"] for stage in xcoms["list_stages"]] == ["Development", "QA", "Production"]
    assert xcoms["summarize"]["web_apps"] == len(xcoms["list_web_apps"]) > 0
    assert sum(xcoms["summarize"]["assets_by_type"].values()) == 25
    everything = json.dumps(xcoms)
    assert odc_emulator.client_secret not in everything and "eyJ" not in everything
