"""Where the example's smoke checks land in a test: the deployed apps' https URLs, served on loopback.

The emulator gives each deployed app the URL ODC would (``https://<stage domain>/<path>``, e.g.
``emulator-prd.outsystems.app``), which resolves nowhere here. The Airflow workers reach it the way a
worker behind a corporate proxy does: ``HTTPS_PROXY`` points at :class:`TunnelProxy`, an HTTP CONNECT proxy
that tunnels only ``*.outsystems.app:443`` to :class:`AppServer`, a TLS server whose certificate (for those
names) is the workers' ``REQUESTS_CA_BUNDLE``. TLS is verified end to end; nothing in the DAG is test-only.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import StreamRequestHandler, ThreadingTCPServer
from typing import Any

from devtools.servers import self_signed_certificate

APP_DOMAIN_SUFFIX = ".outsystems.app"


class AppServer:
    """HTTPS on 127.0.0.1 for the stage domains; answers 200 on any path and records (host, path)."""

    def __init__(self, directory: Path, *names: str) -> None:
        self.cert, key = self_signed_certificate(directory, *names)
        self.requests: list[tuple[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append((self.headers.get("Host", ""), self.path))
                body = b"<html><body>OK</body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]

    def __enter__(self) -> AppServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class TunnelProxy:
    """An HTTP CONNECT proxy on 127.0.0.1 that tunnels ``*.outsystems.app:443`` to the app server and
    refuses every other target (403); records the CONNECT targets."""

    def __init__(self, app_port: int) -> None:
        self.targets: list[str] = []
        owner = self

        class Handler(StreamRequestHandler):
            def handle(self) -> None:
                request = self.rfile.readline(4096).decode("latin-1").split()
                while self.rfile.readline(4096) not in (b"\r\n", b"\n", b""):
                    pass  # the request's headers
                if len(request) < 2 or request[0] != "CONNECT":
                    self.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                    return
                owner.targets.append(request[1])
                host, _, port = request[1].rpartition(":")
                if not host.endswith(APP_DOMAIN_SUFFIX) or port != "443":
                    self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                    return
                with socket.create_connection(("127.0.0.1", app_port)) as upstream:
                    self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    self.wfile.flush()
                    _pipe(self.connection, upstream)

        ThreadingTCPServer.daemon_threads = True
        self._server = ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> TunnelProxy:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _pipe(client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""

    def copy(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    other = threading.Thread(target=copy, args=(upstream, client), daemon=True)
    other.start()
    copy(client, upstream)
    other.join()


@contextlib.contextmanager
def smoke_target(directory: Path, *names: str) -> Iterator[tuple[AppServer, TunnelProxy]]:
    """The app server and the proxy in front of it, both running."""
    with AppServer(directory, *names) as app, TunnelProxy(app.port) as proxy:
        yield app, proxy
