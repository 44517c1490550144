"""The gate's verdict on its own (no I/O): counts, new findings by identity, which findings are shown."""

from __future__ import annotations

from typing import Any

from airflow_provider_odc.api.code_quality import CodeAnalysis
from airflow_provider_odc.quality_gate import QualityThresholds, judge, summary


def finding(pattern: str, severity: str, element: str, revision: int = 2) -> dict[str, Any]:
    return {
        "patternId": pattern,
        "severity": severity,
        "elementKey": element,
        "elementName": element,
        "assetRevision": revision,
    }


def analysis(findings: list[dict[str, Any]], summary: Any = None, score: Any = 70.0) -> CodeAnalysis:
    body = {"analysisKey": "k", "status": "Completed", "qualityScore": score, "summary": summary, "findings": findings}
    return CodeAnalysis.from_json(body)


def test_without_a_summary_the_counts_come_from_the_findings() -> None:
    verdict = judge(analysis([finding("A", "Critical", "x"), finding("B", "High", "y")]), QualityThresholds(max_high=0))
    assert verdict.breaches == [
        "1 Critical findings, more than max_critical=0",
        "1 High findings, more than max_high=0",
    ]


def test_new_findings_are_matched_by_pattern_and_element_not_by_id_and_shown_first() -> None:
    current = analysis([finding("LOW", "Low", "a"), finding("OLD", "Critical", "b"), finding("NEW", "Medium", "c")])
    baseline = analysis([finding("OLD", "Critical", "b", revision=1) | {"id": "other-id"}]).findings
    thresholds = QualityThresholds(max_critical=None, max_new_findings=1)
    verdict = judge(current, thresholds, baseline=baseline, top=2)
    assert [f.pattern_id for f in verdict.new_findings or []] == ["LOW", "NEW"]
    assert verdict.breaches == ["2 new findings since the baseline, more than max_new_findings=1"]
    assert [f.pattern_id for f in verdict.top] == ["NEW", "LOW"], "new ones, most severe first, then the rest"
    result = summary(current, verdict, asset_key="a", revision=2, baseline_revision=1)
    assert result["newFindings"] == 2 and result["passed"] is False and result["findings"] == 3


def test_a_missing_score_breaks_a_score_threshold_rather_than_passing() -> None:
    verdict = judge(analysis([], score=None), QualityThresholds(min_quality_score=80))
    assert verdict.breaches == ["ODC gave no quality score; min_quality_score=80 needs one"]
    assert judge(analysis([], score=None), QualityThresholds()).passed
