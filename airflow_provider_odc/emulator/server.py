"""``OdcEmulator``: the emulator app served by uvicorn on a loopback socket in a background thread.

The socket is bound here (port 0 by default) and handed to uvicorn, so the real port is known before the
first request and parallel test runs never fight over a fixed port. The same object offers in-process
versions of the ``/_emulator`` controls, so tests can arrange faults without extra HTTP plumbing.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from types import TracebackType
from typing import Any
from urllib.parse import quote

import uvicorn

from airflow_provider_odc.emulator.app import DISCOVERY_PATH, create_app
from airflow_provider_odc.emulator.state import DEFAULT_TOKEN_LIFETIME, UNSET, EmulatorState, Fault
from airflow_provider_odc.emulator.web import CONTROL_PREFIX

STARTUP_TIMEOUT = 15.0
SHUTDOWN_TIMEOUT = 10.0


class OdcEmulator:
    """A local, real-socket ODC: discovery, OAuth2 client credentials, assets and environments, and the
    release lifecycle (revisions and tags, builds, deploy/publish operations, deployed assets) and ODC's
    documented rate limits.

    Example::

        with OdcEmulator() as odc:
            session = requests.Session()
            discovery = session.get(f"{odc.base_url}/identity/.well-known/openid-configuration").json()
            token = session.post(discovery["token_endpoint"], data={
                "grant_type": "client_credentials",
                "client_id": odc.client_id,
                "client_secret": odc.client_secret,
            }).json()["access_token"]
            session.get(f"{odc.base_url}/api/portfolios/v2/environments",
                        headers={"Authorization": f"Bearer {token}"})
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        client_id: str | None = None,
        client_secret: str | None = None,
        token_lifetime: int = DEFAULT_TOKEN_LIFETIME,
        asset_count: int = 25,
        *,
        rate_limits: bool = True,
        rate_limit_retry_after: str | int | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
    ) -> None:
        """``rate_limits`` and ``rate_limit_retry_after`` are the defaults ``reset()`` restores: ODC's documented
        limits and no ``Retry-After`` header (ODC promises none); ``"auto"`` or whole seconds opt in to one.

        ``ssl_certfile`` and ``ssl_keyfile`` (PEM) serve https instead of http: the provider speaks plain http
        to loopback hosts only, so an emulator that other hosts reach (a Celery fleet) needs a certificate.
        """
        self.host = host
        self.ssl_certfile = ssl_certfile
        self.ssl_keyfile = ssl_keyfile
        self._requested_port = port
        self.state = EmulatorState(
            client_id=client_id,
            client_secret=client_secret,
            token_lifetime=token_lifetime,
            asset_count=asset_count,
            rate_limits=rate_limits,
            rate_limit_retry_after=rate_limit_retry_after,
        )
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._port: int | None = None

    # Lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> OdcEmulator:
        """Bind, serve in a daemon thread and return once uvicorn accepts connections."""
        if self._thread is not None:
            raise RuntimeError("OdcEmulator is already started")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self._requested_port))
            sock.listen(2048)
        except OSError:
            sock.close()
            raise
        config = uvicorn.Config(
            create_app(self.state),
            log_config=None,  # Do not reconfigure the host process's logging.
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=30,
            timeout_graceful_shutdown=1,
            ssl_certfile=self.ssl_certfile,
            ssl_keyfile=self.ssl_keyfile,
        )
        self._socket = sock
        self._port = sock.getsockname()[1]
        self._server = uvicorn.Server(config)
        self._error = None
        self._thread = threading.Thread(target=self._serve, name=f"odc-emulator-{self._port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                error = self._error
                self.stop()
                raise RuntimeError("The ODC emulator failed to start") from error
            time.sleep(0.005)
        return self

    def _serve(self) -> None:
        assert self._server is not None and self._socket is not None
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as error:  # Reported by start(); a thread cannot raise to its creator.
            self._error = error

    def stop(self) -> None:
        """Stop accepting, close idle keep-alive connections and join the thread (idempotent)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(SHUTDOWN_TIMEOUT)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(SHUTDOWN_TIMEOUT)
        if self._socket is not None:
            self._socket.close()
        self._server = None
        self._thread = None
        self._socket = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> OdcEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # Addresses and credentials -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("OdcEmulator is not started; call start() or use it as a context manager")
        return self._port

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self.ssl_certfile else "http"
        return f"{scheme}://{host}:{self.port}"

    @property
    def control_url(self) -> str:
        return f"{self.base_url}{CONTROL_PREFIX}"

    @property
    def discovery_url(self) -> str:
        return f"{self.base_url}{DISCOVERY_PATH}"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}{self.state.token_path}"

    @property
    def client_id(self) -> str:
        return self.state.client_id

    @property
    def client_secret(self) -> str:
        """The current secret (changes after ``configure(client_secret=...)``, restored by ``reset()``)."""
        return self.state.config().client_secret

    # Airflow connection ------------------------------------------------------------------------------

    def connection_dict(self, conn_type: str = "odc") -> dict[str, Any]:
        """Airflow connection fields; ``json.dumps`` of this works as ``AIRFLOW_CONN_<ID>``."""
        return {"conn_type": conn_type, "host": self.base_url, "login": self.client_id, "password": self.client_secret}

    def connection_json(self, conn_type: str = "odc") -> str:
        return json.dumps(self.connection_dict(conn_type))

    def connection_uri(self, conn_type: str = "odc") -> str:
        """Airflow URI form that keeps the ``http://`` scheme in ``host`` (``odc://http://id:secret@h%3Ap``)."""
        authority = f"{self.host}:{self.port}"
        scheme = "https" if self.ssl_certfile else "http"
        return (
            f"{conn_type}://{scheme}://{quote(self.client_id, safe='')}:{quote(self.client_secret, safe='')}"
            f"@{quote(authority, safe='')}"
        )

    # In-process test controls (same behaviour as the /_emulator endpoints) ---------------------------

    def stats(self) -> dict[str, Any]:
        return self.state.stats()

    def reset(self) -> None:
        self.state.reset()

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
        return self.state.add_fault(
            target=target,
            status=status,
            count=count,
            retry_after=retry_after,
            latency=latency,
            path_prefix=path_prefix,
            method=method,
            drop_response=drop_response,
        )

    def pending_faults(self) -> list[dict[str, Any]]:
        return self.state.pending_faults()

    def clear_faults(self) -> None:
        self.state.clear_faults()

    def revoke_tokens(self) -> int:
        return self.state.revoke_tokens()

    def minted_tokens(self) -> list[str]:
        """In-process only (no HTTP route): every token issued so far, for leak scans to search for."""
        return self.state.minted_tokens()

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
        """Change settings at runtime (``reset()`` restores them); see ``EmulatorState.configure``."""
        return self.state.configure(
            token_lifetime=token_lifetime,
            client_secret=client_secret,
            discovery=discovery,
            token_redirect_to=token_redirect_to,
            clock_offset=clock_offset,
            build_durations=build_durations,
            operation_duration=operation_duration,
            rate_limits=rate_limits,
            post_limit_per_minute=post_limit_per_minute,
            domain_limit_per_minute=domain_limit_per_minute,
            rate_limit_retry_after=rate_limit_retry_after,
        )

    def config(self) -> dict[str, Any]:
        return self.state.config_view()

    def recent_requests(self, limit: int = 50) -> list[dict[str, Any]]:
        return self.state.recent_requests(limit)

    # Release lifecycle controls ----------------------------------------------------------------------

    def advance(self, seconds: float) -> float:
        """Let ``seconds`` pass on the emulator clock without sleeping; returns the new ``clock_offset``."""
        return self.state.advance(seconds)

    def fail_next(self, kind: str, count: int = 1, messages: list[str] | None = None) -> dict[str, Any]:
        """The next ``count`` operations of ``kind`` (build, deploy, apply_configs, undeploy, publish) fail.

        They are accepted (201) and end in ``FinishedWithErrors`` (builds) or ``FinishedWithError``, with each
        of ``messages`` as an Error line in their log / messages. The other long-running kinds
        (``generated_code``, ``deployment_analysis``, ``deletion_analysis``, ``code_analysis``,
        ``external_library``, ``native_build``, ``bulk_users``) end in their failure status with the messages
        where ODC reports them; ``deployment_analysis_errors`` / ``deletion_analysis_errors`` (``_warnings``)
        make the next analysis finish with an ``ErrorsFound`` (``WarningsFound``) report listing them.
        """
        return self.state.fail_next(kind, count, messages)

    def pending_failures(self) -> list[dict[str, Any]]:
        return self.state.pending_failures()

    def clear_failures(self) -> None:
        self.state.clear_failures()

    def inventory(self) -> dict[str, Any]:
        """Current release facts: stage keys by name and, per asset, tags, builds and what is deployed where."""
        return self.state.inventory()

    def __repr__(self) -> str:
        where = self.base_url if self._port is not None else "not started"
        return f"OdcEmulator({where}, client_id={self.client_id!r})"
