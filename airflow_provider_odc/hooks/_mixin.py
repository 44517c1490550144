"""What the API mixins of ``OdcHook`` use of it (a Protocol, so each mixin type-checks on its own)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import requests

    from airflow_provider_odc.retries import RetryPolicy
    from airflow_provider_odc.settings import OdcConnectionSettings


class HookCore(Protocol):
    odc_conn_id: str

    @property
    def settings(self) -> OdcConnectionSettings: ...

    @property
    def retry_policy(self) -> RetryPolicy: ...

    @property
    def log(self) -> Any: ...

    def request(
        self,
        method: str,
        endpoint: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> requests.Response: ...

    def request_json(self, method: str, endpoint: str, **kwargs: Any) -> Any: ...

    def paginate(
        self,
        endpoint: str,
        params: Mapping[str, Any] | None = None,
        *,
        page_size: int | None = None,
        max_items: int | None = None,
    ) -> Iterator[dict[str, Any]]: ...

    def scrub(self, text: object, *, tokens: Iterable[str | None] = (), limit: int = ...) -> str: ...
