"""The object storage behind ODC's pre-signed URLs (S3 in ODC), as the emulator's assumption of it.

``GET /api/external-libraries/v1/uploads`` hands out an upload and a download URL for one object, and a
finished native build's ``appBinaryDownloadUrl`` is one. They are served on another origin than the API
(``localhost`` for an emulator on ``127.0.0.1`` and back), so a client that sent its bearer token there
would be sending it off its connection's host. The storage behaves like S3 does with pre-signed URLs:
each grant is for one object and one method, expires (15 minutes), refuses a request that also carries an
``Authorization`` header (400 ``InvalidArgument``), refuses an upload without a Content-Length (411, S3
takes no chunked pre-signed PUT) and answers errors as S3's XML. Nothing here knows about HTTP.
"""

from __future__ import annotations

import hashlib
import io
import secrets
import zipfile
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from airflow_provider_odc.emulator.runtime import Runtime

STORAGE_PREFIX = "/_storage"
GRANT_SECONDS = 900
MAX_OBJECT_BYTES = 64 * 1024 * 1024
SIGNATURE = "X-Amz-Signature"


class StorageError(Exception):
    """An S3-style refusal: HTTP status, ``<Code>`` and ``<Message>``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def xml(self) -> str:
        error = f"<Error><Code>{self.code}</Code><Message>{self.message}</Message></Error>"
        return f'<?xml version="1.0" encoding="UTF-8"?>\n{error}'


@dataclass
class Grant:
    name: str
    method: str
    expires_at: float


@dataclass
class StorageData:
    objects: dict[str, bytes] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)  # signature -> grant
    requests_with_authorization: int = 0


def storage_origin(api_base_url: str) -> str:
    """The storage's origin: the API's, with the other loopback name (so it is another origin)."""
    parts = urlsplit(api_base_url)
    host = parts.hostname or "127.0.0.1"
    other = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}.get(host, host)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{other}{port}"


class PresignedStorage:
    """Objects and the grants that open them; one per emulator, reset with it."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._lock = runtime.lock
        self._data = StorageData()

    def reset(self) -> None:
        with self._lock:
            self._data = StorageData()

    def grant(self, origin: str, name: str, method: str) -> str:
        """A pre-signed URL for ``method`` on object ``name``."""
        signature = secrets.token_hex(32)
        with self._lock:
            expires_at = self._runtime.now_locked() + GRANT_SECONDS
            self._data.grants[signature] = Grant(name, method, expires_at)
        return f"{origin}{STORAGE_PREFIX}/{name}?X-Amz-Expires={GRANT_SECONDS}&{SIGNATURE}={signature}"

    def _check_locked(self, name: str, method: str, signature: str | None, authorization: bool) -> None:
        if authorization:
            self._data.requests_with_authorization += 1
            raise StorageError(400, "InvalidArgument", "Only one auth mechanism allowed.")
        grant = self._data.grants.get(signature or "")
        if grant is None or grant.name != name or grant.method != method:
            raise StorageError(403, "SignatureDoesNotMatch", "The request signature we calculated does not match.")
        if self._runtime.now_locked() > grant.expires_at:
            raise StorageError(403, "AccessDenied", "Request has expired")

    def put(self, name: str, signature: str | None, authorization: bool, length: str | None, body: bytes) -> None:
        with self._lock:
            self._check_locked(name, "PUT", signature, authorization)
            if length is None:
                raise StorageError(411, "MissingContentLength", "You must provide the Content-Length HTTP header.")
            if len(body) > MAX_OBJECT_BYTES:
                raise StorageError(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")
            self._data.objects[name] = body

    def get(self, name: str, signature: str | None, authorization: bool) -> bytes:
        with self._lock:
            self._check_locked(name, "GET", signature, authorization)
            body = self._data.objects.get(name)
            if body is None:
                raise StorageError(404, "NoSuchKey", "The specified key does not exist.")
            return body

    def store(self, name: str, body: bytes) -> None:
        """Put an object without a grant (the emulated ODC writing its own artifacts)."""
        with self._lock:
            self._data.objects.setdefault(name, body)

    def object_behind(self, url: str) -> tuple[bool, bytes | None]:
        """Whether ``url`` is one of this storage's grants, and the object it opens (None: not uploaded)."""
        signature = (parse_qs(urlsplit(url).query).get(SIGNATURE) or [""])[0]
        with self._lock:
            grant = self._data.grants.get(signature)
            if grant is None:
                return False, None
            return True, self._data.objects.get(grant.name)

    def requests_with_authorization(self) -> int:
        """How many storage requests carried an Authorization header (a client leaking its token here)."""
        with self._lock:
            return self._data.requests_with_authorization


def package_problems(body: bytes | None) -> tuple[str, ...]:
    """Why ODC's generation would reject a library package: not uploaded, not a zip, no .NET assembly."""
    if body is None:
        return ("The high-code package could not be downloaded: nothing was uploaded to that URL.",)
    if not zipfile.is_zipfile(io.BytesIO(body)):
        return ("The high-code package is not a valid .zip archive.",)
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        names = archive.namelist()
    if not any(name.lower().endswith(".dll") for name in names):
        return ("The high-code package contains no .NET assembly (.dll).",)
    return ()


def artifact(name: str, size: int = 300 * 1024) -> bytes:
    """Deterministic bytes standing for an app binary (more than one network read long)."""
    seed = hashlib.sha256(name.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]
