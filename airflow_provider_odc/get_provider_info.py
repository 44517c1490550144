"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

On Airflow 3.2+ the connection form comes only from ``conn-fields`` and ``ui-field-behaviour`` here:
the API server builds the form from this dictionary without importing the hook. Both are generated from
the one declaration of the connection in ``connection_fields`` (which the parser and the Airflow 3.0/3.1
form widgets use too). Airflow imports this module at provider discovery: it imports nothing heavy.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_odc import __version__
from airflow_provider_odc.connection_fields import CONN_TYPE, conn_fields, ui_field_behaviour

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
            },
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "airflow_provider_odc.operators.access",
                    "airflow_provider_odc.operators.promotion",
                    "airflow_provider_odc.operators.configurations",
                    "airflow_provider_odc.operators.impact",
                    "airflow_provider_odc.operators.code_quality",
                    "airflow_provider_odc.operators.generated_code",
                    "airflow_provider_odc.operators.mobile_builds",
                    "airflow_provider_odc.operators.external_libraries",
                ],
            },
        ],
        "sensors": [{"integration-name": INTEGRATION, "python-modules": ["airflow_provider_odc.sensors.odc"]}],
        "triggers": [{"integration-name": INTEGRATION, "python-modules": ["airflow_provider_odc.triggers.odc"]}],
        "extra-links": ["airflow_provider_odc.links.OdcPortalLink"],
        "asset-uris": [{"schemes": ["odc"], "handler": "airflow_provider_odc.assets.normalize_odc_uri"}],
        "connection-types": [
            {
                "connection-type": CONN_TYPE,
                "hook-class-name": "airflow_provider_odc.hooks.odc.OdcHook",
                "hook-name": "OutSystems Developer Cloud",
                "ui-field-behaviour": ui_field_behaviour(),
                "conn-fields": conn_fields(),
            }
        ],
    }
