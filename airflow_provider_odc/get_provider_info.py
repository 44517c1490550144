"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

On Airflow 3.2+ the connection form comes only from ``conn-fields`` and ``ui-field-behaviour`` here:
the API server builds the form from this dictionary without importing the hook.
Extra names matter: Airflow masks any extra whose name contains ``secret``, ``token``, ``password``, ...
so the one secret extra is ``cache_secret`` and nothing else carries such a word.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_odc import __version__

INTEGRATION = "OutSystems Developer Cloud"


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-odc",
        "name": "OutSystems Developer Cloud",
        "description": "Orchestrate OutSystems Developer Cloud (ODC) from Airflow: "
        "call the ODC public REST APIs with one shared, encrypted, reused access token.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://success.outsystems.com/documentation/outsystems_developer_cloud/",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": INTEGRATION,
                "python-modules": ["airflow_provider_odc.hooks.odc", "airflow_provider_odc.hooks.odc_async"],
            }
        ],
        "operators": [
            {
                "integration-name": INTEGRATION,
                "python-modules": ["airflow_provider_odc.operators.odc", "airflow_provider_odc.operators.lifecycle"],
            }
        ],
        "sensors": [{"integration-name": INTEGRATION, "python-modules": ["airflow_provider_odc.sensors.odc"]}],
        "triggers": [{"integration-name": INTEGRATION, "python-modules": ["airflow_provider_odc.triggers.odc"]}],
        "extra-links": ["airflow_provider_odc.links.OdcPortalLink"],
        "connection-types": [
            {
                "connection-type": "odc",
                "hook-class-name": "airflow_provider_odc.hooks.odc.OdcHook",
                "hook-name": "OutSystems Developer Cloud",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {
                        "host": "Portal domain",
                        "login": "Client ID",
                        "password": "Client secret",
                    },
                    "placeholders": {
                        "host": "acme.outsystems.dev",
                        "login": "API client ID from ODC Portal > Govern > API clients",
                        "password": "API client secret",
                    },
                },
                "conn-fields": {
                    "timeout": {
                        "label": "Request timeout (seconds)",
                        "description": "Timeout of each HTTP request to ODC, token requests included: "
                        "1 to 300 seconds. Default 60.",
                        "schema": {"type": ["number", "null"], "minimum": 1, "maximum": 300},
                    },
                    "verify": {
                        "label": "Verify TLS certificates",
                        "description": "Turn off only for a test portal with a self-signed certificate. Default on.",
                        "schema": {"type": ["boolean", "null"], "default": True},
                    },
                    "ca_bundle_path": {
                        "label": "CA bundle path",
                        "description": "Path to a PEM CA bundle (a file or directory every worker has), for a "
                        "portal behind a corporate TLS proxy. Used instead of the system CAs when set.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "refresh_margin_seconds": {
                        "label": "Refresh margin (seconds)",
                        "description": "Fetch a new access token this long before the cached one expires "
                        "(never more than half its lifetime): 0 to 21600 seconds. Default 300.",
                        "schema": {"type": ["integer", "null"], "minimum": 0, "maximum": 21600},
                    },
                    "cache_mode": {
                        "label": "Access token cache",
                        "description": "variable: one encrypted token shared by every task on every worker "
                        "(default). memory: shared within one process only. off: every hook fetches its own.",
                        "schema": {
                            "type": ["string", "null"],
                            "enum": ["variable", "memory", "off"],
                            "default": "variable",
                        },
                    },
                    "cache_secret": {
                        "label": "Cache encryption secret",
                        "description": "Optional text (at most 4096 characters). Encrypts the cached token instead "
                        "of the client secret; set it to keep the cache valid across client secret rotations.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "max_retries": {
                        "label": "Max retries",
                        "description": "Retries after 5xx and connection errors (only where a retry "
                        "cannot repeat a processed request): a whole number from 0 to 10. Default 3. 429s "
                        "follow the rate-limit wait.",
                        "schema": {"type": ["integer", "null"], "minimum": 0, "maximum": 10},
                    },
                    "rate_limit_wait_seconds": {
                        "label": "Rate-limit wait (seconds)",
                        "description": "How long one call may wait in total when ODC answers 429 (its limits "
                        "are per minute: each wait is about 60 s unless ODC says otherwise). 0 fails at the "
                        "first 429. Default 300, at most 1800.",
                        "schema": {"type": ["number", "null"], "minimum": 0, "maximum": 1800},
                    },
                },
            }
        ],
    }
