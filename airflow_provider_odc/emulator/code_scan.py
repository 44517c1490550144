"""The emulator's code-scan data: the findings each analysed revision has, the patterns, the download host.

A code analysis is a ``code_analysis`` job of ``long_running`` (its statuses and ``fail_next`` failures come
from there); what it finds comes from here. By default a revision is clean (score 100, no findings), as
the long-running module has always answered; a test plants findings for a revision with ``plant``:

    odc_emulator.state.jobs.scans.plant(asset_key, 3, [
        {"patternId": "SEC-001", "severity": "Critical", "category": "security", "elementName": "Login"},
    ])

Every planted finding is completed to the spec's ``RevisionFindingsResponseV1`` (stable ``id``, keys,
``discoveredOn`` = when the analysis that found it finished, status ``Open``). The quality score is 100 less
10 per Critical, 5 per High, 2 per Medium and 1 per Low finding (ODC does not document its formula).
Pre-signed download URLs (generated code, source code) point at ``DownloadHost``, started on first use.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from airflow_provider_odc.emulator.downloads import DownloadHost
from airflow_provider_odc.emulator.seed import format_timestamp

SEVERITIES = ("Low", "Medium", "High", "Critical")
CATEGORIES = ("security", "performance", "architecture", "maintainability")
PENALTY = {"Critical": 10.0, "High": 5.0, "Medium": 2.0, "Low": 1.0}
PATTERNS: dict[str, dict[str, Any]] = {
    "SEC-001": {"name": "SQL injection in advanced SQL", "severity": "Critical", "category": "security"},
    "SEC-002": {"name": "Unprotected server action exposed to the client", "severity": "High", "category": "security"},
    "PERF-001": {"name": "Aggregate fetched inside a loop", "severity": "High", "category": "performance"},
    "PERF-002": {"name": "Large image in a module", "severity": "Medium", "category": "performance"},
    "ARCH-001": {"name": "Circular reference between modules", "severity": "Medium", "category": "architecture"},
    "MAINT-001": {"name": "Unused action", "severity": "Low", "category": "maintainability"},
}
_NAMESPACE = uuid.UUID("7a4f6d0e-52d1-4b6c-9f43-0d7f1c0de5ca")


@dataclass(frozen=True)
class CompletedAnalysis:
    """A code analysis job that ended ``Completed`` (what ``long_running`` hands over to read findings)."""

    key: str
    asset_key: str
    revision: int
    finished_at: float


def _finding(asset_key: str, revision: int, planted: dict[str, Any], found_at: float) -> dict[str, Any]:
    pattern = str(planted.get("patternId") or "MAINT-001")
    element = str(planted.get("elementName") or "Element")
    identity = f"{asset_key}|{pattern}|{element}|{planted.get('whereElementName') or ''}"
    known = PATTERNS.get(pattern, {})
    return {
        "id": str(uuid.uuid5(_NAMESPACE, f"{identity}|{revision}")),
        "patternId": pattern,
        "discoveredOn": format_timestamp(found_at),
        "rediscoveredOn": None,
        "elementKey": str(uuid.uuid5(_NAMESPACE, f"{asset_key}|{element}")),
        "elementName": element,
        "elementType": planted.get("elementType") or "ServerAction",
        "whereElementKey": None,
        "whereElementName": planted.get("whereElementName"),
        "status": planted.get("status") or "Open",
        "severity": planted.get("severity") or known.get("severity") or "Low",
        "assetKey": asset_key,
        "assetRevision": revision,
        "category": planted.get("category") or known.get("category") or "maintainability",
    }


def summary(findings: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """``FindingsSummary``: counts by category and severity."""
    categories = {name: {f"{s.lower()}Severity": 0 for s in SEVERITIES} for name in CATEGORIES}
    for finding in findings:
        breakdown = categories.get(str(finding["category"]))
        if breakdown is not None and finding["severity"] in SEVERITIES:
            breakdown[f"{str(finding['severity']).lower()}Severity"] += 1
    return {"categories": categories}


def quality_score(findings: Iterable[dict[str, Any]]) -> float:
    return max(0.0, 100.0 - sum(PENALTY.get(str(f["severity"]), 0.0) for f in findings))


@dataclass
class CodeScans:
    """Planted findings by (asset key, revision), and the download host."""

    planted: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)
    downloads: DownloadHost = field(default_factory=DownloadHost)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self._lock:
            self.planted = {}
        self.downloads.reset()

    def plant(self, asset_key: str, revision: int, findings: list[dict[str, Any]]) -> None:
        """What an analysis of that revision will find (replaces what was planted before)."""
        with self._lock:
            self.planted[(str(uuid.UUID(asset_key)), revision)] = [dict(f) for f in findings]

    def findings_of(self, analysis: CompletedAnalysis) -> list[dict[str, Any]]:
        with self._lock:
            planted = self.planted.get((analysis.asset_key, analysis.revision), [])
        return [_finding(analysis.asset_key, analysis.revision, p, analysis.finished_at) for p in planted]

    def analysis_body(
        self, body: dict[str, Any], analysis: CompletedAnalysis | None, limit: int, offset: int
    ) -> dict[str, Any]:
        """``CodeAnalysisStatusResponseV1`` of a Completed analysis, its findings paged by Limit/Offset."""
        if analysis is None:
            return body
        findings = self.findings_of(analysis)
        return {
            **body,
            "findings": findings[offset : offset + limit],
            "qualityScore": quality_score(findings),
            "summary": summary(findings),
        }

    def download_url(self, name: str) -> str:
        """A pre-signed URL of ``name`` on the download host (started on first use)."""
        with self._lock:
            if not self.downloads.running:
                self.downloads.start()
        return self.downloads.url_for(name)

    def stop(self) -> None:
        self.downloads.stop()


def latest_per_revision(analyses: Iterable[CompletedAnalysis]) -> dict[tuple[str, int], CompletedAnalysis]:
    latest: dict[tuple[str, int], CompletedAnalysis] = {}
    for analysis in sorted(analyses, key=lambda a: a.finished_at):
        latest[(analysis.asset_key, analysis.revision)] = analysis
    return latest


def day_of(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d")
