"""OdcOperationTrigger: wait in the triggerer for a long-running ODC operation to end.

Its arguments are all an Airflow database may see: connection id, operation kind and key, the poll
schedule and absolute deadlines. No token, no secret: the trigger gets the token through the same
encrypted Variable cache as the tasks. Events carry the outcome only (status, kind, key, ODC status);
the resumed task reads ODC's messages itself. Airflow stores events unmasked, so every text in one goes
through the hook's scrubber first (an error message can quote what a server echoed).

A status poll that fails for a transient reason (ODC unreachable, a timeout, 429, 5xx) is logged and
the next one comes on schedule, up to ``poll_failure_limit`` failures in a row and never past
``end_time``; a permanent one (401 with a fresh token, 403, 404) ends the wait at once.

By default (``share_polls``) the trigger does not poll itself: it subscribes to the shared poller of its
connection and kind in this triggerer (``shared_poller``), which reads ODC's operation lists for all waits
at once, and falls back to its own polls when that poller cannot serve it. A trigger row written before
``share_polls`` existed loads with it on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_odc.exceptions import OdcError, is_transient
from airflow_provider_odc.hooks.odc_async import OdcAsyncHook
from airflow_provider_odc.operations import OperationKind, operation_kind
from airflow_provider_odc.poll_schedule import FAST_INTERVAL, FAST_PERIOD, SLOW_INTERVAL, PollSchedule
from airflow_provider_odc.triggers.shared_poller import FallBack, PollFailed, poller_for

#: The longest text of an event (an error message with ODC's scrubbed title and detail fits).
EVENT_TEXT_LIMIT = 2000
POLL_FAILURE_LIMIT = 5  # status polls in a row that may fail transiently before the wait gives up


def poll_failure_message(kind: str, key: str, exc: BaseException, failures: int, limit: int) -> str:
    """Why a wait stopped on a failed status poll (shared by poke and deferrable mode)."""
    if not is_transient(exc):
        return f"Waiting for ODC {kind} {key} stopped: its status could not be read. {exc}"
    return (
        f"Waiting for ODC {kind} {key} stopped: {failures} status polls in a row failed (limit "
        f"poll_failure_limit={limit}); the operation may still be running in ODC. Last error: {exc}"
    )


class OdcOperationTrigger(BaseTrigger):
    """Polls an ODC operation on ODC's documented schedule until it ends or ``end_time`` passes.

    :param odc_conn_id: the ``odc`` connection.
    :param kind: an operation kind from ``airflow_provider_odc.operations.OPERATION_KINDS``.
    :param operation_key: the key ODC returned when the operation started.
    :param end_time: epoch seconds after which the trigger reports ``timeout``.
    :param started_at: epoch seconds when the operation started: the poll schedule counts from it, so
        a resumed wait keeps its pace.
    :param poll_params: extra query parameters of the status call (native mobile builds need some).
    :param schedule: how often to poll. It is stored as its three numbers, ``fast_interval``,
        ``fast_period`` and ``slow_interval``, which are also accepted instead (how Airflow rebuilds a
        stored trigger, including one written by an earlier version).
    :param poll_failure_limit: transient status-poll failures tolerated in a row (counted from the
        trigger's first poll).
    :param share_polls: wait through the triggerer's shared poller (one poll for many waits) instead of
        polling this operation alone.
    """

    def __init__(
        self,
        *,
        odc_conn_id: str,
        kind: str,
        operation_key: str,
        end_time: float,
        started_at: float | None = None,
        poll_params: dict[str, Any] | None = None,
        schedule: PollSchedule | None = None,
        fast_interval: float = FAST_INTERVAL,
        fast_period: float = FAST_PERIOD,
        slow_interval: float = SLOW_INTERVAL,
        poll_failure_limit: int = POLL_FAILURE_LIMIT,
        share_polls: bool = True,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow's BaseTrigger is untyped
        operation_kind(kind)  # fail early on a typo
        self.odc_conn_id = odc_conn_id
        self.kind = kind
        self.operation_key = operation_key
        self.end_time = end_time
        self.started_at = time.time() if started_at is None else started_at
        self.poll_params = poll_params
        self.schedule = schedule or PollSchedule(fast_interval, fast_period, slow_interval)
        self.poll_failure_limit = poll_failure_limit
        self.share_polls = share_polls

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "odc_conn_id": self.odc_conn_id,
                "kind": self.kind,
                "operation_key": self.operation_key,
                "end_time": self.end_time,
                "started_at": self.started_at,
                "poll_params": self.poll_params,
                **self.schedule.as_kwargs(),
                "poll_failure_limit": self.poll_failure_limit,
                **(
                    {} if self.share_polls else {"share_polls": False}
                ),  # the default is left out: rows stay as they were
            },
        )

    def _event(self, hook: OdcAsyncHook, status: str, **details: Any) -> TriggerEvent:
        payload = {"status": status, "kind": self.kind, "operation_key": self.operation_key, **details}
        scrubbed = {
            key: hook.scrub(value, limit=EVENT_TEXT_LIMIT) if isinstance(value, str) else value
            for key, value in payload.items()
        }
        return TriggerEvent(scrubbed)  # type: ignore[no-untyped-call]

    async def run(self) -> AsyncIterator[TriggerEvent]:
        if self.share_polls:
            event = await self._wait_shared()
            if event is not None:
                yield event
                return
        async for event in self._poll_alone():
            yield event
            return

    async def _wait_shared(self) -> TriggerEvent | None:
        """The event, from the shared poller; None when it sends this wait back to polling alone."""
        kind = operation_kind(self.kind)
        poller = poller_for(self.odc_conn_id, kind)
        subscription = poller.subscribe(
            self.operation_key,
            started_at=self.started_at,
            schedule=self.schedule,
            poll_params=self.poll_params,
            failure_limit=self.poll_failure_limit,
        )
        try:
            while not subscription.future.done():
                remaining = self.end_time - time.time()
                if remaining <= 0:
                    return await self._at_deadline(poller.hook, kind)
                task = poller.ensure_running()
                either: set[asyncio.Future[Any]] = {subscription.future, task}
                await asyncio.wait(either, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
                if task.done() and not subscription.future.done():
                    poller.task_ended(task)  # restarts it (or, when it keeps failing, sends everyone home)
            try:
                status, body = subscription.future.result()
            except FallBack as exc:
                self.log.warning("ODC %s %s: polling alone (%s).", self.kind, self.operation_key, exc)
                return None
            except PollFailed as exc:
                message = poll_failure_message(
                    self.kind, self.operation_key, exc.error, exc.failures, self.poll_failure_limit
                )
                return self._event(poller.hook, "error", message=message)
            outcome = kind.verdict(status, body) or "error"
            return self._event(poller.hook, outcome, operation_status=status)
        finally:
            poller.unsubscribe(subscription)

    async def _at_deadline(self, hook: OdcAsyncHook, kind: OperationKind) -> TriggerEvent:
        """``end_time`` passed: one last look by key, so the event says where the operation stands."""
        try:
            status, body = await hook.operation_state(kind, self.operation_key, self.poll_params)
        except OdcError as exc:
            if not is_transient(exc):  # as a poll of its own would have ended
                message = poll_failure_message(self.kind, self.operation_key, exc, 1, self.poll_failure_limit)
                return self._event(hook, "error", message=message)
            status, body = None, {}
        outcome = kind.verdict(status, body)
        if outcome is not None:
            return self._event(hook, outcome, operation_status=status)
        return self._event(hook, "timeout", operation_status=status)

    async def _poll_alone(self) -> AsyncIterator[TriggerEvent]:
        """This operation's own polls on its schedule (``share_polls=False``, or the shared poller gave up)."""
        kind = operation_kind(self.kind)
        failures = 0
        async with OdcAsyncHook(self.odc_conn_id) as hook:
            while True:
                status: str | None = None
                body: dict[str, Any] = {}
                try:
                    status, body = await hook.operation_state(kind, self.operation_key, self.poll_params)
                    failures = 0
                except OdcError as exc:
                    failures += 1
                    if not is_transient(exc) or failures > self.poll_failure_limit:
                        message = poll_failure_message(
                            self.kind, self.operation_key, exc, failures, self.poll_failure_limit
                        )
                        yield self._event(hook, "error", message=message)
                        return
                    self.log.warning(
                        "A status poll of ODC %s %s failed (%d in a row, %d tolerated); polling on: %s",
                        self.kind,
                        self.operation_key,
                        failures,
                        self.poll_failure_limit,
                        hook.scrub(exc),
                    )
                outcome = kind.verdict(status, body) if not failures else None
                if outcome is not None:
                    yield self._event(hook, outcome, operation_status=status)
                    return
                now = time.time()
                if now >= self.end_time:
                    yield self._event(hook, "timeout", operation_status=status)
                    return
                if not failures:
                    self.log.info("ODC %s %s is %s.", self.kind, self.operation_key, hook.scrub(status))
                interval = self.schedule.interval_at(now - self.started_at)
                await asyncio.sleep(max(min(interval, self.end_time - now), 0.0))
