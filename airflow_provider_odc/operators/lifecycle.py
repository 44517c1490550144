"""Build, deploy, configure, publish and tag ODC apps: one family of operators with the same arguments.

Every operator that starts an operation pushes its key (XCom ``operation_key``) and a link to the ODC
Portal before it waits, waits by default (deferrable when asked), succeeds only on the operation's
success status, and on failure raises with ODC's own error messages. Assets are given by key or exact
name, stages by key or name (``"Production"``), revisions by number, ``"latest"`` or ``"highest-tag"``.
POSTs that start operations are never re-sent once ODC may have processed them (only a 429 is retried,
honouring ODC's 10-per-minute limits). When a POST's answer is lost, and on Airflow's own retries, the
operator attaches to the operation its earlier attempt started instead of starting a second one
(``airflow_provider_odc.attach`` says how it recognises it, and where that can be wrong).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, cast

from airflow.sdk import BaseOperator

from airflow_provider_odc import assets
from airflow_provider_odc.assets import OdcEventSubject
from airflow_provider_odc.attach import TryMemory
from airflow_provider_odc.exceptions import OdcError
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.links import PORTAL_URL_XCOM_KEY, OdcPortalLink, portal_url
from airflow_provider_odc.operations import OPERATION_KINDS
from airflow_provider_odc.waiting import (
    DEFAULT_WAIT_TIMEOUT,
    FAST_INTERVAL,
    FAST_PERIOD,
    POLL_FAILURE_LIMIT,
    SLOW_INTERVAL,
    OperationWaiter,
    PollSchedule,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_odc.api.assets import Asset
    from airflow_provider_odc.api.builds import BuildType


class OdcOperationOperator(OperationWaiter, BaseOperator):
    """Base of the operators that start a long-running ODC operation. Subclasses implement ``start``.

    :param odc_conn_id: the ``odc`` connection.
    :param wait_for_completion: wait until the operation ends (default); else return its key at once.
    :param deferrable: wait in the triggerer, freeing the worker slot. Default: Airflow's
        ``[operators] default_deferrable``.
    :param wait_timeout: seconds to wait for the operation before failing the task (it keeps running
        in ODC). Default 3600.
    :param fast_interval: the poll schedule (ODC's: every 5 s for the first ``fast_period`` of 30 s,
        then every ``slow_interval`` of 30 s).
    :param fast_period: see ``fast_interval``.
    :param slow_interval: see ``fast_interval``.
    :param poll_failure_limit: status polls in a row that may fail transiently (ODC unreachable, a
        timeout, 429, 5xx) before the wait fails; 401/403/404 fail at once. Default 5.

    On a retry (and when a POST's answer is lost) the operator attaches to the operation its earlier
    attempt started instead of starting another: see ``airflow_provider_odc.attach``.

    When the operation finishes successfully (waited for here or in the triggerer), the task emits an
    Airflow Asset event on its ``odc://`` assets through the :data:`~airflow_provider_odc.assets.ODC_EVENTS_ALIAS`
    outlet (see ``airflow_provider_odc.assets``); with ``wait_for_completion=False`` it emits none.
    """

    kind: ClassVar[str]
    emits_asset_events: ClassVar[bool] = True
    operator_extra_links = (OdcPortalLink(),)
    ui_color = "#c9e4ff"

    def __init__(
        self,
        *,
        odc_conn_id: str = OdcHook.default_conn_name,
        wait_for_completion: bool = True,
        deferrable: bool | None = None,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
        fast_interval: float = FAST_INTERVAL,
        fast_period: float = FAST_PERIOD,
        slow_interval: float = SLOW_INTERVAL,
        poll_failure_limit: int = POLL_FAILURE_LIMIT,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.odc_conn_id = odc_conn_id
        self.wait_for_completion = wait_for_completion
        self._init_waiting(
            deferrable=deferrable,
            wait_timeout=wait_timeout,
            schedule=PollSchedule(fast_interval, fast_period, slow_interval),
            poll_params=None,
            poll_failure_limit=poll_failure_limit,
        )
        if self.emits_asset_events:
            self.outlets = assets.with_events_alias(self.outlets)
        self._event_subject: OdcEventSubject | None = None

    def start(self, hook: OdcHook, memory: TryMemory) -> tuple[str, str]:
        """Start the operation (or attach to the one an earlier try started); return its key and the ODC
        Portal URL to show. Operators that emit Asset events set ``_event_subject`` here."""
        raise NotImplementedError

    def _subject(self, hook: OdcHook, asset: Asset, **fields: Any) -> None:
        """Record what the operation changes, for the Asset event its success emits."""
        portal = assets.portal_of(hook.settings.origin)
        self._event_subject = OdcEventSubject(portal=portal, asset_key=asset.asset_key, asset_name=asset.name, **fields)

    def execute(self, context: Context) -> str:
        hook = OdcHook(self.odc_conn_id)
        started_at = time.time()
        key, url = self.start(hook, TryMemory(context))
        context["ti"].xcom_push(key="operation_key", value=key)
        context["ti"].xcom_push(key=PORTAL_URL_XCOM_KEY, value=url)
        self.log.info("ODC %s %s started: %s", self.kind, key, url)
        if not self.wait_for_completion:
            return key
        subject = self._event_subject
        if subject is not None:
            assets.remember(context, subject)  # for execute_complete, should the wait defer
        result = self.wait_for(hook, OPERATION_KINDS[self.kind], key, started_at)
        if subject is not None:
            assets.emit(context, subject)
        return result

    def execute_complete(self, context: Context, event: dict[str, Any]) -> str:
        """Resume after the trigger fired; on success, emit the Asset event that ``execute`` recorded."""
        result = super().execute_complete(context, event)
        subject = assets.recall(context) if self.emits_asset_events else None
        if subject is not None:
            assets.emit(context, subject)
        return result


class OdcBuildOperator(OdcOperationOperator):
    """Build an asset revision; returns the ``buildKey``.

    By default an existing Release build of the same revision (finished, or still running) is reused
    instead of starting a duplicate: ODC allows 10 build POSTs per minute.

    :param asset: asset key or exact name. Templated.
    :param revision: number, ``"latest"`` (default) or ``"highest-tag"``. Templated.
    :param build_type: ``"Release"`` (default; the only type ODC deploys) or ``"Debug"``.
    :param reuse_existing_build: reuse a matching Release build. Default True.
    """

    kind = "build"
    template_fields: Sequence[str] = ("asset", "revision")

    def __init__(
        self,
        *,
        asset: str,
        revision: int | str = "latest",
        build_type: str = "Release",
        reuse_existing_build: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if build_type not in ("Release", "Debug"):
            raise ValueError(f"build_type must be 'Release' or 'Debug', not {build_type!r}.")
        self.asset = asset
        self.revision = revision
        self.build_type = build_type
        self.reuse_existing_build = reuse_existing_build

    def start(self, hook: OdcHook, memory: TryMemory) -> tuple[str, str]:
        asset = hook.find_asset(self.asset)
        revision = hook.resolve_revision(asset.asset_key, self.revision)
        url = portal_url(hook.settings.origin, asset.asset_key)
        if self.reuse_existing_build and self.build_type == "Release":
            existing = hook.reusable_build(asset.asset_key, revision, finished_only=False)
            if existing is not None:
                self.log.info(
                    "Reusing %s Release build %s of %s revision %s.",
                    existing.status,
                    existing.build_key,
                    asset.name,
                    revision,
                )
                self._build_subject(hook, asset, revision, existing.build_key)
                return existing.build_key, url
        build_type = cast("BuildType", self.build_type)  # checked in __init__
        build_key = hook.start_build(asset.asset_key, revision, build_type, memory=memory)
        self._build_subject(hook, asset, revision, build_key)
        return build_key, url

    def _build_subject(self, hook: OdcHook, asset: Asset, revision: int, build_key: str) -> None:
        self._subject(hook, asset, operation="Build", revision=revision, operation_key=build_key, build_key=build_key)


class OdcDeployOperator(OdcOperationOperator):
    """Deploy an asset revision to a stage; returns the deployment operation key.

    :param asset: asset key or exact name. Templated.
    :param stage: stage key or name, e.g. ``"Production"``. Templated.
    :param revision: number, ``"latest"`` (default) or ``"highest-tag"``. Templated.
    :param build_key: the Release build to deploy. Templated. Default: the revision's finished
        Release build.
    :param build_if_missing: when the revision has no Release build, build it first (the build is
        awaited in the worker; put an ``OdcBuildOperator`` before this task to defer that wait too).
    """

    kind = "deployment"
    template_fields: Sequence[str] = ("asset", "stage", "revision", "build_key")

    def __init__(
        self,
        *,
        asset: str,
        stage: str,
        revision: int | str = "latest",
        build_key: str | None = None,
        build_if_missing: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.asset = asset
        self.stage = stage
        self.revision = revision
        self.build_key = build_key
        self.build_if_missing = build_if_missing

    def start(self, hook: OdcHook, memory: TryMemory) -> tuple[str, str]:
        asset = hook.find_asset(self.asset)
        stage = hook.resolve_stage(self.stage)
        revision = hook.resolve_revision(asset.asset_key, self.revision)
        build_key = self.build_key or self._release_build(hook, asset, revision)
        self.log.info("Deploying %s revision %s to %s.", asset.name, revision, stage.name)
        key = hook.start_deployment(asset.asset_key, stage.key, revision=revision, build_key=build_key, memory=memory)
        self._subject(
            hook,
            asset,
            operation="Deploy",
            revision=revision,
            operation_key=key,
            build_key=build_key,
            stage_key=stage.key,
            stage_name=stage.name,
        )
        return key, portal_url(hook.settings.origin, asset.asset_key, stage.key)

    def _release_build(self, hook: OdcHook, asset: Asset, revision: int) -> str:
        """The revision's finished Release build; with ``build_if_missing``, one still running (an earlier
        try's, say) awaited, or a new one started and awaited."""
        build = hook.reusable_build(asset.asset_key, revision, finished_only=True)
        if build is not None:
            return build.build_key
        if not self.build_if_missing:
            raise OdcError(
                f"{asset.name} revision {revision} has no finished Release build. Set build_if_missing=True "
                "or run an OdcBuildOperator first."
            )
        build = hook.reusable_build(asset.asset_key, revision, finished_only=False)  # Pending or Running
        if build is not None:
            build_key = build.build_key
            self.log.info("Waiting for %s Release build %s of %s first.", build.status, build_key, asset.name)
        else:
            # No memory here: the deployment's own POST records this task's attempt.
            build_key = hook.start_build(asset.asset_key, revision, "Release")
            self.log.info("Building %s revision %s first: build %s.", asset.name, revision, build_key)
        return self.wait_for(hook, OPERATION_KINDS["build"], build_key, time.time(), may_defer=False)


class OdcApplyConfigsOperator(OdcOperationOperator):
    """Apply pending configuration changes of an asset on a stage, without a code deployment.

    :param asset: asset key or exact name. Templated.
    :param stage: stage key or name. Templated.
    :param revision: the deployed revision (number, ``"latest"`` or ``"highest-tag"``), or None to let
        ODC use the deployed one (the documented example omits it). Templated.
    """

    kind = "deployment"
    template_fields: Sequence[str] = ("asset", "stage", "revision")

    def __init__(self, *, asset: str, stage: str, revision: int | str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.asset = asset
        self.stage = stage
        self.revision = revision

    def start(self, hook: OdcHook, memory: TryMemory) -> tuple[str, str]:
        asset = hook.find_asset(self.asset)
        stage = hook.resolve_stage(self.stage)
        revision = None if self.revision is None else hook.resolve_revision(asset.asset_key, self.revision)
        key = hook.start_deployment(
            asset.asset_key, stage.key, operation="ApplyConfigs", revision=revision, memory=memory
        )
        self._subject(
            hook,
            asset,
            operation="ApplyConfigs",
            revision=revision,
            operation_key=key,
            stage_key=stage.key,
            stage_name=stage.name,
        )
        return key, portal_url(hook.settings.origin, asset.asset_key, stage.key)


class OdcUndeployOperator(OdcOperationOperator):
    """Remove an asset from a stage.

    :param asset: asset key or exact name. Templated.
    :param stage: stage key or name. Templated.
    """

    kind = "deployment"
    emits_asset_events = False  # the app is gone: nothing for a consumer to use
    template_fields: Sequence[str] = ("asset", "stage")

    def __init__(self, *, asset: str, stage: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.asset = asset
        self.stage = stage

    def start(self, hook: OdcHook, memory: TryMemory) -> tuple[str, str]:
        asset = hook.find_asset(self.asset)
        stage = hook.resolve_stage(self.stage)
        key = hook.start_deployment(asset.asset_key, stage.key, operation="Undeploy", memory=memory)
        return key, portal_url(hook.settings.origin, asset.asset_key, stage.key)


class OdcPublishOperator(OdcOperationOperator):
    """Publish an asset revision; returns the publish operation key.

    :param asset: asset key or exact name. Templated.
    :param revision: number, ``"latest"`` (default) or ``"highest-tag"``. Templated.
    :param stage: optional stage key or name (ODC: for the hotfix scenario). Templated.
    """

    kind = "publish"
    template_fields: Sequence[str] = ("asset", "revision", "stage")

    def __init__(self, *, asset: str, revision: int | str = "latest", stage: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.asset = asset
        self.revision = revision
        self.stage = stage

    def start(self, hook: OdcHook, memory: TryMemory) -> tuple[str, str]:
        asset = hook.find_asset(self.asset)
        revision = hook.resolve_revision(asset.asset_key, self.revision)
        stage = hook.resolve_stage(self.stage) if self.stage else None
        stage_key = stage.key if stage else None
        key = hook.start_publish(asset.asset_key, revision, stage_key=stage_key, memory=memory)
        self._subject(
            hook,
            asset,
            operation="Publish",
            revision=revision,
            operation_key=key,
            stage_key=stage_key,
            stage_name=stage.name if stage else None,
        )
        return key, portal_url(hook.settings.origin, asset.asset_key, stage_key)


class OdcTagRevisionOperator(BaseOperator):
    """Tag an asset revision with a version (``MAJOR.MINOR.PATCH``) and optional release notes.

    ODC requires a new tag, higher than the asset's current highest. Returns
    ``{"assetKey", "revision", "tag"}``.

    :param asset: asset key or exact name. Templated.
    :param revision: number, ``"latest"`` or ``"highest-tag"``. Templated.
    :param tag: the version, e.g. ``"1.4.0"``. Templated.
    :param release_notes: release notes (ODC stores them verbatim; existing ones are HTML). Templated.

    Emits an Airflow Asset event on ``odc://<portal>/assets/<asset_key>`` (see ``airflow_provider_odc.assets``).
    """

    template_fields: Sequence[str] = ("asset", "revision", "tag", "release_notes")
    operator_extra_links = (OdcPortalLink(),)
    ui_color = "#c9e4ff"

    def __init__(
        self,
        *,
        asset: str,
        revision: int | str,
        tag: str,
        release_notes: str | None = None,
        odc_conn_id: str = OdcHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.asset = asset
        self.revision = revision
        self.tag = tag
        self.release_notes = release_notes
        self.odc_conn_id = odc_conn_id
        self.outlets = assets.with_events_alias(self.outlets)

    def execute(self, context: Context) -> dict[str, Any]:
        hook = OdcHook(self.odc_conn_id)
        asset = hook.find_asset(self.asset)
        revision = hook.resolve_revision(asset.asset_key, self.revision)
        context["ti"].xcom_push(key=PORTAL_URL_XCOM_KEY, value=portal_url(hook.settings.origin, asset.asset_key))
        hook.tag_revision(asset.asset_key, revision, self.tag, self.release_notes)
        self.log.info("Tagged %s revision %s as %s.", asset.name, revision, self.tag)
        subject = OdcEventSubject(
            portal=assets.portal_of(hook.settings.origin),
            operation="Tag",
            asset_key=asset.asset_key,
            asset_name=asset.name,
            revision=revision,
            tag=self.tag,
        )
        assets.emit(context, subject)
        return {"assetKey": asset.asset_key, "revision": revision, "tag": self.tag}
