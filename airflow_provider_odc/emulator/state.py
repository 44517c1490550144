"""Thread-safe state of one ODC emulator: credentials, issued tokens, counters, faults, config and releases.

The HTTP app (event-loop thread), the in-process helpers on ``OdcEmulator`` (test thread) and any number of
client threads touch this object at once, so every mutable field is guarded by one ``threading.Lock`` that
is held only for short, non-blocking sections. Its parts, the release lifecycle (``release.ReleaseLifecycle``:
revisions, tags, builds, deploy and publish operations, rate limits, ``fail_next``) and the other long-running
jobs (``long_running.LongRunningJobs``), share that lock, the config and the clock through one ``Runtime``.
Nothing here knows about FastAPI or HTTP.
"""

from __future__ import annotations

import collections
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, Literal

import jwt
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from airflow_provider_odc.emulator.access import AccessDirectory
from airflow_provider_odc.emulator.configurations import StageConfigurations
from airflow_provider_odc.emulator.long_running import FAILURE_KINDS as JOB_FAILURE_KINDS
from airflow_provider_odc.emulator.long_running import LongRunningJobs
from airflow_provider_odc.emulator.mobile_builds import MobileSettings
from airflow_provider_odc.emulator.release import OPERATION_KINDS, ReleaseLifecycle
from airflow_provider_odc.emulator.runtime import SECONDS, ConfigChange, EmulatorConfig, Runtime
from airflow_provider_odc.emulator.seed import build_seed
from airflow_provider_odc.emulator.storage import PresignedStorage

DEFAULT_CLIENT_ID = "odc-emulator-client"
DEFAULT_TOKEN_LIFETIME = 43200  # 12 h, as documented for ODC access tokens.
TOKEN_SCOPE = "profile email"
REQUEST_LOG_SIZE = 1000
UNSET: Any = object()
# PyJWT checks the signature and that a jti is present; lifetime and revocation are the emulator's own.
TOKEN_CHECKS: jwt.types.Options = {"verify_exp": False, "verify_iat": False, "verify_nbf": False, "require": ["jti"]}


def generate_client_secret() -> str:
    """A fresh secret that contains ``+ / = &``: a client that form-encodes it zero or two times fails."""
    return secrets.token_urlsafe(24) + "+/=&"


def _upper(method: Any) -> Any:
    return method.upper() if isinstance(method, str) else method


class Fault(BaseModel):
    """One injected misbehaviour: answer ``status`` (or just wait ``latency`` s) for ``count`` requests.

    ``drop_response``: process the request as usual, then cut the connection after the status line and
    headers, so the client never reads the body: a POST ODC accepted whose answer was lost. Validated as
    given (no JSON type is coerced), in-process and over ``/_emulator/faults`` alike.
    """

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")

    target: Literal["api", "token", "discovery", "any"] = "api"
    status: Annotated[int, Field(ge=400, le=599)] | None = None
    count: Annotated[int, Field(ge=1)] = 1
    retry_after: Annotated[str | None, BeforeValidator(lambda v: str(v) if type(v) is int else v)] = None
    latency: Annotated[float, Field(ge=0)] = 0.0
    path_prefix: str | None = None
    method: Annotated[Literal["GET", "POST", "PUT", "PATCH", "DELETE"] | None, BeforeValidator(_upper)] = None
    drop_response: bool = False

    @model_validator(mode="after")
    def _does_something(self) -> Fault:
        if self.drop_response and self.status is not None:
            raise ValueError("drop_response processes the request: it takes no status")
        if self.status is None and self.latency == 0 and not self.drop_response:
            raise ValueError("a fault needs a status, a latency, drop_response, or a combination")
        return self

    def matches(self, kind: str, path: str, method: str | None = None) -> bool:
        """Whether a request of ``kind`` (api/token/discovery) on ``path`` with ``method`` is affected."""
        if self.target not in ("any", kind):
            return False
        if self.method is not None and method is not None and method.upper() != self.method:
            return False
        return self.path_prefix is None or path.startswith(self.path_prefix)

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump()


@dataclass
class _PendingFault:
    fault: Fault
    remaining: int


@dataclass
class RequestRecord:
    """What the request log keeps: never header values or form values, so secrets cannot leak."""

    time: float
    method: str
    path: str
    query: str
    authorization: bool
    client: str | None
    status: int | None = None
    form_fields: list[str] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "authorization": self.authorization,
            "client": self.client,
            "status": self.status,
            "form_fields": None if self.form_fields is None else list(self.form_fields),
        }


@dataclass
class _Counters:
    token_requests: int = 0
    token_exchanges: int = 0
    discovery_requests: int = 0
    api_calls: dict[str, int] = field(default_factory=dict)
    unauthorized: int = 0
    faults_served: int = 0
    connections: set[tuple[str, int]] = field(default_factory=set)


class EmulatorState:
    """Credentials, tokens, counters, faults, config and clock; the release lifecycle (``release``) and the other
    long-running jobs (``jobs``) are its parts, sharing its ``Runtime``. The seed is served without locking."""

    def __init__(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        token_lifetime: int = DEFAULT_TOKEN_LIFETIME,
        asset_count: int = 25,
        *,
        rate_limits: bool = True,
        rate_limit_retry_after: str | int | None = None,
    ) -> None:
        if token_lifetime < 1:
            raise ValueError("token_lifetime must be >= 1 second")
        self.client_id = client_id or DEFAULT_CLIENT_ID
        # The "subject" ODC records as builtBy / deployedBy / taggedBy for this API client.
        self.client_subject = str(uuid.uuid5(uuid.NAMESPACE_URL, f"odc-emulator-client:{self.client_id}"))
        # Fixed for the lifetime of the instance, random across instances, like a tenant's Keycloak realm.
        self.realm = str(uuid.uuid4())
        self._signing_key = secrets.token_bytes(32)
        self._key_id = secrets.token_hex(8)
        self._runtime = Runtime(
            EmulatorConfig(
                token_lifetime=token_lifetime,
                client_secret=client_secret or generate_client_secret(),
                **ConfigChange.model_validate(
                    {"rate_limits": rate_limits, "rate_limit_retry_after": rate_limit_retry_after}
                ).changes(),
            )
        )
        self._lock = self._runtime.lock
        self._tokens: dict[str, float] = {}  # jti -> expiry on the emulator clock
        # Every token minted (reset does not forget them), so that leak scans know what to look for.
        self._minted: collections.deque[str] = collections.deque(maxlen=10_000)
        self._faults: collections.deque[_PendingFault] = collections.deque()
        self._counters = _Counters()
        self._requests: collections.deque[RequestRecord] = collections.deque(maxlen=REQUEST_LOG_SIZE)
        seed = build_seed(asset_count)
        self.portfolio_key = seed.portfolio_key
        self.environments = seed.environments
        # The parts: revisions, builds, deployments, rate windows and fail_next; then the other jobs.
        failure_kinds = (*OPERATION_KINDS, *JOB_FAILURE_KINDS)
        self.release = ReleaseLifecycle(self._runtime, seed, self.client_subject, failure_kinds)
        self.jobs = LongRunningJobs(self._runtime, self.release)
        self.access = AccessDirectory(self._runtime, self.release, self.jobs)
        self.configurations = StageConfigurations(self._runtime, self.release)
        self.storage = PresignedStorage(self._runtime)
        self.mobile = MobileSettings(self._runtime, self.release, self.jobs)

    # Paths -------------------------------------------------------------------------------------------

    @property
    def realm_path(self) -> str:
        return f"/auth/realms/{self.realm}"

    @property
    def token_path(self) -> str:
        return f"{self.realm_path}/protocol/openid-connect/token"

    # Clock and config --------------------------------------------------------------------------------

    def now(self) -> float:
        """The emulator's clock: wall time plus the configured skew."""
        with self._lock:
            return self._now_locked()

    def _now_locked(self) -> float:
        return self._runtime.now_locked()

    def advance(self, seconds: float) -> float:
        """Make ``seconds`` pass on the emulator clock at once (tokens, operations, rate windows); new offset."""
        step: float = SECONDS.validate_python(seconds)
        with self._lock:
            config = self._runtime.config
            self._runtime.config = replace(config, clock_offset=config.clock_offset + step)
            return self._runtime.config.clock_offset

    def config(self) -> EmulatorConfig:
        """A snapshot copy; callers never see a half-applied change."""
        with self._lock:
            return replace(self._runtime.config)

    def config_view(self) -> dict[str, Any]:
        config = self.config()
        return {
            "client_id": self.client_id,
            "client_secret": config.client_secret,
            "token_lifetime": config.token_lifetime,
            "discovery": {"mode": config.discovery_mode, "document": config.discovery_document},
            "token_redirect_to": config.token_redirect_to,
            "clock_offset": config.clock_offset,
            "build_durations": {"pending": config.build_pending, "running": config.build_running},
            "operation_duration": config.operation_duration,
            "rate_limits": config.rate_limits,
            "post_limit_per_minute": config.post_limit_per_minute,
            "domain_limit_per_minute": config.domain_limit_per_minute,
            "rate_limit_retry_after": config.rate_limit_retry_after,
        }

    def configure(
        self,
        *,
        token_lifetime: int | None = None,
        client_secret: str | None = None,
        discovery: dict[str, Any] | None = None,
        token_redirect_to: str | None = UNSET,
        clock_offset: float | None = None,
        build_durations: dict[str, float] | None = None,
        operation_duration: float | None = None,
        rate_limits: bool | None = None,
        post_limit_per_minute: int | None = UNSET,
        domain_limit_per_minute: int | None = UNSET,
        rate_limit_retry_after: str | int | None = UNSET,
    ) -> dict[str, Any]:
        """Validate everything first, then apply atomically; returns the resulting config view.

        ``build_durations`` (``{"pending": s, "running": s}``, either key) and ``operation_duration`` apply to
        operations started afterwards. ``rate_limits=False`` lifts every rate limit; ``post_limit_per_minute``
        (build and deployment POSTs, per endpoint) and ``domain_limit_per_minute`` (the domains ODC limits to
        100) change those limits, ``None`` lifts them. ``rate_limit_retry_after`` is ``None`` (no header, as
        ODC documents none), ``"auto"`` (seconds until a slot frees) or a fixed number of seconds.
        """
        given = {name: value for name, value in locals().items() if name in ConfigChange.model_fields}
        changes = ConfigChange(**{name: value for name, value in given.items() if value is not UNSET}).changes()
        with self._lock:
            self._runtime.config = replace(self._runtime.config, **changes)
        return self.config_view()

    # Credentials and tokens --------------------------------------------------------------------------

    def check_client(self, client_id: str, client_secret: str) -> bool:
        """Constant-time comparison against the current (possibly rotated) secret."""
        expected_secret = self.config().client_secret
        id_ok = hmac.compare_digest(client_id.encode(), self.client_id.encode())
        secret_ok = hmac.compare_digest(client_secret.encode(), expected_secret.encode())
        return id_ok and secret_ok

    def issue_token(self, issuer: str) -> tuple[str, int]:
        """Mint an HS256 JWT access token (PyJWT), remember its ``jti``; returns (token, lifetime)."""
        with self._lock:
            now = self._now_locked()
            lifetime = self._runtime.config.token_lifetime
            jti = str(uuid.uuid4())
            self._tokens[jti] = now + lifetime
            self._counters.token_exchanges += 1
            if len(self._tokens) > 10_000:
                self._tokens = {key: exp for key, exp in self._tokens.items() if exp > now}
        claims = {
            "exp": int(now + lifetime),
            "iat": int(now),
            "jti": jti,
            "iss": issuer,
            "sub": self.client_id,
            "azp": self.client_id,
            "typ": "Bearer",
            "scope": TOKEN_SCOPE,
            "clientId": self.client_id,
        }
        token = jwt.encode(claims, self._signing_key, algorithm="HS256", headers={"kid": self._key_id})
        with self._lock:
            self._minted.append(token)
        return token, lifetime

    def minted_tokens(self) -> list[str]:
        """Every access token this instance has issued (the latest 10,000), including before a reset."""
        with self._lock:
            return list(self._minted)

    def token_problem(self, authorization: str | None) -> str | None:
        """Why this ``Authorization`` header is not acceptable, or ``None`` when the bearer token is good."""
        if not authorization:
            return "No access token was provided. Send 'Authorization: Bearer <access_token>'."
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "The Authorization header must use the Bearer scheme."
        try:
            # Expiry is checked below on the emulator clock (which a test may skew), not PyJWT's wall clock.
            claims = jwt.decode(token.strip(), self._signing_key, algorithms=["HS256"], options=TOKEN_CHECKS)
        except jwt.InvalidSignatureError:
            return "The access token signature is invalid."
        except jwt.InvalidTokenError:
            return "The access token is malformed."
        jti = claims["jti"]
        if not isinstance(jti, str):
            return "The access token is malformed."
        with self._lock:
            expiry = self._tokens.get(jti)
            now = self._now_locked()
        if expiry is None:
            return "The access token was revoked or was not issued by this server."
        if now >= expiry:
            return "The access token expired."
        return None

    def revoke_tokens(self) -> int:
        """Invalidate every issued token (like suspending the API client); returns how many."""
        with self._lock:
            revoked = len(self._tokens)
            self._tokens.clear()
        return revoked

    # Faults ------------------------------------------------------------------------------------------

    def add_fault(
        self,
        target: str = "api",
        status: int | None = None,
        count: int = 1,
        retry_after: str | int | None = None,
        latency: float = 0.0,
        path_prefix: str | None = None,
        method: str | None = None,
        drop_response: bool = False,
    ) -> Fault:
        """Queue a fault for the next ``count`` matching requests (FIFO among faults that match)."""
        fault = Fault(
            target=target,  # type: ignore[arg-type]  # checked by the model
            status=status,
            count=count,
            retry_after=retry_after,  # type: ignore[arg-type]  # an int becomes its text
            latency=latency,
            path_prefix=path_prefix,
            method=method,  # type: ignore[arg-type]  # checked (upper-cased) by the model
            drop_response=drop_response,
        )
        with self._lock:
            self._faults.append(_PendingFault(fault, count))
        return fault

    def take_fault(self, kind: str, path: str, method: str | None = None) -> Fault | None:
        """Consume one use of the oldest fault matching this request, if any."""
        with self._lock:
            for pending in self._faults:
                if pending.fault.matches(kind, path, method):
                    pending.remaining -= 1
                    if pending.remaining == 0:
                        self._faults.remove(pending)
                    self._counters.faults_served += 1
                    return pending.fault
        return None

    def pending_faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{**pending.fault.as_dict(), "remaining": pending.remaining} for pending in self._faults]

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # Counters and request log ------------------------------------------------------------------------

    def count_token_request(self) -> None:
        with self._lock:
            self._counters.token_requests += 1

    def count_discovery_request(self) -> None:
        with self._lock:
            self._counters.discovery_requests += 1

    def count_api_call(self, key: str) -> None:
        """``key`` is ``"<METHOD> <route template>"``, e.g. ``GET /api/asset-repository/v1/assets``."""
        with self._lock:
            self._counters.api_calls[key] = self._counters.api_calls.get(key, 0) + 1

    def count_unauthorized(self) -> None:
        with self._lock:
            self._counters.unauthorized += 1

    def record_request(
        self, method: str, path: str, query: str, authorization: bool, client: tuple[str, int] | None
    ) -> RequestRecord:
        """Log a non-control request and remember its TCP connection (to prove keep-alive reuse)."""
        record = RequestRecord(
            time=time.time(),
            method=method,
            path=path,
            query=query,
            authorization=authorization,
            client=None if client is None else f"{client[0]}:{client[1]}",
        )
        with self._lock:
            self._requests.append(record)
            if client is not None:
                self._counters.connections.add((client[0], client[1]))
        return record

    def note_response(self, record: RequestRecord, status: int) -> None:
        with self._lock:
            record.status = status

    def note_form_fields(self, record: RequestRecord | None, names: list[str]) -> None:
        if record is not None:
            with self._lock:
                record.form_fields = list(names)

    def recent_requests(self, limit: int = 50) -> list[dict[str, Any]]:
        with self._lock:
            records = list(self._requests)[-limit:] if limit > 0 else []
            return [record.as_dict() for record in records]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            counters = self._counters
            return {
                "token_requests": counters.token_requests,
                "token_exchanges": counters.token_exchanges,
                "discovery_requests": counters.discovery_requests,
                "api_calls": dict(counters.api_calls),
                "api_calls_total": sum(counters.api_calls.values()),
                "unauthorized": counters.unauthorized,
                "connections": len(counters.connections),
                "faults_served": counters.faults_served,
                **self.release.stats_locked(),
            }

    def reset(self) -> None:
        """Back to a freshly started instance: operations, tags, deployments and rate windows as seeded too."""
        self.release.reset()
        self.jobs.reset()
        self.access.reset()
        self.configurations.reset()
        self.storage.reset()
        self.mobile.reset()
        with self._lock:
            self._runtime.config = replace(self._runtime.defaults)
            self._tokens.clear()
            self._faults.clear()
            self._counters = _Counters()
            self._requests.clear()

    # Shared with the asset list and the rate-limit gate -------------------------------------------------

    def current_assets(self) -> list[dict[str, Any]]:
        """The latest revision of every asset (with tags as patched), in seed order."""
        return self.release.current_assets()
