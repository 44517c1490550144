"""The user project of the README's offline-testing recipe: its code blocks that start with ``# <path>``.

Standard library only, so ``scripts/ci_oldest_airflow.sh`` can write the project with any Python:
``python tests/packaging/readme_project.py <folder>``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Test your own DAGs offline"


def readme_project() -> dict[str, str]:
    """``{path: text}`` of the section's code blocks that start with a ``# <path>`` line (kept in the file)."""
    readme = README.read_text(encoding="utf-8")
    start = readme.index(SECTION)
    section = readme[start : readme.index("\n## ", start + len(SECTION))]
    blocks = re.findall(r"^```[a-z]*\n# ([\w./-]+)\n(.*?)^```$", section, re.M | re.S)
    files = {path: f"# {path}\n{body}" for path, body in blocks}
    if len(files) != len(blocks):
        raise ValueError(f"a path appears twice in the README's recipe: {[path for path, _ in blocks]}")
    return files


def write_project(folder: Path) -> list[str]:
    """Write the project into ``folder``; returns the paths written."""
    files = readme_project()
    for path, text in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(text, encoding="utf-8")
    return sorted(files)


if __name__ == "__main__":
    print("wrote", ", ".join(write_project(Path(sys.argv[1]))))
