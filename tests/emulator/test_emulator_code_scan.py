"""Code scanning in the emulator: what code analyses find, the Code Quality API's reads, a revision's source
code and the pre-signed download host. Every API answer goes through ``OdcClient``, which validates it
against the official spec of its route."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlsplit

import requests

from airflow_provider_odc.emulator.downloads import content_sha256
from airflow_provider_odc.emulator.server import OdcEmulator

from .conftest import BUILDS, OdcClient

CODE_ANALYSES = "/api/code-quality/v1/code-analyses"
CODE_ANALYSIS = "/api/code-quality/v1/code-analyses/{analysisKey}"
FINDINGS = "/api/code-quality/v1/findings"
SUMMARY = "/api/code-quality/v1/assets/{assetKey}/revisions/{revision}/analysis-summary"
TREND = "/api/code-quality/v1/findings-trend"
PATTERNS = "/api/code-quality/v1/patterns"
PATTERN = "/api/code-quality/v1/patterns/{patternId}"
SOURCE = "/api/asset-repository/v1/assets/{assetKey}/revisions/{revisionNumber}/source-code"
GENERATED = "/api/builds/v1/build-operations/{operationKey}/generated-code"
PLANTED = [
    {"patternId": "SEC-001", "severity": "Critical", "category": "security", "elementName": "GetUsers"},
    {"patternId": "PERF-001", "severity": "High", "category": "performance", "elementName": "Dashboard"},
    {"patternId": "MAINT-001", "severity": "Low", "category": "maintainability", "elementName": "OldAction"},
]


def web_app(emulator: OdcEmulator) -> dict[str, Any]:
    return next(a for a in emulator.inventory()["assets"] if a["assetType"] == "WebApplication")


def ok(response: requests.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def analyse(client: OdcClient, emulator: OdcEmulator, asset_key: str, revision: int) -> str:
    started = ok(client.post(CODE_ANALYSES, {"assetKey": asset_key, "assetRevision": revision}))
    emulator.advance(5.0)
    return str(started["analysisKey"])


def test_a_completed_analysis_reports_the_planted_findings_with_score_summary_and_paging(
    client: OdcClient, odc_emulator: OdcEmulator
) -> None:
    app = web_app(odc_emulator)
    odc_emulator.state.jobs.scans.plant(app["assetKey"], 1, PLANTED)
    key = analyse(client, odc_emulator, app["assetKey"], 1)
    path = CODE_ANALYSIS.replace("{analysisKey}", key)
    body = ok(client.get(path, route=CODE_ANALYSIS))
    assert body["status"] == "Completed" and body["qualityScore"] == 100 - 10 - 5 - 1
    assert [f["patternId"] for f in body["findings"]] == ["SEC-001", "PERF-001", "MAINT-001"]
    assert body["summary"]["categories"]["security"]["criticalSeverity"] == 1
    assert body["summary"]["categories"]["performance"]["highSeverity"] == 1
    page = ok(client.get(path, {"Limit": 2, "Offset": 2}, route=CODE_ANALYSIS))
    assert [f["patternId"] for f in page["findings"]] == ["MAINT-001"]
    # the spec declares no 400 here (its "default" is CodeAnalysisResponseV1): ASP.NET binding answers one anyway
    assert client.get(path, {"limit": 0}, route=CODE_ANALYSIS, check=False).status_code == 400


def test_the_revision_summary_is_404_until_an_analysis_completes(client: OdcClient, odc_emulator: OdcEmulator) -> None:
    app = web_app(odc_emulator)
    path = SUMMARY.replace("{assetKey}", app["assetKey"]).replace("{revision}", "1")
    assert client.get(path, route=SUMMARY).status_code == 404
    odc_emulator.state.jobs.scans.plant(app["assetKey"], 1, PLANTED[:1])
    analyse(client, odc_emulator, app["assetKey"], 1)
    body = ok(client.get(path, route=SUMMARY))
    assert body["assetRevision"] == 1 and body["qualityScore"] == 90
    assert body["summary"]["categories"]["security"]["criticalSeverity"] == 1


def test_a_failed_analysis_has_no_findings_and_no_summary(client: OdcClient, odc_emulator: OdcEmulator) -> None:
    app = web_app(odc_emulator)
    odc_emulator.state.jobs.scans.plant(app["assetKey"], 1, PLANTED)
    odc_emulator.fail_next("code_analysis")
    key = analyse(client, odc_emulator, app["assetKey"], 1)
    body = ok(client.get(CODE_ANALYSIS.replace("{analysisKey}", key), route=CODE_ANALYSIS))
    assert body["status"] == "Failed" and body["findings"] is None
    summary = SUMMARY.replace("{assetKey}", app["assetKey"]).replace("{revision}", "1")
    assert client.get(summary, route=SUMMARY).status_code == 404


def test_findings_filter_by_asset_severity_pattern_and_latest(client: OdcClient, odc_emulator: OdcEmulator) -> None:
    app = web_app(odc_emulator)
    scans = odc_emulator.state.jobs.scans
    scans.plant(app["assetKey"], 1, PLANTED)
    scans.plant(app["assetKey"], 2, PLANTED[:1])
    analyse(client, odc_emulator, app["assetKey"], 1)
    analyse(client, odc_emulator, app["assetKey"], 2)
    since = {"Since": "2000-01-01T00:00:00"}
    every = ok(client.get(FINDINGS, {"AssetKeys": app["assetKey"], **since}, route=FINDINGS))
    assert every["page"]["totalResults"] == 4
    assert sorted({f["assetRevision"] for f in every["results"]}) == [1, 2]
    latest = ok(client.get(FINDINGS, {"AssetKeys": app["assetKey"], "IsLatest": "true", **since}, route=FINDINGS))
    assert [(f["assetRevision"], f["patternId"]) for f in latest["results"]] == [(2, "SEC-001")]
    high = ok(client.get(FINDINGS, {"severities": "High,Critical", **since}, route=FINDINGS))
    assert {f["severity"] for f in high["results"]} == {"High", "Critical"} and high["page"]["totalResults"] == 3
    paged = ok(client.get(FINDINGS, {"PatternIds": ["SEC-001"], "Limit": 1, **since}, route=FINDINGS))
    assert paged["page"]["nextPageOffset"] == 1 and paged["page"]["totalResults"] == 2
    assert client.get(FINDINGS, {"Severities": "Blocker"}, route=FINDINGS, check=False).status_code == 400
    window = ok(client.get(FINDINGS, {"To": "2001-01-01T00:00:00", **since}, route=FINDINGS))
    assert window["results"] == [], "findings discovered after To are left out"


def test_the_trend_counts_open_findings_per_day(client: OdcClient, odc_emulator: OdcEmulator) -> None:
    app = web_app(odc_emulator)
    odc_emulator.state.jobs.scans.plant(app["assetKey"], 1, PLANTED)
    analyse(client, odc_emulator, app["assetKey"], 1)
    trend = ok(client.get(TREND, {"AssetKeys": app["assetKey"]}, route=TREND))["results"]
    assert len(trend) == 1 and trend[0]["openFindingsCount"] == 3
    critical = ok(client.get(TREND, {"Severities": "Critical"}, route=TREND))["results"]
    assert critical[0]["openFindingsCount"] == 1


def test_patterns_are_listed_and_read_by_id(client: OdcClient) -> None:
    listed = ok(client.get(PATTERNS, route=PATTERNS))
    assert {p["id"] for p in listed["results"]} >= {"SEC-001", "PERF-001"}
    one = ok(client.get(PATTERN.replace("{patternId}", "SEC-001"), route=PATTERN))
    assert one["results"][0]["name"] == "SQL injection in advanced SQL"
    assert client.get(PATTERN.replace("{patternId}", "NOPE-1"), route=PATTERN).status_code == 404


def test_source_code_is_a_presigned_url_on_another_host_that_refuses_a_bearer_token(
    client: OdcClient, odc_emulator: OdcEmulator
) -> None:
    app = web_app(odc_emulator)
    path = SOURCE.replace("{assetKey}", app["assetKey"]).replace("{revisionNumber}", "1")
    body = ok(client.get(path, route=SOURCE))
    url = body["sourceCodeBinaryUrl"]
    assert urlsplit(url).netloc != urlsplit(odc_emulator.base_url).netloc, "served from its own listener"
    download = requests.get(url, timeout=10)
    assert download.status_code == 200 and int(download.headers["Content-Length"]) == len(download.content)
    name = urlsplit(url).path.lstrip("/")
    assert hashlib.sha256(download.content).hexdigest() == content_sha256(name, len(download.content))
    with_token = requests.get(url, headers={"Authorization": f"Bearer {client.token()}"}, timeout=10)
    assert with_token.status_code == 400, "S3 refuses a second auth mechanism"
    assert requests.get(url.replace("Signature=", "Signature=0"), timeout=10).status_code == 403
    assert (
        client.get(
            SOURCE.replace("{assetKey}", app["assetKey"]).replace("{revisionNumber}", "999"), route=SOURCE
        ).status_code
        == 404
    )


def test_a_finished_generated_code_package_points_at_the_download_host(
    client: OdcClient, odc_emulator: OdcEmulator
) -> None:
    build_key = next(b["buildKey"] for b in web_app(odc_emulator)["builds"] if b["status"] == "Finished")
    path = GENERATED.replace("{operationKey}", build_key)
    assert ok(client.post(path, route=GENERATED), 201) == {"isSuccessful": True}
    odc_emulator.advance(5.0)
    done = ok(client.get(path, route=GENERATED))
    odc_emulator.state.jobs.scans.downloads.size = 100_000
    download = requests.get(done["uri"], timeout=10)
    assert download.status_code == 200 and len(download.content) == 100_000
    seen = odc_emulator.state.jobs.scans.downloads.requests_seen
    assert [(s.status, s.authorization) for s in seen] == [(200, None)]
    assert ok(client.get(BUILDS, {"assetKey": web_app(odc_emulator)["assetKey"]}, route=BUILDS))["builds"]
