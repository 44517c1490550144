"""OdcApiOperator: call any ODC endpoint from a task, the way HttpOperator calls any HTTP endpoint."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from airflow.sdk import BaseOperator

from airflow_provider_odc.exceptions import OdcError
from airflow_provider_odc.hooks.odc import OdcHook, json_body

if TYPE_CHECKING:
    import requests
    from airflow.sdk import Context


class OdcApiOperator(BaseOperator):
    """Call an ODC public REST API endpoint and push its JSON body (or every item, when paginating) to XCom.

    :param endpoint: the path as ODC documents it, e.g. ``/api/asset-repository/v1/assets``. Templated.
    :param method: HTTP method. Default ``GET``.
    :param query_params: query parameters. Templated. (Airflow's own ``params`` argument keeps its
        meaning: DAG params for templates.)
    :param json: JSON request body. Templated.
    :param headers: extra request headers. Templated. The ``Authorization`` header is always the
        connection's token.
    :param paginate: follow ODC's offset paging and return the list of all items.
    :param page_size: ``limit`` per page when paginating (ODC's maximum is 1000 for assets).
    :param response_check: ``callable(response) -> bool``; False fails the task. With
        ``paginate`` it gets the list of items.
    :param response_filter: ``callable(response) -> Any``; its result goes to XCom instead of the
        body. With ``paginate`` it gets the list of items. Return data from the body, never the
        response or its ``.request``: their headers carry the bearer token.
    :param odc_conn_id: the ``odc`` connection.
    """

    template_fields: Sequence[str] = ("endpoint", "query_params", "json", "headers")
    template_fields_renderers: ClassVar[dict[str, str]] = {"json": "json", "query_params": "json", "headers": "json"}
    ui_color = "#c9e4ff"

    def __init__(
        self,
        *,
        endpoint: str,
        method: str = "GET",
        query_params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        paginate: bool = False,
        page_size: int | None = None,
        response_check: Callable[[Any], bool] | None = None,
        response_filter: Callable[[Any], Any] | None = None,
        odc_conn_id: str = OdcHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if paginate and method.upper() != "GET":
            raise ValueError("OdcApiOperator: paginate=True works only with method='GET'.")
        self.endpoint = endpoint
        self.method = method.upper()
        self.query_params = query_params
        self.json = json
        self.headers = headers
        self.paginate = paginate
        self.page_size = page_size
        self.response_check = response_check
        self.response_filter = response_filter
        self.odc_conn_id = odc_conn_id

    @property
    def hook(self) -> OdcHook:
        return OdcHook(odc_conn_id=self.odc_conn_id)

    def execute(self, context: Context) -> Any:
        hook = self.hook
        started = time.monotonic()
        result: Any
        if self.paginate:
            result = list(hook.paginate(self.endpoint, self.query_params, page_size=self.page_size))
            self.log.info(
                "ODC GET %s: %d items in %.0f ms.", self.endpoint, len(result), (time.monotonic() - started) * 1000
            )
        else:
            response = hook.request(
                self.method, self.endpoint, params=self.query_params, json=self.json, headers=self.headers
            )
            self.log.info(
                "ODC %s %s -> HTTP %s in %.0f ms.",
                self.method,
                self.endpoint,
                response.status_code,
                (time.monotonic() - started) * 1000,
            )
            result = response
        if self.response_check is not None and not self.response_check(result):
            raise OdcError(f"OdcApiOperator {self.task_id}: response_check returned False for {self.endpoint}.")
        if self.response_filter is not None:
            return self.response_filter(result)
        return result if self.paginate else _json_body(result)


def _json_body(response: requests.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    return json_body(response, response.request.method or "", urlsplit(response.url).path)
