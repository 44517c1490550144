"""Waiting for a long-running ODC operation, shared by the operators that start one and the sensor.

Check once; if the operation has not ended, either defer to ``OdcOperationTrigger`` (the worker slot
is freed while ODC works) or poll in the worker on the same schedule. Either way the end is judged
in one place, ``finish``: success returns, failure raises with ODC's own error messages.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from airflow_provider_odc.compat import conf
from airflow_provider_odc.exceptions import OdcError, OdcOperationFailed
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.operations import OperationKind, operation_kind, poll_interval
from airflow_provider_odc.triggers.odc import FAST_INTERVAL, FAST_PERIOD, SLOW_INTERVAL, OdcOperationTrigger

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
    fast_interval: float
    fast_period: float
    slow_interval: float
    poll_params: dict[str, Any] | None
    log: Any

    def _init_waiting(
        self,
        *,
        deferrable: bool | None,
        wait_timeout: float,
        fast_interval: float,
        fast_period: float,
        slow_interval: float,
        poll_params: dict[str, Any] | None,
    ) -> None:
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.wait_timeout = wait_timeout
        self.fast_interval = fast_interval
        self.fast_period = fast_period
        self.slow_interval = slow_interval
        self.poll_params = poll_params

    def wait_for(
        self, hook: OdcHook, kind: OperationKind, key: str, started_at: float, *, may_defer: bool = True
    ) -> str:
        """Block (or defer, when deferrable and ``may_defer``) until the operation ends; return ``key`` on
        success. ``may_defer=False`` for a wait in the middle of ``execute`` that a resume could not continue."""
        status, _ = hook.operation_status(kind, key, self.poll_params)
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
                        fast_interval=self.fast_interval,
                        fast_period=self.fast_period,
                        slow_interval=self.slow_interval,
                    ),
                    method_name="execute_complete",
                )
            status = self._poll(hook, kind, key, started_at)
        return self.finish(hook, kind, key, status)

    def _poll(self, hook: OdcHook, kind: OperationKind, key: str, started_at: float) -> str | None:
        deadline = started_at + self.wait_timeout
        while True:
            now = time.time()
            if now >= deadline:
                raise OdcError(
                    f"ODC {kind.name} {key} did not end within {self.wait_timeout:.0f} s; it keeps running in ODC."
                )
            interval = poll_interval(
                now - started_at,
                fast_interval=self.fast_interval,
                fast_period=self.fast_period,
                slow_interval=self.slow_interval,
            )
            time.sleep(min(interval, deadline - now))
            status, _ = hook.operation_status(kind, key, self.poll_params)
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
        raise OdcError(f"Waiting for ODC {kind.name} {key} failed: {event.get('message')}")


__all__ = ["FAST_INTERVAL", "FAST_PERIOD", "SLOW_INTERVAL", "OperationWaiter", "default_deferrable"]
