"""The token cache on a real multi-host Celery fleet (issue 12 §1), small enough for ``make test``.

Two workers on hosts of their own (network namespaces), one with its clock 90 s ahead. The shared token
cache (an encrypted Variable, read and written through the api-server) must make one exchange serve
every task on every host, and at most two when all tasks want a token at the same instant. The full
sizes (100 and 40 tasks) run in ``make bench-fleet``.
"""

from __future__ import annotations

from pathlib import Path

from .fleet import Fleet
from .scenarios import many_tasks, released_together

TASKS = 30


def test_tasks_on_both_hosts_share_one_token_exchange(fleet: Fleet) -> None:
    figures = many_tasks(fleet, TASKS)
    print(f"\nfleet, {TASKS} tasks: {figures}")
    assert figures["tasks"] == TASKS
    assert set(figures["hosts"]) == {worker.name for worker in fleet.workers}, figures["hosts"]
    assert figures["hosts"] == figures["hosts_in_xcom"]
    assert figures["statuses"] == {"200": TASKS}
    assert figures["environment_calls"] == TASKS
    assert figures["unauthorized"] == 0
    assert figures["token_exchanges"] == 1
    assert figures["distinct_tokens"] == 1


def test_tasks_released_together_on_both_hosts_make_at_most_two_exchanges(fleet: Fleet, tmp_path: Path) -> None:
    figures = released_together(fleet, tmp_path / "barrier")
    print(f"\nfleet, released together: {figures}")
    tasks = fleet.concurrency * len(fleet.workers)
    assert figures["tasks"] == tasks
    # Every host held its full share at the release: the premise of "at one instant on both hosts".
    assert figures["hosts"] == {worker.name: fleet.concurrency for worker in fleet.workers}
    assert figures["processes"] == tasks
    assert figures["statuses"] == {"200": tasks}
    assert figures["unauthorized"] == 0
    assert 1 <= figures["token_exchanges"] <= 2
