"""``OdcHook``'s generated-code and source-code methods: package a build's generated code, read a revision's
source code, and stream either pre-signed download to a local path or object storage.

Every pre-signed URL is masked the moment it is read (``download.mask_url``) and never leaves this module
or ``airflow_provider_odc.download``: the typed results hide it in their ``repr``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_odc.api import generated_code
from airflow_provider_odc.api.builds import GENERATED_CODE
from airflow_provider_odc.api.generated_code import GeneratedCodePackage, SourceCode
from airflow_provider_odc.download import DEFAULT_CHUNK_SIZE, DownloadResult, mask_url, stream_download
from airflow_provider_odc.exceptions import OdcApiError, OdcError

if TYPE_CHECKING:
    from airflow_provider_odc.hooks._mixin import HookCore


class GeneratedCodeHookMixin:
    """Typed calls for code scanning (API client permission: Asset management > Open)."""

    def get_generated_code(self: HookCore, build_key: str) -> GeneratedCodePackage | None:
        """The generated-code package of a build, or None when none was requested yet (ODC's 404)."""
        try:
            body = self.request_json("GET", generated_code.generated_code_path(build_key))
        except OdcApiError as exc:
            if exc.status == 404:
                return None
            raise
        package = GeneratedCodePackage.from_json(body)
        if package.uri:
            mask_url(package.uri)
        return package

    def start_generated_code(self: HookCore, build_key: str, *, reuse: bool = True) -> str:
        """Ask ODC to package a build's generated code; return the key to wait on (the build key).

        With ``reuse`` (default), a package that exists and has not failed is waited on instead of asking
        again. When the POST's answer is lost, the package is looked up again rather than re-posted.
        """
        existing = GeneratedCodeHookMixin.get_generated_code(self, build_key) if reuse else None
        if existing is not None and existing.status not in GENERATED_CODE.failure:
            self.log.info("The generated code of build %s is already %s; not asking again.", build_key, existing.status)
            return build_key
        path = generated_code.generated_code_path(build_key)
        try:
            body = self.request_json("POST", path)
        except OdcApiError as exc:
            if exc.status is not None and exc.status < 500 and not 200 <= exc.status < 300:
                if exc.status == 422:
                    raise OdcError(
                        f"{exc} ODC packages the generated code only of a build that finished; wait for build "
                        f"{build_key} (OdcBuildOperator) first.",
                    ) from None
                raise
            found = GeneratedCodeHookMixin.get_generated_code(self, build_key)
            if found is None or (existing is not None and found.status in GENERATED_CODE.failure):
                raise
            return build_key
        if isinstance(body, dict) and body.get("isSuccessful") is False:
            raise OdcError(
                f"ODC did not start packaging the generated code of build {build_key}: its POST answered "
                "isSuccessful=False.",
                conn_id=self.odc_conn_id,
            )
        return build_key

    def get_source_code(self: HookCore, asset_key: str, revision: int) -> SourceCode:
        """Where a revision's source code can be downloaded (a pre-signed URL, masked here)."""
        source = SourceCode.from_json(self.request_json("GET", generated_code.source_code_path(asset_key, revision)))
        if source.url:
            mask_url(source.url)
        return source

    def download_generated_code(self: HookCore, build_key: str, destination: Any, **options: Any) -> DownloadResult:
        """Stream the finished generated-code package of a build to ``destination`` (a local path, a URL
        of any Airflow object storage, or an ``ObjectStoragePath``). ``options``: ``chunk_size``,
        ``expected_size``, ``expected_sha256``."""
        package = GeneratedCodeHookMixin.get_generated_code(self, build_key)
        if package is None or package.status != "Finished" or not package.uri:
            status = "not requested" if package is None else package.status
            raise OdcError(
                f"The generated code of build {build_key} is {status}, not Finished with a download URL.",
                conn_id=self.odc_conn_id,
            )
        return GeneratedCodeHookMixin.stream_presigned(
            self, package.uri, destination, f"the generated code of build {build_key}", options
        )

    def download_source_code(
        self: HookCore, asset_key: str, revision: int, destination: Any, **options: Any
    ) -> DownloadResult:
        """Stream a revision's source code to ``destination`` (as ``download_generated_code``)."""
        source = GeneratedCodeHookMixin.get_source_code(self, asset_key, revision)
        if not source.url:
            raise OdcError(
                f"ODC gave no source code URL for asset {asset_key} revision {revision}.", conn_id=self.odc_conn_id
            )
        what = f"the source code of asset {asset_key} revision {revision}"
        return GeneratedCodeHookMixin.stream_presigned(self, source.url, destination, what, options)

    def stream_presigned(
        self: HookCore, url: str, destination: Any, what: str, options: dict[str, Any]
    ) -> DownloadResult:
        """Stream a pre-signed ``url`` ODC gave (masked here, never logged) to ``destination``; ``what``
        names it in the log and in errors."""
        from airflow_provider_odc.hooks.odc import user_agent

        settings = self.settings
        result = stream_download(
            url,
            destination,
            what=what,
            conn_id=self.odc_conn_id,
            chunk_size=int(options.get("chunk_size") or DEFAULT_CHUNK_SIZE),
            expected_size=options.get("expected_size"),
            expected_sha256=options.get("expected_sha256"),
            verify=settings.verify,
            user_agent=user_agent(),
        )
        self.log.info(
            "Wrote %s to %s: %d bytes, SHA-256 %s (checked: %s).",
            what,
            result.destination,
            result.size,
            result.sha256,
            ", ".join(result.verified) or "nothing ODC's host offered",
        )
        return result
