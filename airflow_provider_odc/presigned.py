"""Moving files to and from the pre-signed URLs ODC hands out (library uploads, native build artifacts).

A pre-signed URL is a credential: whoever holds it may read (or write) that object until it expires. So
it is masked the moment it is held, and no message, log line or return value here carries it: errors
name only its scheme and host, never its path or query (where the signature is), and never quote the
storage's error body (S3 echoes the string it signed). The requests go through their own session, without
the connection's bearer token (which only ever goes to the connection's own origin), without ``~/.netrc``
credentials, without following redirects, https unless the host is a loopback address. Bodies are
streamed: a package or an app binary is never held in memory whole.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, urlsplit

import requests

from airflow_provider_odc.auth.transport import NoRedirectSession, unanswered
from airflow_provider_odc.auth.urls import UrlRefused, judge
from airflow_provider_odc.compat import mask_secret
from airflow_provider_odc.exceptions import OdcError
from airflow_provider_odc.retries import RetryPolicy
from airflow_provider_odc.settings import is_loopback_host

CHUNK = 1024 * 1024
REDACTED = "***"
MIN_MASKED = 20  # shorter query values (X-Amz-Expires=900, X-Amz-Date) are not secrets; masking them would blot logs
_S3_CODE = re.compile(rb"<Code>([A-Za-z0-9.]{1,64})</Code>")


class PresignedTransferError(OdcError):
    """A transfer to or from a pre-signed URL failed (the message names the host, never the URL)."""


def where(url: str) -> str:
    """``scheme://host[:port]`` of a pre-signed URL: all of it that may be shown."""
    try:
        return str(judge(url))
    except UrlRefused:
        return "(an unusable URL)"


class _HideQueries(logging.Filter):
    """Takes the pre-signed queries this process holds out of urllib3's DEBUG request lines, which quote the
    path and query (``"GET /x?X-Amz-Signature=... HTTP/1.1" 200``): a log must not carry them even where
    Airflow's masking is off (``airflow dags test``) or the masker misses the query on its own."""

    def __init__(self) -> None:
        super().__init__()
        self.queries: collections.deque[str] = collections.deque(maxlen=256)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.queries and isinstance(record.args, tuple):
            record.args = tuple(self._hidden(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True

    def _hidden(self, text: str) -> str:
        for query in self.queries:
            text = text.replace(query, REDACTED)
        return text


_HIDE_QUERIES = _HideQueries()
logging.getLogger("urllib3.connectionpool").addFilter(_HIDE_QUERIES)


def hold(url: str) -> None:
    """Register a pre-signed URL as a secret: the whole URL, its query and each long value in it (a log
    line may quote only part of it) with Airflow's masker, and its query with urllib3's log filter."""
    mask_secret(url)
    query = urlsplit(url).query
    if query:
        mask_secret(query)
        for value in parse_qs(query).values():
            for part in value:
                if len(part) >= MIN_MASKED:
                    mask_secret(part)
        if query not in _HIDE_QUERIES.queries:
            _HIDE_QUERIES.queries.append(query)


def checked(url: str, *, conn_id: str, what: str) -> str:
    """``url`` masked and judged: an absolute http(s) URL every parser reads alike, https unless loopback."""
    if not isinstance(url, str) or not url:
        raise PresignedTransferError(f"ODC gave no URL for {what}.", conn_id=conn_id)
    hold(url)
    try:
        origin = judge(url)
    except UrlRefused as refused:
        raise PresignedTransferError(f"ODC gave an unusable URL for {what}: {refused}.", conn_id=conn_id) from None
    if origin.scheme != "https" and not is_loopback_host(origin.host):
        raise PresignedTransferError(
            f"ODC gave a plain-http URL on {origin} for {what}; only https is used for a pre-signed URL.",
            conn_id=conn_id,
        )
    return url


class _NoCredentials(requests.auth.AuthBase):
    """Makes sure no Authorization header goes out (requests would add ``~/.netrc`` credentials)."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.pop("Authorization", None)
        return request


def session() -> requests.Session:
    """A session of its own: never the hook's, so nothing of the connection's can ride along."""
    plain = NoRedirectSession()
    plain.headers.pop("Accept", None)
    return plain


def _failure(response: requests.Response, action: str, url: str, conn_id: str) -> PresignedTransferError:
    code = _S3_CODE.search(response.content[:4096] or b"")
    said = f" ({code.group(1).decode()})" if code else ""
    hint = (
        "The pre-signed URL may have expired: run the task again for a fresh one."
        if response.status_code
        in (
            400,
            403,
        )
        else None
    )
    return PresignedTransferError(
        f"{action} the pre-signed URL on {where(url)} failed: HTTP {response.status_code}{said}.",
        conn_id=conn_id,
        hint=hint,
    )


@dataclass(frozen=True)
class Transferred:
    """What moved: its size and SHA-256 (safe to log and push; the URL is not here)."""

    size: int
    sha256: str


class _Hashing:
    """A read-only file wrapper that counts and hashes what requests streams out of it."""

    def __init__(self, file: IO[bytes], length: int) -> None:
        self._file = file
        self._length = length
        self.digest = hashlib.sha256()
        self.size = 0

    def __len__(self) -> int:  # requests sends a Content-Length instead of chunks
        return self._length

    def __iter__(self) -> Iterator[bytes]:  # requests streams only what it can iterate
        while chunk := self.read(CHUNK):
            yield chunk

    def read(self, size: int = -1) -> bytes:
        chunk = self._file.read(size if size and size > 0 else CHUNK)
        self.digest.update(chunk)
        self.size += len(chunk)
        return chunk


def put_file(
    url: str,
    file: IO[bytes],
    size: int,
    *,
    conn_id: str,
    timeout: float,
    verify: bool | str = True,
    retry: RetryPolicy | None = None,
) -> Transferred:
    """PUT ``size`` bytes of ``file`` to a pre-signed URL, streamed, with a Content-Length (S3 refuses a
    chunked upload to a pre-signed URL) and no credentials of ours. A PUT is idempotent: a transport error
    or a 5xx is retried (``retry``, the connection's policy) from the start of the file."""
    checked(url, conn_id=conn_id, what="the upload")
    sent: list[_Hashing] = []

    def attempt() -> requests.Response:
        file.seek(0)
        body = _Hashing(file, size)
        sent.append(body)
        with session() as plain:
            return plain.put(
                url, data=body, auth=_NoCredentials(), timeout=timeout, verify=verify, allow_redirects=False
            )

    try:
        response = (retry or RetryPolicy(max_retries=0)).call(
            attempt, idempotent=True, describe=f"PUT to {where(url)}", classify=unanswered
        )
    except requests.RequestException as exc:
        raise PresignedTransferError(
            f"Uploading to the pre-signed URL on {where(url)} failed: {type(exc).__name__}.", conn_id=conn_id
        ) from None
    if not 200 <= response.status_code < 300:
        raise _failure(response, "Uploading to", url, conn_id)
    body = sent[-1]
    if body.size != size:
        raise PresignedTransferError(
            f"The file changed while it was uploaded: {body.size} bytes were sent, not {size}.", conn_id=conn_id
        )
    return Transferred(body.size, body.digest.hexdigest())


def as_storage_path(source: Any) -> Any:
    """A local ``Path`` for a plain path, an ``ObjectStoragePath`` for a URL (``s3://``, ``file://`` ...)."""
    if isinstance(source, str):
        if "://" not in source:
            return Path(source)
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(source)
    return source


@contextmanager
def _opened_for_writing(target: Any) -> Iterator[IO[bytes]]:
    path = as_storage_path(target)
    with contextlib.suppress(OSError, NotImplementedError):  # object stores have no folders to make
        path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        yield handle


def download(
    url: str,
    target: Any,
    *,
    conn_id: str,
    timeout: float,
    verify: bool | str = True,
    retry: RetryPolicy | None = None,
    opener: Callable[[Any], Any] = _opened_for_writing,
) -> Transferred:
    """GET a pre-signed URL into ``target`` (a local path or an ``ObjectStoragePath``), streamed, checking
    the size the storage announced; a transport error or a 5xx is retried (``retry``) from the start."""
    checked(url, conn_id=conn_id, what="the download")

    def attempt() -> requests.Response:
        with session() as plain:
            return plain.get(
                url, stream=True, auth=_NoCredentials(), timeout=timeout, verify=verify, allow_redirects=False
            )

    digest = hashlib.sha256()
    size = 0
    try:
        response = (retry or RetryPolicy(max_retries=0)).call(
            attempt, idempotent=True, describe=f"GET from {where(url)}", classify=unanswered
        )
        with response:
            if not 200 <= response.status_code < 300:
                raise _failure(response, "Downloading from", url, conn_id)
            announced = response.headers.get("Content-Length")
            with opener(target) as handle:
                for chunk in response.iter_content(CHUNK):
                    handle.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
    except requests.RequestException as exc:
        raise PresignedTransferError(
            f"Downloading from the pre-signed URL on {where(url)} failed: {type(exc).__name__}.", conn_id=conn_id
        ) from None
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise PresignedTransferError(
            f"The download could not be written to {target}: {type(exc).__name__}: {exc}",
            conn_id=conn_id,
            hint="Pass a writable local path or an object storage URL (s3://..., file://...).",
        ) from None
    if announced is not None and announced.isdigit() and int(announced) != size:
        raise PresignedTransferError(
            f"The download from {where(url)} was cut short: {size} of {announced} bytes.", conn_id=conn_id
        )
    return Transferred(size, digest.hexdigest())
