"""Nightly native builds of an ODC mobile app: ask ODC for the next versions, build Android and iOS for a
stage, keep the app binaries in object storage.

The download links ODC gives a finished build are pre-signed credentials: the build tasks never log or
push them. Each one streams its binary to ``artifacts_url`` (any Airflow object storage URL: ``s3://...``,
``gs://...``, ``file://...``) and returns only its path, size and SHA-256, which ``report`` prints. A
platform whose build is already up to date (``NativeBuildNotNeeded``) is not built again.

Trigger it with ``{"app": "<mobile app name or key>", "stage": "<stage name or key>", "artifacts_url":
"s3://my-bucket/odc-mobile"}``. Parses without network, connection or Variable access.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_odc.operators.mobile_builds import OdcMobileVersionSuggestionOperator, OdcNativeBuildOperator

APP = "{{ params.app }}"
STAGE = "{{ params.stage }}"


def suggested(platform: str, field: str) -> str:
    """The template that reads one of ODC's suggestions from the ``suggest_versions`` task."""
    return f"{{{{ ti.xcom_pull(task_ids='suggest_versions')['{platform}']['{field}'] }}}}"


with DAG(
    dag_id="odc_nightly_mobile_build",
    description="Nightly Android and iOS native builds of an ODC mobile app, binaries kept in object storage",
    schedule="0 2 * * *",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    params={
        "app": Param("Customer 360 013", type="string", description="Mobile app name (exact) or asset key"),
        "stage": Param("QA", type="string", description="Stage name or key the app is deployed on"),
        "artifacts_url": Param(
            "file:///tmp/odc-mobile-builds", type="string", description="Object storage URL for the binaries"
        ),
    },
    tags=["odc", "example", "mobile"],
) as dag:
    suggest = OdcMobileVersionSuggestionOperator(task_id="suggest_versions", asset=APP, stage=STAGE)

    builds = [
        OdcNativeBuildOperator(
            task_id=f"build_{platform.lower()}",
            asset=APP,
            stage=STAGE,
            platform=platform,
            mobile_version_number=suggested(platform, "mobileVersionNumber"),
            mobile_version_code=suggested(platform, "mobileVersionCode"),
            only_if_needed=True,
            download_to=f"{{{{ params.artifacts_url }}}}/{{{{ ds_nodash }}}}/{platform.lower()}.{extension}",
            deferrable=True,
        )
        for platform, extension in (("Android", "aab"), ("iOS", "ipa"))
    ]

    @task
    def report(android: dict[str, Any], ios: dict[str, Any]) -> list[str]:
        """One line per platform: version and where its binary is (no link: none was ever pushed)."""
        lines = []
        for result in (android, ios):
            artifact = result.get("artifact") or {}
            lines.append(
                f"{result.get('mobilePlatform')}: {result.get('status')} "
                f"{result.get('mobileVersionNumber') or ''} (code {result.get('mobileVersionCode')}) "
                f"-> {artifact.get('path', 'not rebuilt')} {artifact.get('sha256', '')}".strip()
            )
        for line in lines:
            print(line)
        return lines

    suggest >> builds
    report(builds[0].output, builds[1].output)
