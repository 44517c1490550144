"""``OdcEmulator``: the emulator app served by uvicorn on a loopback socket in a background thread.

The socket is bound here (port 0 by default) and handed to uvicorn, so the real port is known before the
first request and parallel test runs never fight over a fixed port. The same object offers the
``/_emulator`` controls in-process (``controls.in_process``), so tests arrange faults without HTTP plumbing.
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
from airflow_provider_odc.emulator.controls import in_process
from airflow_provider_odc.emulator.release import ReleaseLifecycle
from airflow_provider_odc.emulator.state import DEFAULT_TOKEN_LIFETIME, EmulatorState
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
        self.state.jobs.scans.stop()  # the pre-signed download host, if it was started
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

    # In-process test controls: the state methods the /_emulator routes serve (``controls.CONTROLS``) ---------

    stats = in_process(EmulatorState.stats)
    reset = in_process(EmulatorState.reset)
    add_fault = in_process(EmulatorState.add_fault)
    pending_faults = in_process(EmulatorState.pending_faults)
    clear_faults = in_process(EmulatorState.clear_faults)
    revoke_tokens = in_process(EmulatorState.revoke_tokens)
    minted_tokens = in_process(EmulatorState.minted_tokens)  # no route: for leak scans of this process
    configure = in_process(EmulatorState.configure)
    config = in_process(EmulatorState.config_view)
    recent_requests = in_process(EmulatorState.recent_requests)
    advance = in_process(EmulatorState.advance)
    fail_next = in_process(ReleaseLifecycle.fail_next, "release")
    pending_failures = in_process(ReleaseLifecycle.pending_failures, "release")
    clear_failures = in_process(ReleaseLifecycle.clear_failures, "release")
    inventory = in_process(ReleaseLifecycle.inventory, "release")

    def __repr__(self) -> str:
        where = self.base_url if self._port is not None else "not started"
        return f"OdcEmulator({where}, client_id={self.client_id!r})"
