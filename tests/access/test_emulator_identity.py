"""The emulator's users, groups and roles over HTTP: answers and failure outcomes as the identity spec
declares them (every answer below is validated against it by the client), and the stingy choices."""

from __future__ import annotations

from typing import Any

USERS = "/api/identity/v1/users"
USER = "/api/identity/v1/users/{key}"
BULK = "/api/identity/v1/users/bulk"
GROUPS = "/api/identity/v1/groups"
GROUP_USERS = "/api/identity/v1/groups/{key}/users"
USER_APP_ROLE = "/api/identity/v1/users/{key}/application-roles/{roleKey}"
UNKNOWN = "6f1f1e0c-8a9e-4a51-9c51-3f5a0f7a2b11"


def test_list_limits_and_filters(client: Any) -> None:
    assert client.get(USERS, {"limit": 101}).status_code == 400
    too_many = ",".join([UNKNOWN] * 21)
    refused = client.get(USERS, {"userKeys": too_many})
    assert refused.status_code == 400 and "up to 20 user keys" in refused.json()["detail"]
    page = client.get(USERS, {"domains": "example.com", "limit": 2}).json()
    assert page["page"]["totalResults"] == 5 and page["page"]["nextPageOffset"] == 2
    assert all(user["email"].endswith("@example.com") for user in page["results"])
    count = client.get(f"{USERS}/count", {"domains": "example.com", "status": "Active"})
    assert count.json() == {"userCount": 3}  # Ana, Ben, Dev Lead


def test_create_read_and_the_failures_of_users(client: Any) -> None:
    created = client.post(USERS, {"email": "new.person@example.com", "name": "New Person"})
    assert created.status_code == 201
    key = created.json()["key"]
    user = client.get(USER.format(key=key), route=USER).json()
    assert (user["status"], user["isActive"], user["access"]["hasApplicationRoles"]) == ("Invited", True, False)
    again = client.post(USERS, {"email": "NEW.person@example.com"})
    assert again.status_code == 400 and "already exists" in again.json()["detail"]
    assert client.post(USERS, {"email": "x@example.com", "role": "admin"}).status_code == 400  # unknown field
    assert client.get(USER.format(key="not-a-guid"), route=USER).status_code == 400
    assert client.get(USER.format(key=UNKNOWN), route=USER).status_code == 404


def test_bulk_created_users_appear_once_the_operation_finished(client: Any, odc_emulator: Any) -> None:
    started = client.post(BULK, {"records": [{"email": "bulk.one@example.com", "name": "Bulk One"}]})
    assert started.status_code == 202
    assert client.get(USERS, {"nameOrEmailContains": "bulk.one"}).json()["results"] == []
    odc_emulator.advance(60)
    done = client.get(f"{BULK}/{started.json()['key']}", route=f"{BULK}/{{key}}").json()
    (found,) = client.get(USERS, {"nameOrEmailContains": "bulk.one"}).json()["results"]
    assert found["key"] == done["operations"][0]["record"]["key"]


def test_groups_and_roles_refuse_what_odc_would(client: Any, odc_emulator: Any) -> None:
    production = odc_emulator.inventory()["environments"]["Production"]
    qa = odc_emulator.inventory()["environments"]["QA"]
    qa_role = client.get("/api/identity/v1/application-roles", {"environmentKey": qa, "limit": 1}).json()["results"][0]
    other_stage = client.post(
        GROUPS, {"name": "Agents", "environmentKey": production, "applicationRoleKeys": [qa_role["key"]]}
    )
    assert other_stage.status_code == 400 and "another stage" in other_stage.json()["detail"]
    group = client.post(GROUPS, {"name": "Agents", "environmentKey": production}).json()["key"]
    assert client.post(GROUPS, {"name": "agents", "environmentKey": production}).status_code == 400
    unknown = client.patch(GROUP_USERS.format(key=group), {"userKeysToAdd": [UNKNOWN]}, route=GROUP_USERS)
    assert unknown.status_code == 404
    assert client.get(GROUP_USERS.format(key=group), route=GROUP_USERS).json()["results"] == []
    ana = client.get(USERS, {"nameOrEmailContains": "ana.silva"}).json()["results"][0]["key"]
    path = USER_APP_ROLE.format(key=ana, roleKey=qa_role["key"])
    assert client.call("DELETE", path, route=USER_APP_ROLE).status_code == 404  # not held
    granted = client.call("POST", path, route=USER_APP_ROLE, check=False)  # the spec's 201 has no content
    assert (granted.status_code, granted.content) == (201, b"")
    assert client.call("POST", path, route=USER_APP_ROLE).status_code == 400  # held already
    assert client.call("DELETE", path, route=USER_APP_ROLE).status_code == 204
