"""Development helpers shared by ``tests/`` and ``benchmarks/``; not part of the wheel.

- ``stack``: a real Airflow (api-server, scheduler, dag-processor, triggerer) in child processes.
- ``burst``: thirty deployment POSTs released together on such a stack, against ODC's rate limits.
- ``servers``: the emulator app behind TLS, under a non-loopback name, or with misbehaving routes.
- ``hook_factory``: ``OdcHook``s on a loopback portal whose retry waits are recorded, not slept.
- ``fleet``: a Celery fleet, each worker on a host (network namespace) of its own (needs root).

Everything here stands on the provider's public API only. The wheel ships ``airflow_provider_odc`` alone
(``pyproject.toml``; ``tests/packaging`` checks it); users who want an ODC to test their own DAGs against
get the emulator and its pytest fixtures from the package itself.
"""
