"""A real multi-host Celery fleet on one machine, shared by ``tests/fleet`` and ``benchmarks/fleet.py``.

- ``fleet``: the services on the host and each Celery worker in a network namespace of its own.
- ``network``: the namespaces, veth pairs and addresses the workers live on.
- ``tls``: the CA and server certificate the emulator serves https with for one run.
- ``scenarios``: what the test and the benchmark run on a fleet, and the figures each run yields.
"""
