"""OdcOperationTrigger: wait in the triggerer for a long-running ODC operation to end.

Its arguments are all an Airflow database may see: connection id, operation kind and key, the poll
schedule and absolute deadlines. No token, no secret: the trigger gets the token through the same
encrypted Variable cache as the tasks. Events carry the outcome only (status, kind, key, ODC status);
the resumed task reads ODC's messages itself. Airflow stores events unmasked, so every text in one goes
through the hook's scrubber first (an error message can quote what a server echoed).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_odc.exceptions import OdcError
from airflow_provider_odc.hooks.odc_async import OdcAsyncHook
from airflow_provider_odc.operations import operation_kind, poll_interval

FAST_INTERVAL, FAST_PERIOD, SLOW_INTERVAL = 5.0, 30.0, 30.0
#: The longest text of an event (an error message with ODC's scrubbed title and detail fits).
EVENT_TEXT_LIMIT = 2000


class OdcOperationTrigger(BaseTrigger):
    """Polls an ODC operation on ODC's documented schedule until it ends or ``end_time`` passes.

    :param odc_conn_id: the ``odc`` connection.
    :param kind: an operation kind from ``airflow_provider_odc.operations.OPERATION_KINDS``.
    :param operation_key: the key ODC returned when the operation started.
    :param end_time: epoch seconds after which the trigger reports ``timeout``.
    :param started_at: epoch seconds when the operation started: the poll schedule counts from it, so
        a resumed wait keeps its pace.
    :param poll_params: extra query parameters of the status call (native mobile builds need some).
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
        fast_interval: float = FAST_INTERVAL,
        fast_period: float = FAST_PERIOD,
        slow_interval: float = SLOW_INTERVAL,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow's BaseTrigger is untyped
        operation_kind(kind)  # fail early on a typo
        self.odc_conn_id = odc_conn_id
        self.kind = kind
        self.operation_key = operation_key
        self.end_time = end_time
        self.started_at = time.time() if started_at is None else started_at
        self.poll_params = poll_params
        self.fast_interval = fast_interval
        self.fast_period = fast_period
        self.slow_interval = slow_interval

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
                "fast_interval": self.fast_interval,
                "fast_period": self.fast_period,
                "slow_interval": self.slow_interval,
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
        kind = operation_kind(self.kind)
        async with OdcAsyncHook(self.odc_conn_id) as hook:
            try:
                while True:
                    status, body = await hook.operation_state(kind, self.operation_key, self.poll_params)
                    outcome = kind.verdict(status, body)
                    if outcome is not None:
                        yield self._event(hook, outcome, operation_status=status)
                        return
                    now = time.time()
                    if now >= self.end_time:
                        yield self._event(hook, "timeout", operation_status=status)
                        return
                    self.log.info("ODC %s %s is %s.", self.kind, self.operation_key, hook.scrub(status))
                    interval = poll_interval(
                        now - self.started_at,
                        fast_interval=self.fast_interval,
                        fast_period=self.fast_period,
                        slow_interval=self.slow_interval,
                    )
                    await asyncio.sleep(max(min(interval, self.end_time - now), 0.0))
            except OdcError as exc:
                yield self._event(hook, "error", message=str(exc))
