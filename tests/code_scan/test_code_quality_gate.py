"""The code-quality gate and report against the emulator: thresholds, baselines, failures, deferral."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_odc.exceptions import OdcError, OdcOperationFailed
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.operators.code_quality import (
    OdcCodeQualityGateFailed,
    OdcCodeQualityGateOperator,
    OdcCodeQualityReportOperator,
)

from .conftest import SPEEDY, app_with_builds, run_operator

CRITICAL = {"patternId": "SEC-001", "severity": "Critical", "category": "security", "elementName": "GetUsers"}
HIGH = {"patternId": "PERF-001", "severity": "High", "category": "performance", "elementName": "Dashboard"}
LOW = {"patternId": "MAINT-001", "severity": "Low", "category": "maintainability", "elementName": "OldAction"}


def gate(asset: str, **kwargs: Any) -> OdcCodeQualityGateOperator:
    options: dict[str, Any] = {"deferrable": False, **SPEEDY, **kwargs}
    return OdcCodeQualityGateOperator(task_id="quality_gate", asset=asset, **options)


def test_a_clean_revision_passes_and_the_summary_is_compact(fast_emulator: Any) -> None:
    app = app_with_builds(fast_emulator)
    result, ti, _ = run_operator(gate(app["name"], min_quality_score=90, max_high=0))
    assert result["passed"] is True and result["qualityScore"] == 100
    assert result["revision"] == app["latestRevision"] and result["assetKey"] == app["assetKey"]
    assert result["counts"] == {"Critical": 0, "High": 0, "Medium": 0, "Low": 0} and result["breaches"] == []
    assert ti.xcom["operation_key"] == result["analysisKey"]


def test_a_critical_finding_fails_the_gate_and_the_top_findings_are_logged_with_their_patterns(
    fast_emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    app = app_with_builds(fast_emulator)
    fast_emulator.state.jobs.scans.plant(app["assetKey"], app["latestRevision"], [LOW, HIGH, CRITICAL])
    with pytest.raises(OdcCodeQualityGateFailed) as failed:
        run_operator(gate(app["assetKey"]))
    assert "1 Critical findings, more than max_critical=0" in str(failed.value)
    assert failed.value.summary["counts"]["Critical"] == 1 and failed.value.summary["passed"] is False
    out = capsys.readouterr().out  # Airflow's task loggers write through structlog
    logged = [line for line in out.splitlines() if ": pattern " in line]
    assert "Critical security in ServerAction GetUsers: pattern SEC-001 (SQL injection in advanced SQL)" in logged[0]
    assert len(logged) == 3, "every finding (fewer than top_findings) is logged, most severe first"


def test_score_and_high_thresholds_and_report_only_mode(fast_emulator: Any) -> None:
    app = app_with_builds(fast_emulator)
    fast_emulator.state.jobs.scans.plant(app["assetKey"], app["latestRevision"], [HIGH, HIGH | {"elementName": "X"}])
    result, _, _ = run_operator(gate(app["name"], min_quality_score=95, max_high=1, fail_on_breach=False))
    assert result["passed"] is False and result["qualityScore"] == 90
    assert result["breaches"] == [
        "quality score 90 is below min_quality_score=95",
        "2 High findings, more than max_high=1",
    ]


def test_new_findings_since_a_baseline_revision(fast_emulator: Any, odc_connection: str) -> None:
    app = app_with_builds(fast_emulator)
    latest = app["latestRevision"]
    scans = fast_emulator.state.jobs.scans
    scans.plant(app["assetKey"], latest - 1, [HIGH, LOW])
    run_operator(gate(app["name"], revision=latest - 1, max_critical=None))  # the baseline's analysis
    scans.plant(app["assetKey"], latest, [HIGH, LOW, CRITICAL])
    with pytest.raises(OdcCodeQualityGateFailed) as failed:
        run_operator(gate(app["name"], max_critical=None, baseline_revision=latest - 1, max_new_findings=0))
    assert "1 new findings since the baseline, more than max_new_findings=0" in str(failed.value)
    assert failed.value.summary["newFindings"] == 1 and failed.value.summary["top"][0]["patternId"] == "SEC-001"
    result, _, _ = run_operator(
        gate(
            app["name"],
            max_critical=None,
            baseline_revision=latest - 1,
            new_finding_severities=["High"],
            max_new_findings=0,
        )
    )
    assert result["passed"] is True and result["newFindings"] == 0 and result["baselineRevision"] == latest - 1


def test_a_baseline_never_analysed_is_a_clear_error(fast_emulator: Any) -> None:
    app = app_with_builds(fast_emulator)
    with pytest.raises(OdcError, match=r"has no code analysis of asset .* revision 1 \(404\)\. Analyse that revision"):
        run_operator(gate(app["name"], baseline_revision=1, max_new_findings=0))


def test_the_gate_defers_and_judges_after_resuming(fast_emulator: Any) -> None:
    app = app_with_builds(fast_emulator)
    fast_emulator.state.jobs.scans.plant(app["assetKey"], app["latestRevision"], [CRITICAL])
    operator = gate(app["name"], deferrable=True)
    with pytest.raises(OdcCodeQualityGateFailed, match="1 Critical findings"):
        run_operator(operator)
    operator = gate(app["name"], deferrable=True, max_critical=1)
    result, _, deferrals = run_operator(operator)
    assert len(deferrals) == 1 and deferrals[0].kwargs["target"]["revision"] == app["latestRevision"]
    assert result["passed"] is True and result["counts"]["Critical"] == 1


def test_a_failed_or_timed_out_analysis_fails_with_its_status(fast_emulator: Any) -> None:
    app = app_with_builds(fast_emulator)
    fast_emulator.fail_next("code_analysis")
    with pytest.raises(OdcOperationFailed, match="ended with status Failed"):
        run_operator(gate(app["name"]))
    fast_emulator.fail_next("code_analysis_timeout")
    with pytest.raises(OdcOperationFailed, match="ended with status Timeout"):
        run_operator(gate(app["name"], deferrable=True))


def test_bad_thresholds_are_refused_at_parse_time() -> None:
    with pytest.raises(ValueError, match="max_critical"):
        OdcCodeQualityGateOperator(task_id="g", asset="A", max_critical=-1)
    with pytest.raises(ValueError, match="min_quality_score"):
        OdcCodeQualityGateOperator(task_id="g", asset="A", min_quality_score=101)
    with pytest.raises(ValueError, match="baseline_revision"):
        OdcCodeQualityGateOperator(task_id="g", asset="A", max_new_findings=0)
    with pytest.raises(ValueError, match="not ODC severities"):
        OdcCodeQualityGateOperator(task_id="g", asset="A", new_finding_severities=["Blocker"])


def test_the_report_counts_findings_patterns_and_trend(fast_emulator: Any, odc_connection: str) -> None:
    app = app_with_builds(fast_emulator)
    fast_emulator.state.jobs.scans.plant(
        app["assetKey"], app["latestRevision"], [CRITICAL, HIGH, HIGH | {"elementName": "Y"}]
    )
    run_operator(gate(app["name"], max_critical=None))
    report = OdcCodeQualityReportOperator(task_id="report", assets=[app["name"]], since="2000-01-01T00:00:00")
    result = report.execute({"ti": None})  # type: ignore[arg-type]
    assert result["findings"] == 3 and result["bySeverity"] == {"Critical": 1, "High": 2, "Medium": 0, "Low": 0}
    assert result["topPatterns"][0] == {"patternId": "PERF-001", "name": "Aggregate fetched inside a loop", "count": 2}
    assert len(result["trend"]) == 1 and result["trend"][0]["open"] == 3
    typed = OdcHook(odc_connection).get_revision_quality(app["assetKey"], app["latestRevision"])
    assert typed.quality_score == 80 and typed.counts["High"] == 2


def test_a_lost_analysis_answer_is_not_posted_again(fast_emulator: Any) -> None:
    app = app_with_builds(fast_emulator)
    fast_emulator.add_fault(path_prefix="/api/code-quality/v1/code-analyses", method="POST", drop_response=True)
    with pytest.raises(OdcError, match=r"ODC may have started the code analysis .* not sent again in this try"):
        run_operator(gate(app["name"]))
    assert fast_emulator.stats()["api_calls"]["POST /api/code-quality/v1/code-analyses"] == 1
