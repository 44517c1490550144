"""Fetch code for scanning: a build's generated code (packaged by ODC, awaited) or a revision's source code,
streamed to a local path or any Airflow object storage URL (``s3://``, ``gs://``, ``file://`` ...).

The pre-signed download URL ODC answers with is a credential: it is masked at once and never logged, put
in an XCom, an exception or a trigger. The XCom is ``{"destination", "size", "sha256", "verified", ...}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_odc.download import DEFAULT_CHUNK_SIZE
from airflow_provider_odc.exceptions import OdcError
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.links import PORTAL_URL_XCOM_KEY, OdcPortalLink, portal_url
from airflow_provider_odc.operators.lifecycle import OdcOperationOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_odc.attach import TryMemory


class OdcGeneratedCodeOperator(OdcOperationOperator):
    """Have ODC package a build's generated code, wait for it, and stream the archive to ``destination``.

    :param destination: a local file path, an object storage URL (``s3://bucket/scans/{{ ds }}.zip``,
        ``file:///tmp/app.zip``) or an ``ObjectStoragePath``. Templated. Overwritten if it exists.
    :param build_key: the build to package. Templated. Default: the finished Release build of ``asset``
        at ``revision``.
    :param asset: asset key or exact name (when no ``build_key``). Templated.
    :param revision: number, ``"latest"`` (default) or ``"highest-tag"`` (when no ``build_key``). Templated.
    :param reuse_existing_package: wait on a package ODC already has (running or finished) instead of
        asking again. Default True.
    :param chunk_size: bytes read and written at a time. Default 1 MiB.
    :param expected_sha256: fail unless the archive has this SHA-256 (hex). Templated.
    :param expected_size: fail unless the archive has this many bytes.

    Returns ``{"buildKey", "destination", "size", "sha256", "verified"}``; the download is verified against
    its ``Content-Length`` and, when the storage host sends one, its ``x-amz-checksum-sha256``.
    """

    kind = "generated_code"
    template_fields: Sequence[str] = ("destination", "build_key", "asset", "revision", "expected_sha256")

    def __init__(
        self,
        *,
        destination: Any,
        build_key: str | None = None,
        asset: str | None = None,
        revision: int | str = "latest",
        reuse_existing_package: bool = True,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        expected_sha256: str | None = None,
        expected_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if build_key is None and asset is None:
            raise ValueError("OdcGeneratedCodeOperator needs a build_key, or an asset (and revision) to find it.")
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive number of bytes, not {chunk_size!r}.")
        self.destination = destination
        self.build_key = build_key
        self.asset = asset
        self.revision = revision
        self.reuse_existing_package = reuse_existing_package
        self.chunk_size = chunk_size
        self.expected_sha256 = expected_sha256
        self.expected_size = expected_size

    def start(self, hook: OdcHook, memory: TryMemory) -> tuple[str, str]:
        build_key = self.build_key
        asset_key = None
        if build_key is None:
            asset = hook.find_asset(str(self.asset))
            asset_key = asset.asset_key
            revision = hook.resolve_revision(asset.asset_key, self.revision)
            build = hook.reusable_build(asset.asset_key, revision, finished_only=True)
            if build is None:
                raise OdcError(
                    f"{asset.name} revision {revision} has no finished Release build to package; run an "
                    "OdcBuildOperator first, or pass build_key."
                )
            build_key = build.build_key
        self.log.info("Packaging the generated code of build %s.", build_key)
        key = hook.start_generated_code(build_key, reuse=self.reuse_existing_package)
        return key, portal_url(hook.settings.origin, asset_key) if asset_key else hook.settings.origin

    def execute(self, context: Context) -> Any:
        key = super().execute(context)
        return self._download(key) if self.wait_for_completion else key

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        return self._download(super().execute_complete(context, event))

    def _download(self, build_key: str) -> dict[str, Any]:
        hook = OdcHook(self.odc_conn_id)
        result = hook.download_generated_code(
            build_key,
            self.destination,
            chunk_size=self.chunk_size,
            expected_sha256=self.expected_sha256,
            expected_size=self.expected_size,
        )
        return {"buildKey": build_key, **result.as_dict()}


class OdcSourceCodeDownloadOperator(BaseOperator):
    """Stream a revision's source code (ODC's ``sourceCodeBinaryUrl``) to ``destination``.

    :param asset: asset key or exact name. Templated.
    :param destination: a local file path, an object storage URL or an ``ObjectStoragePath``. Templated.
    :param revision: number, ``"latest"`` (default) or ``"highest-tag"``. Templated.
    :param chunk_size: bytes read and written at a time. Default 1 MiB.
    :param expected_sha256: fail unless the file has this SHA-256 (hex). Templated.
    :param odc_conn_id: the ``odc`` connection.

    Returns ``{"assetKey", "revision", "sourceCodeDigest", "destination", "size", "sha256", "verified"}``.
    """

    template_fields: Sequence[str] = ("asset", "destination", "revision", "expected_sha256")
    operator_extra_links = (OdcPortalLink(),)
    ui_color = "#c9e4ff"

    def __init__(
        self,
        *,
        asset: str,
        destination: Any,
        revision: int | str = "latest",
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        expected_sha256: str | None = None,
        odc_conn_id: str = OdcHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive number of bytes, not {chunk_size!r}.")
        self.asset = asset
        self.destination = destination
        self.revision = revision
        self.chunk_size = chunk_size
        self.expected_sha256 = expected_sha256
        self.odc_conn_id = odc_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        hook = OdcHook(self.odc_conn_id)
        asset = hook.find_asset(self.asset)
        revision = hook.resolve_revision(asset.asset_key, self.revision)
        context["ti"].xcom_push(key=PORTAL_URL_XCOM_KEY, value=portal_url(hook.settings.origin, asset.asset_key))
        source = hook.get_source_code(asset.asset_key, revision)
        if not source.url:
            raise OdcError(f"ODC gave no source code URL for {asset.name} revision {revision}.")
        what = f"the source code of {asset.name} revision {revision}"
        options = {"chunk_size": self.chunk_size, "expected_sha256": self.expected_sha256}
        result = hook.stream_presigned(source.url, self.destination, what, options)
        return {
            "assetKey": asset.asset_key,
            "revision": revision,
            "sourceCodeDigest": source.digest,
            **result.as_dict(),
        }
