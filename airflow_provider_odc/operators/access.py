"""People and access sync: bring ODC's users, groups and their roles to a desired state the DAG computes.

``OdcSyncAccessOperator`` reads what the sync owns, plans the difference (``access_sync.plan_access``) and
applies it: new users with ``POST /users/bulk``, then one write per role, group or user change, removals
last (deactivated or deleted users, deleted ``managed_groups``). ``plan_only=True`` is the dry run: it
reports the plan and changes nothing. A second run with the same desired state plans nothing. A plan that
would remove more than ``max_removal_share`` of the users in scope, or delete more than that share of the
groups the sync owns, is refused unless ``allow_mass_removal=True`` (a truncated HR feed must not empty the
tenant).

What it returns (XCom) is small and holds no secrets: counts per action, the removal share, the plan's
digest and the first few changes as text. The full plan is in the task log.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from airflow.sdk import BaseOperator

from airflow_provider_odc.access_sync import (
    AccessPlan,
    CurrentAccess,
    DesiredAccess,
    RemovalMode,
    check_scope,
    plan_access,
)
from airflow_provider_odc.api.access import BULK_LIMIT, create_record
from airflow_provider_odc.api.identity import BULK_USERS
from airflow_provider_odc.exceptions import OdcError
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.operators.promotion import truthy
from airflow_provider_odc.waiting import FAST_PERIOD, SLOW_INTERVAL, OperationWaiter, PollSchedule

if TYPE_CHECKING:
    from airflow.sdk import Context

#: XCom key of the plan's summary while the task waits for a bulk user creation (read again on resume).
PLAN_XCOM_KEY = "access_plan"


class OdcSyncAccessOperator(OperationWaiter, BaseOperator):
    """Sync ODC users, groups, and application and organization roles to ``desired``; returns a summary.

    :param desired: the desired state (see ``airflow_provider_odc.access_sync``), a dict or its JSON;
        typically the return value of a ``@task`` that reads the HR feed. Templated.
    :param domains: the email domains whose users the sync owns (and may deactivate); None: every user.
        Templated.
    :param plan_only: the dry run: report the plan, change nothing. Templated. Default False.
    :param removal: ``"deactivate"`` (default; reversible) or ``"delete"`` users the feed no longer lists.
    :param max_removal_share: the largest share (0..1) of active users in scope one run may remove, and
        of the existing groups it owns one run may delete. Default 0.1.
    :param allow_mass_removal: apply a plan beyond ``max_removal_share`` anyway. Default False.
    :param expect_digest: apply only if the plan's digest is this one (the digest of a reviewed dry run);
        the state changed since otherwise. Templated.
    :param deferrable: wait for a bulk user creation in the triggerer (the worker slot is freed), then
        plan again and go on. Default: Airflow's ``[operators] default_deferrable``.
    :param poll_interval: seconds between polls of a bulk user creation for its first 30 s (then 30 s,
        ODC's schedule). Default 5.
    :param bulk_timeout: seconds to wait for one bulk user creation. Default 600.
    :param sample: how many changes the XCom summary lists as text. Default 20.
    """

    template_fields: Sequence[str] = ("desired", "domains", "plan_only", "expect_digest")
    ui_color = "#d9f2d9"

    def __init__(
        self,
        *,
        desired: Any,
        domains: list[str] | None = None,
        plan_only: bool | str = False,
        removal: str = "deactivate",
        max_removal_share: float = 0.1,
        allow_mass_removal: bool = False,
        expect_digest: str | None = None,
        deferrable: bool | None = None,
        poll_interval: float = 5.0,
        bulk_timeout: float = 600.0,
        sample: int = 20,
        odc_conn_id: str = OdcHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if removal not in ("deactivate", "delete"):
            raise ValueError(f"removal must be 'deactivate' or 'delete', not {removal!r}.")
        if not 0.0 <= max_removal_share <= 1.0:
            raise ValueError(f"max_removal_share must be between 0 and 1, not {max_removal_share!r}.")
        self.desired = desired
        self.domains = domains
        self.plan_only = plan_only
        self.removal = removal
        self.max_removal_share = max_removal_share
        self.allow_mass_removal = allow_mass_removal
        self.expect_digest = expect_digest
        self._init_waiting(
            deferrable=deferrable,
            wait_timeout=bulk_timeout,
            schedule=PollSchedule(poll_interval, FAST_PERIOD, max(poll_interval, SLOW_INTERVAL)),
            poll_params=None,
        )
        self.sample = sample
        self.odc_conn_id = odc_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        hook = OdcHook(self.odc_conn_id)
        plan, current, refused = self._plan(hook)
        summary = plan.summary(dry_run=truthy(self.plan_only), refused=refused, sample=self.sample)
        if summary["dry_run"]:
            if refused:
                self.log.warning("Applying this plan would be refused: %s", refused)
            return summary
        if self.expect_digest and self.expect_digest != plan.digest():
            raise OdcError(
                f"The access plan is now {plan.digest()}, not the reviewed {self.expect_digest}: ODC or the feed "
                "changed since the dry run. Review the new plan (the log above) and run again.",
                conn_id=self.odc_conn_id,
            )
        return self._apply(context, hook, plan, current, {**summary, "applied": 0})

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        """Resume after a bulk user creation: judge it (its failures raise with ODC's messages), go on."""
        super().execute_complete(context, event)
        ti = context["ti"]
        summary = ti.xcom_pull(task_ids=ti.task_id, key=PLAN_XCOM_KEY, map_indexes=ti.map_index)
        return self._resume(context, OdcHook(self.odc_conn_id), dict(summary))

    def _plan(self, hook: OdcHook) -> tuple[AccessPlan, CurrentAccess, str | None]:
        """Read, plan and log; the plan, what was read, and why the blast-radius guard refuses it (or None)."""
        desired = DesiredAccess.from_json(_loaded(self.desired))
        domains = list(self.domains) if self.domains else None
        check_scope(desired, domains)
        resolved, current = hook.read_access(desired, domains=domains)
        plan = plan_access(desired, resolved, current, removal=cast("RemovalMode", self.removal))
        lines = "\n".join(f"  {change.describe()}" for change in plan.changes) or "  (nothing to change)"
        self.log.info(
            "ODC access plan %s: %d changes %s, %d of %d users in scope removed.\n%s",
            plan.digest(),
            len(plan.changes),
            plan.counts(),
            plan.removals,
            plan.users_in_scope,
            lines,
        )
        return plan, current, plan.refusal(self.max_removal_share, self.allow_mass_removal)

    def _apply(
        self, context: Context, hook: OdcHook, plan: AccessPlan, current: CurrentAccess, summary: dict[str, Any]
    ) -> dict[str, Any]:
        """Apply ``plan``; new users first, one bulk creation of up to 100 at a time, each awaited (deferred
        when deferrable), after which the rest is planned again from what ODC then reports."""
        refused = plan.refusal(self.max_removal_share, self.allow_mass_removal)
        if refused:
            raise OdcError(f"Refusing to apply the access plan: {refused}", conn_id=self.odc_conn_id)
        creates = [change for change in plan.changes if change.action == "create_user"][:BULK_LIMIT]
        if creates:
            key = hook.start_bulk_users([create_record(change.subject, change.name) for change in creates])
            summary = {**summary, "applied": summary["applied"] + len(creates)}
            context["ti"].xcom_push(key=PLAN_XCOM_KEY, value=summary)
            context["ti"].xcom_push(key="operation_key", value=key)
            self.log.info("Creating %d users: ODC bulk operation %s.", len(creates), key)
            self.wait_for(hook, BULK_USERS, key, time.time())  # may defer: execute_complete goes on
            return self._resume(context, hook, summary)
        summary["applied"] += hook.apply_access_plan(plan, current)
        self.log.info("Applied %d changes.", summary["applied"])
        return summary

    def _resume(self, context: Context, hook: OdcHook, summary: dict[str, Any]) -> dict[str, Any]:
        """After a bulk creation: the new users exist now; plan what is left and apply it."""
        plan, current, _ = self._plan(hook)
        return self._apply(context, hook, plan, current, summary)


def _loaded(desired: Any) -> Any:
    """The desired state as given, or parsed from JSON text; not JSON is a clear error."""
    if not isinstance(desired, str):
        return desired
    try:
        return json.loads(desired)
    except json.JSONDecodeError as exc:
        raise OdcError(f"Desired access state: not a JSON document ({exc.msg} at position {exc.pos}).") from None
