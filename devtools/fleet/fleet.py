"""A Celery fleet on one machine: the services on the host, each worker on a "host" of its own.

Host: PostgreSQL (metadata DB, ``scripts/postgres.sh``, loopback), Redis (broker and Celery result backend),
the ODC emulator (https, a CA made for the run), and :class:`AirflowStack` with the CeleryExecutor
(api-server, scheduler, dag-processor, triggerer). Workers: ``airflow celery worker``, each in its own
network namespace and UTS namespace (its own address and hostname, see ``network.py``), optionally with its
clock shifted by libfaketime. Workers reach the api-server (Task SDK), Redis and the emulator at the
service address, which only exists on the host ends of the veth pairs; nothing listens anywhere else.

:meth:`Fleet.stop` stops every process (whole process groups and their descendants) and deletes the
namespaces and links, also when :meth:`Fleet.start` failed halfway.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from airflow_provider_odc.emulator.server import OdcEmulator
from devtools.fleet.network import Host, TestNetwork
from devtools.fleet.tls import make_server_certificate
from devtools.mass_redeploy import CONN_ID as PACED_CONN_ID
from devtools.mass_redeploy import PACED_EXTRA
from devtools.stack import AirflowStack, AirflowStackError, die_with_parent, free_port

REPO = Path(__file__).resolve().parents[2]
FLEET_SCRIPT = REPO / "scripts" / "fleet.sh"


@dataclass(frozen=True)
class WorkerSpec:
    """One worker host: its name (also its hostname) and how far its clock is ahead, in seconds."""

    name: str
    clock_offset: int = 0


class Fleet:
    """The fleet; use as a context manager. ``emulator`` and ``stack`` are usable between start and stop."""

    def __init__(
        self,
        home: Path,
        dags_folder: Path,
        postgres_url: str,
        *,
        workers: tuple[WorkerSpec, ...] = (WorkerSpec("w1"), WorkerSpec("w2", 90)),
        concurrency: int = 4,
        token_lifetime: int = 3600,
        asset_count: int = 25,
        env: Mapping[str, str] | None = None,
        log_level: str = "INFO",
    ) -> None:
        self.home = Path(home).resolve()
        self.dags_folder = dags_folder
        self.postgres_url = postgres_url
        self.workers = workers
        self.concurrency = concurrency
        self.token_lifetime = token_lifetime
        self.asset_count = asset_count
        self.extra_env = dict(env or {})
        self.log_level = log_level
        self.network = TestNetwork([worker.name for worker in workers])
        self.emulator: OdcEmulator | None = None
        self._stack: AirflowStack | None = None
        self._redis: subprocess.Popen[bytes] | None = None
        #: Seconds from the start of ``start()`` to the end of each phase.
        self.timings: dict[str, float] = {}

    @property
    def stack(self) -> AirflowStack:
        if self._stack is None:
            raise RuntimeError("the fleet is not started")
        return self._stack

    @property
    def hosts(self) -> list[Host]:
        return self.network.hosts

    def start(self, timeout: float = 240) -> Fleet:
        t0 = time.monotonic()
        try:
            self.network.up()
            service = self.network.service_address
            self.timings["network"] = time.monotonic() - t0
            certificate = make_server_certificate(self.home / "tls", service)
            self.emulator = OdcEmulator(
                host=service,
                token_lifetime=self.token_lifetime,
                asset_count=self.asset_count,
                ssl_certfile=str(certificate.certfile),
                ssl_keyfile=str(certificate.keyfile),
            ).start()
            trust = {"ca_bundle_path": str(certificate.ca_bundle)}
            connection = {**self.emulator.connection_dict(), "extra": json.dumps(trust)}
            paced = {**connection, "extra": json.dumps({**trust, **PACED_EXTRA})}
            broker = self._start_redis(service)
            self.timings["redis"] = time.monotonic() - t0
            env = {
                "AIRFLOW_CONN_ODC_DEFAULT": json.dumps(connection),
                # The same portal, paced through the shared ledger (tests/integration/dags/odc_mass_redeploy.py).
                f"AIRFLOW_CONN_{PACED_CONN_ID.upper()}": json.dumps(paced),
                "AIRFLOW__CELERY__BROKER_URL": f"{broker}/0",
                # Redis, not the metadata DB: the workers' hosts cannot reach PostgreSQL, which stays on loopback.
                "AIRFLOW__CELERY__RESULT_BACKEND": f"{broker}/1",
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.concurrency),
                "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
                # A worker's hostname is its UTS namespace's; no DNS lookup from inside a namespace.
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "socket.gethostname",
                **self.extra_env,
            }
            self._stack = AirflowStack(
                self.home / "airflow",
                self.dags_folder,
                env=env,
                sql_alchemy_conn=self.postgres_url,
                parallelism=2 * self.concurrency * len(self.workers),
                log_level=self.log_level,
                executor="CeleryExecutor",
                host=service,
            )
            self._stack.start(timeout=timeout)
            self.timings["airflow"] = time.monotonic() - t0
            for worker, host in zip(self.workers, self.hosts, strict=True):
                self._start_worker(worker, host)
            self._wait_workers_ready(time.monotonic() + timeout)
            self.timings["workers"] = time.monotonic() - t0
        except BaseException:
            self.stop()
            raise
        return self

    def _start_redis(self, service: str) -> str:
        """Redis on loopback and the service address, with a password; returns ``redis://:pw@addr:port``."""
        folder = self.home / "redis"
        folder.mkdir(parents=True, exist_ok=True)
        port = free_port(service)
        password = secrets.token_hex(16)
        config = folder / "redis.conf"
        config.write_text(
            f'bind 127.0.0.1 {service}\nport {port}\nrequirepass {password}\nsave ""\nappendonly no\n'
            f"dir {folder}\nlogfile {folder / 'redis.log'}\ndaemonize no\n"
        )
        config.chmod(0o600)
        self._redis = subprocess.Popen(
            ["redis-server", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )
        import redis  # the `fleet` extra

        client = redis.Redis(host=service, port=port, password=password)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                if self._redis.poll() is not None or time.monotonic() > deadline:
                    log = folder / "redis.log"
                    raise AirflowStackError(
                        f"redis-server did not start:\n{log.read_text()[-2000:] if log.exists() else ''}"
                    ) from None
                time.sleep(0.1)
        client.close()
        return f"redis://:{password}@{service}:{port}"

    def _start_worker(self, worker: WorkerSpec, host: Host) -> None:
        prefix = host.exec_prefix()
        if worker.clock_offset:
            if shutil.which("faketime") is None:
                raise AirflowStackError("faketime is missing: run scripts/fleet.sh install")
            prefix += ["faketime", "-f", f"{worker.clock_offset:+d}s"]
        args = [
            "celery",
            "worker",
            "--concurrency",
            str(self.concurrency),
            "--celery-hostname",
            f"{worker.name}@{worker.name}",
            "--pid",
            str(self.stack.home / f"worker-{worker.name}.pid"),
            "--skip-serve-logs",
            "--without-mingle",
            "--without-gossip",
            "--queues",
            f"default,{worker.name}",  # a queue of its own, so that a test can pin tasks to this host
        ]
        self.stack.start_component(f"worker-{worker.name}", args, prefix=prefix)

    def _wait_workers_ready(self, deadline: float) -> None:
        """Wait for Celery's ``ready.`` line from every worker: it is consuming the queue from then on."""
        pending = {f"worker-{worker.name}" for worker in self.workers}
        while pending:
            self.stack._check_alive()
            for name in list(pending):
                log = self.stack.components_dir / f"{name}.log"
                if log.exists() and " ready." in log.read_text(errors="replace"):
                    pending.discard(name)
            if time.monotonic() > deadline:
                raise AirflowStackError(f"workers not ready in time: {sorted(pending)}\n{self.stack._tails()}")
            time.sleep(0.3)

    def stop(self) -> list[str]:
        """Stop everything and delete the network (idempotent); returns what could not be removed."""
        if self._stack is not None:
            self._stack.stop()
        if self._redis is not None:
            with contextlib.suppress(OSError):
                os.killpg(self._redis.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._redis.wait(timeout=10)
            if self._redis.poll() is None:
                with contextlib.suppress(OSError):
                    os.killpg(self._redis.pid, signal.SIGKILL)
                self._redis.wait(timeout=10)
            self._redis = None
        if self.emulator is not None:
            self.emulator.stop()
        return self.network.down()

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def install() -> subprocess.CompletedProcess[str]:
    """``scripts/fleet.sh install`` for this interpreter: exit code 3 when something cannot be installed here."""
    return subprocess.run(
        ["bash", str(FLEET_SCRIPT), "install"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
        timeout=900,
    )
