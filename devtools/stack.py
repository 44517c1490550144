"""A real Airflow stack (api-server, scheduler, dag-processor, triggerer) for integration tests.

``dag.test()`` and ``airflow dags test`` run every task of a DAG in the test process, so they cannot show
that state really travels between tasks (Variables, token caches, XComs, connections from the environment):
in a real deployment each task runs in its own worker process. :class:`AirflowStack` starts the four
components as separate processes with the LocalExecutor on SQLite in a throwaway ``AIRFLOW_HOME`` and talks
to them only over REST and through the files they write under that home.

The test process never imports Airflow: that would read (and maybe create) a config for whatever
``AIRFLOW_HOME`` the test process happens to have. Everything Airflow-side happens in child processes.
"""

from __future__ import annotations

import atexit
import configparser
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import requests
import tenacity

from airflow_provider_odc.cache.lease import lease_key_for
from airflow_provider_odc.cache.stores import variable_key_for

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
HEALTH_KEYS = frozenset({"metadatabase", "scheduler", "triggerer", "dag_processor"})
TERMINAL_RUN_STATES = frozenset({"success", "failed"})


class AirflowStackError(RuntimeError):
    """The stack did not start, or a DAG run did not finish in time. The message carries the evidence."""


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the kernel for a free port on ``host`` (default: the loopback interface).

    The socket is closed before the api-server binds the port, so another process could take it in
    between; that race is rare, and ``start()`` then fails loudly rather than hanging.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/<pid>/stat (state, ppid, ...), or None if the process is gone.

    The command name (field 2) is in parentheses and may contain spaces, so split after the last ")".
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()


def _identity(pid: int) -> int | None:
    """Start time (clock ticks since boot) of a live, non-zombie ``pid``; None otherwise.

    (pid, start time) identifies a process, so that ``stop()`` never signals a recycled pid.
    """
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _descendants(root_pids: list[int]) -> set[int]:
    """All live descendants of ``root_pids`` (not the roots themselves), read from /proc (Linux).

    Needed because task processes call ``setpgid(0, 0)`` (``airflow.sdk.execution_time.supervisor``):
    signalling the components' process groups does not reach them, following the process tree does.
    """
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        fields = _stat_fields(int(entry.name)) if entry.name.isdigit() else None
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[int] = set()
    todo = list(root_pids)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def die_with_parent() -> None:
    """Have Linux SIGTERM this child when the test process dies, so a killed pytest leaves no stack behind.

    Runs in the child between fork and exec. Best effort: does nothing where prctl is unavailable.
    """
    with contextlib.suppress(Exception):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class AirflowStack:
    """Airflow api-server, scheduler (LocalExecutor), dag-processor and triggerer in their own processes.

    Usage::

        with AirflowStack(tmp_path / "home", Path("tests/integration/dags")) as stack:
            run = stack.run_dag("stack_smoke")
            assert run["state"] == "success", stack.explain("stack_smoke", run["dag_run_id"])

    Everything the stack writes goes under ``home``: ``airflow.cfg``, the SQLite database, task and trigger
    logs in ``home/logs`` and each component's stdout+stderr in ``home/components/<name>.log``.
    """

    def __init__(
        self,
        home: Path,
        dags_folder: Path,
        *,
        parallelism: int = 4,
        env: Mapping[str, str] | None = None,
        sql_alchemy_conn: str | None = None,
        log_level: str = "INFO",
        executor: str = "LocalExecutor",
        host: str = "127.0.0.1",
    ) -> None:
        """Prepare (but do not start) a stack.

        :param home: the ``AIRFLOW_HOME``; created if missing. Nothing is written outside it.
        :param dags_folder: the DAGs to serve. ``start()`` waits for every file in it that looks like a DAG
            file, except files whose name starts with ``_`` (use that for helpers that define no DAG).
        :param parallelism: ``[core] parallelism``. The LocalExecutor forks this many workers up front; the
            default of 32 would cost about 5.8 GB of RSS.
        :param env: extra environment for every component, applied last so it can override any setting
            made here (``AIRFLOW_CONN_ODC_DEFAULT``, ``AIRFLOW_VAR_...``, provider options, ...).
        :param sql_alchemy_conn: metadata DB URL (e.g. PostgreSQL); SQLite in ``home`` when None.
        :param log_level: ``[logging] logging_level`` of every component and task.
        :param executor: ``[core] executor``. With ``CeleryExecutor`` no task runs until workers are started
            with :meth:`start_component` (``tests/fleet`` does that, each worker in a network namespace).
        :param host: the address the api-server listens on; workers on other hosts need one they can reach.
        """
        self.home = Path(home).resolve()
        self.dags_folder = Path(dags_folder).resolve()
        self.parallelism = parallelism
        self.extra_env = dict(env or {})
        self.sql_alchemy_conn = sql_alchemy_conn or f"sqlite:///{self.home / 'airflow.db'}"
        self.log_level = log_level
        self.executor = executor
        self.host = host
        self.port = 0
        self.base_url = ""
        self.components_dir = self.home / "components"
        #: Seconds from the start of the last ``start()`` to the end of each phase (migrate, healthy, parsed).
        self.timings: dict[str, float] = {}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._started_as: dict[str, tuple[list[str], list[str] | None, Mapping[str, str] | None]] = {}
        self._session = requests.Session()
        self._token: str | None = None
        # The JWT secret `db migrate` generates is 24 bytes, and PyJWT warns about it on every token.
        self._jwt_secret = secrets.token_urlsafe(64)

    # ------------------------------------------------------------------ lifecycle

    @property
    def airflow_cmd(self) -> list[str]:
        """``python -m airflow`` of the running interpreter, so the stack uses the tests' virtualenv."""
        return [sys.executable, "-m", "airflow"]

    def environment(self) -> dict[str, str]:
        """The environment of every Airflow process the stack runs.

        Inherited ``AIRFLOW*`` variables are dropped so that the stack ignores the test process's own
        Airflow settings (a unit-test conftest may point ``AIRFLOW_HOME`` elsewhere); whatever the
        components need goes through ``env``.
        """
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}
        settings = {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": self.executor,
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            # Everybody is admin; POST /auth/token accepts any credentials.
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API_AUTH__JWT_SECRET": self._jwt_secret,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn,
            "AIRFLOW__API__HOST": self.host,
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__API__EXPOSE_STACKTRACE": "True",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": self.log_level,
            "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
            # See a new DAG file within seconds (default: list the dags folder every 5 minutes).
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
            "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "1",
            "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "300",
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(self.home / "dag_bundles"),
            # A quick scheduler loop (default idle sleep 1 s) and frequent heartbeats, so runs do not wait.
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            # Nothing outside home: temp files go there, and no __pycache__ appears next to the DAG files.
            "TMPDIR": str(self.home / "tmp"),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "NO_COLOR": "1",
        }
        return {**inherited, **settings, **self.extra_env}

    def airflow(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run one Airflow CLI command against the stack, e.g. ``airflow("connections", "test", "odc_default")``.

        Each call costs a couple of seconds of interpreter start-up; prefer :meth:`rest` in loops.
        """
        return subprocess.run(
            [*self.airflow_cmd, *args],
            env=self.environment(),
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, timeout: float = 120) -> None:
        """Migrate the DB, start the four components and wait until they are usable.

        Usable means ``/api/v2/monitor/health`` reports the DB and all three other components healthy
        **and** every DAG file of the dags folder has been parsed (it shows up as a DAG or as an import
        error), so a test can trigger its DAG right away. Stops whatever it started if that fails.
        """
        if self._procs:
            raise AirflowStackError("the stack is already running")
        t0 = time.monotonic()
        deadline = t0 + timeout
        for folder in (self.home, self.home / "tmp", self.components_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port(self.host)
        self.base_url = f"http://{self.host}:{self.port}"
        # db migrate also writes airflow.cfg (with a generated fernet key). It must finish before the
        # components start, or each of them would write airflow.cfg with a fernet key of its own.
        migrate = self.airflow("db", "migrate", timeout=timeout)
        if migrate.returncode != 0:
            raise AirflowStackError(f"airflow db migrate failed:\n{migrate.stdout[-4000:]}{migrate.stderr[-4000:]}")
        self.timings["migrate"] = time.monotonic() - t0
        commands = {
            "api-server": ["api-server", "--host", self.host, "--port", str(self.port), "--workers", "1"],
            # Logs are read from files under home: no log-serving sub-processes, no fixed ports 8793/8794.
            "scheduler": ["scheduler", "--skip-serve-logs"],
            "dag-processor": ["dag-processor"],
            "triggerer": ["triggerer", "--skip-serve-logs"],
        }
        atexit.register(self.stop)
        try:
            for name in COMPONENTS:
                self.start_component(name, commands[name])
            self._wait_healthy(deadline)
            self.timings["healthy"] = time.monotonic() - t0
            self._wait_dags_parsed(deadline)
            self.timings["parsed"] = time.monotonic() - t0
        except BaseException:
            self.stop()
            raise

    def start_component(
        self, name: str, args: list[str], *, prefix: list[str] | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        """Start ``airflow <args>`` as one more component named ``name``, stopped by :meth:`stop` like the others.

        ``prefix`` runs it through a wrapper (``ip netns exec NS``, ``faketime -f +90s``, ...); ``env`` is
        applied over :meth:`environment`. Output goes to ``components/<name>.log``.
        """
        if name in self._procs:
            raise AirflowStackError(f"a component named {name!r} is already running")
        self._started_as[name] = (args, prefix, env)
        with open(self.components_dir / f"{name}.log", "ab") as out:
            self._procs[name] = subprocess.Popen(
                [*(prefix or []), *self.airflow_cmd, *args],
                env={**self.environment(), **(env or {})},
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a process group of its own, for stop()
                preexec_fn=die_with_parent if sys.platform == "linux" else None,
            )

    def _check_alive(self) -> None:
        """Fail fast, with its output, when a component has exited instead of waiting for the timeout."""
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                raise AirflowStackError(f"{name} exited with code {proc.returncode}\n{self._tail(name)}")

    def _wait_healthy(self, deadline: float) -> None:
        """Poll ``/api/v2/monitor/health`` until the DB and the three other components report healthy."""
        health: Any = None
        warm_up: threading.Thread | None = None
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                resp = self._session.get(f"{self.base_url}/api/v2/monitor/health", timeout=10)
            except requests.RequestException:
                time.sleep(0.3)  # the api-server is not listening yet
                continue
            if warm_up is None:
                warm_up = threading.Thread(target=self._warm_up, name="airflow-stack-warm-up", daemon=True)
                warm_up.start()
            health = resp.json() if resp.ok else resp.text
            if resp.ok and all(health.get(key, {}).get("status") == "healthy" for key in HEALTH_KEYS):
                warm_up.join(timeout=max(deadline - time.monotonic(), 0))
                return
            time.sleep(0.3)
        raise AirflowStackError(f"stack not healthy in time; last health: {health}\n{self._tails()}")

    def _warm_up(self) -> None:
        """Make the api-server build its Execution API now rather than during the first task.

        The versioned (Cadwyn) Execution API app is built on its first request. That takes about 4 s and
        blocks the api-server's event loop, so without this the first task of a session starts seconds
        late. Runs in a thread while the other components are still starting.
        """
        with contextlib.suppress(requests.RequestException):
            requests.get(f"{self.base_url}/execution/health", timeout=60)

    def _expected_dag_files(self) -> set[str]:
        """DAG files the dag-processor will parse, relative to the dags folder.

        Mirrors Airflow's default heuristic (the file mentions ``airflow`` and ``dag`` or ``asset``), minus
        files starting with ``_``: a helper that defines no DAG would otherwise be waited for forever.
        """
        expected = set()
        for path in self.dags_folder.rglob("*.py"):
            if path.name.startswith("_") or "__pycache__" in path.parts:
                continue
            content = path.read_bytes().lower()
            if b"airflow" in content and (b"dag" in content or b"asset" in content):
                expected.add(path.relative_to(self.dags_folder).as_posix())
        return expected

    def _wait_dags_parsed(self, deadline: float) -> None:
        missing = expected = self._expected_dag_files()
        while time.monotonic() < deadline:
            self._check_alive()
            seen = {dag.get("relative_fileloc") for dag in self.dags()}
            seen |= {self._relative(err.get("filename") or "") for err in self.import_errors()}
            missing = expected - seen
            if not missing:
                return
            time.sleep(0.3)
        raise AirflowStackError(f"DAG files not parsed in time: {sorted(missing)}\n{self._tails()}")

    def _relative(self, filename: str) -> str:
        with contextlib.suppress(ValueError):
            return Path(filename).resolve().relative_to(self.dags_folder).as_posix()
        return filename

    def stop_component(self, name: str, grace: float = 10.0) -> None:
        """SIGTERM one component's process group (SIGKILL after ``grace``), as an operator's restart would."""
        proc = self._procs.pop(name)
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    def restart_component(self, name: str) -> None:
        """Start a component stopped by :meth:`stop_component` again, with the arguments it first had."""
        args, prefix, env = self._started_as[name]
        self.start_component(name, args, prefix=prefix, env=env)

    def restart_triggerer(self) -> None:
        """Stop the triggerer and start a new one (its triggers are rebuilt from their kwargs)."""
        self.stop_component("triggerer")
        self.restart_component("triggerer")

    def stop(self, grace: float = 3.0) -> None:
        """Terminate every component and everything it started. Safe to call more than once.

        SIGTERM goes to each component's process group and to each of their descendants (task processes
        have process groups of their own); whatever is still alive after ``grace`` seconds gets SIGKILL.
        The grace is short on purpose: the api-server is done 0.1 s after SIGTERM but then spends about
        4 s in the interpreter's final garbage collection, and nothing in a throwaway home needs it.
        """
        atexit.unregister(self.stop)
        self._session.close()
        self._token = None
        if not self._procs:
            return
        roots = [proc.pid for proc in self._procs.values()]
        tracked: dict[int, int] = {}  # pid -> start time, so a recycled pid is never signalled

        def refresh() -> None:
            for pid in {*roots, *_descendants([*roots, *tracked])}:
                started = _identity(pid)
                if started is not None:
                    tracked.setdefault(pid, started)

        def alive() -> list[int]:
            return [pid for pid, started in tracked.items() if _identity(pid) == started]

        def signal_all(sig: signal.Signals) -> None:
            for proc in self._procs.values():
                if proc.poll() is None:
                    with contextlib.suppress(OSError):
                        os.killpg(proc.pid, sig)
            for pid in alive():
                with contextlib.suppress(OSError):
                    os.kill(pid, sig)

        refresh()
        signal_all(signal.SIGTERM)
        end = time.monotonic() + grace
        while True:
            for proc in self._procs.values():
                proc.poll()  # reap exited components so they do not count as alive zombies
            refresh()
            if not alive():
                break
            if time.monotonic() > end:
                signal_all(signal.SIGKILL)
                break
            time.sleep(0.1)
        for proc in self._procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self._procs.clear()

    def __enter__(self) -> AirflowStack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ REST

    def rest(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Authenticated call to the api-server. ``path`` starts at the server root (``/api/v2/...``).

        ``kwargs`` go to :meth:`requests.Session.request`. Does not raise on HTTP errors: the caller
        decides which status it expects.
        """
        if self._token is None:
            resp = self._session.post(
                f"{self.base_url}/auth/token", json={"username": "admin", "password": "admin"}, timeout=30
            )
            resp.raise_for_status()
            self._token = resp.json()["access_token"]
        headers = {"Authorization": f"Bearer {self._token}", **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 30)
        return self._session.request(method, f"{self.base_url}{path}", headers=headers, **kwargs)

    @tenacity.retry(
        retry=tenacity.retry_if_exception_type((requests.Timeout, requests.ConnectionError)),
        stop=tenacity.stop_after_attempt(3),
        reraise=True,
    )
    def _get_json(self, path: str, **params: Any) -> Any:
        """A GET (safe to repeat): an api-server that stalls for one read on a loaded machine is asked again."""
        resp = self.rest("GET", path, params=params or None)
        if not resp.ok:
            raise AirflowStackError(f"GET {path} -> {resp.status_code}: {resp.text[:2000]}")
        return resp.json()

    def _paged(self, path: str, key: str) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            page = self._get_json(path, limit=100, offset=offset)
            yield from page[key]
            offset += len(page[key])
            if not page[key] or offset >= page["total_entries"]:
                return

    def dags(self) -> list[dict[str, Any]]:
        """Every DAG the dag-processor has written to the DB (REST JSON: ``dag_id``, ``relative_fileloc``...)."""
        return list(self._paged("/api/v2/dags", "dags"))

    def import_errors(self) -> list[dict[str, Any]]:
        """DAG files that failed to parse (``filename``, ``stack_trace``)."""
        return list(self._paged("/api/v2/importErrors", "import_errors"))

    def run_dag(self, dag_id: str, conf: dict[str, Any] | None = None, timeout: float = 240) -> dict[str, Any]:
        """Trigger ``dag_id`` once and wait for the run to end; return the dag run JSON.

        The returned run may have failed: check ``["state"]`` and use :meth:`explain` for the message. On
        timeout, raises with the task states and the log tails.
        """
        deadline = time.monotonic() + timeout
        run_id = self.trigger_dag(dag_id, conf, timeout=timeout)
        return self.wait_for_run(dag_id, run_id, timeout=max(deadline - time.monotonic(), 1))

    def trigger_dag(self, dag_id: str, conf: dict[str, Any] | None = None, timeout: float = 240) -> str:
        """Unpause ``dag_id`` and start one run of it; return the run id without waiting for the run.

        Waits (up to ``timeout``) for the dag-processor to have parsed the DAG first: a file added after
        ``start()`` shows up within seconds.
        """
        deadline = time.monotonic() + timeout
        dag_path = f"/api/v2/dags/{quote(dag_id, safe='')}"
        while self.rest("GET", dag_path).status_code == 404:
            if time.monotonic() > deadline:
                errors = json.dumps(self.import_errors(), indent=1)[:6000]
                raise AirflowStackError(f"DAG {dag_id!r} was never parsed; import errors: {errors}")
            time.sleep(0.3)
        resp = self.rest("PATCH", dag_path, json={"is_paused": False})
        if not resp.ok:
            raise AirflowStackError(f"unpausing {dag_id} -> {resp.status_code}: {resp.text}")
        resp = self.rest("POST", f"{dag_path}/dagRuns", json={"logical_date": None, "conf": conf or {}})
        if not resp.ok:
            raise AirflowStackError(f"triggering {dag_id} -> {resp.status_code}: {resp.text}")
        return str(resp.json()["dag_run_id"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 240) -> dict[str, Any]:
        """Wait until the run is ``success`` or ``failed``; return its JSON. On timeout, raise with evidence."""
        deadline = time.monotonic() + timeout
        run_path = f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"
        while (run := self._get_json(run_path)).get("state") not in TERMINAL_RUN_STATES:
            if time.monotonic() > deadline:
                raise AirflowStackError(
                    f"DAG run {dag_id}/{run_id} still {run.get('state')!r} after {timeout}s\n"
                    f"{self.explain(dag_id, run_id)}\n{self._tails()}"
                )
            time.sleep(0.3)
        result: dict[str, Any] = run
        return result

    def wait_for_task_state(
        self, dag_id: str, run_id: str, task_id: str, state: str, timeout: float = 120
    ) -> dict[str, Any]:
        """Wait until task ``task_id`` (unmapped) of the run is in ``state``, e.g. ``deferred``; return its JSON."""
        deadline = time.monotonic() + timeout
        seen: str | None = None
        while time.monotonic() < deadline:
            for ti in self.task_instances(dag_id, run_id):
                if ti["task_id"] == task_id:
                    seen = ti["state"]
                    if seen == state:
                        return ti
            time.sleep(0.3)
        raise AirflowStackError(
            f"{dag_id}/{run_id} task {task_id} never reached {state!r} (last {seen!r})\n{self.explain(dag_id, run_id)}"
        )

    def wait_for_deferral_processed(self, dag_id: str, run_id: str, task_id: str, timeout: float = 120) -> None:
        """Wait until the scheduler has handled the executor's event for the process that deferred.

        Until then, letting ODC finish races Airflow itself: a trigger that fires at once resumes the task,
        and the late "process ended" event of the deferring process then finds it queued or running and fails
        it ("state changed externally"; apache/airflow#66374, #72716). The scheduler logs the handled event as
        ``TaskInstance Finished: ... state=deferred``."""
        wanted = re.compile(
            rf"TaskInstance Finished: dag_id={re.escape(dag_id)}, task_id={re.escape(task_id)}, "
            rf"run_id={re.escape(run_id)},.*state=deferred,"
        )
        log = self.components_dir / "scheduler.log"
        deadline = time.monotonic() + timeout
        while not (log.is_file() and wanted.search(log.read_text(encoding="utf-8", errors="replace"))):
            if time.monotonic() > deadline:
                raise AirflowStackError(f"the scheduler never handled the deferral of {dag_id}/{run_id}/{task_id}")
            time.sleep(0.2)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Task instances of one run as REST JSON (``task_id``, ``map_index``, ``state``, ``pid``, ...)."""
        path = f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances"
        return list(self._paged(path, "task_instances"))

    def xcom_values(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """``task_id -> return_value`` XCom for every task of the run that returned something.

        Values are the JSON stored in the DB (dicts, lists, strings, numbers come back as such). For a
        mapped task the value is the list of its ``return_value``\\ s in ``map_index`` order.
        """
        run_path = f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"
        values: dict[str, Any] = {}
        mapped: dict[str, dict[int, Any]] = {}
        for ti in self.task_instances(dag_id, run_id):
            task_id, map_index = ti["task_id"], ti["map_index"]
            resp = self.rest(
                "GET",
                f"{run_path}/taskInstances/{quote(task_id, safe='')}/xcomEntries/return_value",
                params={"map_index": map_index},
            )
            if resp.status_code == 404:
                continue
            if not resp.ok:
                raise AirflowStackError(f"XCom of {task_id}[{map_index}] -> {resp.status_code}: {resp.text}")
            if map_index < 0:
                values[task_id] = resp.json()["value"]
            else:
                mapped.setdefault(task_id, {})[map_index] = resp.json()["value"]
        for task_id, by_index in mapped.items():
            values[task_id] = [by_index[i] for i in sorted(by_index)]
        return values

    def explain(self, dag_id: str, run_id: str, chars: int = 3000) -> str:
        """Task states and the tail of every task log of a run: the message for a failed assertion."""
        states = {f"{ti['task_id']}[{ti['map_index']}]": ti["state"] for ti in self.task_instances(dag_id, run_id)}
        run_dir = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
        logs = [
            f"--- {path.relative_to(run_dir)} ---\n{path.read_text(errors='replace')[-chars:]}"
            for path in sorted(run_dir.rglob("*.log"))
        ]
        return f"task states: {states}\n" + ("\n".join(logs) or f"(no task logs under {run_dir})")

    # ------------------------------------------------------------------ metadata database

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite metadata database file, or None when the stack runs on another database."""
        prefix = "sqlite:///"
        return Path(self.sql_alchemy_conn[len(prefix) :]) if self.sql_alchemy_conn.startswith(prefix) else None

    def fernet_key(self) -> str:
        """The ``[core] fernet_key`` that ``db migrate`` generated: what Airflow encrypts Variables,
        connection passwords and extras, and trigger kwargs with."""
        config = configparser.ConfigParser(interpolation=None)
        config.read(self.home / "airflow.cfg")
        return config["core"]["fernet_key"]

    # ------------------------------------------------------------------ logs

    def _tail(self, name: str, chars: int = 3000) -> str:
        path = self.components_dir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return f"--- {name} output (last {chars} chars) ---\n{text[-chars:]}"

    def _tails(self) -> str:
        return "\n".join(self._tail(name) for name in dict.fromkeys([*COMPONENTS, *self._procs]))

    def log_text(self) -> str:
        """Every ``*.log`` under home concatenated: task and trigger logs, dag-processor logs, component output.

        Meant for leak scans ("the secret appears nowhere"), hence everything rather than one task's log.
        """
        return "\n".join(
            path.read_text(errors="replace") for path in sorted(self.home.rglob("*.log")) if path.is_file()
        )

    def task_log(self, dag_id: str, run_id: str, task_id: str) -> str:
        """Raw log (JSON lines) of one task in one run: all its attempts, map indexes and trigger logs."""
        task_dir = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        files = sorted(path for path in task_dir.rglob("*") if path.is_file())
        if not files:
            raise FileNotFoundError(f"no log files under {task_dir}")
        return "\n".join(path.read_text(errors="replace") for path in files)


def empty_the_token_cache(stack: AirflowStack, conn_id: str = "odc_default") -> None:
    """Delete the connection's cached token (and any lease) from the metadata DB: a cold start."""
    for key in (variable_key_for(conn_id), lease_key_for(conn_id)):
        response = stack.rest("DELETE", f"/api/v2/variables/{quote(key, safe='')}")
        assert response.status_code in (204, 404), response.text
        assert stack.rest("GET", f"/api/v2/variables/{quote(key, safe='')}").status_code == 404
