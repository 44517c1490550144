"""Waiting for a long-running ODC operation, shared by the operators that start one and the sensor.

Check once; if the operation has not ended, either defer to ``OdcOperationTrigger`` (the worker slot
is freed while ODC works) or poll in the worker on the same schedule. Either way the end is judged
in one place, ``finish``: success returns, failure raises with ODC's own error messages.

One failed status poll does not end a long wait: a poll that fails for a reason a later poll may not
meet (ODC unreachable, a timeout, 429, 5xx; each already retried by the hook) is logged and the next
poll comes on schedule, up to ``poll_failure_limit`` failures in a row and never past the deadline. A
permanent answer (401 with a fresh token, 403, 404) fails at once.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from airflow_provider_odc.compat import conf
from airflow_provider_odc.exceptions import OdcError, OdcOperationFailed, is_transient
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.operations import OperationKind, operation_kind
from airflow_provider_odc.poll_schedule import FAST_INTERVAL, FAST_PERIOD, SLOW_INTERVAL, PollSchedule
from airflow_provider_odc.triggers.odc import POLL_FAILURE_LIMIT, OdcOperationTrigger, poll_failure_message

if TYPE_CHECKING:
    from airflow.sdk import Context

DEFAULT_WAIT_TIMEOUT = 3600.0


def default_deferrable() -> bool:
    """Airflow's ``[operators] default_deferrable`` (False unless the deployment turns it on)."""
    return conf.getboolean("operators", "default_deferrable", fallback=False)


class OperationWaiter:
    """Mixed into an operator or sensor that has ``odc_conn_id`` and ``defer``."""

    odc_conn_id: str
    deferrable: bool
    wait_timeout: float
    poll_schedule: PollSchedule
    poll_params: dict[str, Any] | None
    poll_failure_limit: int
    log: Any

    def _init_waiting(
        self,
        *,
        deferrable: bool | None,
        wait_timeout: float,
        schedule: PollSchedule,
        poll_params: dict[str, Any] | None,
        poll_failure_limit: int = POLL_FAILURE_LIMIT,
    ) -> None:
        if isinstance(poll_failure_limit, bool) or not isinstance(poll_failure_limit, int) or poll_failure_limit < 0:
            raise ValueError(f"poll_failure_limit must be an integer >= 0, not {poll_failure_limit!r}.")
        self.poll_failure_limit = poll_failure_limit
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.wait_timeout = wait_timeout
        self.poll_schedule = schedule
        self.poll_params = poll_params

    def wait_for(
        self, hook: OdcHook, kind: OperationKind, key: str, started_at: float, *, may_defer: bool = True
    ) -> str:
        """Block (or defer, when deferrable and ``may_defer``) until the operation ends; return ``key`` on
        success. ``may_defer=False`` for a wait in the middle of ``execute`` that a resume could not continue."""
        failures = 0
        try:
            status, _ = hook.operation_status(kind, key, self.poll_params)
        except OdcError as exc:
            failures = self._poll_failed(kind, key, exc, failures)
            status = None  # not known yet: wait as for a running operation
        if not kind.is_terminal(status):
            if self.deferrable and may_defer:
                self.defer(  # type: ignore[attr-defined]
                    trigger=OdcOperationTrigger(
                        odc_conn_id=self.odc_conn_id,
                        kind=kind.name,
                        operation_key=key,
                        end_time=started_at + self.wait_timeout,
                        started_at=started_at,
                        poll_params=self.poll_params,
                        schedule=self.poll_schedule,
                        poll_failure_limit=self.poll_failure_limit,
                    ),
                    method_name="execute_complete",
                )
            status = self._poll(hook, kind, key, started_at, failures)
        return self.finish(hook, kind, key, status)

    def _poll_failed(self, kind: OperationKind, key: str, exc: OdcError, failures: int) -> int:
        """Count one failed status poll: the new count, or raise when it is permanent or one too many."""
        failures += 1
        if not is_transient(exc) or failures > self.poll_failure_limit:
            raise OdcError(poll_failure_message(kind.name, key, exc, failures, self.poll_failure_limit)) from None
        self.log.warning(
            "A status poll of ODC %s %s failed (%d in a row, %d tolerated); polling on: %s",
            kind.name,
            key,
            failures,
            self.poll_failure_limit,
            exc,
        )
        return failures

    def _poll(self, hook: OdcHook, kind: OperationKind, key: str, started_at: float, failures: int = 0) -> str | None:
        deadline = started_at + self.wait_timeout
        while True:
            now = time.time()
            if now >= deadline:
                raise OdcError(
                    f"ODC {kind.name} {key} did not end within {self.wait_timeout:.0f} s; it keeps running in ODC."
                )
            interval = self.poll_schedule.interval_at(now - started_at)
            time.sleep(min(interval, deadline - now))
            try:
                status, _ = hook.operation_status(kind, key, self.poll_params)
            except OdcError as exc:
                failures = self._poll_failed(kind, key, exc, failures)
                continue
            failures = 0
            self.log.info("ODC %s %s is %s.", kind.name, key, hook.scrub(status))  # ODC's text
            if kind.is_terminal(status):
                return status

    def finish(
        self, hook: OdcHook, kind: OperationKind, key: str, status: str | None, body: dict[str, Any] | None = None
    ) -> str:
        """Return ``key`` on success; raise with ODC's reasons otherwise. ``body`` is the status body when at
        hand; it is read again only when the verdict or the reasons are in it (analyses, generated code)."""
        if body is None and kind.needs_body(status):
            status, body = hook.operation_status(kind, key, self.poll_params)
        if kind.verdict(status, body) == "success":
            self.log.info("ODC %s %s finished: %s.", kind.name, key, status)
            return key
        messages = hook.operation_errors(kind, key, self.poll_params, body=body)
        raise OdcOperationFailed(kind.name, key, status, messages, result=kind.result_of(body))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> str:
        """Resume after the trigger fired: judge the outcome it reports."""
        kind = operation_kind(event["kind"])
        key = event["operation_key"]
        status = event["status"]
        if status in ("success", "failed"):
            return self.finish(OdcHook(self.odc_conn_id), kind, key, event.get("operation_status"))
        if status == "timeout":
            raise OdcError(
                f"ODC {kind.name} {key} was still {event.get('operation_status')} after {self.wait_timeout:.0f} s; "
                "it keeps running in ODC."
            )
        raise OdcError(str(event.get("message")))  # poll_failure_message: says which operation and why


__all__ = [
    "FAST_INTERVAL",
    "FAST_PERIOD",
    "POLL_FAILURE_LIMIT",
    "SLOW_INTERVAL",
    "OperationWaiter",
    "PollSchedule",
    "default_deferrable",
]
