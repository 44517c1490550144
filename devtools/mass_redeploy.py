"""A mass redeploy on a real Airflow stack: ``OdcDeployOperator`` mapped over many apps, paced by the ledger.

Shared by the scheduler tests (``tests/integration/test_mass_redeploy.py``, small runs that assert counts)
and ``benchmarks/pacing.py`` (timed). Two DAGs in ``tests/integration/dags``, both paced
(``request_pacing: variable``) against an emulator that keeps ODC's documented limits and sends no
Retry-After:

- ``odc_mass_redeploy`` deploys the ``targets`` of its run conf over the ``odc_paced`` connection;
- ``odc_mass_promotion`` runs ``OdcPromotionPlanOperator`` over a whole stage and maps ``OdcDeployOperator``
  over its plan, over the ``odc_promotion`` connection (``promotion_connection``), which points at an
  emulator of its own, seeded with more assets than the default 25 so that more than one window's 10 POSTs
  are planned: Development -> QA with the missing ones plans 18 deploys on 40 assets, 67 on 140.

The floor. A deploy task sends, in order (measured on the emulator): ``GET /assets?nameContains=``,
``GET /environments``, ``GET /assets/{key}/latest-revision``, ``GET /build-operations`` and
``POST /deployment-operations``. Each request counts toward its API domain (100 a minute) and the POST
also toward its endpoint (10 a minute). A limit of ``L`` a minute that must accept ``n`` requests needs
at least ``(ceil(n / L) - 1) * 60 s`` between its first and its last. For 60 deploys: 60 POSTs at 10 a
minute give 300 s; the asset-repository domain's 120 GETs at 100 a minute give 60 s; the other domains 60
requests each, 0 s. The floor is the largest: 300 s. It is computed here from what the emulator accepted,
so it stays right if the operator's requests change.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from airflow_provider_odc.emulator.rate_limits import RATE_WINDOW, LimitSettings, limits_for
from airflow_provider_odc.pacing import LedgerState, ledger_key

from .stack import AirflowStack

DAG_ID = "odc_mass_redeploy"
CONN_ID = "odc_paced"
PROMOTION_DAG_ID = "odc_mass_promotion"
PROMOTION_CONN_ID = "odc_promotion"
PACED_EXTRA = {"request_pacing": "variable"}
DEPLOYMENTS = "/api/deployments/v1/deployment-operations"
POST_ROUTE = f"POST {DEPLOYMENTS}"
STAGES = ("Development", "QA", "Production")
#: 60 POSTs at 10 a minute (5 minutes) plus task start-up on a loaded machine.
RUN_TIMEOUT = 1800.0


def deployable_apps(inventory: dict[str, Any]) -> list[str]:
    """Names of the deployable apps whose latest revision has a finished Release build (a deploy task then
    POSTs nothing but its deployment)."""
    return [
        str(asset["name"])
        for asset in inventory["assets"]
        if asset["deployable"]
        and any(
            build["revision"] == asset["latestRevision"]
            and build["buildType"] == "Release"
            and build["status"] == "Finished"
            for build in asset["builds"]
        )
    ]


def targets(inventory: dict[str, Any], count: int) -> list[dict[str, str]]:
    """``count`` (app, stage) pairs, each app once per stage at most: the apps first, then the next stage."""
    apps = deployable_apps(inventory)
    pairs = [{"asset": app, "stage": stage} for stage in STAGES for app in apps]
    if len(pairs) < count:
        raise AssertionError(f"the emulator seed has {len(apps)} deployable built apps: too few for {count}")
    return sorted(pairs[:count], key=lambda pair: (pair["asset"], pair["stage"]))


def accepted_by_limit(stats: dict[str, Any]) -> Counter[str]:
    """Requests the emulator accepted, per rate-limit window (an endpoint's or a domain's)."""
    accepted: Counter[str] = Counter()
    refused = stats["rate_limited_calls"]
    for route, calls in stats["api_calls"].items():
        method, template = route.split(" ", 1)
        for _scope, key, _limit in limits_for(method, template, LimitSettings()):
            accepted[key] += calls - refused.get(route, 0)
    return accepted


def floor_seconds(stats: dict[str, Any]) -> float:
    """The least time the limits allow for what was accepted (see the module docstring)."""
    limits = {}
    for route in stats["api_calls"]:
        method, template = route.split(" ", 1)
        limits.update({key: limit for _scope, key, limit in limits_for(method, template, LimitSettings())})
    return max(
        ((math.ceil(n / limits[key]) - 1) * RATE_WINDOW for key, n in accepted_by_limit(stats).items()), default=0.0
    )


def promotion_connection(connection: dict[str, Any]) -> dict[str, Any]:
    """The ``odc_promotion`` connection (as ``AIRFLOW_CONN_ODC_PROMOTION`` JSON fields) for an emulator's
    ``connection_dict()``: the same portal and client, paced."""
    return {**connection, "extra": PACED_EXTRA}


def ledger_slots(stack: AirflowStack, conn_id: str = CONN_ID, limit: str = POST_ROUTE) -> dict[str, int] | None:
    """How many slots the connection's ledger of ``limit`` holds now, as the api-server serves the Variable
    (None: no such Variable, the tasks did not pace)."""
    response = stack.rest("GET", f"/api/v2/variables/{quote(ledger_key(conn_id, limit), safe='')}")
    if response.status_code == 404:
        return None
    response.raise_for_status()
    state = LedgerState.parse(response.json()["value"])
    return {name: len(slots) for name, slots in state.slots.items()}


def run_mass_redeploy(
    stack: AirflowStack, inventory: dict[str, Any], stats: Callable[[], dict[str, Any]], count: int
) -> dict[str, Any]:
    """Trigger the mass redeploy (on an emulator with fresh counters), wait for it, return what was counted."""
    result = _measured_run(stack, DAG_ID, {"targets": targets(inventory, count)}, stats, CONN_ID)
    return {**result, "deploys": count}


def run_promotion(
    stack: AirflowStack, stats: Callable[[], dict[str, Any]], source: str = "Development", target: str = "QA"
) -> dict[str, Any]:
    """Trigger the promotion of ``source`` to ``target`` (with the assets ``target`` lacks), wait for it,
    return what was counted; ``deploys`` is the number of deploys the plan task planned."""
    conf = {"source_stage": source, "target_stage": target}
    result = _measured_run(stack, PROMOTION_DAG_ID, conf, stats, PROMOTION_CONN_ID)
    plan = stack.xcom_values(PROMOTION_DAG_ID, result["run_id"]).get("plan") or []
    return {**result, "deploys": len(plan), "planned_assets": sorted(str(kwargs["asset"]) for kwargs in plan)}


def _measured_run(
    stack: AirflowStack, dag_id: str, conf: dict[str, Any], stats: Callable[[], dict[str, Any]], conn_id: str
) -> dict[str, Any]:
    """Trigger ``dag_id``, wait for it and count what its ``deploy`` tasks did and the emulator accepted."""
    triggered = time.monotonic()
    run_id = stack.trigger_dag(dag_id, conf=conf, timeout=RUN_TIMEOUT)
    run = stack.wait_for_run(dag_id, run_id, timeout=RUN_TIMEOUT)
    wall = time.monotonic() - triggered
    counted = stats()
    instances = [ti for ti in stack.task_instances(dag_id, run_id) if ti["task_id"] == "deploy"]
    keys = stack.xcom_values(dag_id, run_id).get("deploy") or []
    posts = counted["api_calls"].get(POST_ROUTE, 0)
    refused = counted["rate_limited_calls"].get(POST_ROUTE, 0)
    floor = floor_seconds(counted)
    return {
        "run_id": run_id,
        "state": run["state"],
        "deploy_tasks": len(instances),
        "tasks_succeeded": sum(ti["state"] == "success" for ti in instances),
        "max_try_number": max((ti["try_number"] for ti in instances), default=0),
        "posts_sent": posts,
        "posts_accepted": posts - refused,
        "posts_rate_limited": refused,
        "post_429_share": round(refused / posts, 4) if posts else None,
        "requests_sent": counted["api_calls_total"],
        "requests_rate_limited": counted["rate_limited"],
        "deployments_started": counted["operations_started"]["deploy"],
        "distinct_operations": len({key for key in keys if key}),
        "accepted_by_limit": dict(accepted_by_limit(counted)),
        "ledger_slots_at_the_end": ledger_slots(stack, conn_id),
        "wall_s": round(wall, 1),
        "floor_s": floor,
        "ratio": round(wall / floor, 3) if floor else None,
    }
