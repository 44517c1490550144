"""The README's shared-poller table is the committed ``benchmarks/poller_results.json``, rendered."""

from __future__ import annotations

import json

from benchmarks.report import POLLER_BEGIN, POLLER_END, POLLER_RESULTS, README, render


def test_readme_poller_table_is_the_committed_results_rendered() -> None:
    readme = README.read_text(encoding="utf-8")
    block = readme[readme.index(POLLER_BEGIN) + len(POLLER_BEGIN) + 1 : readme.index(POLLER_END)]
    results = json.loads(POLLER_RESULTS.read_text(encoding="utf-8"))
    assert block == render(results), "README.md disagrees with benchmarks/poller_results.json: make bench-readme"
    figures = results["sections"]["shared_poller_deployment_waits"]
    assert figures["waits_lost"] == {"before": 0, "after": 0}
    assert figures["waits_ended"]["after"] == figures["waits"]["after"]
    assert figures["requests_per_minute_busiest"]["after"] <= 100  # inside ODC's budget for the domain
