"""Generated code and source code for scanning: packaged, awaited and streamed from the emulator's pre-signed
download host (another listener) to a path or object storage, verified, without the bearer token, without
holding the archive in memory, and without the URL ever leaving the provider."""

from __future__ import annotations

import gc
import logging
import tracemalloc
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_odc.download import OdcDownloadError, stream_download
from airflow_provider_odc.emulator.downloads import content_sha256
from airflow_provider_odc.exceptions import OdcError, OdcOperationFailed
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.operators.generated_code import OdcGeneratedCodeOperator, OdcSourceCodeDownloadOperator

from ..emulator.conftest import OpenApiContract
from ..hook.test_secret_hygiene import airflow_masking_off  # noqa: F401  # a fixture
from ..lifecycle.test_conformance import contract, spec_route  # noqa: F401  # contract is a fixture
from .conftest import SPEEDY, app_with_builds, run_operator


def operator(destination: Any, **kwargs: Any) -> OdcGeneratedCodeOperator:
    options: dict[str, Any] = {"deferrable": False, **SPEEDY, **kwargs}
    return OdcGeneratedCodeOperator(task_id="generated_code", destination=destination, **options)


def release_build(app: dict[str, Any]) -> str:
    return str(
        next(
            b["buildKey"]
            for b in app["builds"]
            if b["revision"] == app["latestRevision"] and b["buildType"] == "Release" and b["status"] == "Finished"
        )
    )


def test_the_generated_code_of_the_latest_release_build_lands_on_disk_verified(
    fast_emulator: Any, tmp_path: Path
) -> None:
    app = app_with_builds(fast_emulator)
    downloads = fast_emulator.state.jobs.scans.downloads
    downloads.size = 300_000
    target = tmp_path / "scan" / "app.zip"
    target.parent.mkdir()
    result, ti, _ = run_operator(operator(str(target), asset=app["name"]))
    build_key = release_build(app)
    name = f"generated-code/{build_key}.zip"
    assert result == {
        "buildKey": build_key,
        "destination": str(target),
        "size": 300_000,
        "sha256": content_sha256(name, 300_000),
        "verified": ["Content-Length"],
    }
    assert target.stat().st_size == 300_000
    assert ti.xcom["operation_key"] == build_key
    seen = downloads.requests_seen
    assert [(s.path, s.authorization, s.status) for s in seen] == [(f"/{name}", None, 200)], "no bearer token"
    assert urlsplit(downloads.base_url).netloc != urlsplit(fast_emulator.base_url).netloc


def test_an_object_storage_url_and_a_deferred_wait(fast_emulator: Any, tmp_path: Path) -> None:
    app = app_with_builds(fast_emulator)
    fast_emulator.state.jobs.scans.downloads.send_checksum = True
    url = f"file://{tmp_path}/generated.zip"
    result, _, deferrals = run_operator(operator(url, build_key=release_build(app), deferrable=True))
    assert len(deferrals) == 1 and deferrals[0].trigger.kind == "generated_code"
    assert result["destination"] == url and result["verified"] == ["Content-Length", "x-amz-checksum-sha256"]
    assert (tmp_path / "generated.zip").stat().st_size == result["size"] > 0


def test_a_large_archive_streams_in_chunks_without_growing_memory(fast_emulator: Any, tmp_path: Path) -> None:
    app = app_with_builds(fast_emulator)
    size, chunk = 48 * 1024 * 1024, 64 * 1024
    fast_emulator.state.jobs.scans.downloads.size = size
    hook = OdcHook("odc_default")
    hook.start_generated_code(release_build(app))
    fast_emulator.advance(5.0)
    gc.collect()
    tracemalloc.start()
    try:
        result = hook.download_generated_code(release_build(app), tmp_path / "big.zip", chunk_size=chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.size == size == (tmp_path / "big.zip").stat().st_size
    assert peak < 8 * 1024 * 1024, f"peak traced memory {peak} bytes for a {size}-byte archive"
    assert result.writes >= size // chunk, "written chunk by chunk"


def test_a_corrupted_download_fails_its_checksum_and_leaves_nothing(fast_emulator: Any, tmp_path: Path) -> None:
    app = app_with_builds(fast_emulator)
    downloads = fast_emulator.state.jobs.scans.downloads
    downloads.send_checksum = downloads.corrupt = True
    target = tmp_path / "app.zip"
    with pytest.raises(OdcDownloadError, match=r"did not verify: its SHA-256 .* is not the x-amz-checksum-sha256"):
        run_operator(operator(str(target), build_key=release_build(app)))
    assert not target.exists()
    downloads.send_checksum = downloads.corrupt = False
    with pytest.raises(OdcDownloadError, match="is not expected_sha256 00ff"):
        run_operator(operator(str(target), build_key=release_build(app), expected_sha256="00ff"))
    assert not target.exists()
    with pytest.raises(OdcDownloadError, match="it is 262144 bytes where its expected_size says 5"):
        run_operator(operator(str(target), build_key=release_build(app), expected_size=5))


def test_a_build_that_is_not_finished_is_refused_with_odcs_reason(fast_emulator: Any, tmp_path: Path) -> None:
    app = app_with_builds(fast_emulator)
    build_key = OdcHook("odc_default").start_build(app["assetKey"], app["latestRevision"], "Debug")
    with pytest.raises(OdcError, match=r"only finished builds can be packaged.*wait for build"):
        run_operator(operator(str(tmp_path / "x.zip"), build_key=build_key))


def test_a_failed_package_fails_with_what_odc_said(fast_emulator: Any, tmp_path: Path) -> None:
    app = app_with_builds(fast_emulator)
    fast_emulator.fail_next("generated_code", messages=["Packaging ran out of disk."])
    with pytest.raises(OdcOperationFailed, match="Packaging ran out of disk"):
        run_operator(operator(str(tmp_path / "x.zip"), build_key=release_build(app)))
    assert not (tmp_path / "x.zip").exists()


def test_a_revisions_source_code(fast_emulator: Any, odc_connection: str, tmp_path: Path) -> None:
    app = app_with_builds(fast_emulator)
    task = OdcSourceCodeDownloadOperator(
        task_id="source", asset=app["name"], revision=2, destination=str(tmp_path / "app.oml")
    )
    result = task.execute({"ti": type("TI", (), {"xcom_push": lambda *a, **k: None})()})  # type: ignore[arg-type]
    assert result["revision"] == 2 and result["size"] == (tmp_path / "app.oml").stat().st_size > 0
    assert result["sha256"] == content_sha256(f"source-code/{app['assetKey']}/2.oml", result["size"])
    assert result["sourceCodeDigest"] and "url" not in str(result).lower()


def test_download_urls_are_https_unless_loopback_and_errors_never_quote_them(tmp_path: Path) -> None:
    url = "http://storage.example.com/a.zip?X-Amz-Signature=deadbeefcafe"
    with pytest.raises(OdcDownloadError, match=r"plain-http download URL .* only https is fetched") as refused:
        stream_download(url, tmp_path / "a.zip", what="the archive", conn_id="odc_default")
    assert "deadbeefcafe" not in str(refused.value)
    with pytest.raises(OdcDownloadError, match=r"failed: ConnectionError \(no answer\)") as unreachable:
        stream_download("http://127.0.0.1:9/a.zip?sig=deadbeefcafe", tmp_path / "a.zip", what="x", conn_id="c")
    assert "deadbeefcafe" not in str(unreachable.value) and not (tmp_path / "a.zip").exists()


def test_an_expired_or_tampered_url_is_refused_without_quoting_it(fast_emulator: Any, tmp_path: Path) -> None:
    url = fast_emulator.state.jobs.scans.download_url("generated-code/x.zip")
    tampered = url.replace("Signature=", "Signature=00")
    with pytest.raises(OdcDownloadError, match=r"HTTP 403\. A pre-signed URL expires") as refused:
        stream_download(tampered, tmp_path / "x.zip", what="x", conn_id="odc_default")
    assert "Signature" not in str(refused.value) and not (tmp_path / "x.zip").exists()


def test_the_presigned_url_never_leaks(
    airflow_masking_off: None,  # noqa: F811  # see what the provider writes, not what Airflow redacts
    fast_emulator: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)  # ours, requests, urllib3 (which logs every request line at DEBUG)
    caplog.set_level(logging.DEBUG, logger="airflow.task")
    app = app_with_builds(fast_emulator)
    downloads = fast_emulator.state.jobs.scans.downloads
    texts: list[str] = []
    result, ti, deferrals = run_operator(
        operator(str(tmp_path / "a.zip"), build_key=release_build(app), deferrable=True)
    )
    texts += [repr(result), repr(ti.xcom), repr(deferrals[0].trigger.serialize()), repr(deferrals[0].kwargs)]
    downloads.corrupt = downloads.send_checksum = True
    with pytest.raises(OdcError) as failed:
        run_operator(operator(str(tmp_path / "b.zip"), build_key=release_build(app)))
    texts += [str(failed.value), repr(failed.value), repr(vars(failed.value))]
    texts.append(repr(OdcHook("odc_default").get_generated_code(release_build(app))))
    captured = capsys.readouterr()
    everything = "\n".join([caplog.text, captured.out, captured.err, *texts])
    host = urlsplit(downloads.base_url).netloc
    assert len(downloads.issued) >= 3, "every status read hands out a fresh URL"
    for url in downloads.issued:
        assert downloads.signature_of(url) not in everything
        assert urlsplit(url).query not in everything
    assert len(downloads.requests_seen) == 2 and f'{host} "GET *** HTTP/1.1" 200' in everything, "urllib3's DEBUG line"


def test_a_lost_packaging_answer_is_looked_up_not_posted_again(fast_emulator: Any, tmp_path: Path) -> None:
    app = app_with_builds(fast_emulator)
    build_key = release_build(app)
    fast_emulator.add_fault(path_prefix="/api/builds/v1/build-operations/", method="POST", drop_response=True)
    result, _, _ = run_operator(operator(str(tmp_path / "a.zip"), build_key=build_key))
    assert result["buildKey"] == build_key and (tmp_path / "a.zip").exists()
    calls = fast_emulator.stats()["api_calls"]
    assert calls["POST /api/builds/v1/build-operations/{operationKey}/generated-code"] == 1, (
        "the POST went once; the package was found with a GET"
    )


def test_a_presigned_url_is_registered_with_airflows_masker_when_read(fast_emulator: Any) -> None:
    try:
        from airflow.sdk.log import redact
    except ImportError:  # Airflow 3.0
        from airflow.sdk.execution_time.secrets_masker import redact  # type: ignore[no-redef]

    app = app_with_builds(fast_emulator)
    hook = OdcHook("odc_default")
    hook.start_generated_code(release_build(app))
    fast_emulator.advance(5.0)
    package = hook.get_generated_code(release_build(app))
    assert package is not None and package.uri and "<set>" in repr(package) and package.uri not in repr(package)
    parts = urlsplit(package.uri)
    assert redact(f"at {package.uri}") == "at ***"
    assert redact(f'"GET {parts.path}?{parts.query} HTTP/1.1"') == '"GET *** HTTP/1.1"'
    source = hook.get_source_code(app["assetKey"], 1)
    assert source.url and redact(source.url) == "***" and source.url not in repr(source)


def test_a_timed_out_package_fails_with_its_status_and_what_odc_said(
    fast_emulator: Any,
    tmp_path: Path,
    contract: OpenApiContract,  # noqa: F811
) -> None:
    app = app_with_builds(fast_emulator)
    fast_emulator.fail_next("generated_code_timed_out", messages=["Packaging took longer than 30 minutes."])
    build_key = release_build(app)
    with pytest.raises(OdcOperationFailed, match="TimedOut") as caught:
        run_operator(operator(str(tmp_path / "x.zip"), build_key=build_key))
    assert "Packaging took longer than 30 minutes." in str(caught.value)
    assert not (tmp_path / "x.zip").exists()
    path = f"/api/builds/v1/build-operations/{build_key}/generated-code"
    answer = OdcHook().request_json("GET", path)
    assert answer["status"] == "TimedOut" and answer["errors"][0]["message"] == "Packaging took longer than 30 minutes."
    route = spec_route(contract, path)
    assert route is not None
    contract.validate(route[1] + route[2], "GET", 200, answer)
