"""Keep ODC's users and roles in step with an HR feed: compute the desired state, review the plan, apply it.

``desired_state`` turns the feed (here a small inline JSON; in practice an HR or IdP export) into who
should exist and hold which roles: departments map to application roles, job titles to organization
roles. ``plan`` is the dry run: it reads ODC, logs every change and returns a small summary with the plan's
digest. ``apply`` recomputes the plan, applies it only if it is still the reviewed one (new users in
bulk, awaited in the triggerer), and refuses to deactivate more than 30% of the example.com users at once
(a truncated feed must not empty the tenant).
Run it again and nothing changes.

Trigger it with ``{"dry_run": true}`` to only see the plan.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_odc.operators.access import OdcSyncAccessOperator

DOMAINS = ["example.com"]
APP = "Claims Intake 001"  # the app whose end-user roles the departments get
HR_FEED = """
[
  {"email": "ana.silva@example.com", "name": "Ana Silva", "department": "IT", "title": "Developer", "status": "active"},
  {"email": "ben.okafor@example.com", "name": "Ben Okafor", "department": "Claims", "title": "Team lead",
   "status": "active"},
  {"email": "dev.lead@example.com", "name": "Dev Lead", "department": "IT", "title": "Tech lead", "status": "active"},
  {"email": "eve.novak@example.com", "name": "Eve Novak", "department": "Claims", "title": "Agent", "status": "left"},
  {"email": "fatima.rossi@example.com", "name": "Fatima Rossi", "department": "Claims", "title": "Agent",
   "status": "active"},
  {"email": "gil.santos@example.com", "name": "Gil Santos", "department": "Claims", "title": "Agent",
   "status": "active"}
]
"""
#: Job title -> organization roles; (department, title) -> end-user role of APP in Production.
TITLE_ROLES = {"Developer": ["Developer"], "Tech lead": ["Tech lead", "Developer"]}
CLAIMS_ROLES = {"Team lead": "Manager", "Agent": "User"}

with DAG(
    dag_id="odc_user_role_sync",
    description="Sync ODC users, groups and roles from an HR feed, with a reviewed plan and a blast-radius guard",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={"dry_run": Param(False, type="boolean", description="Only log the plan")},
    tags=["odc", "example", "governance"],
) as dag:

    @task
    def desired_state() -> dict[str, Any]:
        """Who should exist and hold which roles, from the feed (people who left are simply absent)."""
        staff = [person for person in json.loads(HR_FEED) if person["status"] == "active"]
        users = []
        for person in staff:
            user: dict[str, Any] = {"email": person["email"], "name": person["name"]}
            user["organization_roles"] = TITLE_ROLES.get(person["title"], [])
            if person["department"] == "Claims" and person["title"] in CLAIMS_ROLES:
                role = CLAIMS_ROLES[person["title"]]
                user["application_roles"] = [{"asset": APP, "stage": "Production", "role": role}]
            users.append(user)
        agents = [p["email"] for p in staff if p["department"] == "Claims" and p["title"] == "Agent"]
        return {
            "users": users,
            "groups": [{"name": "Claims agents", "stage": "Production", "members": agents}],
            # Roles the feed owns even when nobody should hold them any more.
            "managed_organization_roles": ["Developer", "Tech lead"],
            "managed_application_roles": [
                {"asset": APP, "stage": "Production", "role": role} for role in CLAIMS_ROLES.values()
            ],
        }

    desired = desired_state()
    plan = OdcSyncAccessOperator(
        task_id="plan", desired=desired, domains=DOMAINS, plan_only=True, max_removal_share=0.3
    )
    apply = OdcSyncAccessOperator(
        task_id="apply",
        desired=desired,
        domains=DOMAINS,
        plan_only="{{ params.dry_run }}",
        max_removal_share=0.3,
        expect_digest="{{ ti.xcom_pull(task_ids='plan')['digest'] }}",
        deferrable=True,  # the bulk user creation is awaited in the triggerer
    )
    plan >> apply
