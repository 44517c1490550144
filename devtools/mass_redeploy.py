"""A mass redeploy on a real Airflow stack: ``OdcDeployOperator`` mapped over many apps, paced by the ledger.

Shared by the scheduler test (``tests/integration/test_mass_redeploy.py``, a small run that asserts counts)
and ``benchmarks/pacing.py`` (60 apps, timed). The DAG (``tests/integration/dags/odc_mass_redeploy.py``)
deploys the ``targets`` of its run conf over the ``odc_paced`` connection (``request_pacing: variable``);
the emulator keeps ODC's documented limits and sends no Retry-After.

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


def ledger_slots(stack: AirflowStack, limit: str = POST_ROUTE) -> dict[str, int] | None:
    """How many slots the connection's ledger of ``limit`` holds now, as the api-server serves the Variable
    (None: no such Variable, the tasks did not pace)."""
    response = stack.rest("GET", f"/api/v2/variables/{quote(ledger_key(CONN_ID, limit), safe='')}")
    if response.status_code == 404:
        return None
    response.raise_for_status()
    state = LedgerState.parse(response.json()["value"])
    return {name: len(slots) for name, slots in state.slots.items()}


def run_mass_redeploy(
    stack: AirflowStack, inventory: dict[str, Any], stats: Callable[[], dict[str, Any]], count: int
) -> dict[str, Any]:
    """Trigger the mass redeploy (on an emulator with fresh counters), wait for it, return what was counted."""
    pairs = targets(inventory, count)
    triggered = time.monotonic()
    run_id = stack.trigger_dag(DAG_ID, conf={"targets": pairs}, timeout=RUN_TIMEOUT)
    run = stack.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT)
    wall = time.monotonic() - triggered
    counted = stats()
    instances = [ti for ti in stack.task_instances(DAG_ID, run_id) if ti["task_id"] == "deploy"]
    keys = stack.xcom_values(DAG_ID, run_id).get("deploy") or []
    posts = counted["api_calls"].get(POST_ROUTE, 0)
    refused = counted["rate_limited_calls"].get(POST_ROUTE, 0)
    floor = floor_seconds(counted)
    return {
        "run_id": run_id,
        "state": run["state"],
        "deploys": count,
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
        "ledger_slots_at_the_end": ledger_slots(stack),
        "wall_s": round(wall, 1),
        "floor_s": floor,
        "ratio": round(wall / floor, 3) if floor else None,
    }
