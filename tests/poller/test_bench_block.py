"""The README's shared-poller table is the committed ``benchmarks/poller_results.json``, rendered."""

from __future__ import annotations

import json

from benchmarks.report import POLLER_BEGIN, POLLER_END, POLLER_RESULTS, README, render


def test_readme_poller_table_is_the_committed_results_rendered() -> None:
    readme = README.read_text(encoding="utf-8")
    block = readme[readme.index(POLLER_BEGIN) + len(POLLER_BEGIN) + 1 : readme.index(POLLER_END)]
    results = json.loads(POLLER_RESULTS.read_text(encoding="utf-8"))
    assert block == render(results), "README.md disagrees with benchmarks/poller_results.json: make bench-readme"
    after = results["sections"]["poller_after_one_shared_poller"]
    assert after["waits_lost"] == 0 and after["waits_ended"] == after["waits"]
