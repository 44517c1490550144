"""Write the benchmark tables into README.md from the results files (``make bench-readme``).

Each block between its own markers: the benchmark tables from benchmarks/results.json (``make bench``); the fleet,
shared-poller and pacing tables from benchmarks/fleet_results.json, poller_results.json and pacing_results.json
(``make bench-fleet``). benchmarks/report.py renders the first three, benchmarks/pacing.py the last.

python scripts/render_bench.py            # rewrite every block
python scripts/render_bench.py --check    # exit 1, with a diff, when the README disagrees with any file
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import pacing
from benchmarks.report import BLOCKS, FLEET_RESULTS, README, RESULTS, render, rewrite_block


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when the README disagrees")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--fleet-results", type=Path, default=FLEET_RESULTS)
    parser.add_argument("--readme", type=Path, default=README)
    args = parser.parse_args(argv)
    sources = {RESULTS: args.results, FLEET_RESULTS: args.fleet_results}
    current = wanted = args.readme.read_text(encoding="utf-8")
    for block in BLOCKS:
        results = json.loads(sources.get(block.results, block.results).read_text(encoding="utf-8"))
        wanted = rewrite_block(wanted, render(results), block.begin, block.end)
    pacing_results = json.loads(pacing.RESULTS.read_text(encoding="utf-8"))  # make bench-fleet: benchmarks/pacing.py
    wanted = rewrite_block(wanted, pacing.render(pacing_results), pacing.BEGIN, pacing.END)
    files = [sources.get(block.results, block.results) for block in BLOCKS] + [pacing.RESULTS]
    names = ", ".join(path.name for path in files)
    if current == wanted:
        print(f"{args.readme.name}: the benchmark tables match {names}")
        return 0
    if args.check:
        diff = difflib.unified_diff(current.splitlines(), wanted.splitlines(), "README.md", "rendered", lineterm="")
        print(f"{args.readme} disagrees with {names}; run `make bench-readme`:", *diff, sep="\n")
        return 1
    args.readme.write_text(wanted, encoding="utf-8")
    print(f"{args.readme.name}: benchmark tables rewritten from {names}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
