"""Write the benchmark tables into README.md from benchmarks/results.json (``make bench-readme``).

python scripts/render_bench.py            # rewrite the README's block between the bench markers
python scripts/render_bench.py --check    # exit 1, with a diff, when the README disagrees with the file
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.report import README, RESULTS, render, rewrite_block


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when the README disagrees")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--readme", type=Path, default=README)
    args = parser.parse_args(argv)
    current = args.readme.read_text(encoding="utf-8")
    wanted = rewrite_block(current, render(json.loads(args.results.read_text(encoding="utf-8"))))
    if current == wanted:
        print(f"{args.readme.name}: the benchmark tables match {args.results.name}")
        return 0
    if args.check:
        diff = difflib.unified_diff(current.splitlines(), wanted.splitlines(), "README.md", "rendered", lineterm="")
        print(f"{args.readme} disagrees with {args.results}; run `make bench-readme`:", *diff, sep="\n")
        return 1
    args.readme.write_text(wanted, encoding="utf-8")
    print(f"{args.readme.name}: benchmark tables rewritten from {args.results.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
