"""OdcHook's typed calls of the External Library Generation API: upload a library package the way ODC's
documented flow does it, start its generation, read its status and validation messages.

The flow (``odc-api.md`` 2.10): ``GET /uploads`` gives two pre-signed URLs; the package is PUT to the
``uploadUrl`` (streamed, without our bearer token: that token only goes to the connection's own origin);
``POST /generation-operations`` names the ``downloadUrl``. Both URLs are credentials: masked the moment
they are held, never logged, never returned.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_odc.api import external_libraries
from airflow_provider_odc.api.external_libraries import LibraryGeneration, UploadTarget, ValidationMessage
from airflow_provider_odc.exceptions import OdcError
from airflow_provider_odc.presigned import Transferred, as_storage_path, hold, put_file

if TYPE_CHECKING:
    from airflow_provider_odc.retries import RetryPolicy
    from airflow_provider_odc.settings import OdcConnectionSettings


@dataclass(frozen=True)
class UploadedPackage:
    """A package ODC can now read: its name, size and SHA-256; the ``download_url`` (a credential) is
    what the generation POST names, left out of ``repr``."""

    file_name: str
    size: int
    sha256: str
    download_url: str = field(repr=False)


def package_name(source: Any) -> str:
    """The file name of a local path or object-storage path."""
    name = getattr(source, "name", None)
    if not isinstance(name, str) or not name:
        name = posixpath.basename(str(source).rstrip("/"))
    return name


class ExternalLibrariesHookMixin:
    """Mixed into ``OdcHook`` (it provides ``request_json`` and ``settings``)."""

    odc_conn_id: str

    if TYPE_CHECKING:

        @property
        def settings(self) -> OdcConnectionSettings: ...

        @property
        def retry_policy(self) -> RetryPolicy: ...

        def request_json(self, method: str, endpoint: str, **kwargs: Any) -> Any: ...

    def request_library_upload(self) -> UploadTarget:
        """Two fresh pre-signed URLs for one package (masked before this returns)."""
        target = UploadTarget.from_json(self.request_json("GET", external_libraries.UPLOADS))
        hold(target.upload_url)
        hold(target.download_url)
        return target

    def upload_library_package(self, source: Any) -> UploadedPackage:
        """Upload a package (``.zip``) from a local path or an ``ObjectStoragePath`` (``s3://``, ``file://``,
        ...): ask ODC where, then stream it there with its size and without our token."""
        path = as_storage_path(source)
        name = package_name(path)
        try:
            size = int(path.stat().st_size)
            handle = path.open("rb")
        except (OSError, ValueError) as exc:
            raise OdcError(
                f"The library package {source} cannot be read: {type(exc).__name__}: {exc}",
                conn_id=self.odc_conn_id,
                hint="Pass the path of an existing .zip file (a local path or an object storage URL).",
            ) from None
        with handle:
            target = self.request_library_upload()
            settings = self.settings
            sent: Transferred = put_file(
                target.upload_url,
                handle,
                size,
                conn_id=self.odc_conn_id,
                timeout=settings.timeout,
                verify=settings.verify,
                retry=self.retry_policy,
            )
        return UploadedPackage(name, sent.size, sent.sha256, target.download_url)

    def start_library_generation(self, package: UploadedPackage) -> str:
        """Start generating a library from an uploaded package; return the operation key. Sent once."""
        body = external_libraries.start_body(package.file_name, package.download_url)
        answer = self.request_json("POST", external_libraries.GENERATION_OPERATIONS, json=body)
        key = answer.get("operationKey") if isinstance(answer, dict) else None
        if not isinstance(key, str) or not key:
            raise OdcError("ODC answered the generation request without its 'operationKey'.", conn_id=self.odc_conn_id)
        return key

    def get_library_generation(self, key: str) -> LibraryGeneration:
        return LibraryGeneration.from_json(self.request_json("GET", external_libraries.generation_path(key)))

    def library_validation_messages(self, key: str) -> list[ValidationMessage]:
        """What ODC's validation said about the package (Information, Warning and Error lines)."""
        return external_libraries.validation_messages(self.request_json("GET", external_libraries.messages_path(key)))
