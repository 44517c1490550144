"""Impact gates: ODC's deployment analysis before a deploy, and its deletion analysis before deleting an asset.

An analysis ends ``Finished`` even when it finds problems; its verdict is the report's status
(``NoIssuesFound``, ``WarningsFound``, ``ErrorsFound``). These operators start one, wait for it (deferrable,
like the release operators), log every finding, push a compact summary to XCom (``impact_summary``, also
the return value) and then decide: the impact gate fails on errors (and, when asked, on warnings); the
deletion operator refuses to delete an asset any other asset still consumes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator

from airflow_provider_odc.api import dependency_management as dependencies
from airflow_provider_odc.exceptions import OdcOperationFailed
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.links import PORTAL_URL_XCOM_KEY, OdcPortalLink, portal_url
from airflow_provider_odc.operations import OperationKind
from airflow_provider_odc.waiting import (
    DEFAULT_WAIT_TIMEOUT,
    FAST_PERIOD,
    POLL_FAILURE_LIMIT,
    SLOW_INTERVAL,
    OperationWaiter,
    PollSchedule,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

SUMMARY_XCOM_KEY = "impact_summary"
#: The analysis' ODC poll schedule: JIRA-NOTES saw analyses end in about 2 s, so poll fast for the first minute.
ANALYSIS_FAST_INTERVAL = 2.0


class OdcAnalysisOperator(OperationWaiter, BaseOperator):
    """Base of the operators that start an ODC analysis, wait for it and judge its report.

    :param odc_conn_id: the ``odc`` connection.
    :param deferrable: wait in the triggerer (default: Airflow's ``[operators] default_deferrable``).
    :param wait_timeout: seconds to wait for the analysis before failing the task. Default 3600.
    :param fast_interval: see ``OdcOperationOperator``; 2 s by default (analyses are quick).
    :param fast_period: see ``fast_interval``.
    :param slow_interval: see ``fast_interval``.
    :param poll_failure_limit: status polls in a row that may fail transiently. Default 5.
    """

    analysis: ClassVar[OperationKind]
    operator_extra_links = (OdcPortalLink(),)
    ui_color = "#fde3c2"

    def __init__(
        self,
        *,
        odc_conn_id: str = OdcHook.default_conn_name,
        deferrable: bool | None = None,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
        fast_interval: float = ANALYSIS_FAST_INTERVAL,
        fast_period: float = FAST_PERIOD,
        slow_interval: float = SLOW_INTERVAL,
        poll_failure_limit: int = POLL_FAILURE_LIMIT,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.odc_conn_id = odc_conn_id
        self._init_waiting(
            deferrable=deferrable,
            wait_timeout=wait_timeout,
            schedule=PollSchedule(fast_interval, fast_period, slow_interval),
            poll_params=None,
            poll_failure_limit=poll_failure_limit,
        )
        self._report: dict[str, Any] | None = None

    def start(self, hook: OdcHook, context: Context) -> tuple[str, str]:
        """Start the analysis; return its key and the ODC Portal URL to show."""
        raise NotImplementedError

    def judge(self, context: Context, hook: OdcHook, summary: dict[str, Any]) -> dict[str, Any]:
        """Act on the summary of a finished report (raise to fail the task); return the task's result."""
        raise NotImplementedError

    def execute(self, context: Context) -> dict[str, Any]:
        hook = OdcHook(self.odc_conn_id)
        started_at = time.time()
        key, url = self.start(hook, context)
        context["ti"].xcom_push(key="operation_key", value=key)
        context["ti"].xcom_push(key=PORTAL_URL_XCOM_KEY, value=url)
        self.log.info("ODC %s %s started.", self.analysis.name, key)
        self.wait_for(hook, self.analysis, key, started_at)
        return self._judge_report(context, hook)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        super().execute_complete(context, event)  # raises unless the analysis finished; keeps its report
        return self._judge_report(context, OdcHook(self.odc_conn_id))

    def finish(
        self, hook: OdcHook, kind: OperationKind, key: str, status: str | None, body: dict[str, Any] | None = None
    ) -> str:
        """A finished analysis is judged on its report (``_judge_report``), whatever its verdict; a failed one
        (ODC could not analyse) raises with ODC's ``error`` as every operation does."""
        if status in kind.success and body is None:
            status, body = hook.operation_status(kind, key, self.poll_params)
        if status in kind.success and body is not None:
            self._report = body
            return key
        return super().finish(hook, kind, key, status, body)

    def _judge_report(self, context: Context, hook: OdcHook) -> dict[str, Any]:
        body = self._report or {}
        summary = dependencies.report_summary(body)
        summary["findings"] = [hook.scrub(line) for line in summary["findings"]]  # ODC's text
        for line in dependencies.findings(body.get("report") or {}, "Error"):
            self.log.error("ODC %s finding: %s", self.analysis.name, hook.scrub(line))
        for line in dependencies.findings(body.get("report") or {}, "Warning"):
            self.log.warning("ODC %s finding: %s", self.analysis.name, hook.scrub(line))
        self.log.info(
            "ODC %s %s: %s, %d errors, %d warnings, %d impacted assets.",
            self.analysis.name,
            summary["analysisKey"],
            summary["status"],
            summary["errors"],
            summary["warnings"],
            len(summary["impactedAssets"]),
        )
        context["ti"].xcom_push(key=SUMMARY_XCOM_KEY, value=summary)
        return self.judge(context, hook, summary)

    def _fail(self, summary: dict[str, Any], why: str) -> OdcOperationFailed:
        error = OdcOperationFailed(
            self.analysis.name,
            str(summary["analysisKey"]),
            summary["processStatus"],
            summary["findings"],
            result=summary["status"],
        )
        error.args = (f"{error.args[0]}\n{why}",)
        return error


class OdcImpactAnalysisOperator(OdcAnalysisOperator):
    """Gate a deploy on ODC's deployment analysis of an asset revision for a target stage.

    Fails when the report finds errors (with ``fail_on_warnings``, warnings too), after logging every
    finding; returns (and pushes as XCom ``impact_summary``) ``{analysisKey, status, errors, warnings,
    impactedAssets, findings (first 10), ...}``.

    :param asset: asset key or exact name. Templated.
    :param stage: the target stage, key or name. Templated.
    :param revision: number, ``"latest"`` (default) or ``"highest-tag"``. Templated.
    :param fail_on_warnings: also fail on ``WarningsFound``. Default False.

    Permission: Release management > Deploy assets (on the target stage).
    """

    analysis = dependencies.DEPLOYMENT_ANALYSIS
    template_fields: Sequence[str] = ("asset", "stage", "revision")

    def __init__(
        self,
        *,
        asset: str,
        stage: str,
        revision: int | str = "latest",
        fail_on_warnings: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.asset = asset
        self.stage = stage
        self.revision = revision
        self.fail_on_warnings = fail_on_warnings

    def start(self, hook: OdcHook, context: Context) -> tuple[str, str]:
        asset = hook.find_asset(self.asset)
        stage = hook.resolve_stage(self.stage)
        revision = hook.resolve_revision(asset.asset_key, self.revision)
        self.log.info("Analysing the impact of deploying %s revision %s to %s.", asset.name, revision, stage.name)
        key = hook.start_deployment_analysis(asset.asset_key, revision, stage.key)
        return key, portal_url(hook.settings.origin, asset.asset_key, stage.key)

    def judge(self, context: Context, hook: OdcHook, summary: dict[str, Any]) -> dict[str, Any]:
        if summary["status"] == dependencies.ERRORS_FOUND:
            raise self._fail(summary, "The deployment would break the assets above: not deploying.")
        if self.fail_on_warnings and summary["status"] != "NoIssuesFound":
            raise self._fail(summary, "The analysis found warnings and fail_on_warnings is set.")
        return summary


class OdcDeleteAssetOperator(OdcAnalysisOperator):
    """Delete an asset only when ODC's deletion analysis finds nothing that still uses it.

    Runs the deletion analysis, waits, and refuses (fails the task, deleting nothing) when any asset
    consumes it, when the report has errors (or warnings, unless ``allow_warnings``), or when the asset
    still runs in a stage (unless ``allow_deployed``: ODC removes it from those stages). Deletion is
    irreversible. Returns the summary with ``deleted`` (False on a dry run).

    :param asset: asset key or exact name. Templated.
    :param analyse_only: analyse and report, delete nothing (a dry run). Default False.
    :param allow_warnings: delete despite ``WarningsFound``. Default False.
    :param allow_deployed: delete an asset deployed to stages. Default False.

    Permission: Asset management > Delete.
    """

    analysis = dependencies.DELETION_ANALYSIS
    template_fields: Sequence[str] = ("asset",)
    ui_color = "#f4c7c3"

    def __init__(
        self,
        *,
        asset: str,
        analyse_only: bool = False,
        allow_warnings: bool = False,
        allow_deployed: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.asset = asset
        self.analyse_only = analyse_only
        self.allow_warnings = allow_warnings
        self.allow_deployed = allow_deployed

    def start(self, hook: OdcHook, context: Context) -> tuple[str, str]:
        asset = hook.find_asset(self.asset)
        self.log.info("Analysing what deleting %s (%s) would impact.", asset.name, asset.asset_key)
        return hook.start_deletion_analysis(asset.asset_key), portal_url(hook.settings.origin, asset.asset_key)

    def judge(self, context: Context, hook: OdcHook, summary: dict[str, Any]) -> dict[str, Any]:
        consumers = summary["impactedAssets"]
        stages = summary.get("deployedEnvironments") or []
        reasons = []
        if consumers:
            reasons.append(f"{len(consumers)} asset(s) still consume it: {', '.join(consumers[:10])}")
        if summary["status"] == dependencies.ERRORS_FOUND:
            reasons.append("the analysis found errors")
        elif summary["status"] != "NoIssuesFound" and not self.allow_warnings:
            reasons.append("the analysis found warnings (allow_warnings=True to delete anyway)")
        if stages and not self.allow_deployed:
            reasons.append(f"it is deployed to {', '.join(stages)} (allow_deployed=True to delete anyway)")
        if reasons:
            raise self._fail(summary, f"Refusing to delete asset {summary['assetKey']}: {'; '.join(reasons)}.")
        if self.analyse_only:
            self.log.info("analyse_only: asset %s is unused and would be deleted.", summary["assetKey"])
            return {**summary, "deleted": False}
        deleted = hook.delete_asset(str(summary["assetKey"]))
        self.log.info("Deleted asset %s." if deleted else "Asset %s was already gone.", summary["assetKey"])
        return {**summary, "deleted": True}
