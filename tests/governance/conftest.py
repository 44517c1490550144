"""Release governance tests: stage configurations, impact gates and guarded deletions, against the emulator.

Operators run through ``execute`` (and, deferred, through their trigger) with the lifecycle tests' helpers;
every API exchange an operator makes can be recorded (``exchanges``) and checked against the official specs.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from airflow_provider_odc.hooks.odc import OdcHook

FAST = {"fast_interval": 0.05, "fast_period": 5, "slow_interval": 0.05}


@pytest.fixture
def fast_emulator(odc_emulator: Any, odc_connection: str) -> Any:
    odc_emulator.configure(build_durations={"pending": 0.1, "running": 0.2}, operation_duration=0.3)
    return odc_emulator


@pytest.fixture
def exchanges(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, Any, requests.Response]]:
    """Every API call made through requests: method, path, JSON body sent, response."""
    seen: list[tuple[str, str, Any, requests.Response]] = []
    original = requests.Session.request

    def recording(self: requests.Session, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        response = original(self, method, url, *args, **kwargs)
        path = urlsplit(url).path
        if path.startswith("/api/"):
            seen.append((method.upper(), path, kwargs.get("json"), response))
        return response

    monkeypatch.setattr(requests.Session, "request", recording)
    return seen


def asset_of(emulator: Any, *, asset_type: str = "WebApplication", deployed_to: str | None = "QA") -> dict[str, Any]:
    """A seeded asset of a type, deployed to a stage (or, ``deployed_to=None``, deployed nowhere)."""
    for asset in emulator.inventory()["assets"]:
        if asset["assetType"] != asset_type:
            continue
        if (deployed_to is None and not asset["deployed"]) or (deployed_to and deployed_to in asset["deployed"]):
            return dict(asset)
    raise AssertionError(f"the emulator seed has no {asset_type} deployed to {deployed_to}")


def stage_key(name: str) -> str:
    return OdcHook().resolve_stage(name).key


# Fixtures shared with other suites: a spec-checking HTTP client, the specs, and Airflow's log masking switched off.
from ..emulator.conftest import client, contract, openapi_contract  # noqa: E402, F401
from ..hook.test_secret_hygiene import airflow_masking_off  # noqa: E402, F401
