"""Print how many tests a pytest JUnit XML report skipped, then each skipped test with its reason.

python scripts/skip_count.py report.xml      # first line: the count (CI requires 0)
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET


def skipped_tests(report: str) -> list[str]:
    found = []
    for case in ET.parse(report).getroot().iter("testcase"):
        skip = case.find("skipped")
        if skip is not None:
            found.append(f"{case.get('classname')}::{case.get('name')}: {skip.get('message', '')}")
    return found


if __name__ == "__main__":
    skipped = skipped_tests(sys.argv[1])
    print(len(skipped))
    for line in skipped:
        print(f"  skipped {line}", file=sys.stderr)
