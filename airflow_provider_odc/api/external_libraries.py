"""External Library Generation API (``/api/external-libraries/v1``): generation operations.

``ReadyForReview`` is not an end: it waits for a person in the ODC Portal. The log messages say which
lines are errors in ``type``, not ``severity``.
"""

from __future__ import annotations

from airflow_provider_odc.api.long_running import kind

GENERATION_OPERATIONS = "/api/external-libraries/v1/generation-operations"

EXTERNAL_LIBRARY = kind(
    "external_library",
    GENERATION_OPERATIONS + "/{key}",
    {"Completed"},
    {"GenerationError", "DownloadError"},
    messages_path=GENERATION_OPERATIONS + "/{key}/log-messages",
    severity_field="type",
)
