"""The pacing ledger without I/O: slots, the lock, what a request counts toward, ODC's clock."""

from __future__ import annotations

import json
from email.utils import formatdate
from typing import Any

import pytest

from airflow_provider_odc.pacing import (
    LOCK_TTL,
    Budget,
    Grant,
    LedgerState,
    Now,
    Pause,
    Read,
    ServerClock,
    Step,
    Write,
    drive,
    earliest_slot,
    ledgers_for,
    reserve,
)

DEPLOY = "/api/deployments/v1/deployment-operations"
T0 = 1_800_000_000.0


class World:
    """A dict for the Variables and a clock that only Pause moves (every step is instant)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.now = T0
        self.writes = 0
        self.writable = True

    def perform(self, step: Step) -> Any:
        if isinstance(step, Now):
            return self.now
        if isinstance(step, Pause):
            self.now += step.seconds
            return None
        if isinstance(step, Read):
            return self.values.get(step.key)
        assert isinstance(step, Write)
        if not self.writable:
            return False
        self.writes += 1
        self.values[step.key] = step.value
        return True


def deploy_ledger() -> Any:
    return ledgers_for("odc_default", "POST", DEPLOY)


POST_KEY = "odc_rate_budget__odc_default__POST_api_deployments_v1_deployment-operations"
DOMAIN_KEY = "odc_rate_budget__odc_default__api_deployments_v1"


def test_a_request_counts_toward_its_endpoint_then_its_domain() -> None:
    endpoint, domain = deploy_ledger()
    assert (endpoint.key, domain.key) == (POST_KEY, DOMAIN_KEY)
    assert [(b.name, b.limit) for b in (*endpoint.budgets, *domain.budgets)] == [
        (f"POST {DEPLOY}", 10),
        ("/api/deployments/v1", 100),
    ]
    key = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
    (read,) = ledgers_for("odc_default", "GET", f"/api/asset-repository/v1/assets/{key}/revisions/3")
    assert [(b.name, b.limit) for b in read.budgets] == [("/api/asset-repository/v1", 100)]
    assert ledgers_for("odc_default", "GET", "/identity/.well-known/openid-configuration") == ()


def test_no_ledger_variable_is_masked_by_airflow() -> None:
    try:
        from airflow.sdk._shared.secrets_masker import should_hide_value_for_key
    except ImportError:  # Airflow 3.0 and 3.1
        from airflow.sdk.execution_time.secrets_masker import should_hide_value_for_key
    assert should_hide_value_for_key("odc_access_token__odc_default"), "the check itself must be able to fail"
    for method, path in (
        ("POST", DEPLOY),
        ("GET", "/api/identity/v1/users"),
        ("POST", "/api/builds/v1/build-operations"),
    ):
        for ledger in ledgers_for("odc_default", method, path):
            assert not should_hide_value_for_key(ledger.key), ledger.key
    assert not should_hide_value_for_key("request_pacing")


def test_the_earliest_slot_keeps_every_sliding_window_at_the_limit() -> None:
    budget = Budget("POST x", 3)
    assert earliest_slot([], budget, T0, 2.0) == T0
    full = [(T0, "a"), (T0 + 1, "b"), (T0 + 5, "c")]
    assert earliest_slot(full, budget, T0 + 6, 2.0) == T0 + 62  # the oldest leaves the window + margin
    # A gap before later slots is used when no window gets a fourth slot: here [T0+10] fits ...
    gap = [(T0, "a"), (T0 + 62, "b"), (T0 + 63, "c")]
    assert earliest_slot(gap, budget, T0 + 10, 2.0) == T0 + 10
    # ... and here it does not: the window ending at T0+64 would hold T0+10, T0+62, T0+63 and T0+64.
    crowded = [(T0 + 62, "b"), (T0 + 63, "c"), (T0 + 64, "d")]
    assert earliest_slot(crowded, budget, T0 + 10, 2.0) == T0 + 124


def test_eleven_deployment_posts_in_a_row_get_ten_slots_now_and_one_a_window_later() -> None:
    world = World()
    grants = [drive(reserve(deploy_ledger(), max_wait=300, uniform=min), world.perform) for _ in range(11)]
    slots = [grant.slot - T0 for grant in grants]
    assert max(slots[:10]) < 5, slots  # ten at once (each reservation spends a settle delay)
    assert slots[10] == pytest.approx(slots[0] + 62), slots
    assert grants[10].waited >= 55 and all(grant.claims == 1 for grant in grants)  # the POST ledger's lock only
    state = LedgerState.parse(world.values[POST_KEY])
    assert state.holder == "" and len(state.slots[f"POST {DEPLOY}"]) == 11  # released, every slot kept
    assert len(LedgerState.parse(world.values[DOMAIN_KEY]).slots["/api/deployments/v1"]) == 11


def test_a_slot_beyond_the_wait_is_refused_and_nothing_is_reserved() -> None:
    world = World()
    for _ in range(10):
        drive(reserve(deploy_ledger(), max_wait=300, uniform=min), world.perform)
    before = {key: LedgerState.parse(world.values[key]).slots for key in (POST_KEY, DOMAIN_KEY)}
    grant = drive(reserve(deploy_ledger(), max_wait=30, uniform=min), world.perform)
    assert grant.refused and grant.slot - world.now > 30
    for key in (POST_KEY, DOMAIN_KEY):
        after = LedgerState.parse(world.values[key])
        assert after.slots == before[key] and after.holder == "", key


def test_a_live_lock_of_another_worker_is_waited_for_and_a_dead_one_expires() -> None:
    world = World()
    key = POST_KEY
    world.values[key] = LedgerState("rival", T0 + LOCK_TTL, {}).dump()  # claimed, then the rival died
    grant = drive(reserve(deploy_ledger(), max_wait=300, uniform=min), world.perform)
    assert not grant.refused and grant.slot >= T0 + LOCK_TTL
    world.values[key] = LedgerState("rival", world.now + 10 * LOCK_TTL, {}).dump()  # a live rival, stuck
    refused = drive(reserve(deploy_ledger(), max_wait=5, uniform=min), world.perform)
    assert refused.refused, "the lock outlives the wait: give up without sending"


def test_a_rival_claim_that_lands_after_ours_wins_and_we_claim_again() -> None:
    world = World()
    key = POST_KEY
    flow = reserve(deploy_ledger(), max_wait=300, owner="me", uniform=min)
    step = next(flow)
    sent_rival = False
    while True:
        result = world.perform(step)
        if isinstance(step, Pause) and not sent_rival:  # during our settle delay the rival's claim lands
            sent_rival = True
            world.values[key] = LedgerState("rival", world.now + 1.0, {}).dump()
        try:
            step = flow.send(result)
        except StopIteration as done:
            grant: Grant = done.value
            break
    assert grant.claims == 2 and not grant.refused  # the domain ledger is relaxed: no claim and grant.slot >= T0 + 1.0
    assert [who for _, who in LedgerState.parse(world.values[key]).slots[f"POST {DEPLOY}"]] == ["me"]


def test_a_domain_ledger_is_locked_once_half_used_and_stays_exact() -> None:
    world = World()
    (ledger,) = ledgers_for("odc_default", "GET", "/api/asset-repository/v1/assets")
    grants = [drive(reserve((ledger,), max_wait=300, uniform=min), world.perform) for _ in range(101)]
    assert [grant.claims for grant in grants[:50]] == [0] * 50  # under half of 100: written without the lock
    assert all(grant.claims == 1 for grant in grants[50:])
    assert grants[100].slot - grants[0].slot == pytest.approx(62.0)  # the 101st waits for the first to leave


def test_variables_that_cannot_be_written_leave_the_request_unpaced() -> None:
    world = World()
    world.writable = False
    grant = drive(reserve(deploy_ledger(), max_wait=300, uniform=min), world.perform)
    assert not grant.paced and grant.slot == T0 and world.now == T0


@pytest.mark.parametrize("raw", ["", "not json", "[]", '{"slots": {"x": [[1]]}}', '{"until": "soon"}'])
def test_an_unreadable_ledger_counts_as_empty(raw: str) -> None:
    assert LedgerState.parse(raw) == LedgerState()


def test_hosts_90_seconds_apart_agree_on_odcs_time_from_its_date_header() -> None:
    server = T0 + 0.6
    ahead = ServerClock(local=lambda: server + 90.0)
    behind = ServerClock(local=lambda: server - 0.4)
    date = formatdate(int(server), usegmt=True)
    for clock in (ahead, behind):
        assert not clock.known
        clock.observe(date)
        assert clock.known and server - 1.0 <= clock.now() <= server
    assert abs(ahead.now() - behind.now()) < 1.0
    ahead.observe("not a date")
    ahead.observe(None)
    assert server - 1.0 <= ahead.now() <= server


def test_the_ledger_holds_no_more_than_slot_times_and_ids() -> None:
    world = World()
    drive(reserve(deploy_ledger(), max_wait=300, owner="0123456789ab", uniform=min), world.perform)
    document = json.loads(world.values[POST_KEY])
    assert set(document) == {"holder", "until", "slots"}
    assert document["slots"][f"POST {DEPLOY}"][0][1] == "0123456789ab"
