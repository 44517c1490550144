"""Stream a pre-signed download (a generated-code package, a revision's source code) to a file or object store.

A pre-signed URL is a credential: whoever holds it can read the archive until it expires. So it is masked
the moment the provider holds it (the whole URL, its path and query, its query alone: urllib3's DEBUG line
carries path and query), never logged, and never put in an exception, an XCom or a trigger. The request
goes to the URL's own host with *no* Authorization header (the bearer token goes only to the connection's
host, ``OdcHook.request``) and no ``~/.netrc`` credentials; redirects are refused, not followed.

The body is read and written ``chunk_size`` bytes at a time: the archive is never held in memory. The size
is checked against ``Content-Length`` (when the host sends it) and ``expected_size``; a SHA-256 is computed
on the way and checked against ``x-amz-checksum-sha256`` (when the host sends it) and ``expected_sha256``.
A failed check deletes what was written and raises ``OdcDownloadError``.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests

from airflow_provider_odc.auth.urls import UrlRefused, judge
from airflow_provider_odc.compat import mask_secret
from airflow_provider_odc.exceptions import OdcError
from airflow_provider_odc.settings import is_loopback_host

if TYPE_CHECKING:
    from os import PathLike

DEFAULT_CHUNK_SIZE = 1024 * 1024
DOWNLOAD_TIMEOUT = 60.0  # seconds to connect, and between two chunks
CHECKSUM_HEADER = "x-amz-checksum-sha256"  # S3's, base64 of the SHA-256 (sent only when asked for or stored)
_URLLIB3_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry", "requests")


class OdcDownloadError(OdcError):
    """A pre-signed download failed or did not verify. The message never carries the URL."""


class _NoAuth(requests.auth.AuthBase):
    """No credentials at all: stops requests from filling in ``~/.netrc`` ones for the URL's host."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.pop("Authorization", None)
        return request


@dataclass(frozen=True)
class DownloadResult:
    """What was written: where (as the caller named it), how many bytes, their SHA-256, in how many writes."""

    destination: str
    size: int
    sha256: str
    writes: int
    verified: tuple[str, ...]  # which checks passed: "content-length", "expected_size", "x-amz-checksum-sha256", ...

    def as_dict(self) -> dict[str, Any]:
        return {
            "destination": self.destination,
            "size": self.size,
            "sha256": self.sha256,
            "verified": list(self.verified),
        }


def secret_parts(url: str) -> list[str]:
    """The spellings of a pre-signed URL that must never be shown: whole, path with query, query alone."""
    parts = urlsplit(url)
    path_query = f"{parts.path}?{parts.query}" if parts.query else ""
    return [part for part in (url, path_query, parts.query) if part]


def mask_url(url: str) -> None:
    """Register every spelling of a pre-signed URL with Airflow's secrets masker."""
    for part in secret_parts(url):
        mask_secret(part)


class _Redact(logging.Filter):
    """Rewrites a log record that would quote the URL (urllib3's DEBUG request line does)."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = sorted(secrets, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret in self._secrets):
            for secret in self._secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, None
        return True


@contextmanager
def _redacted_http_logs(url: str) -> Iterator[None]:
    redact = _Redact(secret_parts(url))
    loggers = [logging.getLogger(name) for name in _URLLIB3_LOGGERS]
    for logger in loggers:
        logger.addFilter(redact)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(redact)


def _origin(url: str, what: str, conn_id: str) -> str:
    """The URL's origin (safe to show) if it is https, or plain http to a loopback host; else an error."""
    try:
        origin = judge(url)
    except UrlRefused as refused:
        raise OdcDownloadError(
            f"ODC gave a download URL for {what} that is refused: {refused}.", conn_id=conn_id
        ) from None
    if origin.scheme != "https" and not is_loopback_host(origin.host.strip("[]")):
        raise OdcDownloadError(
            f"ODC gave a plain-http download URL for {what} (host {origin.host}); only https is fetched.",
            conn_id=conn_id,
        )
    return f"{origin.scheme}://{origin.host}"


def _open(destination: str | PathLike[str] | Any) -> tuple[Any, str]:
    """The destination as a writable path object and its display name: a local path, or any URL (or
    ``ObjectStoragePath``) Airflow's object storage knows (``file://``, ``s3://``, ``gs://`` ...)."""
    try:
        from airflow.sdk import ObjectStoragePath
    except ImportError:  # Airflow 3.0
        from airflow.io.path import ObjectStoragePath  # type: ignore[no-redef]

    if isinstance(destination, ObjectStoragePath):
        return destination, str(destination)
    text = str(destination)
    if "://" in text:
        return ObjectStoragePath(text), text
    from pathlib import Path

    return Path(text), text


def stream_download(
    url: str,
    destination: Any,
    *,
    what: str,
    conn_id: str,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    expected_size: int | None = None,
    expected_sha256: str | None = None,
    timeout: float = DOWNLOAD_TIMEOUT,
    verify: bool | str = True,
    user_agent: str | None = None,
    session: requests.Session | None = None,
) -> DownloadResult:
    """GET ``url`` (pre-signed) and write its body to ``destination`` chunk by chunk; verify; return what was
    written. ``what`` names the download in messages ("the generated code of build <key>")."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive number of bytes, not {chunk_size!r}.")
    mask_url(url)
    origin = _origin(url, what, conn_id)
    target, shown = _open(destination)
    own_session = session is None
    http = session or requests.Session()
    headers = {"User-Agent": user_agent} if user_agent else {}
    digest = hashlib.sha256()
    size = writes = 0
    try:
        with _redacted_http_logs(url):
            try:
                response = http.get(
                    url,
                    headers=headers,
                    auth=_NoAuth(),
                    stream=True,
                    timeout=timeout,
                    verify=verify,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                raise OdcDownloadError(
                    f"Downloading {what} from {origin} failed: {type(exc).__name__} (no answer).", conn_id=conn_id
                ) from None
            with response:
                if response.status_code != 200:
                    redirect = " (a redirect, which is not followed)" if 300 <= response.status_code < 400 else ""
                    raise OdcDownloadError(
                        f"Downloading {what} from {origin} failed: HTTP {response.status_code}{redirect}. A pre-signed "
                        "URL expires: run the task again to get a fresh one.",
                        conn_id=conn_id,
                    )
                declared = _content_length(response)
                try:
                    with target.open("wb") as sink:
                        for chunk in response.iter_content(chunk_size=chunk_size):
                            if not chunk:
                                continue
                            sink.write(chunk)
                            digest.update(chunk)
                            size += len(chunk)
                            writes += 1
                except requests.RequestException as exc:
                    raise OdcDownloadError(
                        f"Downloading {what} from {origin} broke off after {size} bytes: {type(exc).__name__}.",
                        conn_id=conn_id,
                    ) from None
                verified, problem = _verify(
                    size, digest, declared, response.headers.get(CHECKSUM_HEADER), expected_size, expected_sha256
                )
                if problem:
                    raise OdcDownloadError(
                        f"Downloading {what} from {origin} did not verify: {problem} Nothing was kept at {shown}.",
                        conn_id=conn_id,
                    )
    except OdcDownloadError:
        _remove(target)
        raise
    except OSError as exc:
        _remove(target)
        raise OdcDownloadError(
            f"Writing {what} to {shown} failed after {size} bytes: {type(exc).__name__}: {exc}", conn_id=conn_id
        ) from None
    finally:
        if own_session:
            http.close()
    return DownloadResult(shown, size, digest.hexdigest(), writes, verified)


def _content_length(response: requests.Response) -> int | None:
    raw = response.headers.get("Content-Length")
    return int(raw) if raw is not None and raw.isdigit() else None


def _verify(
    size: int,
    digest: Any,
    declared: int | None,
    header_sha256: str | None,
    expected_size: int | None,
    expected_sha256: str | None,
) -> tuple[tuple[str, ...], str | None]:
    """The checks that passed, and what the first one that did not pass found (None when all passed)."""
    passed: list[str] = []
    for name, wanted in (("Content-Length", declared), ("expected_size", expected_size)):
        if wanted is None:
            continue
        if wanted != size:
            return tuple(passed), f"it is {size} bytes where its {name} says {wanted}."
        passed.append(name)
    hexdigest = digest.hexdigest()
    if header_sha256:
        try:
            wanted_hex = base64.b64decode(header_sha256, validate=True).hex()
        except ValueError:
            wanted_hex = header_sha256.lower()
        if wanted_hex != hexdigest:
            return tuple(passed), f"its SHA-256 {hexdigest} is not the {CHECKSUM_HEADER} its host sent."
        passed.append(CHECKSUM_HEADER)
    if expected_sha256:
        if expected_sha256.lower() != hexdigest:
            return tuple(passed), f"its SHA-256 {hexdigest} is not expected_sha256 {expected_sha256}."
        passed.append("expected_sha256")
    return tuple(passed), None


def _remove(target: Any) -> None:
    with suppress(Exception):
        if target.exists():
            target.unlink()
