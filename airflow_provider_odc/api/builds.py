"""Build Operations API (``/api/builds/v1``): start a build, read one, list a revision's builds.

A build's key is its ``buildKey``; the status path's ``operationKey`` is that key. ODC deploys only
Release builds, and a revision may have a Debug build and no Release one (ODC Studio's 1-Click Publish).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from airflow_provider_odc.api._parse import as_object, integer, objects, required_str, text
from airflow_provider_odc.api.long_running import kind, message_line

BUILDS = "/api/builds/v1/build-operations"
#: The field of the start POST's answer (``BuildResponse``) that holds the new build's key.
START_KEY_FIELD = "buildKey"

BuildType = Literal["Debug", "Release"]
BUILD_TYPES: tuple[BuildType, ...] = ("Debug", "Release")
#: ``BuildStatus``: still going, and ended (``Deleted`` and ``ToBeDeleted`` end a build without one to deploy).
RUNNING = frozenset({"Pending", "Running"})
FINISHED = "Finished"

BUILD = kind(
    "build",
    BUILDS + "/{key}",
    {FINISHED},
    {"FinishedWithErrors", "Deleted", "ToBeDeleted"},
    messages_path=BUILDS + "/{key}/log-messages",
)
GENERATED_CODE = kind(
    "generated_code",
    BUILDS + "/{key}/generated-code",
    {"Finished"},
    {"TimedOut", "Failed"},
    details_in_body=True,  # errors[]
)


def build_path(build_key: str) -> str:
    return BUILD.path(build_key)


def start_body(asset_key: str, revision: int, build_type: BuildType) -> dict[str, Any]:
    """``BuildOperationDetails``: the body of the POST that starts a build."""
    return {"assetKey": asset_key, "assetRevision": revision, "buildType": build_type}


def list_params(asset_key: str, revision: int | None, build_type: BuildType | None) -> dict[str, Any]:
    """The query of ``GET /build-operations`` (not paginated: no ``limit`` or ``offset``)."""
    params: dict[str, Any] = {"assetKey": asset_key}
    if revision is not None:
        params["assetRevision"] = revision
    if build_type:
        params["byBuildType"] = build_type
    return params


@dataclass(frozen=True)
class Build:
    """``BuildDetails``: the fields the provider reads."""

    build_key: str
    asset_key: str | None
    asset_revision: int | None
    build_type: str | None
    status: str | None
    started_date_time: str | None
    finished_date_time: str | None

    @property
    def key(self) -> str:
        return self.build_key

    @classmethod
    def from_json(cls, body: Any) -> Build:
        item = as_object(body, "a build")
        return cls(
            build_key=required_str(item, "buildKey", "a build"),
            asset_key=text(item, "assetKey"),
            asset_revision=integer(item, "assetRevision"),
            build_type=text(item, "buildType"),
            status=text(item, "status"),
            started_date_time=text(item, "startedDateTime"),
            finished_date_time=text(item, "finishedDateTime"),
        )


def newest_first(builds: list[Build]) -> list[Build]:
    """Builds sorted by when they finished (else started), newest first; never-started ones last."""
    return sorted(builds, key=lambda b: str(b.finished_date_time or b.started_date_time or ""), reverse=True)


def reusable(builds: list[Build], *, finished_only: bool) -> Build | None:
    """The newest Release build that finished (or, unless ``finished_only``, is still going)."""
    wanted = {FINISHED} if finished_only else {FINISHED, *RUNNING}
    releases = [b for b in builds if b.build_type == "Release"]
    return next((b for b in newest_first(releases) if b.status in wanted), None)


def generated_code_errors(body: Mapping[str, Any]) -> list[str]:
    """The Error lines of a generated-code package's ``errors[]`` (a missing severity counts as Error)."""
    return [
        message_line(e.get("message"), e.get("errorCode"))
        for e in objects(body.get("errors"))
        if str(e.get("severity") or "error").lower() == "error"
    ]
