"""Hooks wired to the local ODC emulator through a real Airflow connection (AIRFLOW_CONN_* env)."""

from __future__ import annotations

from typing import Any

import pytest

from devtools.hook_factory import HookFactory


@pytest.fixture
def make_hook(odc_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> HookFactory:
    return HookFactory(odc_emulator, monkeypatch)
