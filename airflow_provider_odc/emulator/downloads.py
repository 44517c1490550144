"""The emulator's pre-signed download host: a second listener, on another loopback address, like S3.

ODC hands out generated-code packages and source code as pre-signed URLs on a storage host that is not the
portal. ``DownloadHost`` serves them from its own socket (``127.0.0.2`` when the machine routes it, else a
second port on the emulator's address), so a client that sent its bearer token along, or resolved the URL
against the portal, is caught. It behaves like S3 at its stingiest:

* the URL carries an expiry and an HMAC signature over its path; a wrong or expired one is 403;
* a request with an ``Authorization`` header as well is refused (S3: 400 "Only one auth mechanism allowed");
* the body is streamed in blocks with a ``Content-Length`` and nothing else (no checksum header unless
  ``send_checksum``): archives of any ``size`` never sit in the emulator's memory either.

The content is deterministic bytes derived from the object's name (the archive of a scan, as far as a
client can tell: the provider never opens it). ``requests_seen`` records what each request carried and
``issued`` every URL signed (for leak scans).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

BLOCK = 64 * 1024
DEFAULT_SIZE = 256 * 1024
EXPIRES = 900  # seconds a URL is valid (S3's Expires)


@dataclass(frozen=True)
class SeenRequest:
    path: str
    authorization: str | None
    status: int


def content_blocks(name: str, size: int) -> Iterator[bytes]:
    """The ``size`` bytes of object ``name``, one ``BLOCK`` at a time."""
    block = random.Random(name).randbytes(BLOCK)  # test content, not a secret
    sent = 0
    while sent < size:
        piece = block[: min(BLOCK, size - sent)]
        sent += len(piece)
        yield piece


def content_sha256(name: str, size: int) -> str:
    digest = hashlib.sha256()
    for piece in content_blocks(name, size):
        digest.update(piece)
    return digest.hexdigest()


class DownloadHost:
    """Serves signed URLs for object names; ``url_for(name)`` signs one."""

    def __init__(self, host: str = "127.0.0.2") -> None:
        self._key = secrets.token_bytes(32)
        self._wanted_host = host
        self.size = DEFAULT_SIZE
        self.send_checksum = False
        self.corrupt = False  # serve one byte flipped in the first block (a checksum must catch it)
        self.requests_seen: list[SeenRequest] = []
        self.issued: list[str] = []  # every URL signed, for leak scans
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # Lifecycle ---------------------------------------------------------------------------------------

    def start(self, fallback_host: str = "127.0.0.1") -> DownloadHost:
        host = self._wanted_host
        try:
            probe = socket.socket()
            probe.bind((host, 0))
            probe.close()
        except OSError:
            host = fallback_host
        self._server = ThreadingHTTPServer((host, 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="odc-emulator-downloads", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self._server = None
        self._thread = None

    def reset(self) -> None:
        with self._lock:
            self.size = DEFAULT_SIZE
            self.send_checksum = False
            self.corrupt = False
            self.requests_seen = []
            self.issued = []

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("The download host is not started")
        host, port = self._server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}"

    # Signing -----------------------------------------------------------------------------------------

    def _signature(self, path: str, expires_at: int) -> str:
        return hmac.new(self._key, f"{path}\n{expires_at}".encode(), hashlib.sha256).hexdigest()

    def url_for(self, name: str, now: float | None = None) -> str:
        """A pre-signed URL of object ``name`` (``generated-code/<build>.zip``), valid for ``EXPIRES`` s."""
        path = "/" + quote(name)
        expires_at = int((time.time() if now is None else now) + EXPIRES)
        query = f"Expires={expires_at}&X-Amz-Signature={self._signature(path, expires_at)}"
        url = f"{self.base_url}{path}?{query}"
        with self._lock:
            self.issued.append(url)
        return url

    def signature_of(self, url: str) -> str:
        return parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]

    # Serving -----------------------------------------------------------------------------------------

    def _judge(self, raw_path: str, authorization: str | None) -> tuple[int, str]:
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query)
        if authorization is not None:
            return 400, "InvalidArgument: Only one auth mechanism allowed"
        try:
            expires_at = int(query["Expires"][0])
            signature = query["X-Amz-Signature"][0]
        except (KeyError, ValueError, IndexError):
            return 403, "AccessDenied: Request is missing the signature"
        if not hmac.compare_digest(signature, self._signature(parts.path, expires_at)):
            return 403, "SignatureDoesNotMatch"
        if time.time() > expires_at:
            return 403, "AccessDenied: Request has expired"
        return 200, parts.path.lstrip("/")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # http.server's name
                authorization = self.headers.get("Authorization")
                status, outcome = host._judge(self.path, authorization)
                with host._lock:
                    host.requests_seen.append(SeenRequest(urlsplit(self.path).path, authorization, status))
                    size, send_checksum, corrupt = host.size, host.send_checksum, host.corrupt
                if status != 200:
                    body = f"<Error><Code>{outcome.split(':')[0]}</Code></Error>".encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                from urllib.parse import unquote

                name = unquote(outcome)
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(size))
                if send_checksum:
                    checksum = bytes.fromhex(content_sha256(name, size))
                    self.send_header("x-amz-checksum-sha256", base64.b64encode(checksum).decode())
                self.end_headers()
                for number, piece in enumerate(content_blocks(name, size)):
                    if corrupt and number == 0:
                        piece = bytes([piece[0] ^ 0xFF]) + piece[1:]
                    self.wfile.write(piece)

            def log_message(self, format: str, *args: Any) -> None:  # silence: the URL is a credential
                return

        return Handler
