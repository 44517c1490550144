"""One poll for many waits: a poller shared by every trigger of one connection and operation kind.

A triggerer runs all its triggers on one event loop. If each deferred wait polled its own operation, 1,000
deployment waits would send ~2,000 requests a minute, 20 times ODC's budget of 100 per domain. Instead the
triggers subscribe here with their operation key and await one future; one ``OperationPoller`` per
(connection, kind) on that loop reads for all of them:

- **Deployments and publishes** (they have lists): per scan, two list reads (``status=Finished`` and
  ``status=FinishedWithError``, newest end first, ``createdDateSince`` the oldest subscriber's start),
  paged only back to what the previous scan already saw (ODC's own ``finishedDateTime`` is the cursor,
  so clocks need not agree). A handful of requests per interval, however many waits.
- **Every other kind** (builds have no list that fits): GETs by key, the longest-unchecked first, at most
  ``budget_per_minute`` a minute (a token bucket).
- **Safety net**: a few GETs by key a minute for list kinds too, first for any wait a scan could not cover
  (a page cap hit, a start outside the window): an operation the lists do not show is still found.

A scan runs every "shortest interval any subscriber's schedule asks for now" (ODC's 5 s then 30 s), so each
wait sees its end within one interval plus one scan's duration. Failures do not lose waits: a transient
failure counts against each waiting trigger's ``poll_failure_limit`` as its own poll would; a permanent one
(or a poller that keeps crashing) sends every subscriber back to polling on its own (``FallBack``); a poller
task that dies or is cancelled is restarted by its subscribers. Subscriptions live only in memory: after a
triggerer restart the triggers, rebuilt from their kwargs, subscribe again, and the first scan covers
their whole lifetime from ``started_at``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_odc.api import deployments
from airflow_provider_odc.exceptions import OdcError, is_transient
from airflow_provider_odc.hooks.odc_async import OdcAsyncHook
from airflow_provider_odc.operations import OperationKind
from airflow_provider_odc.poll_schedule import PollSchedule

log = logging.getLogger(__name__)

#: How far ODC's clock may be behind the worker that wrote ``started_at`` (createdDateSince is widened by it).
CLOCK_SKEW = 300.0
#: How far back of the previous scan's newest end a scan re-reads (ends recorded slightly out of order).
OVERLAP = 10.0
#: Pages one status list may read in one scan; what lies beyond is left to the GETs by key.
MAX_PAGES = 10
#: GETs by key per minute of a list kind's safety net, and of a kind without a list.
LIST_KIND_GETS_PER_MINUTE = 6.0
GET_KIND_GETS_PER_MINUTE = 60.0
#: Poller crashes (unexpected exceptions, cancellations) after which its subscribers poll on their own.
MAX_RESTARTS = 3

Outcome = tuple[str | None, dict[str, Any]]


class FallBack(Exception):
    """The shared poller cannot serve this wait any more: poll on your own."""


class PollFailed(Exception):
    """A wait's polls failed ``failures`` times in a row (or once, permanently) in the shared poller."""

    def __init__(self, error: OdcError, failures: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.failures = failures


@dataclass(eq=False)
class Subscription:
    """One waiting trigger: its operation and schedule, and the future the poller resolves."""

    key: str
    started_at: float
    schedule: PollSchedule
    poll_params: dict[str, Any] | None
    failure_limit: int
    future: asyncio.Future[Outcome]
    failures: int = 0
    covered: bool = False  # a list scan has read every end since this operation started
    suspect: bool = False  # a scan could not cover it: first in line for a GET by key
    last_get: float = -math.inf
    status: str | None = None  # the last status a GET saw

    def interval(self, now: float) -> float:
        return self.schedule.interval_at(now - self.started_at)


@dataclass
class TokenBucket:
    """At most ``per_minute`` spends a minute on average, ``burst`` at once."""

    per_minute: float
    burst: float
    credit: float = field(default=0.0)
    refilled: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.credit = self.burst

    def available(self) -> int:
        now = time.monotonic()
        self.credit = min(self.burst, self.credit + (now - self.refilled) * self.per_minute / 60.0)
        self.refilled = now
        return int(self.credit)

    def spend(self) -> None:
        self.credit -= 1


class OperationPoller:
    """The shared poller of one (connection, kind) on one event loop. Get it with ``poller_for``."""

    def __init__(self, odc_conn_id: str, kind: OperationKind, *, gets_per_minute: float | None = None) -> None:
        self.odc_conn_id = odc_conn_id
        self.kind = kind
        self.list_endpoint = deployments.LIST_ENDPOINTS.get(kind.name)
        rate = gets_per_minute or (LIST_KIND_GETS_PER_MINUTE if self.list_endpoint else GET_KIND_GETS_PER_MINUTE)
        self.gets = TokenBucket(rate, burst=max(1.0, rate / 2))
        self.hook = OdcAsyncHook(odc_conn_id)
        self._subscribers: dict[str, list[Subscription]] = {}
        self._watches: list[Watch] = []
        self._cursors: dict[str, float] = {}  # terminal status -> newest finishedDateTime seen (ODC's clock)
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.crashes = 0
        self.broken = False
        self.scans = 0
        self.requests = 0
        self.found_by_key = 0  # ends the GETs by key found (the lists had not shown them)

    # Subscribers ------------------------------------------------------------------------------------

    def subscribe(
        self,
        key: str,
        *,
        started_at: float,
        schedule: PollSchedule,
        poll_params: dict[str, Any] | None = None,
        failure_limit: int = 5,
    ) -> Subscription:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        subscription = Subscription(key, started_at, schedule, poll_params, failure_limit, future)
        if self.broken and not self.waiting():
            self.broken, self.crashes = False, 0  # everyone it failed has gone: a fresh start for new waits
        if self.broken:
            future.set_exception(FallBack(f"the shared poller of ODC {self.kind.name} gave up"))
            return subscription
        self._subscribers.setdefault(key.lower(), []).append(subscription)
        self._wake.set()  # its interval may be shorter than the poller's current sleep
        self.ensure_running()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        waiting = self._subscribers.get(subscription.key.lower(), [])
        if subscription in waiting:
            waiting.remove(subscription)
            if not waiting:
                del self._subscribers[subscription.key.lower()]
        if not subscription.future.done():
            subscription.future.cancel()
        if not self._subscribers:
            self._wake.set()  # let the loop see it has nobody left and end

    def waiting(self) -> list[Subscription]:
        return [s for subs in self._subscribers.values() for s in subs if not s.future.done()]

    # The task -----------------------------------------------------------------------------------------

    def ensure_running(self) -> asyncio.Task[None]:
        """The poller's task, started (again) if there is none or the last one ended."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"odc-poller-{self.kind.name}")
        return self._task

    def task_ended(self, task: asyncio.Task[None]) -> None:
        """A subscriber saw ``task`` end while it still waits: restart it, or give up after ``MAX_RESTARTS``."""
        if task is not self._task:
            return  # another subscriber already restarted it
        crashed = task.cancelled() or task.exception() is not None
        if crashed:
            self.crashes += 1
            reason = "cancelled" if task.cancelled() else repr(task.exception())
            log.warning(
                "The shared ODC %s poller stopped (%s); restart %d of %d.",
                self.kind.name,
                reason,
                self.crashes,
                MAX_RESTARTS,
            )
        if self.crashes > MAX_RESTARTS:
            self.broken = True
            for subscription in self.waiting():
                subscription.future.set_exception(FallBack(f"the shared poller of ODC {self.kind.name} kept failing"))
            return
        self.ensure_running()

    def _busy(self) -> bool:
        return bool(self.waiting() or self._watches)

    def _interval(self) -> float:
        now = time.time()
        return min([*(s.interval(now) for s in self.waiting()), *(w.interval(now) for w in self._watches)], default=0.0)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._busy():
                started = loop.time()
                await self._scan_guarded(self.waiting())
                self.scans += 1
                while self._busy():
                    self._wake.clear()
                    remaining = started + self._interval() - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        await asyncio.wait_for(self._wake.wait(), remaining)
                    except asyncio.TimeoutError:
                        break
        finally:
            if not self._busy():
                await self.hook.aclose()

    async def _scan_guarded(self, subscriptions: list[Subscription]) -> None:
        """One scan; a failed one counts against each subscriber's failure limit or sends them home."""
        try:
            if self.list_endpoint and subscriptions:
                await self._scan_lists(subscriptions, self.list_endpoint)
            if self.list_endpoint and self._watches:
                await self._scan_watches(self.list_endpoint)
            await self._get_by_key(subscriptions)
        except OdcError as exc:
            if not is_transient(exc):
                log.warning(
                    "The shared ODC %s poller got a permanent error; each wait polls on its own: %s",
                    self.kind.name,
                    self.hook.scrub(exc),
                )
                for subscription in subscriptions:
                    if not subscription.future.done():
                        subscription.future.set_exception(FallBack(self.hook.scrub(exc)))
                return
            log.warning("A shared ODC %s scan failed; polling on: %s", self.kind.name, self.hook.scrub(exc))
            for subscription in subscriptions:
                self._count_failure(subscription, exc)
            return
        for subscription in subscriptions:
            subscription.failures = 0

    @staticmethod
    def _count_failure(subscription: Subscription, exc: OdcError) -> None:
        subscription.failures += 1
        if subscription.future.done():
            return
        if not is_transient(exc) or subscription.failures > subscription.failure_limit:
            subscription.future.set_exception(PollFailed(exc, subscription.failures))

    def _resolve(self, key: Any, status: str | None, body: dict[str, Any]) -> None:
        if not isinstance(key, str) or not self.kind.is_terminal(status):
            return
        for subscription in self._subscribers.get(key.lower(), []):
            if not subscription.future.done():
                subscription.future.set_result((status, body))

    # Scans ------------------------------------------------------------------------------------------

    async def _scan_lists(self, subscriptions: list[Subscription], endpoint: str) -> None:
        created_since = min(s.started_at for s in subscriptions) - CLOCK_SKEW
        new_starts = [s.started_at - CLOCK_SKEW for s in subscriptions if not s.covered]
        complete = True
        for status in deployments.TERMINAL_STATUSES:
            cursor = self._cursors.get(status)
            floors = list(new_starts)
            if cursor is not None and len(new_starts) < len(subscriptions):
                floors.append(cursor - OVERLAP)
            floor = min(floors) if floors else created_since
            reached, newest = await self._read_back(endpoint, status, created_since, floor)
            if newest is not None:
                self._cursors[status] = max(newest, cursor if cursor is not None else newest)
            complete = complete and reached
        for subscription in subscriptions:
            if complete:
                subscription.covered = True
            elif not subscription.future.done():
                subscription.suspect = True

    async def _read_back(
        self,
        endpoint: str,
        status: str,
        created_since: float | None,
        floor: float,
        *,
        stage_key: str | None = None,
        on_item: Callable[[dict[str, Any], float | None], None] | None = None,
    ) -> tuple[bool, float | None]:
        """Read one status list, newest end first, back to ``floor``: (floor reached, newest end seen).
        Each item goes to ``on_item`` (with its end) or, by default, wakes the waits on its key."""
        offset: int | None = None
        newest: float | None = None
        for _ in range(MAX_PAGES):
            if not self.waiting() and on_item is None:
                return True, newest
            params = deployments.finished_scan_params(
                status,
                created_since=created_since,
                stage_key=stage_key,
                offset=offset,
                page_size=deployments.SCAN_PAGE_SIZE,
            )
            self.requests += 1
            items, offset = await self.hook.list_page(endpoint, params)
            for item in items:
                finished = deployments.parse_date_time(item.get("finishedDateTime"))
                if finished is not None and newest is None:
                    newest = finished
                if finished is not None and finished < floor:
                    return True, newest
                if on_item is None:
                    self._resolve(item.get("key"), self.kind.status_of(item), item)
                else:
                    on_item(item, finished)
            if offset is None:
                return True, newest
        return False, newest

    # Watches: every operation that ends, not one key (the event trigger of the Assets issue) -----------

    def watch(
        self,
        *,
        since: float,
        stage_key: str | None = None,
        statuses: tuple[str, ...] = deployments.TERMINAL_STATUSES,
        schedule: PollSchedule | None = None,
        delivered: dict[str, float] | None = None,
    ) -> Watch:
        """Every operation of this kind (of ``stage_key``, if given) that ends at or after ``since`` (epoch
        seconds on ODC's clock, e.g. a stored cursor), delivered once each in ``Watch.queue``, oldest end
        first, by the same scans as the waits. ``delivered`` (key -> end) are ends a previous watcher already
        handed out (a resumed cursor): not delivered again. ``unwatch`` it in the watcher's cleanup."""
        if self.list_endpoint is None:
            raise ValueError(f"ODC {self.kind.name} operations have no list to watch.")
        watch = Watch(stage_key, statuses, since, schedule or PollSchedule(), asyncio.Queue())
        watch.delivered.update({key.lower(): end for key, end in (delivered or {}).items()})
        self._watches.append(watch)
        self._wake.set()
        self.ensure_running()
        return watch

    def unwatch(self, watch: Watch) -> None:
        if watch in self._watches:
            self._watches.remove(watch)
        self._wake.set()

    async def _scan_watches(self, endpoint: str) -> None:
        for watch in list(self._watches):
            ended: list[tuple[float, dict[str, Any]]] = []
            newest_overall = watch.cursor

            def collect(
                item: dict[str, Any],
                finished: float | None,
                into: list[tuple[float, dict[str, Any]]] = ended,
                watch: Watch = watch,
            ) -> None:
                key = item.get("key")
                if finished is not None and isinstance(key, str) and key.lower() not in watch.delivered:
                    into.append((finished, item))

            for status in watch.statuses:
                _, newest = await self._read_back(
                    endpoint, status, None, watch.cursor - OVERLAP, stage_key=watch.stage_key, on_item=collect
                )
                newest_overall = max(newest_overall, newest if newest is not None else newest_overall)
            for finished, item in sorted(ended, key=lambda pair: pair[0]):
                if finished >= watch.since:
                    watch.delivered[str(item["key"]).lower()] = finished
                    watch.queue.put_nowait(item)
            watch.cursor = newest_overall
            horizon = watch.cursor - 2 * OVERLAP  # what the overlap can no longer bring back
            watch.delivered = {key: end for key, end in watch.delivered.items() if end >= horizon}

    async def _get_by_key(self, subscriptions: list[Subscription]) -> None:
        """GETs by key within the bucket: suspects first, then the longest unchecked."""
        waiting = [s for s in subscriptions if not s.future.done()]
        waiting.sort(key=lambda s: (not s.suspect, s.last_get))
        for subscription in _unique_keys(waiting)[: self.gets.available()]:
            if subscription.future.done():
                continue
            self.gets.spend()
            subscription.last_get = time.monotonic()
            self.requests += 1
            try:
                status, body = await self.hook.operation_state(self.kind, subscription.key, subscription.poll_params)
            except OdcError as exc:
                if is_transient(exc):
                    raise  # the scan failed as a whole: counted for every subscriber
                for same in self._subscribers.get(subscription.key.lower(), []):
                    self._count_failure(same, exc)
                continue
            subscription.suspect = False
            for same in self._subscribers.get(subscription.key.lower(), []):
                same.status = status
            self.found_by_key += self.kind.is_terminal(status)
            self._resolve(subscription.key, status, body)


@dataclass(eq=False)
class Watch:
    """A subscription to every end of a stage's operations after ``since``; ``cursor`` is how far scans read."""

    stage_key: str | None
    statuses: tuple[str, ...]
    since: float
    schedule: PollSchedule
    queue: asyncio.Queue[dict[str, Any]]
    cursor: float = 0.0
    delivered: dict[str, float] = field(default_factory=dict)  # key -> end, inside the overlap

    def __post_init__(self) -> None:
        self.cursor = self.since

    def interval(self, now: float) -> float:
        return self.schedule.slow_interval


def _unique_keys(subscriptions: Iterable[Subscription]) -> list[Subscription]:
    seen: set[str] = set()
    unique = []
    for subscription in subscriptions:
        if subscription.key.lower() not in seen:
            seen.add(subscription.key.lower())
            unique.append(subscription)
    return unique


_POLLERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], OperationPoller]] = (
    weakref.WeakKeyDictionary()
)


def poller_for(odc_conn_id: str, kind: OperationKind) -> OperationPoller:
    """The shared poller of this connection and kind on the running loop (the triggerer's), made on first use."""
    pollers = _POLLERS.setdefault(asyncio.get_running_loop(), {})
    poller = pollers.get((odc_conn_id, kind.name))
    if poller is None:
        poller = pollers[(odc_conn_id, kind.name)] = OperationPoller(odc_conn_id, kind)
    return poller


def pollers_on_this_loop() -> list[OperationPoller]:
    """Every shared poller of the running loop (tests and benchmarks read their counters)."""
    return list(_POLLERS.get(asyncio.get_running_loop(), {}).values())


__all__ = ["FallBack", "OperationPoller", "PollFailed", "Subscription", "Watch", "poller_for", "pollers_on_this_loop"]
