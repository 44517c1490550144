"""The per-process refresh jitter, as shipped: every other test sets it to 0, this one keeps the default.

Each process draws its jitter once, at import, so workers holding the same shared token do not all
cross its refresh line together. Measured in real, separate Python processes: what a hook's token
cache uses, and where the refresh of one and the same token falls in each process.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from devtools.hook_factory import run_in_new_process

MARGIN = 300.0  # the default refresh margin
MAX_JITTER = 30.0  # the README: "plus a per-process jitter of up to 30 s"
LIFETIME = 43_200.0  # an ODC token's lifetime (12 h)

#: Runs in a fresh interpreter: the modules the token cache imports first, then (optionally) a seed for
#: Python's global random source, then the token cache itself, whose import draws the jitter.
PROCESS = """
import json, os, sys
import airflow_provider_odc.auth.token, airflow_provider_odc.cache.envelope, airflow_provider_odc.cache.lease
import airflow_provider_odc.cache.stores, airflow_provider_odc.compat, airflow_provider_odc.exceptions
if sys.argv[1] != "unseeded":
    import random
    random.seed(int(sys.argv[1]))
from airflow_provider_odc.cache import token_cache
from airflow_provider_odc.auth.token import AccessToken
from airflow_provider_odc.hooks.odc import OdcHook

cache = OdcHook("odc_jitter").token_cache  # the connection's shared cache, built as a task builds it
token = AccessToken("t", "Bearer", expires_at=float(sys.argv[2]), issued_at=0.0)
print("RESULT " + json.dumps({
    "jitter": token_cache.PROCESS_JITTER,
    "margin": cache.refresh_margin,
    "refresh_at": token.refresh_due_at(cache.refresh_margin),
}))
"""


def worker_process(seed: int | None, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    connection = {"conn_type": "odc", "host": "http://127.0.0.1:9", "login": "client", "password": "secret"}
    monkeypatch.setenv("AIRFLOW_CONN_ODC_JITTER", json.dumps(connection))
    argument = "unseeded" if seed is None else str(seed)
    return dict(run_in_new_process(PROCESS, argument, str(LIFETIME)))


def test_two_processes_refresh_the_same_token_at_different_points(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = worker_process(None, monkeypatch), worker_process(None, monkeypatch)
    for process in (first, second):
        assert 0.0 <= process["jitter"] <= MAX_JITTER
        assert process["margin"] == MARGIN + process["jitter"], "the hook's cache uses the process's jitter"
        assert LIFETIME - MARGIN - MAX_JITTER <= process["refresh_at"] <= LIFETIME - MARGIN
    assert first["jitter"] != second["jitter"]
    assert first["refresh_at"] != second["refresh_at"]


@pytest.mark.parametrize("seed", [1, 2])
def test_the_jitter_is_one_uniform_draw_from_zero_to_thirty_seconds(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the global random source seeded, the draw is exactly ``uniform(0, 30)`` of that source."""
    expected = random.Random(seed).uniform(0.0, MAX_JITTER)
    process = worker_process(seed, monkeypatch)
    assert process["jitter"] == expected
    assert process["refresh_at"] == LIFETIME - MARGIN - expected
