"""Group deletion in the people sync: a managed group the desired state no longer lists is deleted with
``DELETE /groups/{key}``; the dry run shows it, the blast-radius guard counts it, a second run changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_odc.exceptions import OdcError
from airflow_provider_odc.hooks.odc import OdcHook

from .test_access_sync import feed, sync, writes

TEAMS = ("Claims agents", "Claims reviewers", "Claims interns", "Claims auditors")
DELETE_GROUP = "DELETE /api/identity/v1/groups/{key}"


def desired(groups: tuple[str, ...], managed: tuple[str, ...] = ()) -> dict[str, Any]:
    """The feed's users, ``groups`` on Production (no members, no roles), ``managed`` groups the sync owns."""
    return {
        "users": feed()["users"],
        "groups": [{"name": name, "stage": "Production"} for name in groups],
        "managed_groups": [{"name": name, "stage": "Production"} for name in managed],
    }


def group_names(emulator: Any) -> list[str]:
    return sorted(ident.rpartition("@")[0] for ident in emulator.state.access.snapshot()["groups"])


@pytest.fixture
def four_groups(odc_emulator: Any, odc_connection: str) -> Any:
    odc_emulator.configure(operation_duration=0.2)
    sync(desired=desired(TEAMS))
    assert group_names(odc_emulator) == sorted(TEAMS)
    return odc_emulator


def test_a_managed_group_the_feed_dropped_is_deleted_once(four_groups: Any) -> None:
    emulator = four_groups
    dropped = desired(TEAMS[:3], managed=TEAMS)
    before, snapshot = writes(emulator), emulator.state.access.snapshot()
    dry = sync(desired=dropped, plan_only=True)
    assert dry["counts"] == {"delete_group": 1} and dry["refused"] is None
    assert (dry["group_removals"], dry["groups_in_scope"], dry["group_removal_share"]) == (1, 4, 0.25)
    assert dry["sample"] == ["delete_group Claims auditors@Production"]
    assert writes(emulator) == before and emulator.state.access.snapshot() == snapshot, "the dry run writes nothing"

    applied = sync(desired=dropped)
    assert applied["applied"] == applied["changes"] == 1
    assert group_names(emulator) == sorted(TEAMS[:3])
    assert emulator.stats()["api_calls"][DELETE_GROUP] == 1

    before, snapshot = writes(emulator), emulator.state.access.snapshot()
    again = sync(desired=dropped)
    assert again["changes"] == again["applied"] == 0 and again["groups_in_scope"] == 3
    assert writes(emulator) == before and emulator.state.access.snapshot() == snapshot


def test_groups_the_sync_does_not_manage_are_left_alone(four_groups: Any) -> None:
    summary = sync(desired=desired(TEAMS[:1]))  # three groups unnamed, none managed
    assert summary["changes"] == 0 and group_names(four_groups) == sorted(TEAMS)


def test_the_guard_refuses_deleting_too_many_groups_unless_told(four_groups: Any) -> None:
    emulator = four_groups
    cut_short = desired(TEAMS[:1], managed=TEAMS)  # three of four managed groups would go
    dry = sync(desired=cut_short, plan_only=True)
    assert dry["group_removals"] == 3 and dry["removals"] == 0
    assert dry["refused"] and "3 of 4 groups in scope (75%)" in dry["refused"]
    before, snapshot = writes(emulator), emulator.state.access.snapshot()
    with pytest.raises(OdcError, match=r"removes 3 of 4 groups in scope \(75%\), more than max_removal_share=30%"):
        sync(desired=cut_short)
    assert writes(emulator) == before and emulator.state.access.snapshot() == snapshot

    applied = sync(desired=cut_short, allow_mass_removal=True)
    assert applied["applied"] == 3 and group_names(emulator) == [TEAMS[0]]
    assert emulator.stats()["api_calls"][DELETE_GROUP] == 3


def test_a_group_deleted_meanwhile_fails_with_what_odc_said_and_a_rerun_finishes(four_groups: Any) -> None:
    from airflow_provider_odc.access_sync import DesiredAccess, plan_access

    hook = OdcHook()
    wanted = DesiredAccess.from_json(desired(TEAMS[:3], managed=TEAMS))
    resolved, current = hook.read_access(wanted, domains=["example.com"])
    plan = plan_access(wanted, resolved, current)
    (change,) = plan.changes
    four_groups.state.access.delete_group(str(change.key))  # someone deletes it between the read and the write
    with pytest.raises(OdcError, match=r"'delete_group Claims auditors@Production' failed .* HTTP 404"):
        hook.apply_access_plan(plan, current)
    assert sync(desired=desired(TEAMS[:3], managed=TEAMS))["changes"] == 0


def test_managed_groups_must_name_a_stage() -> None:
    from airflow_provider_odc.access_sync import DesiredAccess

    with pytest.raises(OdcError, match=r"managed_groups\[0\].stage must be a non-empty string"):
        DesiredAccess.from_json({"users": [], "managed_groups": [{"name": "Claims interns"}]})
