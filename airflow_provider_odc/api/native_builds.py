"""Native Mobile Builds API (``/api/native-mobile-builds/v1``): native app build operations.

ODC scopes a native build's status and messages by stage and app: both calls need ``environmentKey``
and ``applicationKey`` as query parameters.
"""

from __future__ import annotations

from airflow_provider_odc.api.long_running import kind

NATIVE_BUILDS = "/api/native-mobile-builds/v1/build-operations"

NATIVE_BUILD = kind(
    "native_build",
    NATIVE_BUILDS + "/{key}",
    {"Finished"},
    {"Error"},
    messages_path=NATIVE_BUILDS + "/{key}/log-messages",
    required_params=("environmentKey", "applicationKey"),
)
