"""Under CI a skip fails the run (tests/conftest.py); elsewhere it stays a skip that says why, and is counted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROBE = Path(__file__).with_name("skip_probe.py")
REPO = Path(__file__).resolve().parents[2]


def run_probe(ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-ra", str(PROBE)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_skip_fails_under_ci() -> None:
    result = run_probe("true")
    assert result.returncode == 1, result.stdout[-3000:]
    assert "skipped, but CI is set and every test is required there: the probe's piece is missing" in result.stdout
    assert "1 failed" in result.stdout and "skipped tests: 0 (CI: a skip fails the run)" in result.stdout


def test_a_skip_says_why_and_is_counted_elsewhere() -> None:
    for ci in (None, "false", "0"):
        result = run_probe(ci)
        assert result.returncode == 0, result.stdout[-3000:]
        assert "SKIPPED [1] tests/ci/skip_probe.py:7: the probe's piece is missing" in result.stdout
        assert "skipped tests: 1\n" in result.stdout
