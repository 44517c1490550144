"""The fleet fixture: a real multi-host Celery fleet (see ``devtools/fleet/fleet.py``), one per test module.

It needs root (network namespaces) and installs what is missing (``scripts/fleet.sh``, ``scripts/postgres.sh``).
Where that is impossible the tests skip saying why; under CI they fail instead (``tests/required.py``).
Tests here get the ``fleet`` and ``scheduler`` markers: ``-m "not fleet"`` leaves them out.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.fleet.fleet import Fleet, install

from ..integration.conftest import postgres_url  # noqa: F401  (a fixture, used by `fleet`)
from ..required import missing

DAGS_FOLDER = Path(__file__).parent / "dags"
#: Celery worker concurrency of each of the two workers in `make test`: 2 x 6 tasks released together.
TEST_CONCURRENCY = 6
_timings: dict[str, float] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "fleet" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.fleet)
            item.add_marker(pytest.mark.scheduler)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _timings:
        phases = ", ".join(f"{phase} {seconds:.1f}s" for phase, seconds in _timings.items())
        terminalreporter.write_line(f"celery fleet: {phases}")


def require_fleet() -> None:
    """Root, and the fleet's packages (installed by ``scripts/fleet.sh`` when missing); else skip (CI: fail)."""
    if os.geteuid() != 0:
        missing("the Celery fleet needs root (network namespaces); run the fleet tests as root")
    result = install()
    if result.returncode == 3:
        missing(f"scripts/fleet.sh cannot install the fleet's packages here:\n{result.stderr[-3000:]}")
    if result.returncode != 0:
        pytest.fail(f"scripts/fleet.sh install exited {result.returncode}:\n{result.stderr[-3000:]}")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[Fleet]:  # noqa: F811
    """Two Celery workers in their own network namespaces (w2's clock 90 s ahead) and the services on the host."""
    started = time.monotonic()
    require_fleet()
    _timings["install"] = time.monotonic() - started
    fleet = Fleet(tmp_path_factory.mktemp("fleet"), DAGS_FOLDER, postgres_url, concurrency=TEST_CONCURRENCY)
    try:
        fleet.start()
        _timings.update({f"start: {phase}": seconds for phase, seconds in fleet.timings.items()})
        yield fleet
    finally:
        leftovers = fleet.stop()
        _timings["total"] = time.monotonic() - started
        assert not leftovers, f"the fleet's network was not torn down: {leftovers}"
