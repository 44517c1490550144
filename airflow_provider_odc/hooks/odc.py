"""OdcHook: the Airflow connection joined to discovery, the token cache and ODC's REST APIs.

Reading top to bottom: connection -> settings; settings -> token cache (memory, encrypted Variable,
exchange); ``request`` sends one call with the bearer token, retries what is safe to retry, refreshes
the token once on 401, and turns error statuses into ``OdcApiError``; ``paginate`` walks ODC's paged
lists; ``test_connection`` backs the UI's Test button.

Nothing here touches the network, a Variable or the connection before the first call that needs it,
so a hook can be built while Airflow parses DAGs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests

from airflow_provider_odc import __version__
from airflow_provider_odc.auth.client_credentials import exchange_client_credentials
from airflow_provider_odc.auth.discovery import fetch_token_endpoint, validate_token_endpoint
from airflow_provider_odc.auth.token import AccessToken
from airflow_provider_odc.cache.envelope import CachedToken, EnvelopeCodec
from airflow_provider_odc.cache.lease import ExchangeLease, exchange_lease_ttl, lease_key_for
from airflow_provider_odc.cache.stores import VariableTokenStore, variable_key_for
from airflow_provider_odc.cache.token_cache import TokenCache
from airflow_provider_odc.compat import BaseHook, connection_form_widgets, mask_secret, ui_field_behaviour
from airflow_provider_odc.exceptions import OdcApiError, OdcError
from airflow_provider_odc.operations import OperationKind, error_messages
from airflow_provider_odc.retries import IDEMPOTENT_METHODS, RetryPolicy
from airflow_provider_odc.settings import ConnectionLike, OdcConnectionSettings, origin_of

if TYPE_CHECKING:
    import httpx

_MAX_DETAIL = 500
_STATUS_HINTS = {
    401: "ODC refused a freshly fetched token too: check that the API client is not Revoked or Expired.",
    403: "The API client lacks the permission this endpoint needs on this stage; grant it in the ODC "
    "Portal (Management > Govern > API clients).",
    429: "ODC's rate limit was still exceeded after the retries (100 requests per minute per API, "
    "10 per minute for build and deployment POSTs).",
}


class _BearerAuth(requests.auth.AuthBase):
    """Adds the bearer token as requests' ``auth``, so ~/.netrc can never replace it."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "<BearerAuth>"


def envelope_codec_for(settings: OdcConnectionSettings) -> EnvelopeCodec:
    """How the connection's token is sealed in its Variable: keyed by its secret (or ``cache_secret``),
    bound to its portal, client, connection id and Variable key."""
    return EnvelopeCodec.for_connection(
        key_material=settings.cache_secret or settings.client_secret,
        origin=settings.origin,
        client_id=settings.client_id,
        conn_id=settings.conn_id,
        variable_key=variable_key_for(settings.conn_id),
    )


def user_agent() -> str:
    """What the provider calls itself in every request to ODC (sync and async)."""
    from airflow import __version__ as airflow_version

    return f"airflow-provider-odc/{__version__} apache-airflow/{airflow_version} {requests.utils.default_user_agent()}"


class OdcHook(BaseHook):
    """Calls the OutSystems Developer Cloud public REST APIs with one shared, encrypted, reused token.

    :param odc_conn_id: an Airflow connection of type ``odc``: host = portal domain, login = client
        ID, password = client secret.
    :param retry_policy: overrides the connection's retry settings (tests, special cases).
    :param connection: use this connection instead of looking ``odc_conn_id`` up (the async hook
        passes the one it fetched with ``aget_connection``).
    """

    conn_name_attr = "odc_conn_id"
    default_conn_name = "odc_default"
    conn_type = "odc"
    hook_name = "OutSystems Developer Cloud"

    def __init__(
        self,
        odc_conn_id: str = default_conn_name,
        *,
        retry_policy: RetryPolicy | None = None,
        connection: ConnectionLike | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.odc_conn_id = odc_conn_id
        self._retry_policy = retry_policy
        self._connection = connection

    # -- connection and collaborators, built on first use ------------------------------------------

    @cached_property
    def settings(self) -> OdcConnectionSettings:
        connection = self._connection or self.get_connection(self.odc_conn_id)
        settings = OdcConnectionSettings.from_connection(connection)
        mask_secret(settings.client_secret)
        if settings.cache_secret:
            mask_secret(settings.cache_secret)
        return settings

    @cached_property
    def retry_policy(self) -> RetryPolicy:
        return self._retry_policy or RetryPolicy(max_retries=self.settings.max_retries)

    @cached_property
    def session(self) -> requests.Session:
        """One keep-alive session per hook. ``verify`` goes on every request instead of here, because
        ``REQUESTS_CA_BUNDLE`` in the environment silently overrides ``Session.verify``."""
        session = requests.Session()
        session.headers["User-Agent"] = user_agent()
        session.headers["Accept"] = "application/json"
        return session

    def get_conn(self) -> requests.Session:
        return self.session

    @cached_property
    def token_cache(self) -> TokenCache:
        settings = self.settings
        if settings.cache_mode == "off":
            return TokenCache(store=None, codec=None, refresh_margin=settings.refresh_margin)
        return TokenCache.shared((settings.cache_identity,), lambda: self._new_token_cache(settings))

    @staticmethod
    def _new_token_cache(settings: OdcConnectionSettings) -> TokenCache:
        """The process-wide cache of a connection identity: built once, not by every hook."""
        if settings.cache_mode != "variable":
            return TokenCache(store=None, codec=None, refresh_margin=settings.refresh_margin)
        ttl = exchange_lease_ttl(settings.timeout, RetryPolicy(max_retries=settings.max_retries))
        lease = ExchangeLease(VariableTokenStore(lease_key_for(settings.conn_id)), ttl=ttl)
        return TokenCache(
            store=VariableTokenStore(variable_key_for(settings.conn_id)),
            codec=envelope_codec_for(settings),
            refresh_margin=settings.refresh_margin,
            lease=lease,
        )

    # -- the token ---------------------------------------------------------------------------------

    def get_access_token(self) -> str:
        """A valid access token for this connection (cached; fetched only when needed)."""
        return self._token().value

    def _token(self, reject: AccessToken | None = None) -> AccessToken:
        """The cached token, or a new one; ``reject`` is one ODC just refused (shared with OdcAsyncHook)."""
        return self.token_cache.get(self._fetch_token, reject=reject)

    def _fetch_token(self, known_token_endpoint: str | None) -> CachedToken:
        """Discovery (skipped when the token endpoint is known) and the client-credentials exchange."""
        settings = self.settings
        if known_token_endpoint:
            token_endpoint = validate_token_endpoint(known_token_endpoint, settings.origin, conn_id=settings.conn_id)
        else:
            token_endpoint = self._discover()
        token = self._exchange(token_endpoint)
        return CachedToken(token=token, token_endpoint=token_endpoint)

    def _discover(self) -> str:
        settings = self.settings
        return fetch_token_endpoint(
            self.session,
            settings.origin,
            conn_id=settings.conn_id,
            timeout=settings.timeout,
            verify=settings.verify,
            retry=self.retry_policy,
        )

    def _exchange(self, token_endpoint: str) -> AccessToken:
        settings = self.settings
        token = exchange_client_credentials(
            self.session,
            token_endpoint,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            conn_id=settings.conn_id,
            timeout=settings.timeout,
            verify=settings.verify,
            retry=self.retry_policy,
        )
        mask_secret(token.value)
        return token

    # -- API calls ---------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        endpoint: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> requests.Response:
        """Send one ODC API call and return its successful response; raise OdcApiError otherwise.

        :param endpoint: a path as ODC documents it (``/api/asset-repository/v1/assets``), or an
            absolute URL on the connection's own origin; the token goes nowhere else.
        """
        method = method.upper()
        url = self._url_for(endpoint)
        path = urlsplit(url).path
        token = self._token()
        response = self._send(method, url, path, token, params, json, headers, timeout)
        if response.status_code == 401:
            self.log.info(
                "ODC answered 401 to %s %s with token %s; fetching a new token and retrying once.",
                method,
                path,
                token.fingerprint,
            )
            token = self._token(reject=token)
            response = self._send(method, url, path, token, params, json, headers, timeout)
        if response.status_code >= 300:
            raise self._api_error(method, path, response)
        return response

    def request_json(self, method: str, endpoint: str, **kwargs: Any) -> Any:
        """``request`` and its parsed JSON body; a body that is not JSON is an OdcApiError, not a crash."""
        response = self.request(method, endpoint, **kwargs)
        return json_body(response, method.upper(), urlsplit(response.url).path)

    def paginate(
        self,
        endpoint: str,
        params: Mapping[str, Any] | None = None,
        *,
        page_size: int | None = None,
        max_items: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield every item of an ODC list, following its offset paging.

        Handles ODC's page shapes (``results`` + ``page.nextPageOffset``, integer or string offsets)
        and the unpaginated wrappers (``{"builds": [...]}``, ``{"results": [...]}``). Stops when the
        next offset is missing, null or does not advance, or ``totalResults`` items were seen.
        """
        query = dict(params or {})
        if page_size is not None:
            query["limit"] = page_size
        offset = query.pop("offset", None)
        seen = 0
        while True:
            page_query = query if offset is None else {**query, "offset": offset}
            body = self.request_json("GET", endpoint, params=page_query)
            items, page = _items_and_page(body, endpoint)
            for item in items:
                if max_items is not None and seen >= max_items:
                    return
                seen += 1
                yield item
            if page is None or not items:
                return
            next_offset = page.get("nextPageOffset")
            total = page.get("totalResults")
            if next_offset in (None, "") or next_offset == offset:
                return
            if isinstance(next_offset, int) and isinstance(offset, int) and next_offset <= offset:
                return
            if isinstance(total, int) and seen >= total:
                return
            offset = next_offset

    # -- long-running operations -------------------------------------------------------------------

    def operation_status(
        self, kind: OperationKind, key: str, params: Mapping[str, Any] | None = None
    ) -> tuple[str | None, dict[str, Any]]:
        """The current status of an operation and its full body (never cached: ODC status changes)."""
        body = self.request_json("GET", kind.path(key), params=params)
        return kind.status_of(body), body if isinstance(body, dict) else {}

    def operation_errors(self, kind: OperationKind, key: str) -> list[str]:
        """The Error messages ODC logged for an operation; a read failure is reported, not raised."""
        if kind.messages_path is None:
            return []
        try:
            items = list(self.paginate(kind.messages_path.format(key=key), max_items=1000))
        except OdcError as exc:
            return [f"(the operation's messages could not be read: {exc})"]
        return error_messages(items)

    def _url_for(self, endpoint: str) -> str:
        origin = self.settings.origin
        if "://" in endpoint:
            if origin_of(endpoint) != origin:
                raise OdcError(
                    f"ODC connection '{self.odc_conn_id}': refusing to call {origin_of(endpoint)}; the access "
                    f"token is only ever sent to the connection's own origin {origin}."
                )
            return endpoint
        return origin + ("" if endpoint.startswith("/") else "/") + endpoint

    def _send(
        self,
        method: str,
        url: str,
        path: str,
        token: AccessToken,
        params: Mapping[str, Any] | None,
        json: Any,
        headers: Mapping[str, str] | None,
        timeout: float | None,
    ) -> requests.Response:
        settings = self.settings

        def send() -> requests.Response:
            started = time.monotonic()
            response = self.session.request(
                method,
                url,
                params=params,
                json=json,
                headers=dict(headers or {}),
                auth=_BearerAuth(token.value),
                timeout=timeout or settings.timeout,
                verify=settings.verify,
                allow_redirects=False,
            )
            self.log.debug(
                "ODC %s %s -> %s in %.0f ms",
                method,
                path,
                response.status_code,
                (time.monotonic() - started) * 1000,
            )
            return response

        try:
            return self.retry_policy.call(
                send, idempotent=method in IDEMPOTENT_METHODS, describe=f"ODC {method} {path}"
            )
        except requests.RequestException as exc:
            sent = "may have been processed by ODC; it was not sent again" if method not in IDEMPOTENT_METHODS else ""
            raise OdcApiError(
                f"ODC connection '{self.odc_conn_id}': {method} {path} failed: {type(exc).__name__}"
                + (f" (the request {sent})" if sent else "")
                + ". Check that the workers can reach the portal.",
                method=method,
                path=path,
                status=None,
            ) from None

    def _api_error(self, method: str, path: str, response: requests.Response) -> OdcApiError:
        status = response.status_code
        problem = _problem_details(response)
        message = f"ODC connection '{self.odc_conn_id}': {method} {path} failed with HTTP {status}"
        if 300 <= status < 400:
            location = origin_of(response.headers.get("Location", "")) or "an unknown location"
            message += f": a redirect to {location}, which is not followed."
        else:
            for label, key in (("", "title"), (" - ", "detail")):
                value = problem.get(key)
                if isinstance(value, str) and value:
                    message += (label or ": ") + value[:_MAX_DETAIL]
            refs = [f"{key} {problem[key]}" for key in ("errorCode", "traceId") if isinstance(problem.get(key), str)]
            if refs:
                message += f" [{', '.join(refs)}]"
            message += "." + (f" {_STATUS_HINTS[status]}" if status in _STATUS_HINTS else "")
        return OdcApiError(message, method=method, path=path, status=status, problem=problem)

    # -- Airflow UI --------------------------------------------------------------------------------

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The extra fields of the connection form on Airflow 3.0/3.1 (3.2+ reads ``conn-fields``)."""
        return connection_form_widgets(cls.conn_type)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hidden and relabelled fields on Airflow 3.0/3.1 (3.2+ reads ``ui-field-behaviour``)."""
        return ui_field_behaviour(cls.conn_type)

    def test_connection(self) -> tuple[bool, str]:
        """Discovery and a token exchange, without the Variable cache; says which step failed.

        The messages leave out the connection id: the UI's Test button tests a temporary copy of the
        connection under a random id, which would only confuse.
        """
        unnamed = f"ODC connection '{self.odc_conn_id}': "
        try:
            settings = self.settings
        except OdcError as exc:
            return False, str(exc).replace(unnamed, "")
        except Exception as exc:  # e.g. the connection does not exist
            return False, f"The connection could not be read: {type(exc).__name__}: {exc}"
        try:
            token_endpoint = self._discover()
        except OdcError as exc:
            return False, f"Step 1 of 2 (OIDC discovery) failed. {str(exc).replace(unnamed, '')}"
        try:
            token = self._exchange(token_endpoint)
        except OdcError as exc:
            return False, f"Step 2 of 2 (token request) failed. {str(exc).replace(unnamed, '')}"
        return True, (
            f"Connected to {settings.origin}: discovery found the token endpoint and ODC issued an access "
            f"token valid for {token.lifetime:.0f} s."
        )


def _items_and_page(body: Any, endpoint: str) -> tuple[list[Any], dict[str, Any] | None]:
    """The items of one response and its ``page`` object (None for unpaginated wrappers)."""
    if isinstance(body, list):
        return body, None
    if isinstance(body, dict):
        page = body.get("page")
        if isinstance(body.get("results"), list):
            return body["results"], page if isinstance(page, dict) else None
        lists = [value for value in body.values() if isinstance(value, list)]
        if len(lists) == 1:  # {"builds": [...]} and similar wrappers
            return lists[0], None
    raise OdcError(f"ODC {endpoint} did not return a list, a 'results' page or a single-list wrapper.")


def json_body(response: requests.Response | httpx.Response, method: str, path: str) -> Any:
    """The parsed body of a successful response, or an OdcApiError that says what came instead."""
    try:
        return response.json()
    except ValueError:
        kind = response.headers.get("Content-Type", "no content type")
        raise OdcApiError(
            f"ODC {method} {path} answered HTTP {response.status_code} with a body that is not JSON "
            f"({kind}, {len(response.content)} bytes). Check that the Portal domain (host) is your ODC portal.",
            method=method,
            path=path,
            status=response.status_code,
        ) from None


def _problem_details(response: requests.Response) -> dict[str, Any]:
    """RFC 7807 fields of an error body, if it has them (bodies are read only up to 64 KiB)."""
    if len(response.content) > 65536:
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
