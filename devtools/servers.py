"""Loopback servers for the fault matrix: the emulator app behind TLS, under a non-loopback name, or
with misbehaving routes in front of it.

``OdcEmulator`` serves plain http on a loopback address, which is all the provider's normal tests need.
A few attacks need more: an *https* portal whose name is *not* a loopback address (the provider allows
plain http only for loopback hosts), and routes that answer a 20 MB or non-JSON body. Both are built
here from the emulator's public pieces (``create_app`` and ``EmulatorState``) served by uvicorn on
127.0.0.1; names under ``.test`` (RFC 6761: they never resolve on a real network) are pointed at
127.0.0.1 inside this test process only (:func:`resolve_to_loopback`).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.types import ASGIApp, Receive, Scope, Send

from airflow_provider_odc.emulator.app import create_app
from airflow_provider_odc.emulator.state import EmulatorState

PORTAL_NAME = "acme.odc.test"
OTHER_NAME = "elsewhere.odc.test"


@contextmanager
def resolve_to_loopback(monkeypatch: pytest.MonkeyPatch, *names: str) -> Iterator[None]:
    """Make ``names`` resolve to 127.0.0.1 in this process (what an /etc/hosts entry would do).

    Only these names are touched; every other lookup goes to the real resolver. Traffic stays on
    loopback: the names exist nowhere else.
    """
    real = socket.getaddrinfo
    wanted = {name.lower() for name in names}

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.lower() in wanted:
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield
    monkeypatch.setattr(socket, "getaddrinfo", real)


def self_signed_certificate(directory: Path, *names: str) -> tuple[Path, Path]:
    """A throwaway certificate (and key) valid for ``names`` and 127.0.0.1; it is its own CA bundle."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [*(x509.DNSName(name) for name in names), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "portal.pem", directory / "portal.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@dataclass
class Canned:
    """One canned answer of a misbehaving route."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    hits: int = 0
    authorized_hits: int = 0


@dataclass
class MisbehavingRoutes:
    """An ASGI app: canned answers for some paths (counted), everything else to the emulator app."""

    app: ASGIApp
    routes: dict[str, Canned] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(
        self,
        path: str,
        status: int,
        body: bytes = b"",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> Canned:
        canned = self.routes[path] = Canned(status, body, content_type, dict(headers or {}))
        return canned

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        canned = self.routes.get(scope.get("path", "")) if scope["type"] == "http" else None
        if canned is None:
            await self.app(scope, receive, send)
            return
        with self._lock:
            canned.hits += 1
            if any(name.lower() == b"authorization" for name, _ in scope.get("headers", [])):
                canned.authorized_hits += 1
        headers = [(b"content-type", canned.content_type.encode()), (b"content-length", str(len(canned.body)).encode())]
        headers += [(name.lower().encode(), value.encode()) for name, value in canned.headers.items()]
        await send({"type": "http.response.start", "status": canned.status, "headers": headers})
        await send({"type": "http.response.body", "body": canned.body})


class LoopbackServer:
    """Serves an emulator state (optionally wrapped) with uvicorn on 127.0.0.1, over http or https.

    ``base_url`` uses ``public_name`` (a ``.test`` name the test resolves to loopback) when given, so the
    provider sees a portal that is not a loopback address.
    """

    def __init__(
        self,
        *,
        state: EmulatorState | None = None,
        wrap: Callable[[ASGIApp], ASGIApp] | None = None,
        public_name: str | None = None,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.state = state or EmulatorState()
        app: ASGIApp = create_app(self.state)
        self.app = wrap(app) if wrap is not None else app
        self.public_name = public_name
        self.tls = tls
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.public_name or '127.0.0.1'}:{self.port}"

    def connection(self, **fields: Any) -> dict[str, Any]:
        return {
            "conn_type": "odc",
            "host": self.base_url,
            "login": self.state.client_id,
            "password": self.state.config().client_secret,
            "extra": {},
            **fields,
        }

    def stats(self) -> dict[str, Any]:
        return self.state.stats()

    def recent_requests(self) -> list[dict[str, Any]]:
        return self.state.recent_requests(1000)

    def start(self) -> LoopbackServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        self._socket, self.port = sock, sock.getsockname()[1]
        ssl: Mapping[str, Any] = {"ssl_certfile": str(self.tls[0]), "ssl_keyfile": str(self.tls[1])} if self.tls else {}
        config = uvicorn.Config(
            self.app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
            **ssl,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                self.stop()
                raise RuntimeError("loopback test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class CountingListener:
    """'Another host' at its most basic: a TCP listener on its own loopback port that counts every
    connection (and the bytes sent on it), answers 404 and closes. Zero connections means nothing, not
    even a TLS hello or a half-sent request, left for it."""

    def __init__(self) -> None:
        self.connections = 0
        self.received = b""
        self._lock = threading.Lock()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self.port: int = self._socket.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._socket.accept()
            except OSError:  # closed by stop()
                return
            with conn:
                conn.settimeout(2)
                with self._lock:
                    self.connections += 1
                try:
                    data = conn.recv(65536)
                    with self._lock:
                        self.received += data
                    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass

    def __enter__(self) -> CountingListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._socket.close()
        self._thread.join(5)
