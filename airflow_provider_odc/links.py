"""The "ODC Portal" button on a task: opens the app (on its stage) that the task built or deployed.

The operator pushes the URL to XCom before it waits, so the button works while the task runs.
Portal URL shapes are those the ODC docs show (``/apps/application?id=<asset>&stageid=<stage>``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk.types import TaskInstanceKey

PORTAL_URL_XCOM_KEY = "odc_portal_url"


def portal_url(origin: str, asset_key: str, stage_key: str | None = None) -> str:
    query = {"id": asset_key, **({"stageid": stage_key} if stage_key else {})}
    return f"{origin}/apps/application?{urlencode(query)}"


class OdcPortalLink(BaseOperatorLink):
    name = "ODC Portal"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        return str(XCom.get_value(ti_key=ti_key, key=PORTAL_URL_XCOM_KEY) or "")
