"""The token cache on a real multi-host Celery fleet (issue 12 §1), small enough for ``make test``.

Two workers on hosts of their own (network namespaces), one with its clock 90 s ahead. The shared token
cache (an encrypted Variable, read and written through the api-server) must make one exchange serve
every task on every host, and at most two when all tasks want a token at the same instant. The full
sizes (100 and 40 tasks) run in ``make bench-fleet``.

The pacing ledger (issue 12 §2) must hold across hosts too, not only across the worker processes of one:
15 paced deploys spread over both hosts, one of them 90 s ahead, against ODC's documented limits.
"""

from __future__ import annotations

from pathlib import Path

from devtools.fleet.fleet import Fleet
from devtools.fleet.scenarios import many_tasks, paced_redeploy, released_together, skewed_refresh

TASKS = 40
#: Short enough to age within the test, long enough (half of it above the 90 s skew) that the skewed host
#: sees a token it fetched itself as valid.
LIFETIME = 240
PACED_DEPLOYS = 15  # more than one window's 10 POSTs


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


def test_skewed_host_refreshes_a_due_token_once_and_nobody_uses_an_expired_one(fleet: Fleet) -> None:
    figures = skewed_refresh(fleet, LIFETIME, tasks_per_host=fleet.concurrency)
    print(f"\nfleet, skewed refresh: {figures}")
    punctual, skewed = fleet.workers[0].name, fleet.workers[1].name
    tasks = fleet.concurrency * len(fleet.workers)
    assert figures["hosts"] == {punctual: fleet.concurrency, skewed: fleet.concurrency}
    assert figures["statuses"] == {"200": tasks}
    # One exchange by the punctual host, then exactly one refresh fleet-wide: the skewed host's, early
    # (its clock says the token is due 90 s before it is), once for all its task processes.
    assert figures["by_host"][punctual]["token_exchanges"] == 1, figures["by_host"]
    assert figures["by_host"][skewed]["token_exchanges"] == 1, figures["by_host"]
    assert figures["token_exchanges"] == 2
    # Nobody presented an expired (or otherwise refused) token.
    assert figures["unauthorized"] == 0
    assert all(host["unauthorized"] == 0 for host in figures["by_host"].values())


def test_paced_deploys_on_both_hosts_share_one_budget(fleet: Fleet) -> None:
    result = paced_redeploy(fleet, PACED_DEPLOYS)
    print(f"\nfleet, paced deploys: {result}")
    assert set(result["hosts"]) == {worker.name for worker in fleet.workers}, result["hosts"]  # one 90 s ahead
    assert result["tasks_succeeded"] == PACED_DEPLOYS and result["max_try_number"] == 1, result
    assert result["posts_accepted"] == result["deployments_started"] == result["distinct_operations"] == PACED_DEPLOYS
    assert result["posts_sent"] == PACED_DEPLOYS + result["posts_rate_limited"], result
    assert result["posts_rate_limited"] <= PACED_DEPLOYS // 10, result  # at most 10 %
    assert result["ledger_slots_at_the_end"], "no ledger in the Variables: the tasks did not pace"
    assert result["floor_s"] == 60.0, result
