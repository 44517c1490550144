"""External Library Generation API (``/api/external-libraries/v1``): generation operations.

``ReadyForReview`` is not an end: it waits for a person in the ODC Portal. The log messages say which
lines are errors in ``type``, not ``severity``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_odc.api._parse import as_object, objects, required_str, text
from airflow_provider_odc.api.long_running import kind, message_line

GENERATION_OPERATIONS = "/api/external-libraries/v1/generation-operations"
UPLOADS = "/api/external-libraries/v1/uploads"
#: The status after which the generation itself has ended (ODC waits for a person to review the library).
READY_FOR_REVIEW = "ReadyForReview"

EXTERNAL_LIBRARY = kind(
    "external_library",
    GENERATION_OPERATIONS + "/{key}",
    {"Completed"},
    {"GenerationError", "DownloadError"},
    messages_path=GENERATION_OPERATIONS + "/{key}/log-messages",
    severity_field="type",
)

#: The generation has ended and validated the package: the library waits for review (or was published).
#: ``Downloading`` is not an end: the spec does not say whether it comes before the generation or after
#: the review, so it is waited out.
GENERATED = kind(
    "external_library_generated",
    GENERATION_OPERATIONS + "/{key}",
    {READY_FOR_REVIEW, "Completed"},
    {"GenerationError", "DownloadError"},
    messages_path=GENERATION_OPERATIONS + "/{key}/log-messages",
    severity_field="type",
)


def generation_path(key: str) -> str:
    return EXTERNAL_LIBRARY.path(key)


def messages_path(key: str) -> str:
    return GENERATION_OPERATIONS + f"/{key}/log-messages"


def start_body(file_name: str, download_url: str) -> dict[str, Any]:
    """``GenerationOperationCreationRequest``: the package's file name and the ``downloadUrl`` of its upload."""
    return {"fileName": file_name, "highCodeBinaryUri": download_url}


@dataclass(frozen=True)
class UploadTarget:
    """``UploadResponse``: where to PUT the package and where ODC will read it. Both are pre-signed URLs
    (credentials): ``repr`` leaves them out."""

    upload_url: str = field(repr=False)
    download_url: str = field(repr=False)

    @classmethod
    def from_json(cls, body: Any) -> UploadTarget:
        item = as_object(body, "an upload target")
        return cls(required_str(item, "uploadUrl", "an upload"), required_str(item, "downloadUrl", "an upload"))


@dataclass(frozen=True)
class LibraryGeneration:
    """``GenerationOperationResponse``: the fields the provider reads (no pre-signed URIs)."""

    key: str
    status: str | None
    file_name: str | None
    library_key: str | None
    library_name: str | None
    is_new_library: bool | None

    @classmethod
    def from_json(cls, body: Any) -> LibraryGeneration:
        item = as_object(body, "a generation operation")
        is_new = item.get("isNewLibrary")
        return cls(
            key=required_str(item, "key", "a generation operation"),
            status=text(item, "status"),
            file_name=text(item, "filename"),
            library_key=text(item, "libraryKey"),
            library_name=text(item, "libraryName"),
            is_new_library=is_new if isinstance(is_new, bool) else None,
        )

    def summary(self) -> dict[str, Any]:
        return {
            "operationKey": self.key,
            "status": self.status,
            "fileName": self.file_name,
            "libraryKey": self.library_key,
            "libraryName": self.library_name,
            "isNewLibrary": self.is_new_library,
        }


@dataclass(frozen=True)
class ValidationMessage:
    """``GenerationOperationValidationMessageResponse``."""

    type: str
    message: str

    def line(self) -> str:
        return f"{self.type}: {self.message}"


def validation_messages(body: Any) -> list[ValidationMessage]:
    """The ``validationMessages`` of a log-messages answer (null is none), oldest first."""
    items = objects(as_object(body, "generation log messages").get("validationMessages"))
    return [
        ValidationMessage(text(item, "type") or "None", message_line(item.get("message"), item.get("errorCode")))
        for item in items
    ]


def count_by_type(messages: list[ValidationMessage]) -> Mapping[str, int]:
    counts: dict[str, int] = {}
    for message in messages:
        counts[message.type] = counts.get(message.type, 0) + 1
    return counts
