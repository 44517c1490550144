"""People and access sync against the emulator: dry run, apply, idempotence, the blast-radius guard, ODC's
own words on failure, and every body sent and answer received checked against the official spec."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from airflow_provider_odc.access_sync import DesiredAccess, plan_access
from airflow_provider_odc.exceptions import OdcApiError, OdcError, OdcOperationFailed
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.operators.access import OdcSyncAccessOperator

from ..emulator.conftest import OpenApiContract
from ..lifecycle.conftest import TaskDeferred, first_event, run_operator
from ..lifecycle.test_conformance import spec_route

APP = "Claims Intake 001"
EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
WRITES = ("POST", "PATCH", "DELETE")


def feed() -> dict[str, Any]:
    """The example.com users as HR wants them: Eve (Invited) left, two joined, Ben promoted, a group."""
    return {
        "users": [
            {"email": "ana.silva@example.com", "name": "Ana Silva", "organization_roles": ["Developer"]},
            {
                "email": "ben.okafor@example.com",
                "name": "Ben Okafor",
                "application_roles": [{"asset": APP, "stage": "Production", "role": "Manager"}],
            },
            {
                "email": "dev.lead@example.com",
                "name": "Dev Lead",
                "organization_roles": ["Tech lead", "Release manager"],
            },
            {
                "email": "fatima.rossi@example.com",
                "name": "Fatima Rossi",
                "application_roles": [{"asset": APP, "stage": "Production", "role": "User"}],
            },
            {"email": "gil.santos@example.com", "name": "Gil Santos"},
        ],
        "groups": [
            {
                "name": "Claims agents",
                "stage": "Production",
                "members": ["fatima.rossi@example.com", "gil.santos@example.com"],
                "application_roles": [{"asset": APP, "role": "User"}],
            }
        ],
        "managed_application_roles": [{"asset": APP, "stage": "Production", "role": "User"}],
    }


def sync(**kwargs: Any) -> dict[str, Any]:
    options = {"desired": feed(), "domains": ["example.com"], "max_removal_share": 0.3, "poll_interval": 0.05}
    result, _ = run_operator(OdcSyncAccessOperator(task_id="sync", **{**options, **kwargs}))
    return dict(result)


def writes(emulator: Any) -> int:
    return sum(n for route, n in emulator.stats()["api_calls"].items() if route.split()[0] in WRITES)


@pytest.fixture
def fast(odc_emulator: Any, odc_connection: str) -> Any:
    odc_emulator.configure(operation_duration=0.2)
    return odc_emulator


def test_dry_run_reports_the_plan_and_changes_nothing(fast: Any) -> None:
    before = fast.state.access.snapshot()
    summary = sync(plan_only=True)
    assert fast.state.access.snapshot() == before
    assert writes(fast) == 0
    assert summary["dry_run"] is True and summary["refused"] is None
    assert summary["counts"] == {
        "add_group_roles": 1,
        "create_group": 1,
        "create_user": 2,
        "deactivate_user": 1,
        "grant_application_roles": 2,  # Ben: Manager; Fatima: User
        "grant_organization_roles": 1,  # Dev Lead: Release manager
        "revoke_application_roles": 1,  # Ben: User (managed, no longer wanted)
    }
    assert (summary["users_in_scope"], summary["removals"]) == (4, 1)  # Ana, Ben, Dev Lead, Eve (Invited)
    assert "deactivate_user eve.novak@example.com" in summary["sample"]
    assert len(json.dumps(summary)) < 2000


def test_apply_reaches_the_desired_state_and_a_second_run_changes_nothing(fast: Any) -> None:
    summary = sync()
    assert summary["applied"] == summary["changes"] == 9
    pushed = json.dumps(summary)  # what goes to XCom
    assert fast.client_secret not in pushed and all(token not in pushed for token in fast.minted_tokens())
    users = fast.state.access.snapshot()["users"]
    assert users["eve.novak@example.com"]["status"] == "Inactive"
    assert users["fatima.rossi@example.com"]["status"] == "Invited" and users["gil.santos@example.com"]
    assert users["dev.lead@example.com"]["organization_roles"] == ["Release manager", "Tech lead"]
    assert users["ops@partner.example.org"]["status"] == "Active", "outside the managed domains: untouched"
    assert users["ana.silva@example.com"]["organization_roles"] == ["Developer"]
    assert len(users["ben.okafor@example.com"]["application_roles"]) == 1
    assert len(users["fatima.rossi@example.com"]["application_roles"]) == 1
    groups = fast.state.access.snapshot()["groups"]
    (group,) = groups.values()
    assert group["members"] == ["fatima.rossi@example.com", "gil.santos@example.com"] and len(group["roles"]) == 1
    assert fast.stats()["api_calls"]["POST /api/identity/v1/users/bulk"] == 1

    before, snapshot = writes(fast), fast.state.access.snapshot()
    again = sync()
    assert again["changes"] == again["applied"] == 0 and again["counts"] == {}
    assert writes(fast) == before, "the second run sends no write"
    assert fast.state.access.snapshot() == snapshot


class ResumableTI:
    """A task instance that keeps its XComs across a deferral, as Airflow does within one try."""

    task_id, map_index = "sync", -1

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value

    def xcom_pull(self, task_ids: str, key: str, map_indexes: int) -> Any:
        assert (task_ids, map_indexes) == (self.task_id, self.map_index)
        return self.xcom[key]


def test_deferrable_sync_waits_for_the_bulk_creation_in_the_trigger(fast: Any) -> None:
    operator = OdcSyncAccessOperator(
        task_id="sync",
        desired=feed(),
        domains=["example.com"],
        max_removal_share=0.3,
        deferrable=True,
        poll_interval=0.05,
    )
    context: Any = {"ti": ResumableTI()}
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    assert writes(fast) == 1, "only the bulk POST before the wait"
    event = asyncio.run(first_event(deferred.value.trigger))
    summary = getattr(operator, deferred.value.method_name)(context, event.payload)
    assert summary["applied"] == summary["changes"] == 9
    assert fast.stats()["api_calls"]["POST /api/identity/v1/users/bulk"] == 1
    assert sync()["changes"] == 0


def test_blast_radius_refuses_mass_removal_unless_told(fast: Any) -> None:
    truncated = {"users": feed()["users"][:1]}  # a feed cut short: three of four users would go
    before = fast.state.access.snapshot()
    dry = sync(desired=truncated, plan_only=True)
    assert dry["removals"] == 3 and dry["refused"] and "75%" in dry["refused"]
    with pytest.raises(OdcError, match=r"removes 3 of 4 users in scope \(75%\), more than max_removal_share=30%"):
        sync(desired=truncated)
    assert fast.state.access.snapshot() == before and writes(fast) == 0

    applied = sync(desired=truncated, allow_mass_removal=True)
    assert applied["applied"] == applied["changes"]
    users = fast.state.access.snapshot()["users"]
    assert [e for e, u in users.items() if u["status"] == "Inactive"] == [
        "ben.okafor@example.com",
        "carla.mendes@example.com",
        "dev.lead@example.com",
        "eve.novak@example.com",
    ]


def test_delete_mode_deletes_the_users_the_feed_dropped(fast: Any) -> None:
    sync(removal="delete")
    assert "eve.novak@example.com" not in fast.state.access.snapshot()["users"]
    assert fast.stats()["api_calls"]["DELETE /api/identity/v1/users/{key}"] == 1


def test_a_failed_write_says_what_odc_said_and_a_rerun_finishes(fast: Any) -> None:
    hook = OdcHook()
    desired = DesiredAccess.from_json(feed())
    resolved, current = hook.read_access(desired, domains=["example.com"])
    plan = plan_access(desired, resolved, current)
    # Someone grants Ben the Manager role between the read and the write.
    ben = current.users["ben.okafor@example.com"].key
    manager = resolved.application_roles[next(r for r in resolved.application_roles if r.role == "Manager")]
    fast.state.access.grant_application_role(ben, manager)
    with pytest.raises(OdcError) as failed:
        hook.apply_access_plan(plan, current, poll_interval=0.05)
    message = str(failed.value)
    assert "grant_application_roles ben.okafor@example.com" in message
    assert "HTTP 400: The user already has the application role 'Manager'." in message
    assert sync()["changes"] > 0 and sync()["changes"] == 0


def test_a_failed_bulk_creation_reports_odcs_record_errors(fast: Any) -> None:
    fast.fail_next("bulk_users", messages=["The email domain is blocked by policy."])
    with pytest.raises(OdcOperationFailed, match=r"fatima\.rossi@example\.com: The email domain is blocked by policy"):
        sync()


def test_the_plan_must_match_the_reviewed_digest(fast: Any) -> None:
    reviewed = sync(plan_only=True)["digest"]
    with pytest.raises(OdcError, match="not the reviewed 0000"):
        sync(expect_digest="0000")
    assert writes(fast) == 0
    assert sync(expect_digest=reviewed)["applied"] == 9


@pytest.mark.parametrize(
    ("desired", "said"),
    [
        ({"users": [{"email": "no-at-sign"}]}, r"users\[0\].email 'no-at-sign' is not an email address"),
        ({"users": [{"email": "a@example.com", "roles": []}]}, r"users\[0\] has unknown field\(s\) roles"),
        ({"users": [{"email": "a@elsewhere.net"}]}, r"outside the managed domains \['example.com'\]"),
        (
            {"users": [{"email": "a@example.com", "organization_roles": ["Wizard"]}]},
            "organization role 'Wizard' not found",
        ),
        ("{not json", "not a JSON document"),
    ],
)
def test_bad_desired_state_is_a_clear_error(fast: Any, desired: Any, said: str) -> None:
    with pytest.raises(OdcError, match=said):
        sync(desired=desired, plan_only=True)


@pytest.fixture
def exchanges(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, Any, requests.Response]]:
    seen: list[tuple[str, str, Any, requests.Response]] = []
    original = requests.Session.request

    def recording(self: requests.Session, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        response = original(self, method, url, *args, **kwargs)
        if urlsplit(url).path.startswith("/api/"):
            seen.append((method.upper(), urlsplit(url).path, kwargs.get("json"), response))
        return response

    monkeypatch.setattr(requests.Session, "request", recording)
    return seen


def test_requests_and_answers_match_the_identity_spec(
    fast: Any, contract: OpenApiContract, exchanges: list[tuple[str, str, Any, requests.Response]]
) -> None:
    sync()
    sync(desired={"users": feed()["users"][:4], "groups": [{**feed()["groups"][0], "members": []}]}, removal="delete")
    hook = OdcHook()
    ana = fast.state.access.snapshot()["users"]["ana.silva@example.com"]["key"]
    developer = next(r.key for r in hook.list_organization_roles() if r.name == "Developer")
    with pytest.raises(OdcApiError) as twice:  # ODC's failure outcomes are on the contract too
        hook.grant_organization_role(ana, developer)
    assert twice.value.status == 400 and "already has the organization role 'Developer'" in str(twice.value)
    with pytest.raises(OdcApiError) as unknown:
        hook.request("GET", "/api/identity/v1/users/6f1f1e0c-8a9e-4a51-9c51-3f5a0f7a2b11")
    assert unknown.value.status == 404
    (group,) = fast.state.access.snapshot()["groups"].values()
    hook.delete_group(group["key"])  # what the sync sends for a managed group the feed dropped
    with pytest.raises(OdcApiError) as gone:
        hook.delete_group(group["key"])
    assert gone.value.status == 404
    bodies, answers, sent = set(), set(), set()
    for method, path, body, response in exchanges:
        route = spec_route(contract, path)
        assert route is not None, f"{method} {path} is not in the official specs"
        spec, base, template = route
        operation = spec["paths"][template][method.lower()]
        sent.add(f"{method} {template} {response.status_code}")
        if body is not None:
            contract.validate_schema(spec, operation["requestBody"]["content"]["application/json"]["schema"], body)
            bodies.add(f"{method} {template}")
        assert str(response.status_code) in operation["responses"], f"{method} {path}: {response.status_code}"
        if response.content:
            contract.validate(base + template, method, response.status_code, json.loads(response.content))
            answers.add(f"{method} {template}")
    assert bodies >= {
        "POST /users/bulk",
        "PATCH /users/{key}",
        "POST /users/{key}/organization-roles/{roleKey}",
        "POST /groups",
        "PATCH /groups/{key}/users",
        "PATCH /groups/{key}/application-roles",
    }
    assert answers >= {
        "GET /users",
        "GET /organization-roles",
        "GET /application-roles",
        "GET /users/{key}/organization-roles",
        "GET /users/{key}/application-roles",
        "GET /groups",
        "GET /groups/{key}/users",
        "GET /groups/{key}/application-roles",
        "GET /users/bulk/{key}",
        "POST /groups",
        "POST /users/{key}/organization-roles/{roleKey}",  # the 400
        "GET /users/{key}",  # the 404
        "DELETE /groups/{key}",  # the 404
    }
    assert {"DELETE /groups/{key} 204", "DELETE /groups/{key} 404"} <= sent


def user_role_sync_dag() -> Any:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    return DagBag(dag_folder=str(EXAMPLE_DAGS)).dags["odc_user_role_sync"]


def test_user_role_sync_dag_plans_applies_then_changes_nothing(
    airflow_db: None, odc_emulator: Any, odc_connection: str
) -> None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    odc_emulator.configure(operation_duration=0.3)
    dry = user_role_sync_dag().test(run_conf={"dry_run": True})
    assert dry.state == "success" and writes(odc_emulator) == 0

    run = user_role_sync_dag().test(run_conf={"dry_run": False})
    assert run.state == "success"
    users = odc_emulator.state.access.snapshot()["users"]
    assert users["eve.novak@example.com"]["status"] == "Inactive"
    assert users["dev.lead@example.com"]["organization_roles"] == ["Developer", "Tech lead"]
    assert {"fatima.rossi@example.com", "gil.santos@example.com"} <= set(users)
    (group,) = odc_emulator.state.access.snapshot()["groups"].values()
    assert group["members"] == ["fatima.rossi@example.com", "gil.santos@example.com"]
    with create_session() as session:
        rows = session.scalars(
            select(XComModel).where(XComModel.run_id == run.run_id, XComModel.task_id == "apply")
        ).all()
    summary = next(row.value for row in rows if row.key == "return_value")
    summary = json.loads(summary) if isinstance(summary, str) else summary
    assert summary["applied"] == summary["changes"] > 0
    pushed = json.dumps([row.value for row in rows], default=str)
    assert odc_emulator.client_secret not in pushed
    assert all(token not in pushed for token in odc_emulator.minted_tokens())

    before = writes(odc_emulator)
    again = user_role_sync_dag().test(run_conf={"dry_run": False})
    assert again.state == "success"
    assert writes(odc_emulator) == before, "a second run changes nothing"
