"""Start an ODC operation at most once per task, across lost answers and Airflow's own task retries.

A POST that starts a build, deployment or publish is never sent again once ODC may have processed it
(a timeout, a dropped connection, a 5xx, an unreadable 2xx). Instead:

* **Inside one try**, when the POST's outcome is unknown, ODC's list of operations is asked for one
  that matches what was posted (``OperationMatch``: asset, stage, revision, operation type, build),
  created since just before the POST. Found: the task attaches to it. Not found: the task fails with
  the original error, and its retry looks again before it starts anything.
* **On a retry** the task first looks for what its earlier try started. The reliable marker is
  Airflow 3.3's ``task_state_store`` (XComs are cleared at the start of every try; the store is not):
  before each POST the operator records the time, and after it the key, together with the DAG run's
  ``clear_number``, so a task cleared by hand starts afresh. A recorded key that is running or
  finished successfully is attached to; one that failed is not (the retry starts a new operation).
  A recorded time without a key (the answer was lost) is looked up as above. Without a task state
  store (Airflow 3.0 to 3.2) a retry looks for a matching operation created since the DAG run started
  (Airflow resets that time when a finished run is cleared) that has not failed.

Limits, by design: ODC lists operations by asset, stage, revision, type and creation time, not by who
asked or why. A matching operation that someone else started in the same window (a person deploying
the same revision to the same stage at the same time) is taken as the task's own; the end state is the
one the task asked for. Publish operations of any stage match a publish without a stage. Creation
times are compared on ODC's clock with ``CLOCK_SKEW`` seconds of slack for the worker's clock.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, cast

from airflow_provider_odc.api import builds, deployments
from airflow_provider_odc.exceptions import OdcApiError, OdcError
from airflow_provider_odc.operations import OPERATION_KINDS

if TYPE_CHECKING:
    from airflow_provider_odc.api.builds import Build
    from airflow_provider_odc.api.deployments import DeploymentOperation, DeploymentOperationType
    from airflow_provider_odc.hooks.odc import OdcHook

log = logging.getLogger(__name__)

KEY_FIELDS = {
    "build": builds.START_KEY_FIELD,
    "deployment": deployments.START_KEY_FIELD,
    "publish": deployments.START_KEY_FIELD,
}
CLOCK_SKEW = 120.0  # seconds ODC's clock may lag the worker's
STORE_KEY = "odc_started_operation"
MAX_CANDIDATES = 200
_FRACTION = re.compile(r"(\.\d{6})\d+")


@dataclass(frozen=True)
class OperationMatch:
    """What identifies the operation one POST starts, in the terms ODC lists operations by.

    :param family: ``build``, ``deployment`` or ``publish`` (a key of ``OPERATION_KINDS``).
    :param operation: ``Deploy``, ``ApplyConfigs``, ``Undeploy`` or ``Publish`` (builds: None).
    :param revision: the revision posted, or None when ODC picks it (ApplyConfigs, Undeploy).
    :param build_type: builds only: ``Release`` or ``Debug``.
    :param build_key: deployments only: the build posted, when one was.
    """

    family: str
    asset_key: str
    revision: int | None = None
    stage_key: str | None = None
    operation: str | None = None
    build_type: str | None = None
    build_key: str | None = None

    def describe(self) -> str:
        what = self.operation or f"{self.build_type or ''} build".strip()
        parts = [f"{what} of asset {self.asset_key}"]
        if self.revision is not None:
            parts.append(f"revision {self.revision}")
        if self.stage_key:
            parts.append(f"on stage {self.stage_key}")
        return " ".join(parts)


@dataclass(frozen=True)
class Launch:
    """One POST that starts an operation, and how to recognise that operation afterwards."""

    path: str
    body: dict[str, Any]
    match: OperationMatch

    @property
    def key_field(self) -> str:
        return KEY_FIELDS[self.match.family]


def iso_utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> float | None:
    """Epoch seconds of an ODC date-time (``Z`` or an offset, up to 7 fraction digits); None if absent or bad."""
    if not isinstance(value, str) or not value:
        return None
    text = _FRACTION.sub(r"\1", value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def outcome_unknown(exc: OdcApiError) -> bool:
    """May ODC have processed a POST that ended in this error? No answer, a 5xx, or an unreadable 2xx."""
    return exc.status is None or exc.status >= 500 or 200 <= exc.status < 300


def started_operations(hook: OdcHook, match: OperationMatch, since: float) -> list[Build] | list[DeploymentOperation]:
    """The operations ODC lists that match ``match`` and were created at or after ``since`` (worker
    epoch seconds, less ``CLOCK_SKEW``), newest first."""
    since -= CLOCK_SKEW
    if match.family == "build":
        build_type = match.build_type if match.build_type in builds.BUILD_TYPES else None
        found_builds = [
            build
            for build in hook.list_builds(match.asset_key, match.revision, build_type, max_items=MAX_CANDIDATES)
            if build.asset_key == match.asset_key
            and build.asset_revision == match.revision
            and (match.build_type is None or build.build_type == match.build_type)
            and _build_is_recent(build, since)
        ]
        return sorted(found_builds, key=_newest, reverse=True)
    filters: dict[str, Any] = {
        "stage_key": match.stage_key,
        "revision": match.revision,
        "created_since": iso_utc(since),
        "sort": "-CreatedAt",
        "page_size": 50,
        "max_items": MAX_CANDIDATES,
    }
    items = (
        hook.list_deployment_operations(
            match.asset_key, operation=cast("DeploymentOperationType | None", match.operation), **filters
        )
        if match.family == "deployment"
        else hook.list_publish_operations(match.asset_key, **filters)
    )
    found = [
        item
        for item in items
        if item.asset_key == match.asset_key
        and (match.operation is None or item.operation == match.operation)
        and (match.build_key is None or item.build_key in (None, match.build_key))
    ]
    return sorted(found, key=_newest, reverse=True)


def _newest(item: Build | DeploymentOperation) -> float:
    return parse_time(item.started_date_time) or float("inf")


def _build_is_recent(build: Build, since: float) -> bool:
    """A build started at or after ``since``, or one still Pending (ODC gives it no start time yet)."""
    started = parse_time(build.started_date_time)
    return started >= since if started is not None else build.status == "Pending"


def find_started(hook: OdcHook, match: OperationMatch, since: float, *, skip_failed: bool) -> str | None:
    """The key of the newest matching operation created since ``since``; with ``skip_failed``, only one
    that is running or ended in success. Several candidates are logged: the newest is taken."""
    kind = OPERATION_KINDS[match.family]
    candidates = started_operations(hook, match, since)
    keys = [item.key for item in candidates if not (skip_failed and item.status in kind.failure)]
    if not keys:
        return None
    if len(keys) > 1:
        log.warning(
            "ODC lists %d operations that match the %s started since %s: %s; attaching to the newest.",
            len(keys),
            match.describe(),
            iso_utc(since),
            ", ".join(keys),
        )
    return keys[0]


class TryMemory:
    """What this task instance's earlier tries started, in Airflow 3.3's ``task_state_store``.

    Entries carry the DAG run's ``clear_number``: after a manual clear the task starts afresh. Without
    a store (Airflow < 3.3, or a bare context) nothing is remembered and ``fallback_since`` applies.
    """

    def __init__(self, context: Any) -> None:
        self._store = context.get("task_state_store")
        ti = context.get("ti")
        self.try_number = _int(getattr(ti, "try_number", None), 1)
        dag_run = context.get("dag_run")
        self._clear_number = _int(getattr(dag_run, "clear_number", None), 0)
        run_start = getattr(dag_run, "start_date", None)
        self._run_started = run_start.timestamp() if isinstance(run_start, datetime) else None

    @property
    def available(self) -> bool:
        return self._store is not None

    def recall(self) -> dict[str, Any] | None:
        """The entry an earlier try of this clear left, if any."""
        if self._store is None:
            return None
        entry = self._store.get(STORE_KEY)
        if not isinstance(entry, dict) or entry.get("clear_number") != self._clear_number:
            return None
        return entry

    def note(self, *, posted_at: float, key: str | None = None) -> None:
        if self._store is None:
            return
        entry: dict[str, Any] = {"clear_number": self._clear_number, "posted_at": posted_at}
        if key is not None:
            entry["key"] = key
        self._store.set(STORE_KEY, entry)

    def forget(self) -> None:
        if self._store is not None:
            self._store.delete(STORE_KEY)

    @property
    def fallback_since(self) -> float | None:
        """Without a store, a retry looks back to the DAG run's start; a first try does not look back."""
        if self._store is not None or self.try_number <= 1:
            return None
        return self._run_started


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def earlier_operation(hook: OdcHook, launch: Launch, memory: TryMemory) -> str | None:
    """The operation an earlier try of this task started and a retry should attach to, or None."""
    kind = OPERATION_KINDS[launch.match.family]
    entry = memory.recall()
    if entry is not None and isinstance(entry.get("key"), str):
        key = str(entry["key"])
        try:
            status, _ = hook.operation_status(kind, key)
        except OdcApiError as exc:
            if exc.status != 404:
                raise
            log.warning("The ODC %s %s an earlier try started is gone; starting a new one.", kind.name, key)
            return None
        if status in kind.failure:
            log.info("The ODC %s %s an earlier try started ended %s; starting a new one.", kind.name, key, status)
            return None
        log.info("Attaching to ODC %s %s (%s), started by an earlier try of this task.", kind.name, key, status)
        return key
    since = entry.get("posted_at") if entry is not None else memory.fallback_since
    if not isinstance(since, (int, float)):
        return None
    found = find_started(hook, launch.match, float(since), skip_failed=True)
    if found is not None:
        log.info(
            "Attaching to ODC %s %s: the %s an earlier try of this task may have started.",
            kind.name,
            found,
            launch.match.describe(),
        )
    return found


def start_once(hook: OdcHook, launch: Launch, memory: TryMemory) -> str:
    """The key of the operation this task attempt stands for: an earlier try's, else a new one."""
    return earlier_operation(hook, launch, memory) or post_once(hook, launch, memory)


def post_once(hook: OdcHook, launch: Launch, memory: TryMemory) -> str:
    """POST ``launch`` once and return the new operation's key; when the answer is lost, the key of the
    matching operation ODC lists instead. Never sends the POST a second time."""
    posted_at = time.time()
    memory.note(posted_at=posted_at)
    try:
        body = hook.request_json("POST", launch.path, json=launch.body)
        key = body.get(launch.key_field) if isinstance(body, dict) else None
        if not isinstance(key, str) or not key:
            raise OdcApiError(
                f"ODC POST {launch.path} answered without a {launch.key_field}.",
                method="POST",
                path=launch.path,
                status=200,
            )
    except OdcApiError as exc:
        if not outcome_unknown(exc):
            raise
        key = _recover(hook, launch, posted_at, exc)
    else:
        refused_start(launch, key, body)
    memory.note(posted_at=posted_at, key=key)
    return key


def refused_start(launch: Launch, key: str, body: dict[str, Any]) -> None:
    """ODC may accept a start POST yet answer ``isSuccessful: false`` (a build that was not started): fail at
    once instead of polling an operation that will never run."""
    if body.get("isSuccessful") is False:
        raise OdcError(
            f"ODC did not start {launch.match.family} {key} ({launch.match.describe()}): its POST answered "
            "isSuccessful=False. Check the revision in ODC Studio and the ODC Portal, then run the task again."
        )


def _recover(hook: OdcHook, launch: Launch, posted_at: float, error: OdcApiError) -> str:
    """The operation a POST with an unknown outcome started, from ODC's list; else the original error."""
    what = launch.match.describe()

    def unknown(why: str) -> OdcApiError:
        message = f"{error} {why} The task's retry looks for it again before starting one."
        return OdcApiError(message, method=error.method, path=error.path, status=error.status)

    try:
        key = find_started(hook, launch.match, posted_at, skip_failed=False)
    except OdcError as exc:
        raise unknown(
            f"Whether ODC started the {what} is unknown: listing its operations failed too ({exc})."
        ) from None
    if key is None:
        raise unknown(f"ODC does not list a {what} created since just before the POST (not yet, or not at all).")
    log.warning("The answer to the POST that started the %s was lost; ODC lists %s: attaching to it.", what, key)
    return key
