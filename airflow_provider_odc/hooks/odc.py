"""OdcHook: the Airflow connection joined to discovery, the token cache and ODC's REST APIs.

Reading top to bottom: connection -> settings; settings -> token cache (memory, encrypted Variable,
exchange); ``request`` drives the request core (``airflow_provider_odc.request_core``), which decides the
URL, the retries and waits, the token refresh after a 401 and the errors, with requests: this module
only sends, sleeps and hands out tokens. ``paginate`` walks ODC's paged lists; ``test_connection`` backs
the UI's Test button.

Nothing here touches the network, a Variable or the connection before the first call that needs it,
so a hook can be built while Airflow parses DAGs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import requests

from airflow_provider_odc import __version__
from airflow_provider_odc.api import assets, builds, deployments, portfolios
from airflow_provider_odc.api._parse import is_key
from airflow_provider_odc.api.assets import Asset
from airflow_provider_odc.api.builds import Build, BuildType
from airflow_provider_odc.api.deployments import DeploymentOperation, DeploymentOperationType
from airflow_provider_odc.api.portfolios import DeployedAsset, Stage
from airflow_provider_odc.attach import Launch, OperationMatch, TryMemory, start_once
from airflow_provider_odc.auth.client_credentials import exchange_client_credentials
from airflow_provider_odc.auth.discovery import discovery_url, fetch_token_endpoint, validate_token_endpoint
from airflow_provider_odc.auth.token import AccessToken
from airflow_provider_odc.auth.transport import NoRedirectSession, unanswered
from airflow_provider_odc.cache.envelope import CachedToken, EnvelopeCodec
from airflow_provider_odc.cache.lease import ExchangeLease, exchange_lease_ttl, lease_key_for
from airflow_provider_odc.cache.stores import TokenStore, VariableTokenStore, variable_key_for
from airflow_provider_odc.cache.token_cache import TokenCache
from airflow_provider_odc.compat import BaseHook, connection_form_widgets, mask_secret, ui_field_behaviour
from airflow_provider_odc.exceptions import OdcApiError, OdcError, OdcTokenEndpointRefusedError
from airflow_provider_odc.hooks.access import AccessHookMixin
from airflow_provider_odc.hooks.code_quality import CodeQualityHookMixin
from airflow_provider_odc.hooks.configurations import OdcConfigurationsMixin
from airflow_provider_odc.hooks.external_libraries import ExternalLibrariesHookMixin
from airflow_provider_odc.hooks.generated_code import GeneratedCodeHookMixin
from airflow_provider_odc.hooks.impact import OdcImpactMixin
from airflow_provider_odc.hooks.mobile_builds import MobileBuildsHookMixin
from airflow_provider_odc.hooks.promotion import PromotionHookMixin
from airflow_provider_odc.operations import OperationKind, body_errors, error_messages
from airflow_provider_odc.pacing import RequestPacer, server_clock
from airflow_provider_odc.request_core import (
    MAX_DETAIL,
    UNFOLLOWED_LOCATION,
    NeedToken,
    Reply,
    RequestCore,
    Send,
    Step,
    drive,
)
from airflow_provider_odc.request_core import json_body as _json_body
from airflow_provider_odc.retries import RetryPolicy, Unanswered
from airflow_provider_odc.scrub import FIELD_LIMIT, scrub
from airflow_provider_odc.settings import ConnectionLike, OdcConnectionSettings

if TYPE_CHECKING:
    import httpx

# The unpaginated wrappers whose one list may be null: builds, external library log messages.
_NULLABLE_WRAPPERS = ("builds", "validationMessages")


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


class OdcHook(
    AccessHookMixin,
    PromotionHookMixin,
    OdcConfigurationsMixin,
    OdcImpactMixin,
    CodeQualityHookMixin,
    GeneratedCodeHookMixin,
    MobileBuildsHookMixin,
    ExternalLibrariesHookMixin,
    BaseHook,
):
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
    #: Where the token cache keeps a connection's sealed token and its exchange lease: a store for a key
    #: (default: the Airflow Variable of that name). Read when a connection's process-wide cache is first
    #: built, by this hook or by the one inside ``OdcAsyncHook``; tests set a dict-backed store here.
    token_store: ClassVar[Callable[[str], TokenStore]] = VariableTokenStore

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
        settings = self.settings
        return self._retry_policy or RetryPolicy(
            max_retries=settings.max_retries, rate_limit_wait=settings.rate_limit_wait
        )

    @cached_property
    def session(self) -> requests.Session:
        """One keep-alive session per hook. ``verify`` goes on every request instead of here, because
        ``REQUESTS_CA_BUNDLE`` in the environment silently overrides ``Session.verify``. It never parses a
        ``Location`` (redirects are refused, and a malformed one would raise a bare ValueError)."""
        session = NoRedirectSession()
        session.headers["User-Agent"] = user_agent()
        session.headers["Accept"] = "application/json"
        return session

    def get_conn(self) -> requests.Session:
        return self.session

    @cached_property
    def core(self) -> RequestCore:
        """The decisions of this connection's calls (URL gate, retries, 401, errors), without I/O."""
        return self.request_core(reached_from="workers")

    def request_core(self, *, reached_from: str) -> RequestCore:
        """A request core on this connection's settings, retry policy and scrubber (OdcAsyncHook builds its
        own with ``reached_from="triggerer"``)."""
        settings = self.settings
        return RequestCore(
            conn_id=self.odc_conn_id,
            origin=settings.origin,
            secrets=(settings.client_secret, settings.cache_secret),
            retry=self.retry_policy,
            scrub=lambda text, tokens, limit: self.scrub(text, tokens=tokens, limit=limit),
            reached_from=reached_from,
            log=self.log,
        )

    @cached_property
    def pacer(self) -> RequestPacer | None:
        """The shared rate-limit ledger of this connection (``request_pacing`` extra), or None when off."""
        settings = self.settings
        if settings.request_pacing == "off":
            return None
        store_for = type(self).token_store
        clock = server_clock(settings.origin)
        return RequestPacer(settings.conn_id, store_for, clock, self._probe_date, self.retry_policy.sleep)

    def _probe_date(self) -> str | None:
        """ODC's ``Date`` from the OIDC discovery document, which no documented rate limit covers."""
        settings = self.settings
        url = discovery_url(settings.origin)
        try:
            response = self.session.get(url, timeout=settings.timeout, verify=settings.verify)
        except requests.RequestException:
            return None  # the paced request itself will say what is wrong with the portal
        return response.headers.get("Date")

    @cached_property
    def token_cache(self) -> TokenCache:
        settings = self.settings
        if settings.cache_mode == "off":
            return TokenCache(store=None, codec=None, refresh_margin=settings.refresh_margin)
        return TokenCache.shared((settings.cache_identity,), lambda: self._new_token_cache(settings))

    @classmethod
    def _new_token_cache(cls, settings: OdcConnectionSettings) -> TokenCache:
        """The process-wide cache of a connection identity: built once, not by every hook."""
        if settings.cache_mode != "variable":
            return TokenCache(store=None, codec=None, refresh_margin=settings.refresh_margin)
        ttl = exchange_lease_ttl(settings.timeout, RetryPolicy(max_retries=settings.max_retries))
        lease = ExchangeLease(cls.token_store(lease_key_for(settings.conn_id)), ttl=ttl)
        return TokenCache(
            store=cls.token_store(variable_key_for(settings.conn_id)),
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
        """Discovery (skipped when the token endpoint is known) and the client-credentials exchange.

        A known endpoint (the token cache's, maybe read from the Variable) that the URL gate refuses is
        dropped for a fresh discovery: an envelope sealed before the gate existed may hold a bad one.
        """
        token_endpoint = None
        if known_token_endpoint:
            try:
                token_endpoint = self._gate_token_endpoint(known_token_endpoint, source="the token cache")
            except OdcTokenEndpointRefusedError as refused:
                self.log.warning("%s Discovering the token endpoint again.", refused)
        token_endpoint = token_endpoint or self._discover()
        token = self._exchange(token_endpoint)
        return CachedToken(token=token, token_endpoint=token_endpoint)

    def _gate_token_endpoint(self, token_endpoint: str, *, source: str) -> str:
        """The token endpoint if the URL gate puts it on the connection's origin; the secret goes nowhere else."""
        settings = self.settings
        return validate_token_endpoint(
            token_endpoint,
            settings.origin,
            conn_id=settings.conn_id,
            source=source,
            secrets=(settings.client_secret, settings.cache_secret),
        )

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
            self._gate_token_endpoint(token_endpoint, source="the token request"),  # the secret's last gate
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
            absolute URL on the connection's own origin; the token goes nowhere else. Anything the URL
            gate (``auth/urls.py``) finds ambiguous, or on another origin, is an ``OdcUrlRefusedError``.
        """
        core = self.core

        def perform(step: Step) -> AccessToken | Reply[requests.Response] | Unanswered | None:
            if isinstance(step, NeedToken):
                return self._token(step.reject)
            if isinstance(step, Send):
                return self._send(step, params, json, headers, timeout)
            core.retry.sleep(step.seconds)
            return None

        reply: Reply[requests.Response] = drive(core.call(method, endpoint), perform)
        return reply.raw

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
        and the unpaginated wrappers (``{"builds": [...]}``, ``{"results": [...]}``; a null list is an
        empty one). Stops when the next offset is missing or null, or ``totalResults`` items were seen;
        when the page's totals say more items exist but it names no next offset, goes on at ``offset +
        count`` (ODC's documented meaning). An offset that was already requested, or an integer offset
        that goes back, is a server bug that would loop forever: an ``OdcApiError`` says so.
        """
        query = dict(params or {})
        if page_size is not None:
            query["limit"] = page_size
        offset = query.pop("offset", None)
        requested: set[Any] = {0 if offset is None else offset}  # no offset is the first page, offset 0
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
            total = total if isinstance(total, int) and not isinstance(total, bool) else None
            if total is not None and seen >= total:
                return
            if next_offset in (None, ""):
                if total is None or not (offset is None or isinstance(offset, int)):
                    return
                next_offset = (offset or 0) + len(items)  # totals say more: ODC's nextPageOffset = offset + count
            current = 0 if offset is None else offset
            backwards = isinstance(next_offset, int) and isinstance(current, int) and next_offset < current
            if next_offset in requested or backwards:
                after = "the first page" if offset is None else f"offset {offset!r}"
                raise OdcApiError(
                    f"named page offset {next_offset!r} after {after}: a page already read or an earlier one, "
                    f"so its paging would loop. The list was not completed ({seen} items read).",
                    conn_id=self.odc_conn_id,
                    step=f"GET {endpoint}",
                    method="GET",
                    path=endpoint,
                    status=None,
                )
            requested.add(next_offset)
            offset = next_offset

    # -- long-running operations -------------------------------------------------------------------

    def operation_status(
        self, kind: OperationKind, key: str, params: Mapping[str, Any] | None = None
    ) -> tuple[str | None, dict[str, Any]]:
        """The current status of an operation and its full body (never cached: ODC status changes)."""
        body = self.request_json("GET", kind.path(key), params=params)
        return kind.status_of(body), body if isinstance(body, dict) else {}

    def operation_errors(
        self,
        kind: OperationKind,
        key: str,
        params: Mapping[str, Any] | None = None,
        *,
        body: Mapping[str, Any] | None = None,
    ) -> list[str]:
        """What ODC says about a failed operation: the failure details of its status ``body`` and the
        Error lines of its messages (read with the ``params`` the kind needs, e.g. a native build's
        ``environmentKey`` and ``applicationKey``). A read failure is reported, not raised."""
        lines = body_errors(body) if body is not None else []
        if kind.messages_path is None:
            return lines
        scope = {name: (params or {})[name] for name in kind.required_params if (params or {}).get(name)}
        try:
            items = list(self.paginate(kind.messages_path.format(key=key), scope or None, max_items=1000))
        except OdcError as exc:
            return [*lines, f"(the operation's messages could not be read: {exc})"]
        messages = error_messages(items, severity_field=kind.severity_field)
        return [self.scrub(line, limit=MAX_DETAIL) for line in [*lines, *messages]]  # ODC's text

    # -- ODC's APIs, typed (paths, bodies and results live in airflow_provider_odc.api) -----------------

    def list_stages(self) -> list[Stage]:
        """Every stage the API client can see, in ODC's stage order (Development first)."""
        return portfolios.stages_of(self.request_json("GET", portfolios.ENVIRONMENTS))

    def resolve_stage(self, stage: str) -> Stage:
        """A stage by key (any case) or by name, e.g. ``"Production"`` (case-insensitive); a name that
        several portfolios use is an OdcError listing them, to pass a key."""
        return portfolios.pick_stage(self.list_stages(), stage)

    def list_deployed_assets(
        self,
        *,
        stage_key: str | None = None,
        asset_key: str | None = None,
        asset_types: list[str] | None = None,
        page_size: int | None = None,
    ) -> list[DeployedAsset]:
        """Which assets run on which stages, at which revision and build (Portfolio API)."""
        params = portfolios.deployed_assets_params(stage_key=stage_key, asset_key=asset_key, asset_types=asset_types)
        items = self.paginate(portfolios.DEPLOYED_ASSETS, params, page_size=page_size)
        return [DeployedAsset.from_json(item) for item in items]

    def list_assets(
        self,
        *,
        name_contains: str | None = None,
        asset_types: list[str] | None = None,
        sort: str | None = None,
        page_size: int | None = None,
        max_items: int | None = None,
    ) -> list[Asset]:
        """Assets at their latest revision (``sort``: ``name`` or ``createdAt``, ``-`` for descending)."""
        params = assets.list_params(name_contains=name_contains, asset_types=asset_types, sort=sort)
        items = self.paginate(assets.ASSETS, params, page_size=page_size, max_items=max_items)
        return [Asset.from_json(item) for item in items]

    def find_asset(self, asset: str) -> Asset:
        """An asset by key (any case) or by exact name; none or several of that name is an OdcError."""
        if is_key(asset):
            return Asset.from_json(self.request_json("GET", assets.asset_path(asset)))
        found = self.list_assets(name_contains=asset, page_size=assets.NAME_SEARCH_PAGE_SIZE)
        return assets.named(found, asset)

    def resolve_revision(self, asset_key: str, revision: int | str) -> int:
        """A revision number from a number, ``"latest"`` or ``"highest-tag"``."""
        wanted = assets.revision_number(revision)
        if isinstance(wanted, int):
            return wanted
        try:
            found = Asset.from_json(self.request_json("GET", assets.alias_revision_path(asset_key, wanted)))
        except OdcApiError as exc:
            if wanted == "highest-tag" and exc.status == 404:
                raise OdcError(
                    f"ODC asset {asset_key} has no tagged revision; tag one first or pass a number."
                ) from None
            raise
        if found.revision is None:
            raise OdcError(f"ODC answered the {wanted} revision of asset {asset_key} without its 'revision'.")
        return found.revision

    def tag_revision(self, asset_key: str, revision: int, tag: str, release_notes: str | None = None) -> None:
        """Tag a revision ``MAJOR.MINOR.PATCH`` (higher than the asset's highest tag), with release notes."""
        self.request("PATCH", assets.revision_path(asset_key, revision), json=assets.tag_body(tag, release_notes))

    def start_build(
        self, asset_key: str, revision: int, build_type: BuildType = "Release", *, memory: TryMemory | None = None
    ) -> str:
        """Start a build and return its ``buildKey``. The POST is never sent twice: when its answer is lost,
        the build ODC lists for it is returned instead (``airflow_provider_odc.attach``); with an operator's
        ``memory``, the build an earlier try started."""
        match = OperationMatch("build", asset_key, revision=revision, build_type=build_type)
        launch = Launch(builds.BUILDS, builds.start_body(asset_key, revision, build_type), match)
        return start_once(self, launch, memory or TryMemory({}))

    def get_build(self, build_key: str) -> Build:
        return Build.from_json(self.request_json("GET", builds.build_path(build_key)))

    def list_builds(
        self,
        asset_key: str,
        revision: int | None = None,
        build_type: BuildType | None = None,
        *,
        max_items: int | None = None,
    ) -> list[Build]:
        """The builds of an asset, or of one revision (ODC's list is not paginated), optionally of one type."""
        params = builds.list_params(asset_key, revision, build_type)
        return [Build.from_json(item) for item in self.paginate(builds.BUILDS, params, max_items=max_items)]

    def reusable_build(self, asset_key: str, revision: int, *, finished_only: bool) -> Build | None:
        """The newest Release build of a revision that finished (or, unless ``finished_only``, is going)."""
        return builds.reusable(self.list_builds(asset_key, revision, "Release"), finished_only=finished_only)

    def start_deployment(
        self,
        asset_key: str,
        stage_key: str,
        *,
        operation: DeploymentOperationType = "Deploy",
        revision: int | None = None,
        build_key: str | None = None,
        memory: TryMemory | None = None,
    ) -> str:
        """Start a Deploy (a revision's Release ``build_key``), ApplyConfigs or Undeploy; return its key.
        Never sent twice, like ``start_build``."""
        body = deployments.deployment_body(operation, asset_key, stage_key, revision=revision, build_key=build_key)
        match = OperationMatch(
            "deployment", asset_key, revision=revision, stage_key=stage_key, operation=operation, build_key=build_key
        )
        return start_once(self, Launch(deployments.DEPLOYMENTS, body, match), memory or TryMemory({}))

    def get_deployment(self, key: str) -> DeploymentOperation:
        return DeploymentOperation.from_json(self.request_json("GET", deployments.DEPLOYMENT.path(key)))

    def list_deployment_operations(
        self,
        asset_key: str | None = None,
        *,
        stage_key: str | None = None,
        revision: int | None = None,
        operation: DeploymentOperationType | None = None,
        created_since: str | None = None,
        sort: str | None = None,
        page_size: int | None = None,
        max_items: int | None = None,
    ) -> list[DeploymentOperation]:
        """Deployment operations, filtered as ODC allows (``sort="-CreatedAt"``: newest first)."""
        params = deployments.list_params(
            asset_key,
            stage_key=stage_key,
            revision=revision,
            operation=operation,
            created_since=created_since,
            sort=sort,
        )
        items = self.paginate(deployments.DEPLOYMENTS, params, page_size=page_size, max_items=max_items)
        return [DeploymentOperation.from_json(item) for item in items]

    def start_publish(
        self, asset_key: str, revision: int, *, stage_key: str | None = None, memory: TryMemory | None = None
    ) -> str:
        """Publish a revision (``stage_key``: ODC's hotfix scenario); return the operation key. Never sent twice."""
        match = OperationMatch("publish", asset_key, revision, stage_key=stage_key, operation=deployments.PUBLISH)
        launch = Launch(deployments.PUBLISHES, deployments.publish_body(asset_key, revision, stage_key), match)
        return start_once(self, launch, memory or TryMemory({}))

    def get_publish(self, key: str) -> DeploymentOperation:
        return DeploymentOperation.from_json(self.request_json("GET", deployments.PUBLISH_KIND.path(key)))

    def list_publish_operations(
        self,
        asset_key: str | None = None,
        *,
        stage_key: str | None = None,
        revision: int | None = None,
        created_since: str | None = None,
        sort: str | None = None,
        page_size: int | None = None,
        max_items: int | None = None,
    ) -> list[DeploymentOperation]:
        """Publish operations, filtered as ODC allows (``sort="-CreatedAt"``: newest first)."""
        params = deployments.list_params(
            asset_key, stage_key=stage_key, revision=revision, created_since=created_since, sort=sort
        )
        items = self.paginate(deployments.PUBLISHES, params, page_size=page_size, max_items=max_items)
        return [DeploymentOperation.from_json(item) for item in items]

    def scrub(self, text: object, *, tokens: Iterable[str | None] = (), limit: int = FIELD_LIMIT) -> str:
        """``text`` from a server, cut to ``limit``, without this connection's client secret, cache secret,
        in-memory token or ``tokens``, in any encoding (see ``airflow_provider_odc.scrub``).

        Reads only what the hook already holds: scrubbing never parses the connection or fetches a token.
        """
        settings: OdcConnectionSettings | None = self.__dict__.get("settings")
        cache: TokenCache | None = self.__dict__.get("token_cache")
        current = cache.current() if cache is not None else None
        secrets = [*tokens, current.value if current else None]
        if settings is None:
            return scrub(text, secrets, limit=limit)
        secrets += [settings.client_secret, settings.cache_secret]
        return scrub(text, secrets, basic=(settings.client_id, settings.client_secret), limit=limit)

    def _send(
        self,
        send: Send,
        params: Mapping[str, Any] | None,
        json: Any,
        headers: Mapping[str, str] | None,
        timeout: float | None,
    ) -> Reply[requests.Response] | Unanswered:
        """One HTTP exchange with requests: the answer as plain values, or the failure classified."""
        settings = self.settings
        pacer = self.pacer
        if pacer is not None:
            pacer.before_send(send.method, send.path, max_wait=self.retry_policy.rate_limit_wait)
        started = time.monotonic()
        try:
            response = self.session.request(
                send.method,
                send.url,
                params=params,
                json=json,
                headers=dict(headers or {}),
                auth=_BearerAuth(send.token.value),
                timeout=timeout or settings.timeout,
                verify=settings.verify,
                allow_redirects=False,
            )
        except Exception as exc:
            failure = unanswered(exc)
            if failure is None:
                raise
            return failure
        if pacer is not None:
            pacer.observe(response.headers)
        self.log.debug(
            "ODC %s %s -> %s in %.0f ms",
            send.method,
            send.path,
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        return Reply(response.status_code, response.headers, response.content, response)

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
        try:
            settings = self.settings
        except OdcError as exc:
            return False, exc.describe(named=False)
        except Exception as exc:  # e.g. the connection does not exist
            return False, f"The connection could not be read: {type(exc).__name__}: {exc}"
        try:
            token_endpoint = self._discover()
        except OdcError as exc:
            return False, f"Step 1 of 2 (OIDC discovery) failed. {exc.describe(named=False)}"
        try:
            token = self._exchange(token_endpoint)
        except OdcError as exc:
            return False, f"Step 2 of 2 (token request) failed. {exc.describe(named=False)}"
        return True, (
            f"Connected to {settings.origin}: discovery found the token endpoint and ODC issued an access "
            f"token valid for {token.lifetime:.0f} s."
        )


def _items_and_page(body: Any, endpoint: str) -> tuple[list[Any], dict[str, Any] | None]:
    """The items of one response and its ``page`` object (None for unpaginated wrappers).

    The specs declare every list nullable: ``{"results": null}`` or ``{"builds": null}`` is an empty list.
    """
    if isinstance(body, list):
        return body, None
    if isinstance(body, dict):
        page = body.get("page")
        if "results" in body and (body["results"] is None or isinstance(body["results"], list)):
            return body["results"] or [], page if isinstance(page, dict) else None
        lists = [value for value in body.values() if isinstance(value, list)]
        if len(lists) == 1:  # {"builds": [...]} and similar wrappers
            return lists[0], None
        if not lists and any(body.get(name, ...) is None for name in _NULLABLE_WRAPPERS):
            return [], None
    raise OdcError(f"ODC {endpoint} did not return a list, a 'results' page or a single-list wrapper.")


def json_body(response: requests.Response | httpx.Response, method: str, path: str) -> Any:
    """The parsed body of a successful response, or an OdcApiError that says what came instead."""
    return _json_body(response.status_code, response.headers, response.content, method, path)


__all__ = ["UNFOLLOWED_LOCATION", "OdcHook", "envelope_codec_for", "json_body", "user_agent"]
