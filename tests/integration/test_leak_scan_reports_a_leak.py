"""The leak scan's known positive: a task that returns the token is reported, in XCom.

The leak tests on the real stack pass when the scan finds nothing but the canary; that proves little
unless the scan can find a leak. Here a real task run (``dag.test()``, the tests' SQLite metadata
database) writes the token to XCom, and the scan's own functions must report it there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from airflow_provider_odc.cache.stores import variable_key_for

from .leak_scan import database_cells, find, home_files, token_needles

DAGS = Path(__file__).parent / "leak_dags"
DAG_ID = "odc_returns_its_token"


@pytest.fixture
def leaky_dag(airflow_db: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The leaky DAG, in a DAG bundle of its own next to the default one (``dag.test()`` needs a bundle)."""
    bundles = [
        {"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle", "kwargs": {}},
        {
            "name": "odc-leaks",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(DAGS)},
        },
    ]
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(bundles))
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.variable import Variable

    Variable.delete(variable_key_for("odc_default"))  # no token an earlier test cached: this run exchanges
    yield DagBag(dag_folder=str(DAGS)).dags[DAG_ID]


def metadata_database() -> Path:
    from airflow.configuration import conf

    url = conf.get("database", "sql_alchemy_conn")
    assert url.startswith("sqlite:///"), url
    return Path(url.removeprefix("sqlite:///"))


def test_a_token_returned_by_a_task_is_reported_in_xcom(leaky_dag: Any, odc_emulator: Any, odc_connection: str) -> None:
    from airflow.configuration import conf

    run = leaky_dag.test()
    assert run.state == "success"
    assert odc_emulator.stats()["token_exchanges"] == 1
    tokens = odc_emulator.minted_tokens()[-1:]  # the emulator keeps earlier tests' tokens too

    fernet_key = conf.get("core", "fernet_key", fallback="") or Fernet.generate_key().decode()
    sources = [
        *database_cells(metadata_database(), Fernet(fernet_key.encode())),
        *home_files(Path(os.environ["AIRFLOW_HOME"])),
    ]
    hits = find(token_needles(tokens), sources)
    in_xcom = {hit.needle for hit in hits if hit.where.startswith("db xcom.value ")}
    assert in_xcom == {"access token 1", "access token 1 (signature)"}, sorted({hit.where for hit in hits})
