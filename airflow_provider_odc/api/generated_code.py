"""A build's generated code (Build Operations API) and a revision's source code (Asset Repository API).

Both answer with a pre-signed download URL: a credential for as long as it lives, which is never logged.
The generated-code package is a long-running operation (``builds.GENERATED_CODE``: POST, then GET until
``Finished`` with its ``uri``); the source code of a revision is one GET (``sourceCodeBinaryUrl``, with a
``sourceCodeDigest`` that the spec types as a GUID: an identifier of the content, not a checksum to verify).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_odc.api._parse import as_object, objects, text
from airflow_provider_odc.api.builds import BUILDS, GENERATED_CODE


def generated_code_path(build_key: str) -> str:
    return GENERATED_CODE.path(build_key)


def source_code_path(asset_key: str, revision: int) -> str:
    return f"/api/asset-repository/v1/assets/{asset_key}/revisions/{revision}/source-code"


@dataclass(frozen=True)
class GeneratedCodePackage:
    """``GeneratedCodePackageResponse``. ``uri`` is a pre-signed URL: mask it, never log it."""

    status: str | None
    uri: str | None
    errors: list[str]

    @classmethod
    def from_json(cls, body: Any) -> GeneratedCodePackage:
        item = as_object(body, "a generated code package")
        return cls(
            status=text(item, "status"),
            uri=text(item, "uri"),
            errors=[str(e.get("message") or "") for e in objects(item.get("errors"))],
        )

    def __repr__(self) -> str:  # the uri is a credential
        return (
            f"GeneratedCodePackage(status={self.status!r}, uri={'<set>' if self.uri else None}, errors={self.errors!r})"
        )


@dataclass(frozen=True)
class SourceCode:
    """``AssetSourceCode``. ``url`` is a pre-signed URL: mask it, never log it."""

    url: str | None
    digest: str | None

    @classmethod
    def from_json(cls, body: Any) -> SourceCode:
        item = as_object(body, "an asset's source code")
        return cls(url=text(item, "sourceCodeBinaryUrl"), digest=text(item, "sourceCodeDigest"))

    def __repr__(self) -> str:  # the url is a credential
        return f"SourceCode(url={'<set>' if self.url else None}, digest={self.digest!r})"


__all__ = ["BUILDS", "GeneratedCodePackage", "SourceCode", "generated_code_path", "source_code_path"]
