"""The planner alone (no I/O): whatever ODC holds and whatever the feed wants, applying the plan reaches a
state whose plan is empty (idempotence), and a removal never touches a user outside the scope."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_odc.access_sync import (
    AccessPlan,
    CurrentAccess,
    DesiredAccess,
    GroupState,
    Resolved,
    RoleRef,
    plan_access,
)
from airflow_provider_odc.api.access import User

EMAILS = [f"user{n}@example.com" for n in range(6)]
ORG = ["Developer", "Tech lead"]
APP = [RoleRef("app", "Production", name) for name in ("User", "Manager")]
RESOLVED = Resolved(
    stages={"Production": "stage-prd"},
    organization_roles={name: f"org-{name}" for name in ORG},
    application_roles={ref: f"app-{ref.role}" for ref in APP},
)


def user(email: str, active: bool) -> User:
    return User(
        f"key-{email}", email, email.split("@")[0], active, "Active" if active else "Inactive", None, True, True
    )


currents = st.fixed_dictionaries(
    {email: st.tuples(st.booleans(), st.sets(st.sampled_from(ORG)), st.sets(st.sampled_from(APP))) for email in EMAILS}
).map(lambda d: {e: v for e, v in d.items() if v is not None})
present = st.sets(st.sampled_from(EMAILS))
wanted = st.lists(
    st.tuples(st.sampled_from(EMAILS), st.booleans(), st.sets(st.sampled_from(ORG)), st.sets(st.sampled_from(APP))),
    unique_by=lambda t: t[0],
)
members = st.sets(st.sampled_from(EMAILS))


def current_of(held: dict[str, tuple[bool, set[str], set[RoleRef]]], group: GroupState | None) -> CurrentAccess:
    users = {email: user(email, active) for email, (active, _, _) in held.items()}
    org = {f"key-{e}": frozenset(f"org-{r}" for r in o) for e, (_, o, _) in held.items()}
    app = {f"key-{e}": frozenset(f"app-{r.role}" for r in a) for e, (_, _, a) in held.items()}
    return CurrentAccess(users, org, app, {("agents", "stage-prd"): group} if group else {})


def apply(plan: AccessPlan, held: dict[str, tuple[bool, set[str], set[RoleRef]]], group: GroupState | None) -> tuple:
    """What ODC does with each change, on the test's own model."""
    held = {e: (a, set(o), set(r)) for e, (a, o, r) in held.items()}
    by_key = {f"key-{e}": e for e in held}
    members = set(group.members) if group else set()
    roles = set(group.roles) if group else set()
    for change in plan.changes:
        email = by_key.get(change.key or "", change.subject)
        if change.action == "create_user":
            held[email] = (True, set(), set())
            by_key[f"key-{email}"] = email
        elif change.action in ("update_user", "deactivate_user"):
            held[email] = (change.action == "update_user", *held[email][1:])
        elif change.action == "delete_user":
            del held[email]
        elif change.action.endswith("organization_roles"):
            names = {i.removeprefix("org-") for i in change.items}
            _, o, _ = held[email]
            o |= names if change.action.startswith("grant") else set()
            o -= names if change.action.startswith("revoke") else set()
        elif change.action.endswith("application_roles"):
            refs = {r for r in APP if f"app-{r.role}" in change.items}
            _, _, a = held[email]
            a |= refs if change.action.startswith("grant") else set()
            a -= refs if change.action.startswith("revoke") else set()
        elif change.action in ("create_group", "add_group_members"):
            members |= {f"key-{e}" for e in change.items}
        elif change.action == "remove_group_members":
            members -= set(change.items)
        elif change.action == "add_group_roles":
            roles |= set(change.items)
        elif change.action == "remove_group_roles":
            roles -= set(change.items)
    return held, GroupState("g1", frozenset(members), frozenset(roles))


@settings(max_examples=200, deadline=None)
@given(currents, present, wanted, members, st.booleans(), st.sampled_from(["deactivate", "delete"]))
def test_applying_the_plan_leaves_nothing_to_plan(held, keep, want, team, has_group, removal) -> None:  # type: ignore[no-untyped-def]
    held = {e: v for e, v in held.items() if e in keep}
    group = GroupState("g1", frozenset(), frozenset()) if has_group else None
    active = {e for e, is_active, _, _ in want if is_active} | {e for e in held if held[e][0]}
    team = {e for e in team if e in {w[0] for w in want if w[1]}}  # members are wanted, active users
    desired = DesiredAccess.from_json(
        {
            "users": [
                {
                    "email": e,
                    "active": a,
                    "organization_roles": sorted(o),
                    "application_roles": [{"asset": r.asset, "stage": r.stage, "role": r.role} for r in sorted(r_)],
                }
                for e, a, o, r_ in want
            ],
            "groups": [{"name": "Agents", "stage": "Production", "members": sorted(team)}],
            "managed_organization_roles": ORG,
            "managed_application_roles": [{"asset": r.asset, "stage": r.stage, "role": r.role} for r in APP],
        }
    )
    plan = plan_access(desired, RESOLVED, current_of(held, group), removal=removal)
    assert plan.users_in_scope == sum(1 for a, _, _ in held.values() if a) <= len(active)
    after, group_after = apply(plan, held, group)
    again = plan_access(desired, RESOLVED, current_of(after, group_after), removal=removal)
    assert again.changes == (), [c.describe() for c in again.changes]
    for email, is_active, org, app in want:  # the state the feed asks for, exactly
        if is_active:
            assert after[email] == (True, org, app)
        elif email in after:
            assert after[email] == (False, set(), set())
    for email in set(held) - {w[0] for w in want}:  # users the feed dropped: gone, or inactive without roles
        if removal == "delete" and held[email][0]:
            assert email not in after
        else:
            assert after[email] == (False, set(), set())
    assert group_after.members == {f"key-{e}" for e in team} and not group_after.roles


def test_a_plan_without_removals_is_never_refused() -> None:
    plan = AccessPlan((), users_in_scope=0)
    assert plan.refusal(0.0, False) is None and replace(plan).removal_share == 0.0


TEAMS = ["Agents", "Reviewers", "Interns", "Auditors"]


@settings(max_examples=200, deadline=None)
@given(st.sets(st.sampled_from(TEAMS)), st.sets(st.sampled_from(TEAMS)), st.sets(st.sampled_from(TEAMS)), st.booleans())
def test_exactly_the_managed_groups_the_feed_dropped_are_deleted(exist, named, managed, twice) -> None:  # type: ignore[no-untyped-def]
    """Existing groups the sync owns (named or managed) are read; the plan deletes exactly the managed ones
    the feed does not name, creates the named ones missing, and applied, leaves nothing to plan."""
    owned = named | managed
    groups = {(t.casefold(), "stage-prd"): GroupState(f"g-{t}", frozenset(), frozenset()) for t in exist & owned}
    listed = sorted(managed) * (2 if twice else 1)  # a team listed twice is deleted once
    desired = DesiredAccess.from_json(
        {
            "users": [],
            "groups": [{"name": t, "stage": "Production"} for t in sorted(named)],
            "managed_groups": [{"name": t, "stage": "Production"} for t in listed],
        }
    )
    plan = plan_access(desired, RESOLVED, CurrentAccess({}, {}, {}, groups))
    deleted = {c.key for c in plan.changes if c.action == "delete_group"}
    assert deleted == {f"g-{t}" for t in (exist & managed) - named}
    assert plan.group_removals == len(deleted) and plan.groups_in_scope == len(exist & owned)
    assert {c.labels[0] for c in plan.changes if c.action == "create_group"} == named - exist
    after = {ident: state for ident, state in groups.items() if state.key not in deleted}
    after |= {(t.casefold(), "stage-prd"): GroupState(f"g-{t}", frozenset(), frozenset()) for t in named - exist}
    assert plan_access(desired, RESOLVED, CurrentAccess({}, {}, {}, after)).changes == ()
    refused = plan.refusal(0.5, False)
    assert (refused is not None) == (plan.group_removal_share > 0.5)
    assert plan.refusal(0.5, True) is None
