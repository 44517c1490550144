"""The README's pacing table is the committed ``benchmarks/pacing_results.json``, rendered; nothing typed by hand."""

from __future__ import annotations

import json

from benchmarks import pacing
from benchmarks.report import README


def test_readme_pacing_table_is_the_committed_results_rendered() -> None:
    readme = README.read_text(encoding="utf-8")
    block = readme[readme.index(pacing.BEGIN) + len(pacing.BEGIN) + 1 : readme.index(pacing.END)]
    results = json.loads(pacing.RESULTS.read_text(encoding="utf-8"))
    assert block == pacing.render(results), "README.md disagrees with benchmarks/pacing_results.json: make bench-readme"
    assert results["sections"], "the results hold at least one section"
    simulated = {"sections": {"simulation": results["sections"]["simulation"]}}
    assert not pacing.goals(simulated), "the simulation is deterministic: its goals hold on any machine"
