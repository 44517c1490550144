"""One task at a time sends an ODC Asset's first event: Airflow fails the others when several do.

The operators attach their events to the :data:`~airflow_provider_odc.assets.ODC_EVENTS_ALIAS` outlet. When
the API server records a task's success and an event names an asset it has not linked to that alias yet,
it creates the asset (and the link) in the same transaction. Two tasks doing that at once collide on the
database's unique constraint, and Airflow 3.3 marks the second task **failed** although its deployment
succeeded ("Error updating Task Instance state. Setting the task to failed"). Mapped deploys to a new
stage that the shared poller wakes on the same tick hit this on their first run.

So before attaching events, :func:`claim_first_events` asks Airflow, per asset, whether an ODC operator's
event is already recorded on it (then the asset and its link exist and nothing can collide). If not, the
tasks elect one sender per asset with the same lease the token exchange uses, on a Variable named for the
asset: the winner attaches its events at once; the others wait until the winner's event is recorded
(about a second after it returns), then attach theirs. The winner does not renew its lease (no thread of
ours may outlive the task's own use of Airflow's comms: under ``dag.test()`` the next task shares them),
so a winner whose success is never recorded is replaced once the lease goes stale (20 s).
Where the task SDK cannot answer (outside a task), nothing is coordinated.
Airflow 3.0's request has no ``limit`` (pydantic drops it): the check then reads the asset's whole history.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any

from airflow_provider_odc.cache.lease import ExchangeLease
from airflow_provider_odc.cache.stores import VariableTokenStore

log = logging.getLogger(__name__)

LEASE_PREFIX = "odc_asset_first_event__"
#: Recent events read per check: a watcher's events (no source task) may be the latest ones.
RECENT_EVENTS = 5


def lease_key(uri: str) -> str:
    """The Variable electing the sender of ``uri``'s first event (a digest: URIs are long)."""
    return LEASE_PREFIX + hashlib.sha256(uri.encode()).hexdigest()[:32]


def recorded(uri: str) -> bool | None:
    """Whether an ODC operator's event on ``uri`` is recorded (so its asset and alias link exist).

    None when the task SDK cannot tell (no running task, or an Airflow without request/response comms).
    The ODC assets' names are their URIs; both are given because Airflow looks up by URI alone only
    among *active* assets (ones a DAG declares), and an asset first created by an event is not.
    """
    try:
        from airflow.sdk.execution_time.comms import AssetEventsResult, GetAssetEventByAsset
        from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS
    except ImportError:  # not inside a task: SUPERVISOR_COMMS is only declared there
        return None
    send = getattr(SUPERVISOR_COMMS, "send", None)
    if send is None:
        return None
    try:
        request = GetAssetEventByAsset(name=uri, uri=uri, limit=RECENT_EVENTS, ascending=False)
    except ValueError:  # an Airflow whose request has no such fields
        return None
    try:
        reply: Any = send(request)
    except Exception as exc:  # the API server is briefly unreachable: coordinate, as for a new asset
        log.debug("Could not read the events of %s (%s).", uri, type(exc).__name__)
        return False
    if not isinstance(reply, AssetEventsResult):
        return False  # no such asset yet
    return any(
        event.source_task_id is not None and isinstance(event.extra, dict) and "operation" in event.extra
        for event in reply.asset_events
    )


def claim_first_events(uris: list[str]) -> list[str]:
    """Return once this task may attach events on every one of ``uris`` without a collision.

    Takes the assets in the order given (every task takes them in the same order: no deadlock). Returns
    the URIs this task was elected to send first on; their leases stay held, unrenewed (never released:
    a waiter would then attach before this task's success, and its first event, is recorded).
    """
    won: list[str] = []
    for uri in uris:
        if recorded(uri) is not False:
            continue
        lease = ExchangeLease(VariableTokenStore(lease_key(uri)), ttl=0.0)
        if lease.claim():
            lease.stop_renewing()
            won.append(uri)
            continue
        log.info("Another task is sending the first Airflow Asset event on %s; waiting for it to be recorded.", uri)
        _, took_over = lease.wait_for(_seen(uri))
        if took_over:
            lease.stop_renewing()
            won.append(uri)
    return won


def _seen(uri: str) -> Callable[[], bool | None]:
    """``ExchangeLease.wait_for``'s probe: True once ``uri``'s first event is recorded, else None (keep waiting)."""
    return lambda: True if recorded(uri) else None
