"""N tasks in a row, each in its own worker process, timing its first ODC call and then warm calls.

The first call of a task finds no token in memory: it reads the connection, reads the encrypted token
Variable (through the task SDK and the API server), opens the envelope and opens a TCP connection. Each
task then repeats that cold path in the same process, times the pieces alone, and returns the figures
(no token) through XCom (``make bench``).
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, BaseHook, Variable, task

from airflow_provider_odc.cache.stores import variable_key_for
from airflow_provider_odc.cache.token_cache import TokenCache
from airflow_provider_odc.hooks.odc import OdcHook, envelope_codec_for

TASKS = 5
WARM_CALLS = 30
ENVIRONMENTS = "/api/portfolios/v2/environments"

with DAG(
    dag_id="odc_bench_first_call",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={"conn_id": "odc_default"},
) as dag:

    @task(multiple_outputs=False)
    def first_call(params: dict[str, str]) -> dict[str, Any]:
        conn_id = params["conn_id"]
        hook = OdcHook(conn_id)
        started = time.perf_counter()
        hook.request("GET", ENVIRONMENTS)
        first_ms = (time.perf_counter() - started) * 1000

        warm = []
        for _ in range(WARM_CALLS):
            started = time.perf_counter()
            hook.request("GET", ENVIRONMENTS)
            warm.append(time.perf_counter() - started)

        # The same cold path again in this process (new hook, no token in memory, new connection): the
        # difference to the first call is what a process pays once (lazy imports, first TLS/regex set-up).
        again = []
        for _ in range(5):
            TokenCache.forget_all()
            started = time.perf_counter()
            OdcHook(conn_id).request("GET", ENVIRONMENTS)
            again.append(time.perf_counter() - started)

        # The pieces of the first call, each timed alone (after it, so they cannot warm it up).
        key = variable_key_for(conn_id)
        reads, lookups = [], []
        for _ in range(5):
            started = time.perf_counter()
            value = Variable.get(key)
            reads.append(time.perf_counter() - started)
            started = time.perf_counter()
            BaseHook.get_connection(conn_id)
            lookups.append(time.perf_counter() - started)
        settings = hook.settings
        started = time.perf_counter()
        codec = envelope_codec_for(settings)
        derive_s = time.perf_counter() - started
        opens = []
        for _ in range(200):
            started = time.perf_counter()
            codec.open(value)
            opens.append(time.perf_counter() - started)
        return {
            "first_call_ms": first_ms,
            "cold_again_ms": statistics.median(again) * 1000,
            "warm_call_us": statistics.median(warm) * 1e6,
            "variable_get_ms": statistics.median(reads) * 1000,
            "get_connection_ms": statistics.median(lookups) * 1000,
            "key_derivation_us": derive_s * 1e6,
            "envelope_open_us": statistics.median(opens) * 1e6,
        }

    previous = None
    for number in range(1, TASKS + 1):
        current = first_call.override(task_id=f"task_{number:02d}")()
        if previous is not None:
            previous >> current
        previous = current
