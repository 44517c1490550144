"""OdcAsyncHook: the triggerer's way to call ODC, with the same token and the same rules as OdcHook.

A trigger shares the triggerer's event loop with every other trigger, so nothing here may block it:
the connection comes from ``aget_connection``, HTTP goes through ``httpx.AsyncClient``, and the token
cache (Variable reads and writes, and the rare exchange) runs in a worker thread via
``sync_to_async``. The token is the one the tasks use: with a warm cache a defer/resume cycle makes
no token exchange at all.

This is the httpx adapter of the request core (``airflow_provider_odc.request_core``): the core decides
the URL, the retries and waits, the 401 refresh and the errors; this module sends, sleeps and fetches
tokens without blocking the loop.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from asgiref.sync import sync_to_async

from airflow_provider_odc.auth.token import AccessToken
from airflow_provider_odc.compat import BaseHook
from airflow_provider_odc.hooks.odc import OdcHook, _items_and_page, json_body, user_agent
from airflow_provider_odc.operations import OperationKind
from airflow_provider_odc.request_core import (
    UNFOLLOWED_LOCATION,
    NeedToken,
    Reply,
    RequestCore,
    Send,
    Step,
    adrive,
)
from airflow_provider_odc.retries import RetryPolicy, Unanswered
from airflow_provider_odc.scrub import FIELD_LIMIT


class OdcAsyncHook:
    """Async GETs against ODC for triggers. Use ``async with OdcAsyncHook(conn_id) as hook:``."""

    def __init__(
        self, odc_conn_id: str = OdcHook.default_conn_name, *, retry_policy: RetryPolicy | None = None
    ) -> None:
        self.odc_conn_id = odc_conn_id
        self._retry_policy = retry_policy
        self._hook: OdcHook | None = None
        self._core: RequestCore | None = None
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> OdcAsyncHook:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _sync_hook(self) -> OdcHook:
        """An OdcHook on the connection fetched without blocking; it holds settings and the token cache."""
        if self._hook is None:
            try:
                connection = await BaseHook.aget_connection(self.odc_conn_id)
            except Exception:  # e.g. inline triggers under `airflow dags test`, where only the sync path works
                connection = await sync_to_async(BaseHook.get_connection)(self.odc_conn_id)
            hook = OdcHook(self.odc_conn_id, retry_policy=self._retry_policy, connection=connection)
            await sync_to_async(lambda: hook.settings)()  # validates the connection; masks the secret
            self._core = hook.request_core(reached_from="triggerer")
            self._hook = hook
        return self._hook

    async def _client_for(self, hook: OdcHook) -> httpx.AsyncClient:
        if self._client is None:
            settings = hook.settings
            self._client = httpx.AsyncClient(
                verify=settings.verify,
                timeout=settings.timeout,
                follow_redirects=False,
                headers={"User-Agent": user_agent(), "Accept": "application/json"},
                event_hooks={"response": [_set_location_aside]},
            )
        return self._client

    @staticmethod
    async def _token(hook: OdcHook, reject: AccessToken | None = None) -> AccessToken:
        """The in-memory token without leaving the event loop; a worker thread only to load or fetch one.

        ``sync_to_async`` runs on one shared thread per triggerer, so every poll of every trigger going
        through it would queue behind whichever trigger is fetching a token.
        """
        return hook.token_cache.current(reject) or await sync_to_async(hook._token)(reject)

    async def get(self, endpoint: str, *, params: dict[str, Any] | None = None) -> httpx.Response:
        """GET an ODC endpoint: the same URL gate, retries, 401 refresh and errors as ``OdcHook.request``."""
        hook = await self._sync_hook()
        client = await self._client_for(hook)
        core = self._core
        assert core is not None  # set with the hook

        async def perform(step: Step) -> AccessToken | Reply[httpx.Response] | Unanswered | None:
            if isinstance(step, NeedToken):
                return await self._token(hook, step.reject)
            if isinstance(step, Send):
                return await _send(client, step, params, hook)
            await (core.retry.async_sleep or asyncio.sleep)(step.seconds)
            return None

        reply: Reply[httpx.Response] = await adrive(core.call("GET", endpoint), perform)
        return reply.raw

    def scrub(self, text: object, *, limit: int = FIELD_LIMIT) -> str:
        """``text`` without the connection's secrets or tokens (see ``OdcHook.scrub``); no I/O, never raises.

        Before the connection was read only the generic patterns apply (bearer headers, JWTs, ...)."""
        return (self._hook or OdcHook(self.odc_conn_id)).scrub(text, limit=limit)

    async def operation_status(self, kind: OperationKind, key: str, params: dict[str, Any] | None = None) -> str | None:
        return (await self.operation_state(kind, key, params))[0]

    async def operation_state(
        self, kind: OperationKind, key: str, params: dict[str, Any] | None = None
    ) -> tuple[str | None, dict[str, Any]]:
        """The status of an operation and its full body (an analysis' verdict is in the body)."""
        path = kind.path(key)
        body = json_body(await self.get(path, params=params), "GET", path)
        return kind.status_of(body), body if isinstance(body, dict) else {}

    async def list_page(self, endpoint: str, params: dict[str, Any]) -> tuple[list[dict[str, Any]], int | None]:
        """One page of an offset-paged ODC list: its items and the next page's offset (None on the last page)."""
        body = json_body(await self.get(endpoint, params=params), "GET", endpoint)
        items, page = _items_and_page(body, endpoint)
        following = (page or {}).get("nextPageOffset")
        offset = params.get("offset") or 0
        more = isinstance(following, int) and not isinstance(following, bool) and following > offset and bool(items)
        return [item for item in items if isinstance(item, dict)], following if more else None


async def _send(
    client: httpx.AsyncClient, send: Send, params: dict[str, Any] | None, hook: OdcHook
) -> Reply[httpx.Response] | Unanswered:
    """One HTTP exchange with httpx: the answer as plain values, or the failure classified."""
    started = time.monotonic()
    try:
        response = await client.request(
            send.method, send.url, params=params, headers={"Authorization": f"Bearer {send.token.value}"}
        )
    except httpx.HTTPError as exc:
        return unanswered(exc)
    hook.log.debug(
        "ODC %s %s -> %s in %.0f ms (async)",
        send.method,
        send.path,
        response.status_code,
        (time.monotonic() - started) * 1000,
    )
    return Reply(response.status_code, response.headers, response.content, response)


def unanswered(exc: httpx.HTTPError) -> Unanswered:
    """An httpx failure as the retry policy reads it: a failed connect surely never reached the server;
    any other transport error may have, so only an idempotent request is sent again."""
    not_sent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
    return Unanswered(exc, not_sent=not_sent, transient=isinstance(exc, httpx.TransportError))


async def _set_location_aside(response: httpx.Response) -> None:
    """Move a 3xx's ``Location`` aside before httpx parses it: redirects are refused, and httpx would build
    the next request even with ``follow_redirects=False``, raising ``RemoteProtocolError`` (retried as a
    network failure) for a malformed one. The request core reads it from the aside header."""
    if response.is_redirect and "Location" in response.headers:
        response.headers[UNFOLLOWED_LOCATION] = response.headers.pop("Location")
