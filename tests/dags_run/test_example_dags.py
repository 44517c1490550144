"""The example DAGs: they parse without I/O, and run end to end in a real Airflow with ``dag.test()``."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from devtools.hook_factory import run_in_new_process

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


#: The same DAG run again in a Python process of its own: nothing of the first run's memory goes along,
#: only what it left in the metadata database (the token cache Variable among it).
SECOND_PROCESS = """
import json, sys
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow < 3.2
    from airflow.models.dagbag import DagBag
run = DagBag(dag_folder=sys.argv[1]).dags[sys.argv[2]].test()
print("RESULT " + json.dumps({"state": str(run.state)}))
"""


def test_example_dag_runs_with_one_token_exchange(airflow_db: None, odc_emulator: Any, odc_connection: str) -> None:
    """One exchange for the run, and none for a second run in another process: it finds the token in
    the encrypted Variable the first one stored (``dag.test()`` runs every task in one process, where the
    in-memory cache alone would explain a single exchange)."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]
    from airflow.models.variable import Variable
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from airflow_provider_odc.cache.stores import variable_key_for
    from airflow_provider_odc.hooks.odc import OdcHook, envelope_codec_for

    Variable.delete(variable_key_for("odc_default"))  # no token from an earlier test
    dag = DagBag(dag_folder=str(EXAMPLE_DAGS)).dags[DAG_ID]
    run = dag.test()
    assert run.state == "success"

    stats = odc_emulator.stats()
    assert stats["token_exchanges"] == 1
    assert stats["api_calls"]["GET /api/portfolios/v2/environments"] == 1
    # list_web_apps pages through WebApplication assets 10 at a time, summarize reads all 25 in one page.
    assert stats["api_calls"]["GET /api/asset-repository/v1/assets"] >= 2
    stored = Variable.get(variable_key_for("odc_default"))
    token = envelope_codec_for(OdcHook().settings).open(stored).token.value
    assert odc_emulator.minted_tokens()[-1] == token, "the Variable holds the run's token, sealed"

    assert run_in_new_process(SECOND_PROCESS, str(EXAMPLE_DAGS), DAG_ID) == {"state": "success"}
    again = odc_emulator.stats()
    assert again["api_calls"]["GET /api/portfolios/v2/environments"] == 2, "the second run called ODC"
    assert again["token_exchanges"] == 1, "the second process should have reused the token from the Variable"
    assert again["unauthorized"] == 0

    with create_session() as session:
        rows = session.scalars(XComModel.get_many(run_id=run.run_id, dag_ids=DAG_ID, key="return_value")).all()
        xcoms = {row.task_id: XComModel.deserialize_value(row) for row in rows}
    assert [stage["name"] for stage in xcoms["list_stages"]] == ["Development", "QA", "Production"]
    assert xcoms["summarize"]["web_apps"] == len(xcoms["list_web_apps"]) > 0
    assert sum(xcoms["summarize"]["assets_by_type"].values()) == 25
    everything = json.dumps(xcoms)
    assert odc_emulator.client_secret not in everything and token not in everything and "eyJ" not in everything
