"""Upload an external library package to ODC and wait for its generation, reporting ODC's validation.

The package (a ``.zip`` of .NET code) comes from a local path or any Airflow object storage URL (``s3://``,
``gs://``, ``file://``: an ``ObjectStoragePath``), and is streamed to the pre-signed URL ODC hands out,
never with our bearer token (``OdcHook.upload_library_package``). ODC then validates and generates the
library; the operator waits (deferrable like the release operators) until the generation has ended:
``ReadyForReview`` by default, since ODC then waits for a person to review the library in the ODC Portal,
or ``Completed`` with ``wait_for_publish=True``. It logs every validation message ODC gave and fails with
the Error ones when the generation failed (``fail_on_warnings`` also on Warnings).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_odc.api.external_libraries import EXTERNAL_LIBRARY, GENERATED, count_by_type
from airflow_provider_odc.api.long_running import OperationKind
from airflow_provider_odc.attach import TryMemory
from airflow_provider_odc.exceptions import OdcError, OdcOperationFailed
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.operators.lifecycle import OdcOperationOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

MESSAGES_IN_RESULT = 20


class OdcExternalLibraryOperator(OdcOperationOperator):
    """Upload a library package, generate the external library, wait, report ODC's validation.

    Returns ``{"operationKey", "status", "fileName", "libraryKey", "libraryName", "isNewLibrary", "package":
    {"size", "sha256"}, "validation": {type: count}, "messages": [first lines]}``. Needs **Asset management >
    Create** (a new library, and to ask for the upload) or **Change** (a new version of a library).

    :param source: the package: a local path, or an object storage URL / ``ObjectStoragePath``. Templated.
    :param wait_for_publish: wait for ``Completed`` (after the review in the ODC Portal) instead of
        ``ReadyForReview``.
    :param fail_on_warnings: fail the task when ODC's validation has Warning messages.
    """

    kind = GENERATED.name
    template_fields: Sequence[str] = ("source",)
    ui_color = "#d9f2d0"

    def __init__(
        self, *, source: Any, wait_for_publish: bool = False, fail_on_warnings: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.wait_for_publish = wait_for_publish
        self.fail_on_warnings = fail_on_warnings

    @property
    def _kind(self) -> OperationKind:
        return EXTERNAL_LIBRARY if self.wait_for_publish else GENERATED

    def execute(self, context: Context) -> dict[str, Any]:  # type: ignore[override]
        hook = OdcHook(self.odc_conn_id)
        started_at = time.time()
        memory = TryMemory(context)
        earlier = self._earlier_try(hook, memory)
        if earlier is not None:
            key, sent = earlier
        else:
            package = hook.upload_library_package(self.source)
            self.log.info("Uploaded %s to ODC (%d bytes, sha256 %s).", package.file_name, package.size, package.sha256)
            posted_at = time.time()
            memory.note(posted_at=posted_at)
            key = hook.start_library_generation(package)
            memory.note(posted_at=posted_at, key=key)
            sent = {"fileName": package.file_name, "size": package.size, "sha256": package.sha256}
            self.log.info("ODC external library generation %s started for %s.", key, package.file_name)
        ti = context["ti"]
        ti.xcom_push(key="operation_key", value=key)
        ti.xcom_push(key="package", value=sent)
        if not self.wait_for_completion:
            return {**hook.get_library_generation(key).summary(), "package": sent}
        self._judged(hook, lambda: self.wait_for(hook, self._kind, key, started_at), key)
        return self._report(hook, key, sent)

    def _earlier_try(self, hook: OdcHook, memory: TryMemory) -> tuple[str, dict[str, Any]] | None:
        """The generation an earlier try of this task started, unless it failed: a retry waits for it
        instead of uploading and generating again."""
        entry = memory.recall()
        key = entry.get("key") if entry else None
        if not isinstance(key, str):
            return None
        try:
            generation = hook.get_library_generation(key)
        except OdcError as exc:
            self.log.warning("The generation %s of an earlier try could not be read (%s); starting anew.", key, exc)
            return None
        if generation.status in self._kind.failure:
            return None
        self.log.info("Attaching to generation %s (%s), started by an earlier try.", key, generation.status)
        return key, {"fileName": generation.file_name, "size": None, "sha256": None}

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        hook = OdcHook(self.odc_conn_id)
        key = str(event.get("operation_key"))
        self._judged(hook, lambda: super(OdcExternalLibraryOperator, self).execute_complete(context, event), key)
        ti = context["ti"]
        return self._report(hook, key, ti.xcom_pull(task_ids=ti.task_id, key="package", map_indexes=ti.map_index))

    def _judged(self, hook: OdcHook, wait: Callable[[], object], key: str) -> None:
        """Run the wait; on a failed generation, log everything ODC's validation said before failing."""
        try:
            wait()
        except OdcOperationFailed:
            self._log_messages(hook, key)
            raise

    def _log_messages(self, hook: OdcHook, key: str) -> list[str]:
        try:
            messages = hook.library_validation_messages(key)
        except OdcError as exc:
            self.log.warning("ODC's validation messages of %s could not be read: %s", key, exc)
            return []
        lines = [hook.scrub(message.line(), limit=600) for message in messages]  # ODC's text
        for line in lines:
            self.log.info("ODC validation: %s", line)
        return lines

    def _report(self, hook: OdcHook, key: str, package: Any) -> dict[str, Any]:
        generation = hook.get_library_generation(key)
        messages = hook.library_validation_messages(key)
        lines = [hook.scrub(message.line(), limit=600) for message in messages]
        for line in lines:
            self.log.info("ODC validation: %s", line)
        counts = dict(count_by_type(messages))
        if self.fail_on_warnings and counts.get("Warning"):
            warnings = [line for line, message in zip(lines, messages, strict=True) if message.type == "Warning"]
            raise OdcError(
                f"ODC external library generation {key} passed with {counts['Warning']} warning(s), and "
                "fail_on_warnings is set. ODC says:\n" + "\n".join(f"  - {line}" for line in warnings),
                conn_id=self.odc_conn_id,
            )
        self.log.info("ODC external library generation %s is %s (%s).", key, generation.status, generation.library_name)
        return {
            **generation.summary(),
            "package": package,
            "validation": counts,
            "messages": lines[:MESSAGES_IN_RESULT],
        }
