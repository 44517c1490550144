"""The README's benchmark tables are the committed ``benchmarks/results.json`` and ``benchmarks/fleet_results.json``,
rendered; nothing typed by hand."""

from __future__ import annotations

import copy
import datetime
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.report import (
    ALONE,
    BEGIN,
    END,
    FLEET_BEGIN,
    FLEET_END,
    FLEET_RESULTS,
    README,
    RESULTS,
    add_section,
    beside,
    finish,
    new_results,
    render,
)

RENDER = [sys.executable, str(Path(__file__).resolve().parents[2] / "scripts" / "render_bench.py")]


def committed(path: Path = RESULTS) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


def readme_block(begin: str = BEGIN, end: str = END) -> str:
    readme = README.read_text(encoding="utf-8")
    return readme[readme.index(begin) + len(begin) + 1 : readme.index(end)]


def test_readme_tables_are_the_committed_results_rendered() -> None:
    assert readme_block() == render(committed()), "README.md disagrees with benchmarks/results.json: make bench-readme"


def test_readme_fleet_table_is_the_committed_fleet_results_rendered() -> None:
    assert readme_block(FLEET_BEGIN, FLEET_END) == render(committed(FLEET_RESULTS)), (
        "README.md disagrees with benchmarks/fleet_results.json: make bench-readme"
    )
    fleet = committed(FLEET_RESULTS)["sections"]
    exchanges = fleet["fleet_many_tasks"]["token_exchanges"]
    assert f"| {fleet['fleet_many_tasks']['tasks']} tasks: token exchanges | {exchanges} | 1 | alone |" in readme_block(
        FLEET_BEGIN, FLEET_END
    )


def test_results_say_where_when_and_on_what_they_were_measured() -> None:
    results = committed()
    assert results["source"].strip()
    datetime.datetime.fromisoformat(results["date"])
    assert results["commit"]
    assert {"cores", "memory_gib", "python", "airflow"} <= set(results["machine"])
    assert results["sections"]
    for name, section in results["sections"].items():
        load = section["load"]
        assert load == ALONE or (load.startswith("beside ") and set(load[7:].split(", ")) <= set(results["sections"]))
        assert name not in load, f"{name} measured beside itself"


def test_check_fails_when_the_readme_disagrees(tmp_path: Path) -> None:
    readme, results = tmp_path / "README.md", tmp_path / "results.json"
    readme.write_text(README.read_text(encoding="utf-8"), encoding="utf-8")
    changed = committed()
    changed["sections"]["per_call_cost"]["hook_us"] += 1000
    results.write_text(json.dumps(changed), encoding="utf-8")
    args = ["--readme", str(readme), "--results", str(results)]

    check = subprocess.run([*RENDER, "--check", *args], capture_output=True, text=True, timeout=60)
    assert check.returncode == 1, check.stdout
    assert f"{changed['sections']['per_call_cost']['hook_us']:.0f} µs" in check.stdout  # the diff shows it
    assert subprocess.run([*RENDER, *args], capture_output=True, timeout=60).returncode == 0
    check = subprocess.run([*RENDER, "--check", *args], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout
    # Only the block between the markers changed.
    before, after = README.read_text(encoding="utf-8"), readme.read_text(encoding="utf-8")
    assert before[: before.index(BEGIN)] == after[: after.index(BEGIN)]
    assert before[before.index(END) :] == after[after.index(END) :]


def test_every_figure_of_every_section_is_rendered() -> None:
    """A figure no row names, and a section the renderer has never heard of, still show, with their load."""
    results = copy.deepcopy(committed())
    results["sections"]["first_call"]["brand_new_ms"] = 12345.5
    add_section(results, "rate_limits", {"wall_s": 181.25, "floor_s": 180}, load=beside("slot_waits"))
    text = render(results)
    assert "| first_call: `brand_new_ms` | 12345.5 |" in text
    assert "| rate_limits: `wall_s` | 181.25 |  | beside the deployment waits |" in text
    assert "| rate_limits: `floor_s` | 180 |" in text


def test_a_new_results_file_records_the_machine_and_refuses_an_unknown_load() -> None:
    results = new_results("test", {"deploy_seconds": 1})
    assert results["machine"]["cores"] and results["machine"]["python"] and results["machine"]["airflow"]
    assert results["commit"] and len(results["commit"]) == 40
    add_section(results, "paging", {"assets": 500, "page_size": 50, "requests": 10}, load=ALONE)
    with pytest.raises(ValueError, match="recorded twice"):
        add_section(results, "paging", {}, load=ALONE)
    with pytest.raises(ValueError, match="load must be"):
        add_section(results, "per_call_cost", {}, load="busy")
    finish(results, 61.4)
    assert results["wall_seconds"] == 61 and results["load_average_1m"]["end"] is not None
    text = render(json.loads(json.dumps(results)))  # what a results file written by run.py renders to
    assert "the run took 1 min 1 s" in text
    assert "| paging 500 assets, page size 50: API requests | 10 | 10 | alone |" in text  # labels from the section
    assert "| paging 500 assets: wall time | n/a |" in text  # a figure the run did not record shows as such
    results["sections"]["paging"].pop("assets")
    with pytest.raises(ValueError, match="section 'paging' lacks 'assets'"):
        render(results)


def test_check_fails_when_the_readme_disagrees_with_the_fleet_results(tmp_path: Path) -> None:
    readme, fleet_results = tmp_path / "README.md", tmp_path / "fleet_results.json"
    readme.write_text(README.read_text(encoding="utf-8"), encoding="utf-8")
    changed = committed(FLEET_RESULTS)
    changed["sections"]["fleet_released_together"]["token_exchanges"] = 17
    fleet_results.write_text(json.dumps(changed), encoding="utf-8")
    args = ["--readme", str(readme), "--fleet-results", str(fleet_results)]

    check = subprocess.run([*RENDER, "--check", *args], capture_output=True, text=True, timeout=60)
    assert check.returncode == 1, check.stdout
    assert "+| 40 tasks released together: token exchanges | 17 | ≤ 2 | alone |" in check.stdout  # the diff shows it
    assert subprocess.run([*RENDER, *args], capture_output=True, timeout=60).returncode == 0
    check = subprocess.run([*RENDER, "--check", *args], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout
    # Only the fleet block changed: the text around it, and the benchmark block, are as committed.
    before, after = README.read_text(encoding="utf-8"), readme.read_text(encoding="utf-8")
    assert before[: before.index(FLEET_BEGIN)] == after[: after.index(FLEET_BEGIN)]
    assert before[before.index(FLEET_END) :] == after[after.index(FLEET_END) :]
    assert before.count("| 40 tasks released together: token exchanges | 1 |") == 1
    assert "| 40 tasks released together: token exchanges | 17 |" in after
