"""The release lifecycle of the ODC emulator: revisions and tags, builds, deploy/publish operations, deployments.

``ReleaseLifecycle`` is one part of ``EmulatorState`` and shares its ``Runtime``: every public method takes
the one lock for a short, non-blocking section. Nothing runs in the background. An operation stores when it
started and how long each phase lasts; its status is derived from the emulator clock (wall time plus
``clock_offset``) whenever it is read, so ``advance(seconds)`` moves every operation forward without sleeping.
Deploy and Undeploy operations change "what is deployed where" when they finish; those effects are applied in
finishing order by ``_settle_locked`` before anything that depends on them is read.

Errors are raised as ``ApiError`` (status, detail, ODC-style ``errorCode``); the app turns them into
``ProblemDetails``. Error codes follow the ``OS-<SERVICE>-<status><nn>`` pattern; only ``OS-APPS-40021``
("Tag already in use") was observed on a live tenant, the others are the emulator's own.
Nothing here knows about FastAPI or HTTP.
"""

from __future__ import annotations

import base64
import binascii
import collections
import math
import re
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from airflow_provider_odc.emulator.rate_limits import LimitSettings, SlidingWindows, limits_for
from airflow_provider_odc.emulator.runtime import EmulatorConfig, Runtime
from airflow_provider_odc.emulator.seed import (
    DEPLOYABLE_TYPES,
    ReleaseSeed,
    SeedData,
    build_release_seed,
    format_timestamp,
    parse_sort_fields,
    release_note,
    revision_history,
    semver,
)
from airflow_provider_odc.emulator.validation import ApiError, require

OPERATION_KINDS = ("build", "deploy", "apply_configs", "undeploy", "publish")
DEPLOYMENT_OPERATIONS = {"Deploy": "deploy", "Undeploy": "undeploy", "ApplyConfigs": "apply_configs"}
BUILD_TYPES = ("Debug", "Release")
OPERATION_STATUSES = ("Running", "FinishedWithError", "Finished")
OPERATION_SORT_FIELDS = (
    "createdat",
    "updatedat",
    "finishedat",
    "assetkey",
    "applicationkey",
    "assetname",
    "applicationname",
)
DEPLOYED_SORT = re.compile(r"(-?)deployments\[([^\]]+)\]\.deploymentDateTime", re.IGNORECASE)


def _default_failure(kind: str) -> tuple[str, ...]:
    return (f"Failure injected by the ODC emulator (fail_next {kind!r}).",)


# Records -----------------------------------------------------------------------------------------------


@dataclass
class BuildRecord:
    key: str
    asset_key: str
    asset_name: str
    revision: int
    build_type: str
    built_by: str
    created_at: float
    pending: float
    running: float
    failure: tuple[str, ...] | None
    seq: int

    @property
    def started_at(self) -> float:
        return self.created_at + self.pending

    @property
    def finished_at(self) -> float:
        return self.created_at + self.pending + self.running

    def status(self, now: float) -> str:
        if now < self.started_at:
            return "Pending"
        if now < self.finished_at:
            return "Running"
        return "FinishedWithErrors" if self.failure is not None else "Finished"

    def render(self, now: float) -> dict[str, Any]:
        """``BuildDetails``."""
        status = self.status(now)
        finished = status in ("Finished", "FinishedWithErrors")
        return {
            "buildKey": self.key,
            "assetKey": self.asset_key,
            "assetRevision": self.revision,
            "buildType": self.build_type,
            "startedDateTime": None if status == "Pending" else format_timestamp(self.started_at),
            "finishedDateTime": format_timestamp(self.finished_at) if finished else None,
            "builtBy": self.built_by,
            "status": status,
            "securityAudit": {"vulnerabilities": []} if finished else None,
        }

    def log(self, now: float) -> list[dict[str, Any]]:
        """``BuildFeedbackDetails`` issued so far: Info lines, plus Error lines when the build failed."""
        steps: list[tuple[float, str, str, str, str | None]] = [
            (self.created_at, "Queue", "Info", f"Build of revision {self.revision} ({self.build_type}) queued.", None),
            (self.started_at, "Start", "Info", f"Build of {self.asset_name} revision {self.revision} started.", None),
            (self.started_at + self.running / 2, "Compile", "Info", "Generating and compiling the code.", None),
        ]
        if self.failure is None:
            steps.append((self.finished_at, "Finish", "Info", "Build finished successfully.", None))
        else:
            steps.extend((self.finished_at, "Compile", "Error", text, "OS-BLD-50001") for text in self.failure)
            steps.append((self.finished_at, "Finish", "Error", "Build finished with errors.", "OS-BLD-50000"))
        return [
            {
                "timestamp": format_timestamp(moment),
                "type": "BuildError" if severity == "Error" else "BuildProgress",
                "severity": severity,
                "message": text,
                "stepId": step,
                "assetKey": self.asset_key,
                "errorCode": code,
            }
            for moment, step, severity, text, code in steps
            if moment <= now
        ]


@dataclass
class OperationRecord:
    """A deployment operation (Deploy, Undeploy, ApplyConfigs) or a publish operation (Publish)."""

    key: str
    kind: str  # one of OPERATION_KINDS except "build"
    operation: str  # Deploy | Undeploy | ApplyConfigs | Publish
    asset_key: str
    asset_name: str
    revision: int | None
    build_key: str | None
    environment_key: str | None
    environment_name: str | None
    portfolio_key: str
    deployed_by: str
    created_at: float
    duration: float
    failure: tuple[str, ...] | None
    seq: int
    warnings: tuple[str, ...] = ()
    final_status: str | None = None  # set once settled

    @property
    def family(self) -> str:
        return "publish" if self.kind == "publish" else "deployment"

    @property
    def finished_at(self) -> float:
        return self.created_at + self.duration

    def status(self, now: float) -> str:
        if self.final_status is not None:
            return self.final_status
        if now < self.finished_at:
            return "Running"
        return "FinishedWithError" if self.failure is not None else "Finished"

    def render(self, now: float) -> dict[str, Any]:
        """``DeploymentOperationResponse`` or ``PublishOperationResponse``."""
        status = self.status(now)
        body: dict[str, Any] = {"key": self.key, "status": status, "startedDateTime": format_timestamp(self.created_at)}
        if status != "Running":  # not nullable in the spec: absent while running
            body["finishedDateTime"] = format_timestamp(self.finished_at)
        body["deployedBy"] = self.deployed_by
        body["assetKey"] = self.asset_key
        if self.family == "publish":
            body["revision"] = self.revision
            body["buildKey"] = self.build_key
        else:
            body["revisions"] = None if self.revision is None else [self.revision]
            body["buildKey"] = self.build_key
            body["assetName"] = self.asset_name
        body["operation"] = self.operation
        body["portfolioKey"] = self.portfolio_key
        return body

    def messages(self, now: float) -> list[dict[str, Any]]:
        """``MessageDetailsV1TaskProgressMessage`` issued so far, oldest first."""
        asset, stage, revision = self.asset_name, self.environment_name, self.revision
        plan: list[tuple[float, str, str, str]]
        if self.operation == "Deploy":
            plan = [
                (0.0, "Start", "Info", f"Deployment of {asset} revision {revision} to {stage} started."),
                *((0.0, "Validate", "Warning", text) for text in self.warnings),
                (0.25, "PrepareBuild", "Info", f"Preparing build {self.build_key}."),
                (0.5, "ApplyConfigurations", "Info", f"Applying the configurations of {stage}."),
                (0.75, "UpdateRuntime", "Info", f"Updating {asset} in {stage}."),
            ]
            done = "Deployment finished successfully."
        elif self.operation == "Undeploy":
            plan = [
                (0.0, "Start", "Info", f"Undeploy of {asset} from {stage} started."),
                (0.5, "StopRuntime", "Info", f"Removing {asset} from {stage}."),
            ]
            done = "Undeploy finished successfully."
        elif self.operation == "ApplyConfigs":
            plan = [
                (0.0, "Start", "Info", f"Applying the configurations of {asset} revision {revision} in {stage}."),
                (0.5, "ApplyConfigurations", "Info", "Applying the pending configuration changes."),
            ]
            done = "Configurations applied successfully."
        else:
            target = f" to {stage}" if stage else ""
            plan = [
                (0.0, "Start", "Info", f"Publish of {asset} revision {revision}{target} started."),
                (1 / 3, "Compile", "Info", f"Compiling revision {revision}."),
                (2 / 3, "Deploy", "Info", "Deploying the new revision."),
            ]
            done = "Publish finished successfully."
        if self.failure is None:
            plan.append((1.0, "Finish", "Info", done))
        else:
            plan.extend((1.0, "Failure", "Error", text) for text in self.failure)
            plan.append((1.0, "Finish", "Error", f"{self.operation} finished with errors."))
        settled = self.status(now) != "Running"
        error_type = "OS-PUB-50001" if self.family == "publish" else "OS-DPL-50001"
        types = {"Info": None, "Warning": "OS-DPL-30001", "Error": error_type}
        return [
            {
                "timestamp": format_timestamp(self.created_at + fraction * self.duration),
                "type": types[severity],
                "severity": severity,
                "message": text,
                "additionalInfo": {"stepId": step, "assetKey": self.asset_key},
            }
            for fraction, step, severity, text in plan
            if settled or fraction == 0.0 or self.created_at + fraction * self.duration <= now
        ]


@dataclass
class DeploymentRecord:
    """What a finished Deploy left in one stage."""

    asset_key: str
    environment_key: str
    revision: int
    build_key: str
    operation_key: str
    deployed_at: float
    deployed_by: str


@dataclass
class _PendingFailure:
    kind: str
    remaining: int
    messages: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "remaining": self.remaining, "messages": list(self.messages)}


@dataclass
class ReleaseData:
    """Every mutable piece of the release lifecycle; ``reset()`` replaces it with a fresh one from the seed."""

    latest: list[dict[str, Any]]
    histories: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: dict[tuple[str, int], str] = field(default_factory=dict)
    builds: dict[str, BuildRecord] = field(default_factory=dict)
    operations: dict[str, OperationRecord] = field(default_factory=dict)
    unsettled: list[OperationRecord] = field(default_factory=list)
    deployed: dict[tuple[str, str], DeploymentRecord] = field(default_factory=dict)
    failures: collections.deque[_PendingFailure] = field(default_factory=collections.deque)
    rate_windows: SlidingWindows = field(default_factory=SlidingWindows)
    operations_started: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OPERATION_KINDS, 0))
    rate_limited: int = 0
    rate_limited_calls: dict[str, int] = field(default_factory=dict)  # "<METHOD> <route>" -> 429s answered
    deleted: set[str] = field(default_factory=set)  # asset keys DELETE /assets/{key} removed
    seq: int = 0

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


def new_release_data(seed: SeedData, release: ReleaseSeed) -> ReleaseData:
    data = ReleaseData(latest=list(seed.assets))
    names = {asset["assetKey"]: asset["name"] for asset in seed.assets}
    environment_names = {environment["key"]: environment["name"] for environment in seed.environments}
    for build in release.builds:
        data.builds[build.key] = BuildRecord(
            key=build.key,
            asset_key=build.asset_key,
            asset_name=names[build.asset_key],
            revision=build.revision,
            build_type=build.build_type,
            built_by=build.built_by,
            created_at=build.started_at,
            pending=0.0,
            running=build.finished_at - build.started_at,
            failure=None,
            seq=data.next_seq(),
        )
    for deployment in release.deployments:
        data.operations[deployment.key] = OperationRecord(
            key=deployment.key,
            kind="deploy",
            operation="Deploy",
            asset_key=deployment.asset_key,
            asset_name=names[deployment.asset_key],
            revision=deployment.revision,
            build_key=deployment.build_key,
            environment_key=deployment.environment_key,
            environment_name=environment_names[deployment.environment_key],
            portfolio_key=seed.portfolio_key,
            deployed_by=deployment.deployed_by,
            created_at=deployment.started_at,
            duration=deployment.finished_at - deployment.started_at,
            failure=None,
            seq=data.next_seq(),
            final_status="Finished",
        )
        data.deployed[(deployment.asset_key, deployment.environment_key)] = DeploymentRecord(
            asset_key=deployment.asset_key,
            environment_key=deployment.environment_key,
            revision=deployment.revision,
            build_key=deployment.build_key,
            operation_key=deployment.key,
            deployed_at=deployment.finished_at,
            deployed_by=deployment.deployed_by,
        )
    return data


# Pure helpers ------------------------------------------------------------------------------------------


def encode_message_offset(operation_key: str, index: int) -> str:
    """The opaque continuation token of the ``/messages`` endpoints (``StringPageInfo``)."""
    return base64.urlsafe_b64encode(f"{operation_key}:{index}".encode()).decode("ascii").rstrip("=")


def decode_message_offset(operation_key: str, token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("utf-8")
        owner, _, index = raw.rpartition(":")
        value = int(index)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        value, owner = -1, ""
    if owner != operation_key or value < 0:
        raise ApiError(400, f"The offset '{token}' is not a valid continuation token.", "OS-DPL-40006")
    return value


def _tag_key(revision: dict[str, Any]) -> tuple[int, int, int]:
    return semver(revision["tag"])


def filter_revisions(
    history: list[dict[str, Any]],
    *,
    model_digest: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    is_tagged: bool | None = None,
    tag: str | None = None,
    commit_message: str | None = None,
    sort: list[tuple[str, bool]] | None = None,
) -> list[dict[str, Any]]:
    """The ``GET /assets/{key}/revisions`` filters; revision ascending unless ``sort`` says otherwise."""
    selected = list(history)
    if model_digest:
        selected = [r for r in selected if (r["modelDigest"] or "").casefold() == model_digest.casefold()]
    if since is not None:
        earliest = format_timestamp(since.timestamp())
        selected = [r for r in selected if r["createdAt"] >= earliest]
    if until is not None:
        latest = format_timestamp(until.timestamp())
        selected = [r for r in selected if r["createdAt"] <= latest]
    if is_tagged is not None:
        selected = [r for r in selected if (r["tag"] is not None) is is_tagged]
    if tag:
        selected = [r for r in selected if r["tag"] == tag]
    if commit_message:
        needle = commit_message.casefold()
        selected = [r for r in selected if needle in (r["commitMessage"] or "").casefold()]
    for name, descending in reversed(sort or []):
        if name == "revision":
            selected.sort(key=lambda r: r["revision"], reverse=descending)
        else:  # tag: untagged revisions last in both directions
            tagged = sorted((r for r in selected if r["tag"]), key=_tag_key, reverse=descending)
            selected = tagged + [r for r in selected if not r["tag"]]
    return selected


def parse_revision_sort(sort: str) -> list[tuple[str, bool]]:
    return parse_sort_fields(sort, ("revision", "tag"), "revision, tag")


def parse_operation_sort(sort: str) -> list[tuple[str, bool]]:
    allowed = "CreatedAt, UpdatedAt, FinishedAt, AssetKey, ApplicationKey, AssetName, ApplicationName"
    return parse_sort_fields(sort, OPERATION_SORT_FIELDS, allowed, casefold=True)


def _operation_sort_key(name: str, now: float) -> Any:
    if name == "createdat":
        return lambda op: op.created_at
    if name in ("updatedat", "finishedat"):
        return lambda op: (
            op.finished_at if op.status(now) != "Running" else (op.created_at if name == "updatedat" else math.inf)
        )
    if name in ("assetkey", "applicationkey"):
        return lambda op: op.asset_key
    return lambda op: op.asset_name.casefold()


def _url_path(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", name)


# The lifecycle -----------------------------------------------------------------------------------------


class ReleaseLifecycle:
    """Revisions and tags, builds, deploy/publish operations, deployments, rate windows and ``fail_next``.

    One per ``EmulatorState``, sharing its ``Runtime`` (lock, config, clock). ``failure_kinds`` are the kinds
    ``fail_next`` accepts: this lifecycle's own and those of the parts that take failures from its queue.
    """

    def __init__(self, runtime: Runtime, seed: SeedData, client_subject: str, failure_kinds: tuple[str, ...]) -> None:
        self._runtime = runtime
        self._lock = runtime.lock
        self._seed_data = seed
        self._release_seed = build_release_seed(seed)
        self._asset_index = {asset["assetKey"]: index for index, asset in enumerate(seed.assets)}
        self._release = new_release_data(seed, self._release_seed)
        self._failure_kinds = failure_kinds
        self.client_subject = client_subject
        self.portfolio_key = seed.portfolio_key
        self.environments = seed.environments

    @property
    def _config(self) -> EmulatorConfig:
        return self._runtime.config

    def _now_locked(self) -> float:
        return self._runtime.now_locked()

    def reset(self) -> None:
        """Operations, tags, deployments, rate windows and pending failures as seeded (lock not held)."""
        fresh = new_release_data(self._seed_data, self._release_seed)
        with self._lock:
            self._release = fresh

    # Lookups (lock held) ------------------------------------------------------------------------------

    def asset_locked(self, key: str) -> dict[str, Any] | None:
        index = self._asset_index.get(key.casefold())
        if index is None or key.casefold() in self._release.deleted:
            return None
        return self._release.latest[index]

    def _asset_or_404_locked(self, key: str, code: str = "OS-APPS-40401") -> dict[str, Any]:
        """The asset, or the 404 ``ApiError`` "Asset '<key>' was not found." with error ``code``."""
        asset = self.asset_locked(key)
        if asset is None:
            raise ApiError(404, f"Asset '{key}' was not found.", code)
        return asset

    def environment_locked(self, key: str) -> dict[str, Any] | None:
        return next((e for e in self.environments if e["key"].casefold() == key.casefold()), None)

    def _history_locked(self, asset: dict[str, Any]) -> list[dict[str, Any]]:
        """All revisions of ``asset``, generated on first use (seeded tags get seeded release notes)."""
        key = asset["assetKey"]
        history = self._release.histories.get(key)
        if history is None:
            seed = self._seed_data
            history = revision_history(seed.assets[self._asset_index[key]], seed.users, seed.seed)
            self._release.histories[key] = history
            for revision in history:
                if revision["tag"]:
                    self._release.notes[(key, revision["revision"])] = release_note(
                        revision["tag"], revision["commitMessage"]
                    )
        return history

    def take_failure_locked(self, kinds: Collection[str]) -> tuple[str, tuple[str, ...]] | None:
        """Consume one use of the oldest pending ``fail_next`` of one of ``kinds``: its kind and messages."""
        for pending in self._release.failures:
            if pending.kind in kinds:
                pending.remaining -= 1
                if pending.remaining == 0:
                    self._release.failures.remove(pending)
                return pending.kind, pending.messages
        return None

    def _take_failure_locked(self, kind: str) -> tuple[str, ...] | None:
        taken = self.take_failure_locked((kind,))
        return None if taken is None else taken[1]

    def build_locked(self, key: str) -> BuildRecord | None:
        """The build with this canonical key, if any."""
        return self._release.builds.get(key)

    def _settle_locked(self, now: float) -> None:
        """Apply the effects of every operation that has finished by ``now``, in finishing order."""
        data = self._release
        due = sorted((op for op in data.unsettled if op.finished_at <= now), key=lambda op: (op.finished_at, op.seq))
        for op in due:
            op.final_status = op.status(now)
            if op.final_status != "Finished" or op.environment_key is None:
                continue
            place = (op.asset_key, op.environment_key)
            if op.operation == "Deploy" and op.revision is not None and op.build_key is not None:
                data.deployed[place] = DeploymentRecord(
                    asset_key=op.asset_key,
                    environment_key=op.environment_key,
                    revision=op.revision,
                    build_key=op.build_key,
                    operation_key=op.key,
                    deployed_at=op.finished_at,
                    deployed_by=op.deployed_by,
                )
            elif op.operation == "Undeploy":
                data.deployed.pop(place, None)
        if due:
            data.unsettled = [op for op in data.unsettled if op.final_status is None]

    def _revision_locked(self, asset_key: str, number: int, code: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        history = self._history_locked(self._asset_or_404_locked(asset_key, code))
        if not 1 <= number <= len(history):
            raise ApiError(404, f"Revision {number} of asset '{asset_key}' was not found.", code)
        return history[number - 1], history

    # Asset revisions and tags -------------------------------------------------------------------------

    def current_assets(self) -> list[dict[str, Any]]:
        """The latest revision of every asset (with tags as patched), in seed order."""
        with self._lock:
            return [asset for asset in self._release.latest if asset["assetKey"] not in self._release.deleted]

    def latest_revision(self, asset_key: str) -> dict[str, Any]:
        """The asset's latest revision; 404 ``ApiError`` for an unknown asset."""
        with self._lock:
            return self._asset_or_404_locked(asset_key)

    def revisions(self, asset_key: str) -> list[dict[str, Any]]:
        """Every revision of an asset, oldest first; 404 ``ApiError`` for an unknown asset."""
        with self._lock:
            return list(self._history_locked(self._asset_or_404_locked(asset_key)))

    def revision(self, asset_key: str, number: int) -> dict[str, Any]:
        with self._lock:
            return self._revision_locked(asset_key, number, "OS-APPS-40402")[0]

    def highest_tag_revision(self, asset_key: str) -> dict[str, Any]:
        """The revision with the highest SemVer tag; 404 when the asset was never tagged."""
        with self._lock:
            asset = self._asset_or_404_locked(asset_key)
            tagged = [revision for revision in self._history_locked(asset) if revision["tag"]]
            if not tagged:
                raise ApiError(404, f"Asset '{asset_key}' has no tagged revision.", "OS-APPS-40403")
            return max(tagged, key=_tag_key)

    def release_notes(self, asset_key: str, number: int) -> dict[str, Any]:
        """``AssetReleaseNoteContent``: the revision's tag and its release notes (both null when untagged)."""
        with self._lock:
            revision = self._revision_locked(asset_key, number, "OS-APPS-40402")[0]
            return {"tag": revision["tag"], "content": self._release.notes.get((revision["assetKey"], number))}

    def patch_revision(self, asset_key: str, number: int, changes: dict[str, Any]) -> None:
        """``AssetVersionPatchRequest`` semantics; ``changes`` holds only the fields present in the body."""
        with self._lock:
            revision, history = self._revision_locked(asset_key, number, "OS-APPS-40402")
            key = revision["assetKey"]
            notes_key = (key, number)
            updated = dict(revision)
            new_notes: str | None = self._release.notes.get(notes_key)
            if "tag" in changes and changes["tag"] is not None:
                tag = changes["tag"]
                try:
                    version = semver(tag)
                except ValueError:
                    detail = f"The tag '{tag}' is not valid. Use the MAJOR.MINOR.PATCH format, e.g. 1.2.0."
                    raise ApiError(400, detail, "OS-APPS-40020") from None
                if any(other["tag"] == tag for other in history):
                    raise ApiError(400, "Tag already in use", "OS-APPS-40021")
                highest = max((_tag_key(other) for other in history if other["tag"]), default=None)
                if highest is not None and version <= highest:
                    current = "{}.{}.{}".format(*highest)
                    detail = f"The tag '{tag}' must be higher than the highest tag of the asset ({current})."
                    raise ApiError(400, detail, "OS-APPS-40022")
                updated.update(tag=tag, taggedBy=self.client_subject, taggedAt=format_timestamp(self._now_locked()))
                new_notes = changes.get("releaseNotes")
            elif "tag" in changes:  # null clears the tag (and its release notes)
                if changes.get("releaseNotes") is not None:
                    raise ApiError(400, "Release notes can't be set while clearing the tag.", "OS-APPS-40023")
                updated.update(tag=None, taggedBy=None, taggedAt=None)
                new_notes = None
            elif "releaseNotes" in changes:
                if changes["releaseNotes"] is not None and not revision["tag"]:
                    detail = f"Revision {number} has no tag: release notes can't be present without a tag."
                    raise ApiError(400, detail, "OS-APPS-40023")
                new_notes = changes["releaseNotes"]
            if "commitMessage" in changes:
                updated["commitMessage"] = changes["commitMessage"]
            # Copy-on-write: dicts already handed out are never mutated.
            history[number - 1] = updated
            if number == len(history):
                self._release.latest[self._asset_index[key]] = updated
            if new_notes is None:
                self._release.notes.pop(notes_key, None)
            else:
                self._release.notes[notes_key] = new_notes

    # Builds -------------------------------------------------------------------------------------------

    def start_build(self, asset_key: str, revision: int, build_type: str) -> dict[str, Any]:
        """``POST /build-operations``: returns ``BuildResponse``; the build is Pending, then Running."""
        with self._lock:
            asset = self.asset_locked(asset_key)
            if asset is None or not 1 <= revision <= int(asset["revision"]):
                detail = f"Couldn't find asset '{asset_key}' or its revision {revision}."
                raise ApiError(404, detail, "OS-BLD-40401")
            data = self._release
            config = self._config
            build = BuildRecord(
                key=str(uuid.uuid4()),
                asset_key=asset["assetKey"],
                asset_name=asset["name"],
                revision=revision,
                build_type=build_type,
                built_by=self.client_subject,
                created_at=self._now_locked(),
                pending=config.build_pending,
                running=config.build_running,
                failure=self._take_failure_locked("build"),
                seq=data.next_seq(),
            )
            data.builds[build.key] = build
            data.operations_started["build"] += 1
            return {"buildKey": build.key, "isSuccessful": True}

    def list_builds(
        self, asset_key: str | None = None, revision: int | None = None, build_type: str | None = None
    ) -> list[dict[str, Any]]:
        """``BuildDetails`` matching the filters, newest first; 404 for an unknown asset or revision."""
        with self._lock:
            now = self._now_locked()
            canonical = None
            if asset_key is not None:
                asset = self.asset_locked(asset_key)
                if asset is None or (revision is not None and not 1 <= revision <= int(asset["revision"])):
                    raise ApiError(404, "Couldn't find asset key or revision.", "OS-BLD-40401")
                canonical = asset["assetKey"]
            builds = [
                build
                for build in self._release.builds.values()
                if (canonical is None or build.asset_key == canonical)
                and (revision is None or build.revision == revision)
                and (build_type is None or build.build_type == build_type)
            ]
            builds.sort(key=lambda build: (build.created_at, build.seq), reverse=True)
            return [build.render(now) for build in builds]

    def _build_locked(self, build_key: str) -> BuildRecord:
        try:
            build = self._release.builds.get(str(uuid.UUID(build_key)))
        except ValueError:
            build = None
        if build is None:
            raise ApiError(404, f"Couldn't find build '{build_key}'.", "OS-BLD-40402")
        return build

    def get_build(self, build_key: str) -> dict[str, Any]:
        with self._lock:
            return self._build_locked(build_key).render(self._now_locked())

    def build_log(self, build_key: str) -> list[dict[str, Any]]:
        with self._lock:
            return self._build_locked(build_key).log(self._now_locked())

    # Deployment and publish operations ----------------------------------------------------------------

    def start_deployment_operation(
        self,
        operation: str,
        environment_key: str,
        asset_key: str | None = None,
        build_key: str | None = None,
        revision: int | None = None,
    ) -> dict[str, Any]:
        """``POST /deployment-operations`` after body validation; returns the Running operation.

        Deploy needs ``asset_key``, ``build_key`` (a finished Release build of that asset and revision) and
        ``revision``; ApplyConfigs and Undeploy need ``asset_key`` and an asset deployed to the stage
        (ApplyConfigs takes the deployed revision when ``revision`` is absent).
        """
        if operation not in DEPLOYMENT_OPERATIONS:
            raise ValueError(f"operation must be one of {', '.join(DEPLOYMENT_OPERATIONS)}")
        values = {"assetKey": asset_key, "buildKey": build_key, "revision": revision}
        needed = ("assetKey", "buildKey", "revision") if operation == "Deploy" else ("assetKey",)
        require(values, needed, f"the {operation} operation", "OS-DPL-40001")
        assert asset_key is not None
        with self._lock:
            now = self._now_locked()
            self._settle_locked(now)
            environment = self.environment_locked(environment_key)
            if environment is None:
                raise ApiError(404, f"Environment '{environment_key}' was not found.", "OS-DPL-40403")
            asset = self._asset_or_404_locked(asset_key, "OS-DPL-40401")
            stage, name = environment["name"], asset["name"]
            if asset["assetType"] not in DEPLOYABLE_TYPES:
                detail = f"{name} is a {asset['assetType']}: only {', '.join(DEPLOYABLE_TYPES)} assets are deployed."
                raise ApiError(400, detail, "OS-DPL-40004")
            if revision is not None and not 1 <= revision <= int(asset["revision"]):
                raise ApiError(404, f"Revision {revision} of asset '{asset_key}' was not found.", "OS-DPL-40402")
            deployed = self._release.deployed.get((asset["assetKey"], environment["key"]))
            warnings: tuple[str, ...] = ()
            if operation == "Deploy":
                assert revision is not None and build_key is not None  # checked by the app
                self._check_deployable_build(build_key, asset, revision, now)
                if not self._history_locked(asset)[revision - 1]["tag"]:
                    warnings = (f"Revision {revision} of {name} has no version tag.",)
            elif deployed is None:
                raise ApiError(400, f"{name} is not deployed to {stage}.", "OS-DPL-40005")
            elif operation == "ApplyConfigs":
                if revision is not None and revision != deployed.revision:
                    detail = (
                        f"Revision {revision} is not the revision of {name} deployed to {stage} ({deployed.revision})."
                    )
                    raise ApiError(400, detail, "OS-DPL-40007")
                revision, build_key = deployed.revision, deployed.build_key
            else:  # Undeploy
                revision, build_key = deployed.revision, None
            return self._start_operation_locked(
                DEPLOYMENT_OPERATIONS[operation], operation, asset, environment, revision, build_key, now, warnings
            )

    def _check_deployable_build(self, build_key: str, asset: dict[str, Any], revision: int, now: float) -> None:
        build = self._release.builds.get(build_key)
        name = asset["name"]
        problem = None
        if build is None:
            problem = f"Build '{build_key}' was not found."
        elif build.asset_key != asset["assetKey"]:
            problem = f"Build '{build_key}' is not a build of {name}."
        elif build.revision != revision:
            problem = f"Build '{build_key}' is a build of revision {build.revision}, not of revision {revision}."
        elif build.build_type != "Release":
            problem = f"Build '{build_key}' is a {build.build_type} build: you can only deploy builds of type Release."
        elif build.status(now) != "Finished":
            detail = f"Build '{build_key}' is not finished successfully (status {build.status(now)})."
            raise ApiError(400, detail, "OS-DPL-40003")
        if problem is not None:
            raise ApiError(400, problem, "OS-DPL-40002")

    def start_publish(self, asset_key: str, revision: int, environment_key: str | None = None) -> dict[str, Any]:
        """``POST /publish-operations`` after body validation; returns the Running operation."""
        with self._lock:
            now = self._now_locked()
            environment = None
            if environment_key is not None:
                environment = self.environment_locked(environment_key)
                if environment is None:
                    raise ApiError(404, f"Environment '{environment_key}' was not found.", "OS-PUB-40403")
            asset = self._asset_or_404_locked(asset_key, "OS-PUB-40401")
            if not 1 <= revision <= int(asset["revision"]):
                raise ApiError(404, f"Revision {revision} of asset '{asset_key}' was not found.", "OS-PUB-40402")
            return self._start_operation_locked("publish", "Publish", asset, environment, revision, None, now, ())

    def _start_operation_locked(
        self,
        kind: str,
        operation: str,
        asset: dict[str, Any],
        environment: dict[str, Any] | None,
        revision: int | None,
        build_key: str | None,
        now: float,
        warnings: tuple[str, ...],
    ) -> dict[str, Any]:
        data = self._release
        record = OperationRecord(
            key=str(uuid.uuid4()),
            kind=kind,
            operation=operation,
            asset_key=asset["assetKey"],
            asset_name=asset["name"],
            revision=revision,
            build_key=build_key,
            environment_key=None if environment is None else environment["key"],
            environment_name=None if environment is None else environment["name"],
            portfolio_key=self.portfolio_key,
            deployed_by=self.client_subject,
            created_at=now,
            duration=self._config.operation_duration,
            failure=self._take_failure_locked(kind),
            seq=data.next_seq(),
            warnings=warnings,
        )
        data.operations[record.key] = record
        data.unsettled.append(record)
        data.operations_started[kind] += 1
        body = record.render(now)
        # Documented: the POST answer shows "Running" (even with a zero duration, which GET then shows finished).
        body["status"] = "Running"
        body.pop("finishedDateTime", None)
        self._settle_locked(now)
        return body

    def _operation_locked(self, family: str, operation_key: str) -> OperationRecord:
        try:
            record = self._release.operations.get(str(uuid.UUID(operation_key)))
        except ValueError:
            record = None
        if record is None or record.family != family:
            code = "OS-PUB-40404" if family == "publish" else "OS-DPL-40404"
            raise ApiError(404, f"The {family} operation '{operation_key}' was not found.", code)
        return record

    def get_operation(self, family: str, operation_key: str) -> dict[str, Any]:
        """``family`` is ``deployment`` or ``publish``."""
        with self._lock:
            now = self._now_locked()
            self._settle_locked(now)
            return self._operation_locked(family, operation_key).render(now)

    def operation_messages(self, family: str, operation_key: str) -> tuple[str, list[dict[str, Any]]]:
        """The operation's canonical key and its messages so far (oldest first)."""
        with self._lock:
            now = self._now_locked()
            self._settle_locked(now)
            record = self._operation_locked(family, operation_key)
            return record.key, record.messages(now)

    def list_operations(
        self,
        family: str,
        *,
        environment_key: str | None = None,
        status: str | None = None,
        asset_key: str | None = None,
        revision: int | None = None,
        portfolio_key: str | None = None,
        operations: Iterable[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        sort: list[tuple[str, bool]] | None = None,
    ) -> list[dict[str, Any]]:
        """Filtered and sorted (default ``-CreatedAt``) operations of a family; GUID filters are canonical."""
        with self._lock:
            now = self._now_locked()
            self._settle_locked(now)
            wanted = set(operations)
            selected = [
                op
                for op in self._release.operations.values()
                if op.family == family
                and (environment_key is None or op.environment_key == environment_key)
                and (status is None or op.status(now) == status)
                and (asset_key is None or op.asset_key == asset_key)
                and (revision is None or op.revision == revision)
                and (portfolio_key is None or op.portfolio_key == portfolio_key)
                and (not wanted or op.operation in wanted)
                and (since is None or op.created_at >= since.timestamp())
                and (until is None or op.created_at <= until.timestamp())
            ]
            order = sort or [("createdat", True)]
            selected.sort(key=lambda op: op.seq, reverse=order[0][1])
            for name, descending in reversed(order):
                selected.sort(key=_operation_sort_key(name, now), reverse=descending)
            return [op.render(now) for op in selected]

    # Deployed assets ----------------------------------------------------------------------------------

    def deployed_assets(
        self,
        *,
        environment_keys: list[str] | None = None,
        asset_keys: list[str] | None = None,
        types: list[str] | None = None,
        name_contains: str | None = None,
        portfolio_key: str | None = None,
        sort: list[tuple[str, bool]] | None = None,
    ) -> list[dict[str, Any]]:
        """Portfolio ``DeployedAsset`` objects from the deployments that exist now; GUIDs canonical."""
        with self._lock:
            now = self._now_locked()
            self._settle_locked(now)
            if portfolio_key and portfolio_key != self.portfolio_key:
                return []  # every asset is in the one seeded portfolio
            by_asset: dict[str, list[DeploymentRecord]] = {}
            for (key, environment), record in self._release.deployed.items():
                if environment_keys and environment not in environment_keys:
                    continue
                by_asset.setdefault(key, []).append(record)
            environments = {environment["key"]: environment for environment in self.environments}
            results: list[dict[str, Any]] = []
            for asset in self._release.latest:
                records = by_asset.get(asset["assetKey"])
                if not records:
                    continue
                if asset_keys and asset["assetKey"] not in asset_keys:
                    continue
                if types and asset["assetType"] not in types:
                    continue
                if name_contains and name_contains.casefold() not in asset["name"].casefold():
                    continue
                history = self._history_locked(asset)
                records.sort(key=lambda record: record.deployed_at, reverse=True)
                deployments = []
                for record in records:
                    revision = history[record.revision - 1]
                    domain = environments[record.environment_key]["defaultDomain"]
                    deployments.append(
                        {
                            "environmentKey": record.environment_key,
                            "name": asset["name"],
                            "revision": record.revision,
                            "buildKey": record.build_key,
                            "deploymentKey": record.operation_key,
                            "deploymentDateTime": format_timestamp(record.deployed_at),
                            "description": asset["description"],
                            "iconUrl": None,
                            "deploymentUserId": record.deployed_by,
                            "url": f"https://{domain}/{_url_path(asset['name'])}",
                            "tag": revision["tag"],
                            "taggingUserKey": revision["taggedBy"],
                            "taggingDateTime": revision["taggedAt"],
                            "portfolioKey": self.portfolio_key,
                        }
                    )
                results.append(
                    {
                        "type": asset["assetType"],
                        "key": asset["assetKey"],
                        "isBuiltIn": False,
                        "deployments": deployments,
                    }
                )
            for environment_key, descending in reversed(sort or []):

                def when(item: dict[str, Any], env: str = environment_key) -> str:
                    """The item's deployment time in ``env``; "" (sorted last either way) when not deployed there."""
                    dates = (d["deploymentDateTime"] for d in item["deployments"] if d["environmentKey"] == env)
                    return next(dates, "")

                present = sorted((item for item in results if when(item)), key=when, reverse=descending)
                results = present + [item for item in results if not when(item)]
            return results

    # Stage configurations and asset deletion (used by ``configurations`` and the asset routes) ----------

    def deployment_locked(self, asset_key: str, environment_key: str) -> tuple[int, float] | None:
        """The revision of an asset deployed to a stage and when configurations were last applied there (its
        Deploy or a later ApplyConfigs that finished), or None when it is not deployed there."""
        now = self._now_locked()
        self._settle_locked(now)
        record = self._release.deployed.get((asset_key, environment_key))
        if record is None:
            return None
        applied = [
            op.finished_at
            for op in self._release.operations.values()
            if op.operation == "ApplyConfigs"
            and (op.asset_key, op.environment_key) == (asset_key, environment_key)
            and op.status(now) == "Finished"
        ]
        return record.revision, max([record.deployed_at, *applied])

    def delete_asset(self, asset_key: str) -> None:
        """``DELETE /assets/{assetKey}``: the asset leaves the repository and every stage (404 when unknown)."""
        with self._lock:
            asset = self._asset_or_404_locked(asset_key)
            self._release.deleted.add(asset["assetKey"])
            for place in [place for place in self._release.deployed if place[0] == asset["assetKey"]]:
                del self._release.deployed[place]

    # Rate limits and failures -------------------------------------------------------------------------

    def check_rate(self, method: str, template: str) -> tuple[bool, str | None]:
        """Count a request against every limit it falls under: ``(limited, Retry-After header or None)``.

        See ``rate_limits``: ODC's documented domain-wide and per-endpoint limits, 60 s sliding windows.
        """
        with self._lock:
            config = self._config
            settings = LimitSettings(config.rate_limits, config.post_limit_per_minute, config.domain_limit_per_minute)
            limits = limits_for(method, template, settings)
            if not limits:
                return False, None
            now = self._now_locked()
            refusal = self._release.rate_windows.admit(limits, now)
            if refusal is None:
                return False, None
            self._release.rate_limited += 1
            route = f"{method} {template}"
            self._release.rate_limited_calls[route] = self._release.rate_limited_calls.get(route, 0) + 1
            setting = config.rate_limit_retry_after
            if setting is None:
                return True, None
            if setting == "auto":
                return True, str(refusal.seconds_until_free(now))
            return True, str(setting)

    def fail_next(self, kind: str, count: int = 1, messages: list[str] | None = None) -> dict[str, Any]:
        """The next ``count`` operations of ``kind`` (build, deploy, apply_configs, undeploy, publish) fail.

        They are accepted (201) and end in ``FinishedWithErrors`` (builds) or ``FinishedWithError``, with each
        of ``messages`` as an Error line in their log / messages. The other long-running kinds
        (``generated_code``, ``deployment_analysis``, ``deletion_analysis``, ``code_analysis``,
        ``external_library``, ``native_build``, ``bulk_users``) end in their failure status with the messages
        where ODC reports them; ``deployment_analysis_errors`` / ``deletion_analysis_errors`` (``_warnings``)
        make the next analysis finish with an ``ErrorsFound`` (``WarningsFound``) report listing them.
        """
        if kind not in self._failure_kinds:
            raise ValueError(f"kind must be one of {', '.join(self._failure_kinds)}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError("count must be an integer >= 1")
        if messages is not None and (
            not isinstance(messages, list) or not messages or not all(isinstance(m, str) and m for m in messages)
        ):
            raise ValueError("messages must be a non-empty list of non-empty strings, or null")
        pending = _PendingFailure(kind, count, tuple(messages) if messages else _default_failure(kind))
        with self._lock:
            self._release.failures.append(pending)
            return pending.as_dict()

    def pending_failures(self) -> list[dict[str, Any]]:
        with self._lock:
            return [pending.as_dict() for pending in self._release.failures]

    def clear_failures(self) -> None:
        with self._lock:
            self._release.failures.clear()

    # Facts for tests ----------------------------------------------------------------------------------

    def inventory(self) -> dict[str, Any]:
        """Current release facts per asset (tags, builds, deployments), so tests need not hard-code keys."""
        with self._lock:
            now = self._now_locked()
            self._settle_locked(now)
            stage_names = {environment["key"]: environment["name"] for environment in self.environments}
            builds_by_asset: dict[str, list[BuildRecord]] = {}
            for build in self._release.builds.values():
                builds_by_asset.setdefault(build.asset_key, []).append(build)
            assets = []
            for asset in self._release.latest:
                key = asset["assetKey"]
                tagged = [revision for revision in self._history_locked(asset) if revision["tag"]]
                highest = max(tagged, key=_tag_key) if tagged else None
                builds = sorted(builds_by_asset.get(key, []), key=lambda build: build.seq)
                deployed = {
                    stage_names[environment]: {"revision": record.revision, "buildKey": record.build_key}
                    for (asset_key, environment), record in self._release.deployed.items()
                    if asset_key == key
                }
                assets.append(
                    {
                        "assetKey": key,
                        "name": asset["name"],
                        "assetType": asset["assetType"],
                        "deployable": asset["assetType"] in DEPLOYABLE_TYPES,
                        "latestRevision": asset["revision"],
                        "highestTag": None if highest is None else highest["tag"],
                        "highestTagRevision": None if highest is None else highest["revision"],
                        "builds": [
                            {
                                "buildKey": build.key,
                                "revision": build.revision,
                                "buildType": build.build_type,
                                "status": build.status(now),
                            }
                            for build in builds
                        ],
                        "deployed": deployed,
                    }
                )
            return {
                "portfolioKey": self.portfolio_key,
                "environments": {environment["name"]: environment["key"] for environment in self.environments},
                "assets": assets,
            }

    def stats_locked(self) -> dict[str, Any]:
        return {
            "operations_started": dict(self._release.operations_started),
            "rate_limited": self._release.rate_limited,
            "rate_limited_calls": dict(self._release.rate_limited_calls),
        }
