"""The emulator's long-running operations outside the release lifecycle, as the official specs describe them.

Seven kinds, each "POST to start, then GET by key until the status is terminal" (``odc-api.md`` 3.3):
generated-code packaging of a build, deployment and deletion impact analyses, code analyses, external
library generation, native mobile builds and bulk user creation. ``LongRunningJobs`` is one part of
``EmulatorState``; it shares the lock and clock (``Runtime``) and the ``fail_next`` queue of the release
lifecycle: a job stores when it started and how long it runs (the configured ``operation_duration``); its
status is derived from the emulator clock whenever it is read, so ``advance(seconds)`` moves it forward
without sleeping.

``fail_next(kind, messages=...)`` makes the next job of a kind fail the way ODC reports it: in the status
body (``errors[]``, ``error``, per-record ``errorMessage``) or in its messages endpoint. Analyses can also
finish with findings: ``fail_next("deployment_analysis_errors")`` ends the next deployment analysis
``Finished`` with a report whose status is ``ErrorsFound`` (``..._warnings``: ``WarningsFound``).
Nothing here knows about FastAPI or HTTP.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_odc.emulator.code_scan import CodeScans, CompletedAnalysis
from airflow_provider_odc.emulator.release import ReleaseLifecycle
from airflow_provider_odc.emulator.runtime import Runtime
from airflow_provider_odc.emulator.seed import format_timestamp
from airflow_provider_odc.emulator.validation import ApiError


@dataclass(frozen=True)
class JobKind:
    """The statuses of one kind: the running ones (spread evenly over the duration), then the end."""

    running: tuple[str, ...]
    success: str
    failure: str


JOB_KINDS: dict[str, JobKind] = {
    "generated_code": JobKind(("NotStarted", "Running"), "Finished", "Failed"),
    "deployment_analysis": JobKind(("InProgress",), "Finished", "Failed"),
    "deletion_analysis": JobKind(("InProgress",), "Finished", "Failed"),
    "code_analysis": JobKind(("Pending", "Running"), "Completed", "Failed"),
    "external_library": JobKind(("None", "Downloading", "Generating"), "Completed", "GenerationError"),
    "native_build": JobKind(("Waiting", "Validating", "Building"), "Finished", "Error"),
    "bulk_users": JobKind(("Pending", "Processing"), "Finished", "FinishedWithErrors"),
}
# Analyses that finish, but with findings of this severity (the report's status says so).
FINDINGS = {"_errors": ("ErrorsFound", "Error"), "_warnings": ("WarningsFound", "Warning")}
ANALYSES = ("deployment_analysis", "deletion_analysis")
# The other failure statuses the specs give a kind: ``fail_next(name)`` ends the next job of that kind so.
OTHER_FAILURES: dict[str, tuple[str, str]] = {
    "generated_code_timed_out": ("generated_code", "TimedOut"),
    "external_library_download_error": ("external_library", "DownloadError"),
    "code_analysis_timeout": ("code_analysis", "Timeout"),  # the spec's status is a free string
}
FAILURE_KINDS: tuple[str, ...] = (
    *JOB_KINDS,
    *(f"{analysis}{suffix}" for analysis in ANALYSES for suffix in FINDINGS),
    *OTHER_FAILURES,
)
MOBILE_PLATFORMS = ("Android", "iOS")
MAX_BULK_RECORDS = 100


@dataclass
class JobRecord:
    key: str
    kind: str  # one of JOB_KINDS
    created_at: float
    duration: float
    outcome: str | None  # None (success) or the fail_next kind that hit it
    messages: tuple[str, ...]  # the failure (or findings) messages
    details: dict[str, Any]  # what the POST asked for (canonical keys)
    seq: int

    @property
    def finished_at(self) -> float:
        return self.created_at + self.duration

    def status(self, now: float) -> str:
        kind = JOB_KINDS[self.kind]
        if now >= self.finished_at:
            if self.outcome in OTHER_FAILURES:
                return OTHER_FAILURES[self.outcome][1]
            return kind.failure if self.outcome == self.kind else kind.success
        if self.duration <= 0:
            return kind.running[-1]
        phase = int((now - self.created_at) / self.duration * len(kind.running))
        return kind.running[min(max(phase, 0), len(kind.running) - 1)]

    def finished(self, now: float) -> bool:
        return now >= self.finished_at

    def failed(self, now: float) -> bool:
        return self.finished(now) and (self.outcome == self.kind or self.outcome in OTHER_FAILURES)

    def findings(self) -> tuple[str, str] | None:
        """``(report status, issue severity)`` of an analysis that finished with findings."""
        if self.outcome is None or self.outcome == self.kind or self.outcome in OTHER_FAILURES:
            return None
        return FINDINGS[self.outcome[len(self.kind) :]]


@dataclass
class JobData:
    """Every job; ``reset()`` replaces it."""

    jobs: dict[str, JobRecord] = field(default_factory=dict)
    generated_code: dict[str, str] = field(default_factory=dict)  # build key -> job key
    seq: int = 0


def _canonical(key: str) -> str | None:
    try:
        return str(uuid.UUID(key))
    except (ValueError, AttributeError, TypeError):
        return None


# Bodies, as the specs declare them ----------------------------------------------------------------------


def _problem(status: int, title: str, detail: str, code: str, instance: str) -> dict[str, Any]:
    return {
        "type": None,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "traceId": f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-00",
        "errorCode": code,
    }


def render_generated_code(job: JobRecord, now: float) -> dict[str, Any]:
    """``GeneratedCodePackageResponse``."""
    status = job.status(now)
    body: dict[str, Any] = {"status": status, "uri": None, "errors": None}
    if status == "Finished":
        body["uri"] = f"https://downloads.odc-emulator.test/generated-code/{job.details['buildKey']}.zip"
    elif job.failed(now):  # Failed or TimedOut
        when = format_timestamp(job.finished_at)
        body["errors"] = [{"timestamp": when, "severity": "Error", "message": text} for text in job.messages]
    return body


def render_analysis(job: JobRecord, now: float) -> dict[str, Any]:
    """``Public{Deployment,Deletion}AnalysisReportPublicAnalysisResult``."""
    status = job.status(now)
    deployment = job.kind == "deployment_analysis"
    body: dict[str, Any] = {
        "analysisKey": job.key,
        "type": "Deployment" if deployment else "Deletion",
        "processStatus": status,
        "error": None,
        "report": None,
        "environmentKey": job.details.get("environmentKey"),
        "startedAt": format_timestamp(job.created_at),
        "assetKey": job.details["assetKey"],
    }
    if status == "Failed":
        detail = "; ".join(job.messages)
        body["error"] = _problem(500, "The analysis failed.", detail, "OS-DEPM-50001", job.key)
    elif status == "Finished":
        body["report"] = _deployment_report(job) if deployment else _deletion_report(job)
    return body


def _deployment_report(job: JobRecord) -> dict[str, Any]:
    findings = job.findings()
    if findings is None:
        return {"status": "NoIssuesFound", "impactedAssets": []}
    report_status, severity = findings
    issues = [
        {
            "name": f"Element{number}",
            "type": "ServiceAction",
            "conflictType": "IncompatibleElement",
            "conflictSeverity": severity,
            "incompatibilityType": "InputParameterMismatch",
            "hint": text,
        }
        for number, text in enumerate(job.messages, start=1)
    ]
    consumer = {
        "revision": job.details.get("revision"),
        "type": "WebApplication",
        "referenceType": "Consumer",
        "elementLevelIssues": issues,
        "applicationLevelIssues": [],
        "assetKey": str(uuid.uuid5(uuid.NAMESPACE_URL, f"consumer-of:{job.details['assetKey']}")),
    }
    return {"status": report_status, "impactedAssets": [consumer]}


def _deletion_report(job: JobRecord) -> dict[str, Any]:
    findings = job.findings()
    stages = list(job.details.get("deployedEnvironments", []))
    empty: dict[str, list[Any]] = {"deployedEnvironments": stages, "impactedDomains": [], "impactedAssets": []}
    if findings is None:
        return {"status": "NoIssuesFound", **empty}
    report_status, severity = findings
    impacted: list[dict[str, Any]] = [
        {
            "name": f"Consumer {number}",
            "type": "WebApplication",
            "portfolioKey": None,
            "portfolioName": None,
            "assetKey": str(uuid.uuid5(uuid.NAMESPACE_URL, f"consumer-{number}-of:{job.details['assetKey']}")),
            "deployedRevisions": [
                {
                    "revision": 1,
                    "environmentKey": None,
                    "consumerType": "Direct",
                    "severity": severity,
                    "indirectLibraryHint": text,
                    "indirectDependencies": [],
                }
            ],
        }
        for number, text in enumerate(job.messages, start=1)
    ]
    return {"status": report_status, **empty, "impactedAssets": impacted}


def render_code_analysis(job: JobRecord, now: float) -> dict[str, Any]:
    """``CodeAnalysisStatusResponseV1``: a clean revision once Completed (the spec gives a failed analysis
    no field for a reason: ``Failed`` is all ODC says)."""
    status = job.status(now)
    body: dict[str, Any] = {"analysisKey": job.key, "status": status, "findings": None}
    if status == "Completed":
        breakdown = {"lowSeverity": 0, "mediumSeverity": 0, "highSeverity": 0, "criticalSeverity": 0}
        categories = ("security", "performance", "architecture", "maintainability")
        body.update(
            findings=[], qualityScore=100.0, summary={"categories": {name: dict(breakdown) for name in categories}}
        )
    return body


def render_library(job: JobRecord, now: float) -> dict[str, Any]:
    """``GenerationOperationResponse``."""
    status = job.status(now)
    name = str(job.details["fileName"]).rsplit(".", 1)[0] or "Library"
    completed = status == "Completed"
    return {
        "key": job.key,
        "filename": job.details["fileName"],
        "createdAt": format_timestamp(job.created_at),
        "libraryKey": job.details["libraryKey"] if completed else None,
        "libraryName": name if completed else None,
        "libraryDescription": None,
        "libraryIconUri": None,
        "libraryUri": None,
        "isNewLibrary": True if completed else None,
        "status": status,
    }


def library_log(job: JobRecord, now: float) -> dict[str, Any]:
    """``GenerationOperationLogMessagesResponse``: validation messages once the generation ended."""
    if not job.finished(now):
        return {"validationMessages": []}
    messages = [{"errorCode": None, "message": f"Validated {job.details['fileName']}.", "type": "Information"}]
    if job.failed(now):
        messages += [{"errorCode": "OS-ELG-GEN-40001", "message": text, "type": "Error"} for text in job.messages]
    return {"validationMessages": messages, "finishedAt": format_timestamp(job.finished_at)}


def render_native_build(job: JobRecord, now: float) -> dict[str, Any]:
    """``BuildOperationResult``."""
    status = job.status(now)
    details = job.details
    finished = status in ("Finished", "Error")
    extension = "aab" if details["mobilePlatform"] == "Android" else "ipa"
    binary = f"https://downloads.odc-emulator.test/native/{job.key}.{extension}"
    return {
        "key": job.key,
        "applicationKey": details["applicationKey"],
        "buildKey": details["buildKey"],
        "appIdentifier": None,
        "buildType": "Release",
        "revision": details["revision"],
        "mobilePlatform": details["mobilePlatform"],
        "mobileFramework": "Capacitor",
        "status": status,
        "estimatedFinishDateTime": None if finished else format_timestamp(job.finished_at),
        "appBinaryDownloadUrl": binary if status == "Finished" else None,
        "appSourceDownloadUrl": None,
        "mobileBuildLogUrl": None,
        "appShieldMappingUrl": None,
        "appShieldUsage": "Unused",
        "mobileVersionNumber": details.get("mobileVersionNumber"),
        "mobileVersionCode": details.get("mobileVersionCode"),
        "startedDateTime": format_timestamp(job.created_at),
        "finishedDateTime": format_timestamp(job.finished_at) if finished else None,
        "nativeBuilderVersion": None,
        "isNativeBuilderVersionLocked": None,
        "requestingUserKey": details["requestedBy"],
        "appDeploymentFileDownloadUrl": None,
    }


def native_build_log(job: JobRecord, now: float) -> list[dict[str, Any]]:
    """``TaskProgressMessage`` items issued so far, oldest first."""
    platform = job.details["mobilePlatform"]
    plan = [
        (0.0, "Info", f"{platform} build queued."),
        (1 / 3, "Info", "Validating the mobile configuration."),
        (2 / 3, "Info", f"Building the {platform} app."),
    ]
    if job.failed(now):
        plan += [(1.0, "Error", text) for text in job.messages]
    elif job.finished(now):
        plan.append((1.0, "Info", "Native build finished."))
    return [
        {
            "timestamp": format_timestamp(job.created_at + at * job.duration),
            "type": None,
            "severity": sev,
            "message": text,
        }
        for at, sev, text in plan
        if job.finished(now) or job.created_at + at * job.duration <= now
    ]


def render_bulk(job: JobRecord, now: float) -> dict[str, Any]:
    """``BulkUserProfileOperationApiRecordBulkApiResponse``: one operation per record once finished."""
    status = job.status(now)
    body: dict[str, Any] = {
        "key": job.key,
        "status": status,
        "errorCode": None,
        "errorMessage": None,
        "operations": None,
    }
    if not job.finished(now):
        return body
    failures = list(job.messages) if job.failed(now) else []
    operations = []
    for number, record in enumerate(job.details["records"]):
        error = record.get("_invalid") or (failures[number] if number < len(failures) else None)
        summary = {
            "key": None if error else str(uuid.uuid5(uuid.NAMESPACE_URL, f"{job.key}:{number}")),
            "email": record.get("email"),
            "username": record.get("username"),
            "subject": record.get("subject"),
        }
        operations.append(
            {
                "status": "Error" if error else "Inserted",
                "errorCode": "OS-IDENTITY-40010" if error else None,
                "errorMessage": error,
                "record": summary,
            }
        )
    if len(failures) > len(operations):  # more failure messages than records: an overall error
        body["errorCode"] = "OS-IDENTITY-50001"
        body["errorMessage"] = "; ".join(failures[len(operations) :])
    body["operations"] = operations
    if any(operation["status"] == "Error" for operation in operations) or body["errorMessage"]:
        body["status"] = "FinishedWithErrors"
    return body


# The jobs ----------------------------------------------------------------------------------------------


class LongRunningJobs:
    """The seven job kinds of one emulator, next to its release lifecycle.

    They share its ``Runtime`` (lock, config, clock), read its assets, stages and builds, and take their
    failures from its ``fail_next`` queue (``FAILURE_KINDS`` are the kinds they take).
    """

    def __init__(self, runtime: Runtime, release: ReleaseLifecycle) -> None:
        self._runtime = runtime
        self._lock = runtime.lock
        self._release = release
        self._jobs = JobData()
        self.scans = CodeScans()  # what code analyses find, and the pre-signed download host

    def reset(self) -> None:
        """No jobs (lock not held)."""
        with self._lock:
            self._jobs = JobData()
        self.scans.reset()

    def _now_locked(self) -> float:
        return self._runtime.now_locked()

    def _take_job_failure_locked(self, kind: str) -> tuple[str | None, tuple[str, ...]]:
        """The oldest pending ``fail_next`` that applies to a new ``kind`` job (its own kind or findings)."""
        wanted = {kind, *(f"{kind}{suffix}" for suffix in FINDINGS)} if kind in ANALYSES else {kind}
        wanted |= {name for name, (of, _) in OTHER_FAILURES.items() if of == kind}
        taken = self._release.take_failure_locked(wanted)
        return (None, ()) if taken is None else taken

    def _start_job_locked(self, kind: str, details: dict[str, Any]) -> JobRecord:
        outcome, messages = self._take_job_failure_locked(kind)
        self._jobs.seq += 1
        job = JobRecord(
            key=str(uuid.uuid4()),
            kind=kind,
            created_at=self._now_locked(),
            duration=self._runtime.config.operation_duration,
            outcome=outcome,
            messages=messages,
            details=details,
            seq=self._jobs.seq,
        )
        self._jobs.jobs[job.key] = job
        return job

    def _job_locked(self, kind: str, key: str, code: str, what: str) -> JobRecord:
        canonical = _canonical(key)
        job = self._jobs.jobs.get(canonical) if canonical else None
        if job is None or job.kind != kind:
            raise ApiError(404, f"{what} '{key}' was not found.", code)
        return job

    def _asset_or_404(self, key: str | None, code: str) -> dict[str, Any]:
        asset = self._release.asset_locked(key) if key else None
        if asset is None:
            raise ApiError(404, f"Asset '{key}' was not found.", code)
        return asset

    # Generated code ------------------------------------------------------------------------------------

    def start_generated_code(self, build_key: str) -> dict[str, Any]:
        """``POST /build-operations/{key}/generated-code``: 404 unknown build, 422 build not Finished."""
        with self._lock:
            now = self._now_locked()
            canonical = _canonical(build_key)
            build = self._release.build_locked(canonical) if canonical else None
            if build is None or canonical is None:
                raise ApiError(404, f"Couldn't find build '{build_key}'.", "OS-BLD-40402")
            if build.status(now) != "Finished":
                detail = f"Build '{build_key}' is {build.status(now)}: only finished builds can be packaged."
                raise ApiError(422, detail, "OS-BLD-42201")
            job = self._start_job_locked("generated_code", {"buildKey": canonical})
            self._jobs.generated_code[canonical] = job.key
            return {"isSuccessful": True}

    def generated_code(self, build_key: str) -> dict[str, Any]:
        with self._lock:
            canonical = _canonical(build_key)
            job_key = self._jobs.generated_code.get(canonical) if canonical else None
            if job_key is None:
                detail = f"Couldn't find a generated code package for build '{build_key}'."
                raise ApiError(404, detail, "OS-BLD-40403")
            job = self._jobs.jobs[job_key]
            body = render_generated_code(job, self._now_locked())
        if body["uri"]:
            body["uri"] = self.scans.download_url(f"generated-code/{job.details['buildKey']}.zip")
        return body

    # Dependency analyses -------------------------------------------------------------------------------

    def start_analysis(self, kind: str, asset_key: str, revision: int | None, environment_key: str | None) -> str:
        """``POST /{deployment,deletion}-analyses``; returns the analysis key."""
        with self._lock:
            asset = self._asset_or_404(asset_key, "OS-DEPM-40401")
            details: dict[str, Any] = {"assetKey": asset["assetKey"]}
            if kind == "deployment_analysis":
                environment = self._release.environment_locked(environment_key or "")
                if environment is None:
                    raise ApiError(404, f"Environment '{environment_key}' was not found.", "OS-DEPM-40402")
                if revision is None or not 1 <= revision <= int(asset["revision"]):
                    raise ApiError(404, f"Revision {revision} of asset '{asset_key}' was not found.", "OS-DEPM-40403")
                details.update(revision=revision, environmentKey=environment["key"])
            else:  # the stages the asset runs in, when the analysis starts
                details["deployedEnvironments"] = [
                    {"environmentKey": env["key"], "name": env["name"], "purpose": env["purpose"]}
                    for env in self._release.environments
                    if self._release.deployment_locked(asset["assetKey"], env["key"]) is not None
                ]
            return self._start_job_locked(kind, details).key

    def analysis(self, kind: str, key: str) -> dict[str, Any]:
        with self._lock:
            job = self._job_locked(kind, key, "OS-DEPM-40404", "Analysis")
            return render_analysis(job, self._now_locked())

    # Code analyses -------------------------------------------------------------------------------------

    def start_code_analysis(self, asset_key: str, revision: int) -> dict[str, Any]:
        with self._lock:
            asset = self._asset_or_404(asset_key, "OS-CQ-40401")
            if revision > int(asset["revision"]):
                raise ApiError(404, f"Revision {revision} of asset '{asset_key}' was not found.", "OS-CQ-40402")
            job = self._start_job_locked("code_analysis", {"assetKey": asset["assetKey"], "revision": revision})
            return {"analysisKey": job.key, "status": job.status(job.created_at)}

    def code_analysis(self, key: str, limit: int = 100, offset: int = 0) -> dict[str, Any]:
        with self._lock:
            job = self._job_locked("code_analysis", key, "OS-CQ-40403", "Code analysis")
            now = self._now_locked()
            body = render_code_analysis(job, now)
            completed = self._completed_locked(job, now)
        return self.scans.analysis_body(body, completed, limit, offset)

    def _completed_locked(self, job: JobRecord, now: float) -> CompletedAnalysis | None:
        if job.kind != "code_analysis" or not job.finished(now) or job.failed(now):
            return None
        return CompletedAnalysis(job.key, job.details["assetKey"], job.details["revision"], job.finished_at)

    def completed_code_analyses(self) -> tuple[list[CompletedAnalysis], float]:
        """Every code analysis that ended Completed, and the emulator clock (``code_scan_routes`` reads them)."""
        with self._lock:
            now = self._now_locked()
            found = [self._completed_locked(job, now) for job in self._jobs.jobs.values()]
            return [analysis for analysis in found if analysis is not None], now

    # External libraries --------------------------------------------------------------------------------

    def start_library_generation(self, file_name: str, binary_uri: str, problems: tuple[str, ...] = ()) -> str:
        """``problems``: why the package itself fails validation (the job then ends ``GenerationError``)."""
        with self._lock:
            details = {"fileName": file_name, "highCodeBinaryUri": binary_uri, "libraryKey": str(uuid.uuid4())}
            return self._fail_with(self._start_job_locked("external_library", details), problems).key

    @staticmethod
    def _fail_with(job: JobRecord, problems: tuple[str, ...]) -> JobRecord:
        if problems:
            job.outcome, job.messages = job.kind, problems
        return job

    def library_generation(self, key: str) -> dict[str, Any]:
        with self._lock:
            job = self._job_locked("external_library", key, "OS-ELG-40401", "Generation operation")
            return render_library(job, self._now_locked())

    def library_generation_log(self, key: str) -> dict[str, Any]:
        with self._lock:
            job = self._job_locked("external_library", key, "OS-ELG-40401", "Generation operation")
            return library_log(job, self._now_locked())

    # Native mobile builds ------------------------------------------------------------------------------

    def start_native_build(self, values: dict[str, Any], problems: tuple[str, ...] = ()) -> dict[str, Any]:
        """``POST /native-mobile-builds/v1/build-operations``: the stage and a mobile app must exist.
        ``problems``: why the build will fail (a missing configuration; the job then ends ``Error``)."""
        with self._lock:
            environment = self._release.environment_locked(values["environmentKey"])
            application = self._release.asset_locked(values["applicationKey"])
            if environment is None or application is None or application["assetType"] != "MobileApplication":
                raise ApiError(404, "The specified environment or application was not found.", "OS-NABS-40401")
            if not 1 <= values["revision"] <= int(application["revision"]):
                raise ApiError(404, f"Revision {values['revision']} was not found.", "OS-NABS-40402")
            details = {
                **values,
                "environmentKey": environment["key"],
                "applicationKey": application["assetKey"],
                "requestedBy": self._release.client_subject,
            }
            job = self._fail_with(self._start_job_locked("native_build", details), problems)
            return render_native_build(job, job.created_at)

    def native_builds_locked(self, environment_key: str, application_key: str) -> list[JobRecord]:
        """The native builds of an app on a stage (canonical keys), oldest first (lock held)."""
        return [
            job
            for job in sorted(self._jobs.jobs.values(), key=lambda job: job.seq)
            if job.kind == "native_build"
            and (job.details["environmentKey"], job.details["applicationKey"]) == (environment_key, application_key)
        ]

    def _native_locked(self, key: str, environment_key: str, application_key: str) -> JobRecord:
        job = self._job_locked("native_build", key, "OS-NABS-40403", "Build operation")
        if (_canonical(environment_key), _canonical(application_key)) != (
            job.details["environmentKey"],
            job.details["applicationKey"],
        ):
            raise ApiError(
                404, "The specified environment, application or build operation was not found.", "OS-NABS-40403"
            )
        return job

    def native_build(self, key: str, environment_key: str, application_key: str) -> dict[str, Any]:
        with self._lock:
            return render_native_build(self._native_locked(key, environment_key, application_key), self._now_locked())

    def native_build_log(self, key: str, environment_key: str, application_key: str) -> list[dict[str, Any]]:
        with self._lock:
            return native_build_log(self._native_locked(key, environment_key, application_key), self._now_locked())

    # Bulk users ----------------------------------------------------------------------------------------

    def start_bulk_users(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """``POST /users/bulk``: 202 with the Pending operation; a record without a valid email fails."""
        checked = []
        for record in records:
            email = record.get("email")
            invalid = None
            if email is not None and "@" not in str(email):
                invalid = f"The email '{email}' is not a valid email address."
            elif not (email or record.get("username")):
                invalid = "The record needs an email or a username."
            checked.append({**record, "_invalid": invalid})
        with self._lock:
            job = self._start_job_locked("bulk_users", {"records": checked})
            body = render_bulk(job, job.created_at)
            body["status"] = "Pending"
            return body

    def bulk_users(self, key: str) -> dict[str, Any]:
        with self._lock:
            job = self._job_locked("bulk_users", key, "OS-IDENTITY-40401", "Bulk operation")
            return render_bulk(job, self._now_locked())
