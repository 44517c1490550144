"""OdcOperationSensor: wait for any long-running ODC operation by kind and key."""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator

from airflow_provider_odc.exceptions import OdcError
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.operations import operation_kind
from airflow_provider_odc.waiting import (
    FAST_INTERVAL,
    FAST_PERIOD,
    POLL_FAILURE_LIMIT,
    SLOW_INTERVAL,
    OperationWaiter,
    PollSchedule,
)

if TYPE_CHECKING:
    from airflow.sdk import Context


class OdcOperationSensor(OperationWaiter, BaseSensorOperator):
    """Succeeds when the operation ends in its success status; fails with ODC's messages otherwise.

    :param kind: ``build``, ``deployment``, ``publish``, or another kind of
        ``airflow_provider_odc.operations.OPERATION_KINDS``.
    :param operation_key: the operation's key (a build's ``buildKey``). Templated, e.g.
        ``"{{ ti.xcom_pull('deploy', key='operation_key') }}"``.
    :param deferrable: wait in the triggerer instead of a worker slot. Default: Airflow's
        ``[operators] default_deferrable``.
    :param poll_params: extra query parameters of the status and messages calls: a native mobile build
        needs ``{"environmentKey": ..., "applicationKey": ...}``.
    :param fast_interval: the deferrable poll schedule (ODC: every 5 s for the first ``fast_period``
        of 30 s, then every ``slow_interval`` of 30 s). In poke mode, ``poke_interval`` applies.
    :param fast_period: see ``fast_interval``.
    :param slow_interval: see ``fast_interval``.
    :param poll_failure_limit: status polls in a row that may fail transiently (ODC unreachable, a
        timeout, 429, 5xx) before the sensor fails; 401/403/404 fail at once. In ``mode="reschedule"``
        each poke starts counting afresh, so there the sensor's ``timeout`` is the bound.
    """

    template_fields: Sequence[str] = ("operation_key", "poll_params")

    def __init__(
        self,
        *,
        kind: str,
        operation_key: str,
        odc_conn_id: str = OdcHook.default_conn_name,
        deferrable: bool | None = None,
        poll_params: dict[str, Any] | None = None,
        fast_interval: float = FAST_INTERVAL,
        fast_period: float = FAST_PERIOD,
        slow_interval: float = SLOW_INTERVAL,
        poke_interval: float = 30,
        poll_failure_limit: int = POLL_FAILURE_LIMIT,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        missing = operation_kind(kind).missing_params(poll_params)
        if missing:
            raise ValueError(
                f"OdcOperationSensor(kind={kind!r}) needs poll_params with {' and '.join(missing)}: ODC scopes "
                "this operation's status and messages by them."
            )
        self.kind = kind
        self.operation_key = operation_key
        self.odc_conn_id = odc_conn_id
        self._init_waiting(
            deferrable=deferrable,
            wait_timeout=float(self.timeout),
            schedule=PollSchedule(fast_interval, fast_period, slow_interval),
            poll_params=poll_params,
            poll_failure_limit=poll_failure_limit,
        )
        self._poll_failures = 0

    @cached_property
    def hook(self) -> OdcHook:
        """One hook for every poke of this try: one connection lookup and one keep-alive HTTP session."""
        return OdcHook(self.odc_conn_id)

    def poke(self, context: Context) -> bool:
        hook = self.hook
        kind = operation_kind(self.kind)
        try:
            status, body = hook.operation_status(kind, self.operation_key, self.poll_params)
        except OdcError as exc:
            self._poll_failures = self._poll_failed(kind, self.operation_key, exc, self._poll_failures)
            return False
        self._poll_failures = 0
        self.log.info("ODC %s %s is %s.", self.kind, self.operation_key, hook.scrub(status))  # ODC's text
        if not kind.is_terminal(status):
            return False
        self.finish(hook, kind, self.operation_key, status, body)
        return True

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        return self.wait_for(self.hook, operation_kind(self.kind), self.operation_key, started_at=time.time())
