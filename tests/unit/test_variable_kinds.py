"""Every Variable the provider shares between tasks says in its description and in its warnings what it is.

An operator who finds ``odc_rate_budget__...`` or ``odc_asset_first_event__...`` in the Variables list, or a
warning that one could not be written, must not be told it is an encrypted token cache.
"""

from __future__ import annotations

import logging

import pytest

from airflow_provider_odc.asset_first_events import lease_key
from airflow_provider_odc.cache import stores
from airflow_provider_odc.cache.lease import lease_key_for
from airflow_provider_odc.cache.stores import variable_key_for
from airflow_provider_odc.pacing import ledger_key

KEYS = {
    variable_key_for("odc_default"): ("ODC access token cache", "encrypted"),
    lease_key_for("odc_default"): ("ODC token-exchange lease", "no secret"),
    ledger_key("odc_default", "POST /api/deployments/v1/deployment-operations"): ("pacing ledger", "no secret"),
    lease_key("odc://portal.example.com/stages/s/assets/a"): ("first-Asset-event election", "no secret"),
}


@pytest.mark.parametrize(("key", "expected"), KEYS.items(), ids=lambda value: str(value)[:24])
def test_description_and_warning_name_what_the_variable_holds(
    key: str, expected: tuple[str, str], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, holds = expected
    description = stores._description(key)
    assert name in description and holds in description and "Safe to delete" in description, description
    monkeypatch.setattr(stores, "_warned", set())
    with caplog.at_level(logging.WARNING, logger=stores.log.name):
        stores._warn_once(key, "write", RuntimeError("backend said no"))
    assert [record.getMessage() for record in caplog.records if name in record.getMessage()], caplog.text
    assert "backend said no" not in caplog.text
