"""OdcDeploymentEventTrigger: ODC's own deployments as Airflow Asset events (``AssetWatcher``).

Attach it to the stage's Asset (``odc_stage_asset(portal, stage_key)``) through an ``AssetWatcher``: every
deployment that finishes in that stage, whoever started it (an Airflow task, a person in the ODC Portal,
a pipeline elsewhere), becomes one Asset event whose ``extra["payload"]`` is the same
:class:`~airflow_provider_odc.assets.OdcEventSubject` extra the operators emit (plus ``status`` and
``finished_at``). :func:`event_extra` reads that extra from either kind of event.

**What counts.** ``Deploy`` and ``ApplyConfigs`` operations (both change what runs in the stage, as the
operators' own events do); ``Undeploy`` is skipped (nothing left to check), and so are publishes (they
have their own list). ``Finished`` only, unless ``include_failed`` (then ``FinishedWithError`` too, with
``status`` saying so).

**Cost.** The trigger does not poll on its own: it is a ``watch`` on the triggerer's shared poller of its
connection (``shared_poller``), read by the same scans as the deferred waits. One watcher costs one list
read per ``poll_interval`` (30 s by default), two with ``include_failed``, plus one more page per 100 ends
in that interval: about 2 requests a minute (4 with ``include_failed``) out of ODC's 100 per domain, and
one more (the stage's name) when it starts.

**Exactly once, as far as Airflow allows.** A trigger is rebuilt from its kwargs after a triggerer restart,
so the cursor lives in an Airflow Variable (:func:`cursor_variable_key`, named without any word Airflow
masks; it holds ODC's end times and operation keys, no secret): the resume floor and the keys delivered
near it. Each event is yielded first and the cursor written right after, so nothing is lost: a triggerer
killed between the two re-sends that one event after the restart (**at-least-once**, a window of one
Variable write; the event's ``operation_key`` tells a consumer it has seen it). The other order would lose
it instead, which the issue forbids. A yielded event reaches Airflow's database through the triggerer's
supervisor on its next sync, not at the yield, so a hard kill of the whole triggerer in that window can
still drop one event: Airflow 3.3's shared-stream "ack mode" is the mechanism that would close it.

**Two triggerers (HA).** Airflow assigns each trigger row to one alive triggerer
(``Trigger.assign_unassigned``: rows with no triggerer or one whose heartbeat is older than the health
check threshold), and asset-watcher rows last; a triggerer drops rows no longer assigned to it on its
next sync. So one watcher runs in one triggerer, except for the seconds after a failover from a triggerer
that was slow rather than dead. For that window the cursor Variable is read again before each event and an
operation key already there is not sent again.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from airflow.triggers.base import BaseEventTrigger, TriggerEvent
from asgiref.sync import sync_to_async

from airflow_provider_odc import assets
from airflow_provider_odc.api import deployments, portfolios
from airflow_provider_odc.exceptions import OdcError
from airflow_provider_odc.operations import operation_kind
from airflow_provider_odc.poll_schedule import SLOW_INTERVAL, PollSchedule
from airflow_provider_odc.triggers.shared_poller import OVERLAP, poller_for

log = logging.getLogger(__name__)

#: The operations that become events (``Undeploy`` removes the app: nothing to smoke-test).
WATCHED_OPERATIONS = ("Deploy", "ApplyConfigs")


def cursor_variable_key(odc_conn_id: str, stage_key: str, filters: dict[str, Any]) -> str:
    """The Variable of one watcher: its connection, stage and filters, hashed (no masked word in it)."""
    digest = hashlib.sha256(json.dumps([odc_conn_id, stage_key, filters], sort_keys=True).encode()).hexdigest()
    return f"odc_deploy_watch_cursor__{digest[:16]}"


def event_extra(extra: dict[str, Any]) -> dict[str, Any]:
    """The :class:`~airflow_provider_odc.assets.OdcEventSubject` extra of an Asset event, from an operator (the
    extra itself) or from this trigger (Airflow wraps a watcher's payload as ``{"from_trigger": True, "payload":
    ...}``)."""
    payload = extra.get("payload") if extra.get("from_trigger") else None
    return dict(payload) if isinstance(payload, dict) else dict(extra)


class CursorStore(Protocol):
    """Where a watcher keeps its cursor (a JSON text) between triggerer processes."""

    key: str

    async def read(self) -> str | None: ...

    async def write(self, value: str) -> None: ...


class VariableCursorStore:
    """The cursor in an Airflow Variable, read and written off the event loop (the task SDK blocks)."""

    def __init__(self, key: str) -> None:
        self.key = key

    async def read(self) -> str | None:
        from airflow.sdk import Variable

        value = await sync_to_async(Variable.get)(self.key, default=None)
        return value if isinstance(value, str) else None

    async def write(self, value: str) -> None:
        from airflow.sdk import Variable

        description = "Cursor of an ODC deployment watcher (airflow-provider-odc): end times and keys, no secret."
        await sync_to_async(Variable.set)(self.key, value, description=description)


@dataclass
class Cursor:
    """Resume floor (epoch seconds on ODC's clock) and the operation keys delivered near it (key -> end)."""

    since: float
    delivered: dict[str, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> Cursor | None:
        try:
            data = json.loads(text) if text else None
            if not isinstance(data, dict):
                return None
            return cls(float(data["since"]), {str(k): float(v) for k, v in dict(data.get("delivered", {})).items()})
        except (ValueError, KeyError, TypeError):
            log.warning("An ODC deployment watcher cursor could not be read; starting from now.")
            return None

    def dumps(self) -> str:
        return json.dumps({"since": self.since, "delivered": self.delivered}, sort_keys=True)

    def advance(self, key: str, finished: float) -> None:
        """Record one delivered end; the floor follows the newest end (less the overlap scans re-read)."""
        self.delivered[key.lower()] = finished
        self.since = max(self.since, max(self.delivered.values()) - OVERLAP)
        self.delivered = {k: end for k, end in self.delivered.items() if end >= self.since - OVERLAP}


class OdcDeploymentEventTrigger(BaseEventTrigger):
    """One event per finished deployment of a stage, for ``AssetWatcher(trigger=...)``.

    :param odc_conn_id: the ``odc`` connection (its id only: the trigger gets the token as tasks do).
    :param stage_key: the stage to watch (key, as in ``odc_stage_asset``).
    :param asset_keys: only these apps (keys); default all.
    :param asset_name_pattern: only apps whose name matches this glob (case-insensitive, e.g. ``"Sales*"``).
    :param include_failed: emit ``FinishedWithError`` deployments too (``status`` in the payload says which).
    :param poll_interval: seconds between the shared poller's scans for this watcher (default ODC's 30 s).
    """

    def __init__(
        self,
        *,
        odc_conn_id: str = "odc_default",
        stage_key: str,
        asset_keys: Sequence[str] | None = None,
        asset_name_pattern: str | None = None,
        include_failed: bool = False,
        poll_interval: float = SLOW_INTERVAL,
        cursor_store: CursorStore | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow's BaseTrigger is untyped
        self.odc_conn_id = odc_conn_id
        self.stage_key = assets._given(stage_key, "Stage")
        self.asset_keys = sorted(assets._given(k, "Asset") for k in asset_keys) if asset_keys else None
        self.asset_name_pattern = asset_name_pattern
        self.include_failed = bool(include_failed)
        self.poll_interval = float(poll_interval)
        filters = {"assets": self.asset_keys, "names": asset_name_pattern, "failed": self.include_failed}
        self.cursor_store: CursorStore = cursor_store or VariableCursorStore(
            cursor_variable_key(odc_conn_id, self.stage_key, filters)
        )
        self._stage_name: str | None = None
        self._portal: str | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Connection id, stage, filters and interval: no token, no secret, no cursor (that is the Variable's)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "odc_conn_id": self.odc_conn_id,
                "stage_key": self.stage_key,
                "asset_keys": self.asset_keys,
                "asset_name_pattern": self.asset_name_pattern,
                "include_failed": self.include_failed,
                "poll_interval": self.poll_interval,
            },
        )

    def wanted(self, item: dict[str, Any]) -> bool:
        """Whether an ended operation of the stage becomes an event (operation, apps, name)."""
        if item.get("operation") not in WATCHED_OPERATIONS:
            return False
        if self.asset_keys is not None and str(item.get("assetKey", "")).lower() not in self.asset_keys:
            return False
        pattern = self.asset_name_pattern
        return pattern is None or fnmatch.fnmatch(str(item.get("assetName", "")).lower(), pattern.lower())

    async def run(self) -> AsyncIterator[TriggerEvent]:
        cursor = Cursor.parse(await self.cursor_store.read())
        if cursor is None:
            cursor = Cursor(since=time.time())  # a new watcher: what ends from now on
            await self.cursor_store.write(cursor.dumps())  # a restart before the first event keeps this start
        statuses = deployments.TERMINAL_STATUSES if self.include_failed else (deployments.FINISHED,)
        poller = poller_for(self.odc_conn_id, operation_kind("deployment"))
        watch = poller.watch(
            since=cursor.since,
            stage_key=self.stage_key,
            statuses=statuses,
            schedule=PollSchedule(self.poll_interval, 0.0, self.poll_interval),
            delivered=cursor.delivered,
        )
        try:
            while True:
                item = await watch.queue.get()
                key = str(item.get("key", "")).lower()
                finished = deployments.parse_date_time(item.get("finishedDateTime"))
                if not key or finished is None or not self.wanted(item):
                    continue
                payload = await self._payload(item, finished)
                # Another copy of this watcher (an HA failover) may have sent it: read the cursor last thing.
                stored = Cursor.parse(await self.cursor_store.read())
                if stored is not None and key in stored.delivered:
                    cursor = stored
                    continue
                yield TriggerEvent(payload)  # type: ignore[no-untyped-call]
                cursor.advance(key, finished)
                await self.cursor_store.write(cursor.dumps())
        finally:
            poller.unwatch(watch)

    async def _payload(self, item: dict[str, Any], finished: float) -> dict[str, Any]:
        revisions = item.get("revisions")
        revision = revisions[-1] if isinstance(revisions, list) and revisions else None
        subject = assets.OdcEventSubject(
            portal=await self._portal_of(),
            operation=item["operation"],
            asset_key=str(item.get("assetKey", "")).lower(),
            asset_name=str(item.get("assetName", "")),
            revision=revision if isinstance(revision, int) else None,
            operation_key=str(item["key"]),
            build_key=item.get("buildKey") if isinstance(item.get("buildKey"), str) else None,
            stage_key=self.stage_key,
            stage_name=await self._stage_name_of(),
        )
        ended = datetime.fromtimestamp(finished, timezone.utc).isoformat().replace("+00:00", "Z")
        return {**subject.extra, "status": item.get("status"), "finished_at": ended}

    async def _portal_of(self) -> str:
        if self._portal is None:
            hook = await poller_for(self.odc_conn_id, operation_kind("deployment")).hook._sync_hook()
            self._portal = assets.portal_of(hook.settings.origin)
        return self._portal

    async def _stage_name_of(self) -> str | None:
        """The stage's name, read once (one request); None if ODC does not answer (the key is what counts)."""
        if self._stage_name is None:
            hook = poller_for(self.odc_conn_id, operation_kind("deployment")).hook
            try:
                stages, _ = await hook.list_page(portfolios.ENVIRONMENTS, {})
            except OdcError as exc:
                log.warning("The name of ODC stage %s could not be read: %s", self.stage_key, hook.scrub(exc))
                return None
            names = {str(s.get("key", "")).lower(): s.get("name") for s in stages}
            name = names.get(self.stage_key)
            self._stage_name = name if isinstance(name, str) else None
        return self._stage_name


__all__ = ["CursorStore", "OdcDeploymentEventTrigger", "VariableCursorStore", "cursor_variable_key", "event_extra"]
