"""The hook paced by the ledger against the emulator's documented limits, over loopback HTTP.

Time is moved, not waited for: every sleep of the hook (pacing and 429 waits alike) advances the
emulator's clock (where its sliding windows live) and the clock the pacer reads, by the same amount.
The ledger lives in a dict standing in for Airflow Variables (``Variable.set`` needs a running task; the
scheduler test ``tests/integration/test_mass_redeploy.py`` runs it on real Variables).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from airflow_provider_odc import pacing
from airflow_provider_odc.exceptions import OdcApiError
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.pacing import LedgerState, ServerClock
from airflow_provider_odc.retries import RetryPolicy
from devtools.hook_factory import HookFactory
from devtools.mass_redeploy import POST_ROUTE, targets

from ..faults._support import DictStore

DEPLOYS = 15


class VirtualTime:
    """The hook's sleeps move the emulator's clock and the pacer's clock together."""

    def __init__(self, emulator: Any) -> None:
        self.emulator = emulator
        self.shift = 0.0
        self.slept: list[float] = []

    def local(self) -> float:
        return time.time() + self.shift

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.shift += seconds
        self.emulator.advance(seconds)


@pytest.fixture
def variables(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values: dict[str, str] = {}
    monkeypatch.setattr(OdcHook, "token_store", lambda key: DictStore(values, key))
    return values


def paced_hook(
    emulator: Any, monkeypatch: pytest.MonkeyPatch, clock: VirtualTime, pacing_mode: str, wait: float = 300.0
) -> OdcHook:
    HookFactory(emulator, monkeypatch).connection("odc_paced", extra={"request_pacing": pacing_mode})
    hook = OdcHook("odc_paced", retry_policy=RetryPolicy(rate_limit_wait=wait, sleep=clock.sleep))
    # ODC's time as this process sees it: the emulator's Date is wall time, so the virtual shift is kept here.
    monkeypatch.setitem(pacing._clocks, hook.settings.origin, ServerClock(local=clock.local, offset=0.0))
    return hook


def deploy(hook: OdcHook, asset: str, stage: str) -> str:
    """What OdcDeployOperator does before and for its POST."""
    found = hook.find_asset(asset)
    revision = hook.resolve_revision(found.asset_key, "latest")
    build = hook.reusable_build(found.asset_key, revision, finished_only=True)
    assert build is not None
    return hook.start_deployment(
        found.asset_key, hook.resolve_stage(stage).key, revision=revision, build_key=build.build_key, memory=None
    )


@pytest.mark.parametrize("mode", ["variable", "off"])
def test_fifteen_deploys_wait_for_their_slot_instead_of_collecting_429s(
    mode: str, odc_emulator: Any, monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]
) -> None:
    clock = VirtualTime(odc_emulator)
    hook = paced_hook(odc_emulator, monkeypatch, clock, mode)
    keys = {deploy(hook, pair["asset"], pair["stage"]) for pair in targets(odc_emulator.inventory(), DEPLOYS)}

    stats = odc_emulator.stats()
    refused = stats["rate_limited_calls"].get(POST_ROUTE, 0)
    assert len(keys) == stats["operations_started"]["deploy"] == DEPLOYS
    assert stats["api_calls"][POST_ROUTE] == DEPLOYS + refused  # only refused POSTs were sent again
    ledger = "odc_rate_budget__odc_paced__POST_api_deployments_v1_deployment-operations"
    if mode == "off":  # the same run unpaced: the 11th POST meets a 429 (its wait then frees the window)
        assert refused >= 1 and ledger not in variables
        return
    assert stats["rate_limited"] == 0, stats  # not one 429, GETs included
    assert 60 <= sum(clock.slept) < 2 * 62, clock.slept  # the last five waited one window (+ margin)
    state = LedgerState.parse(variables[ledger])
    assert state.holder == "" and 5 <= len(state.slots[POST_ROUTE]) <= DEPLOYS  # released; older slots pruned


def test_a_slot_beyond_the_rate_limit_wait_fails_the_call_without_sending_it(
    odc_emulator: Any, monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]
) -> None:
    clock = VirtualTime(odc_emulator)
    hook = paced_hook(odc_emulator, monkeypatch, clock, "variable", wait=30.0)
    pairs = targets(odc_emulator.inventory(), 11)
    for pair in pairs[:10]:
        deploy(hook, pair["asset"], pair["stage"])
    with pytest.raises(OdcApiError) as raised:
        deploy(hook, pairs[10]["asset"], pairs[10]["stage"])
    message = str(raised.value)
    assert "was not sent" in message and "odc_paced" in message and "rate_limit_wait_seconds" in message, message
    stats = odc_emulator.stats()
    assert stats["api_calls"][POST_ROUTE] == 10 and stats["rate_limited"] == 0, stats
    assert sum(clock.slept) < 30


def test_odcs_clock_is_learnt_once_per_process_from_the_unlimited_discovery_document(
    odc_emulator: Any, monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]
) -> None:
    HookFactory(odc_emulator, monkeypatch).connection("odc_paced", extra={"request_pacing": "variable"})
    hook = OdcHook("odc_paced")
    monkeypatch.setitem(pacing._clocks, hook.settings.origin, ServerClock())  # this process knows nothing yet
    before = odc_emulator.stats()["discovery_requests"]
    for _ in range(3):
        hook.request("GET", "/api/portfolios/v2/environments")
    clock = pacing._clocks[hook.settings.origin]
    assert clock.known and abs(clock.now() - time.time()) < 2  # the emulator's Date: wall time
    # Discovery for the token exchange, and once more for the clock (no rate limit covers it); not per request.
    assert odc_emulator.stats()["discovery_requests"] - before <= 2
    assert odc_emulator.stats()["rate_limited"] == 0
