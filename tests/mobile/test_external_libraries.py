"""External library upload against the emulator: GET /uploads -> streamed PUT to the pre-signed URL (another
origin, no bearer token) -> generation -> validation messages; from a local path and an object storage URL;
invalid packages fail with what ODC's validation said; no pre-signed URL leaves the task."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_odc.emulator.storage import storage_origin
from airflow_provider_odc.exceptions import OdcError, OdcOperationFailed, OdcUrlRefusedError
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.operators.external_libraries import OdcExternalLibraryOperator

from .conftest import FAST, Outflow, StateStore, run, zip_bytes

SIGNATURE = re.compile(r"X-Amz-Signature=([0-9a-f]{64})")
PACKAGE = zip_bytes({"PdfTools.dll": b"MZ" + b"\0" * 4096, "PdfTools.xml": b"<doc/>"})


def package(tmp_path: Path, content: bytes = PACKAGE, name: str = "PdfTools.zip") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def upload(source: Any, **kwargs: Any) -> OdcExternalLibraryOperator:
    return OdcExternalLibraryOperator(task_id="task", source=source, deferrable=True, **FAST, **kwargs)


def storage_requests(emulator: Any) -> list[dict[str, Any]]:
    return [r for r in emulator.recent_requests(500) if r["path"].startswith("/_storage/")]


def test_a_package_from_a_local_path_is_uploaded_without_our_token_and_generated(
    fast: Any, outflow: Outflow, tmp_path: Path
) -> None:
    result, ti = run(upload(str(package(tmp_path))))

    assert result["status"] == "Completed" and result["libraryName"] == "PdfTools"
    assert result["package"] == {
        "fileName": "PdfTools.zip",
        "size": len(PACKAGE),
        "sha256": hashlib.sha256(PACKAGE).hexdigest(),
    }
    assert result["validation"] == {"Information": 1} and result["messages"] == ["Information: Validated PdfTools.zip."]
    assert ti.xcom["operation_key"] == result["operationKey"]

    # The PUT went to the storage's origin (not the connection's), streamed with a length, and without a token.
    puts = [r for r in storage_requests(fast) if r["method"] == "PUT"]
    assert [(r["authorization"], r["status"]) for r in puts] == [(False, 200)]
    api = [r for r in fast.recent_requests(500) if r["path"].startswith("/api/")]
    assert api and all(r["authorization"] for r in api), "every ODC API call carries the token"
    assert fast.state.storage.requests_with_authorization() == 0
    assert OdcHook().settings.origin != storage_origin(OdcHook().settings.origin)

    outflow.add(result, ti.xcom)
    everything = outflow.text()
    assert "Uploaded PdfTools.zip" in everything and "ODC GET" in everything, "DEBUG lines were not captured"
    signatures = {m.group(1) for r in puts for m in [SIGNATURE.search(r["query"])] if m}
    assert signatures
    for signature in signatures:
        assert signature not in everything
    assert not SIGNATURE.search(everything)


def test_a_package_from_an_object_storage_url(fast: Any, tmp_path: Path) -> None:
    path = package(tmp_path, name="Barcodes.zip")
    result, _ = run(upload(path.as_uri()))  # file:// -> ObjectStoragePath
    assert result["status"] == "Completed" and result["package"]["fileName"] == "Barcodes.zip"
    assert result["package"]["size"] == len(PACKAGE)


def test_an_invalid_package_fails_with_odcs_validation_messages(fast: Any, tmp_path: Path, outflow: Outflow) -> None:
    with pytest.raises(OdcOperationFailed) as caught:
        run(upload(str(package(tmp_path, content=b"not a zip at all"))))
    assert "ended with status GenerationError" in str(caught.value)
    assert "not a valid .zip archive" in str(caught.value)
    assert "Information: Validated PdfTools.zip." in outflow.text(), "every validation message is logged"

    no_dll = package(tmp_path, content=zip_bytes({"readme.txt": b"hi"}), name="Empty.zip")
    with pytest.raises(OdcOperationFailed, match=r"no \.NET assembly"):
        run(upload(str(no_dll)))


def test_warnings_fail_the_task_only_when_asked(fast: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_odc.emulator import long_running

    original = long_running.library_log

    def with_a_warning(job: Any, now: float) -> dict[str, Any]:
        body = original(job, now)
        if body["validationMessages"]:
            body["validationMessages"].append(
                {"errorCode": "W1", "message": "Action Foo has no description.", "type": "Warning"}
            )
        return body

    monkeypatch.setattr(long_running, "library_log", with_a_warning)
    result, _ = run(upload(str(package(tmp_path))))
    assert result["validation"] == {"Information": 1, "Warning": 1}
    with pytest.raises(OdcError, match=r"(?s)fail_on_warnings.*Action Foo has no description"):
        run(upload(str(package(tmp_path)), fail_on_warnings=True))


def test_a_missing_package_is_a_clear_error_before_anything_is_sent(fast: Any, tmp_path: Path) -> None:
    with pytest.raises(OdcError, match=r"library package .*Missing\.zip cannot be read.*existing \.zip"):
        run(upload(str(tmp_path / "Missing.zip")))
    assert "GET /api/external-libraries/v1/uploads" not in fast.stats()["api_calls"]


def test_the_token_never_goes_to_the_pre_signed_host(fast: Any) -> None:
    """The hook refuses to call the storage's URL with its token (the URL gate), and the storage itself
    refuses a request that carries one, as S3 does."""
    hook = OdcHook()
    target = hook.request_library_upload()
    with pytest.raises(OdcUrlRefusedError):
        hook.request("PUT", target.upload_url)
    assert fast.state.storage.requests_with_authorization() == 0
    assert not [r for r in storage_requests(fast) if r["authorization"]]

    import requests

    refused = requests.put(target.upload_url, data=b"x", headers={"Authorization": "Bearer abc"}, timeout=10)
    assert refused.status_code == 400 and "<Code>InvalidArgument</Code>" in refused.text
    assert fast.state.storage.requests_with_authorization() == 1


def test_an_expired_upload_url_fails_naming_only_the_host(fast: Any, tmp_path: Path) -> None:
    hook = OdcHook()
    original = hook.request_library_upload

    def stale() -> Any:
        target = original()
        fast.advance(901)  # the grant lasts 15 minutes
        return target

    hook.request_library_upload = stale  # type: ignore[method-assign]
    with pytest.raises(OdcError) as caught:
        hook.upload_library_package(str(package(tmp_path)))
    message = str(caught.value)
    assert "HTTP 403 (AccessDenied)" in message and "expired" in message
    assert "X-Amz" not in message and "/_storage/" not in message
    assert storage_origin(hook.settings.origin) in message


def test_a_retry_waits_for_the_generation_its_earlier_try_started(fast: Any, tmp_path: Path) -> None:
    store = StateStore()
    first, _ = run(upload(str(package(tmp_path)), wait_for_completion=False), store=store)
    again, _ = run(upload(str(package(tmp_path))), store=store, try_number=2)
    assert again["operationKey"] == first["operationKey"] and again["status"] == "Completed"
    calls = fast.stats()["api_calls"]
    assert calls["GET /api/external-libraries/v1/uploads"] == 1
    assert calls["POST /api/external-libraries/v1/generation-operations"] == 1


def test_a_storage_hiccup_is_retried_from_the_start_of_the_file(
    fast: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_odc.retries import RetryPolicy

    waits: list[float] = []
    monkeypatch.setattr(OdcHook, "retry_policy", property(lambda hook: RetryPolicy(max_retries=2, sleep=waits.append)))
    fast.add_fault(target="any", status=503, count=1, path_prefix="/_storage/uploads/", method="PUT")
    uploaded = OdcHook().upload_library_package(str(package(tmp_path)))
    assert (uploaded.size, uploaded.sha256) == (len(PACKAGE), hashlib.sha256(PACKAGE).hexdigest())
    puts = [r for r in storage_requests(fast) if r["method"] == "PUT"]
    assert [r["status"] for r in puts] == [503, 200] and len(waits) == 1
    _, stored = fast.state.storage.object_behind(uploaded.download_url)
    assert stored == PACKAGE, "the retry sent the whole file again"

    fast.add_fault(target="any", status=503, count=5, path_prefix="/_storage/uploads/", method="PUT")
    with pytest.raises(OdcError, match=r"HTTP 503 \(InternalError\)") as caught:
        OdcHook().upload_library_package(str(package(tmp_path)))
    assert "X-Amz" not in str(caught.value) and len(waits) == 3


def test_a_download_error_fails_with_odcs_status_and_messages(fast: Any, tmp_path: Path) -> None:
    """``DownloadError``, the spec's other failed generation (ODC could not fetch the uploaded package)."""
    fast.fail_next("external_library_download_error", messages=["The uploaded package could not be read."])
    with pytest.raises(OdcOperationFailed) as caught:
        run(upload(str(package(tmp_path))))
    assert "ended with status DownloadError" in str(caught.value)
    assert "The uploaded package could not be read." in str(caught.value)
