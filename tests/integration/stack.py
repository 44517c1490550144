"""A real Airflow stack (api-server, scheduler, dag-processor, triggerer) for integration tests.

``dag.test()`` and ``airflow dags test`` run every task of a DAG in the test process, so they cannot show
that state really travels between tasks (Variables, token caches, XComs, connections from the environment):
each task of a real deployment runs in its own worker process. :class:`AirflowStack` starts the four
components as separate processes with the LocalExecutor on SQLite in a throwaway ``AIRFLOW_HOME``, and
talks to them only over REST and through the files they write under that home.

The test process never imports Airflow: importing it would read (and maybe create) a config for whatever
``AIRFLOW_HOME`` the test process happens to have. Everything Airflow-side happens in the child processes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
TERMINAL_RUN_STATES = frozenset({"success", "failed"})


class AirflowStackError(RuntimeError):
    """The stack did not start, or a DAG run did not finish in time. The message carries the evidence."""


def _free_port() -> int:
    """Ask the kernel for a free port on the loopback interface.

    The socket is closed before the api-server binds the port, so another process could take it in
    between; on a test machine that race is rare enough, and ``start()`` then fails loudly.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _proc_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (field 22 of /proc/<pid>/stat), None if gone.

    Used with the pid as an identity, so that ``stop()`` never signals a recycled pid.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces, so split after the last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


def _children_map() -> dict[int, list[int]]:
    """Map every live pid to the pids of its children, read from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def _descendants(root_pids: list[int]) -> set[int]:
    """All live descendants of ``root_pids`` (not the roots themselves).

    Task processes call ``setpgid(0, 0)`` (see ``airflow.sdk.execution_time.supervisor``), so killing the
    components' process groups does not reach them; the process tree does.
    """
    if not Path("/proc").is_dir():
        return set()
    children = _children_map()
    found: set[int] = set()
    todo = list(root_pids)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this child when the test process dies, so a killed pytest leaves no stack.

    Runs in the child between fork and exec. A no-op where prctl is unavailable.
    """
    try:
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    except Exception:
        pass


class AirflowStack:
    """Airflow api-server, scheduler (LocalExecutor), dag-processor and triggerer in their own processes.

    Usage::

        with AirflowStack(tmp_path / "home", Path("tests/integration/dags")) as stack:
            run = stack.run_dag("stack_smoke")
            assert run["state"] == "success"

    Everything the stack writes goes under ``home``: ``airflow.cfg``, the SQLite database, task and trigger
    logs in ``home/logs`` and each component's stdout/stderr in ``home/components/<name>.log``.
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
    ) -> None:
        """Prepare (but do not start) a stack.

        :param home: the ``AIRFLOW_HOME``; created if missing. Nothing is written outside it.
        :param dags_folder: the DAGs to serve. Files whose name starts with ``_`` are not waited for by
            ``start()`` (use that for helper modules that define no DAG).
        :param parallelism: ``[core] parallelism``; the LocalExecutor forks this many workers up front
            (the default 32 costs about 5.8 GB of RSS).
        :param env: extra environment for every component, applied last so it can override any setting
            made here (e.g. ``AIRFLOW_CONN_ODC_DEFAULT``, ``AIRFLOW_VAR_...``, provider options).
        :param sql_alchemy_conn: metadata DB URL; SQLite in ``home`` when None.
        :param log_level: ``[logging] logging_level`` of every component and task.
        """
        self.home = Path(home).resolve()
        self.dags_folder = Path(dags_folder).resolve()
        self.parallelism = parallelism
        self.extra_env = dict(env or {})
        self.sql_alchemy_conn = sql_alchemy_conn or f"sqlite:///{self.home / 'airflow.db'}"
        self.log_level = log_level
        self.port = 0
        self.base_url = ""
        self.components_dir = self.home / "components"
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._session = requests.Session()
        self._token: str | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def airflow_cmd(self) -> list[str]:
        """``python -m airflow`` of the running interpreter, so the stack uses the test's virtualenv."""
        return [sys.executable, "-m", "airflow"]

    def _environment(self) -> dict[str, str]:
        """The environment of every Airflow process.

        Inherited ``AIRFLOW*`` variables are dropped so the stack does not pick up the test process's own
        Airflow settings (a unit-test conftest may point ``AIRFLOW_HOME`` elsewhere); pass what the
        components need through ``env``.
        """
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}
        tmp = self.home / "tmp"
        settings = {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            # Every REST client is an admin; POST /auth/token accepts any credentials.
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__API__EXPOSE_STACKTRACE": "True",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": self.log_level,
            "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
            # Pick up new DAG files within seconds (default: every 5 minutes).
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
            "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "1",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
            "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "300",
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(self.home / "dag_bundles"),
            # A quick scheduler loop: short idle sleep and heartbeats, so runs progress without waiting.
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__POOL_METRICS_INTERVAL": "60",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            # Nothing outside home: temp files (and no __pycache__ next to the DAG files).
            "TMPDIR": str(tmp),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "NO_COLOR": "1",
        }
        return {**base, **settings, **self.extra_env}

    def _airflow(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        """Run a one-shot Airflow CLI command in the stack's environment; raise with its output on failure."""
        proc = subprocess.run(
            [*self.airflow_cmd, *args],
            env=self._environment(),
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0:
            raise AirflowStackError(
                f"`airflow {' '.join(args)}` exited {proc.returncode}\n{proc.stdout[-4000:]}{proc.stderr[-4000:]}"
            )
        return proc

    def start(self, timeout: float = 120) -> None:
        """Migrate the DB, start the four components and wait until they are usable.

        Usable means ``/api/v2/monitor/health`` reports every component healthy **and** every DAG file in
        the dags folder has been parsed (it shows up as a DAG or an import error), so tests can trigger
        DAGs right away.
        """
        deadline = time.monotonic() + timeout
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "tmp").mkdir(exist_ok=True)
        self.components_dir.mkdir(exist_ok=True)
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        # db migrate also writes airflow.cfg with the generated fernet key and JWT secret. It must run
        # before the components start, or each would generate (different) secrets of its own.
        self._airflow("db", "migrate", timeout=max(deadline - time.monotonic(), 1))
        env = self._environment()
        commands = {
            "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
            # Logs are read from files under home, so no log-serving sub-processes (and no fixed ports).
            "scheduler": ["scheduler", "--skip-serve-logs"],
            "dag-processor": ["dag-processor"],
            "triggerer": ["triggerer", "--skip-serve-logs"],
        }
        try:
            for name in COMPONENTS:
                with open(self.components_dir / f"{name}.log", "wb") as out:
                    self._procs[name] = subprocess.Popen(
                        [*self.airflow_cmd, *commands[name]],
                        env=env,
                        cwd=self.home,
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,  # own process group, so stop() can signal the whole group
                        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                    )
            self._wait_healthy(deadline)
            self._wait_dags_parsed(deadline)
        except BaseException:
            self.stop()
            raise

    def _check_alive(self) -> None:
        """Fail fast (with its output) when a component has exited instead of waiting for the timeout."""
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                raise AirflowStackError(
                    f"{name} exited with code {proc.returncode} during start-up\n{self._tail(name)}"
                )

    def _wait_healthy(self, deadline: float) -> None:
        health: Any = None
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                resp = self._session.get(f"{self.base_url}/api/v2/monitor/health", timeout=5)
                if resp.ok:
                    health = resp.json()
                    statuses = [v.get("status") for v in health.values() if isinstance(v, dict)]
                    wanted = {"metadatabase", "scheduler", "triggerer", "dag_processor"}
                    if wanted <= health.keys() and statuses and all(s == "healthy" for s in statuses):
                        return
            except requests.RequestException:
                pass  # api-server not listening yet
            time.sleep(0.5)
        raise AirflowStackError(f"stack not healthy in time; last health: {health}\n{self._tails()}")

    def _expected_dag_files(self) -> set[str]:
        """DAG files the dag-processor will parse, relative to the dags folder.

        Mirrors Airflow's default heuristic (the file mentions ``airflow`` and ``dag`` or ``asset``), minus
        files starting with ``_`` (helpers that define no DAG would otherwise never show up).
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
        expected = self._expected_dag_files()
        missing = expected
        while time.monotonic() < deadline:
            self._check_alive()
            seen = {d.get("relative_fileloc") for d in self.dags()}
            seen |= {self._relative(e.get("filename", "")) for e in self.import_errors()}
            missing = expected - seen
            if not missing:
                return
            time.sleep(0.5)
        raise AirflowStackError(f"DAG files not parsed in time: {sorted(missing)}\n{self._tails()}")

    def _relative(self, filename: str) -> str:
        try:
            return Path(filename).resolve().relative_to(self.dags_folder).as_posix()
        except ValueError:
            return filename

    def stop(self, grace: float = 5.0) -> None:
        """Terminate every component and everything it started; safe to call twice.

        SIGTERM goes to each component's process group and to every descendant (task processes run in
        process groups of their own); whatever is still alive after ``grace`` seconds gets SIGKILL.
        Processes are tracked as (pid, start time) so that a recycled pid is never signalled.
        """
        if not self._procs:
            return
        roots = [p.pid for p in self._procs.values()]
        tracked: dict[int, int] = {}

        def refresh() -> None:
            for pid in [*roots, *_descendants(roots), *_descendants(list(tracked))]:
                started = _proc_start_time(pid)
                if started is not None:
                    tracked.setdefault(pid, started)

        def alive() -> list[int]:
            return [pid for pid, started in tracked.items() if _proc_start_time(pid) == started]

        def signal_all(sig: signal.Signals) -> None:
            for proc in self._procs.values():
                if proc.poll() is None:
                    try:
                        os.killpg(proc.pid, sig)
                    except OSError:
                        pass
            for pid in alive():
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass

        refresh()
        signal_all(signal.SIGTERM)
        end = time.monotonic() + grace
        while time.monotonic() < end:
            for proc in self._procs.values():
                proc.poll()  # reap, so finished components do not linger as zombies
            refresh()
            if not alive():
                break
            time.sleep(0.1)
        else:
            signal_all(signal.SIGKILL)
        for proc in self._procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self._procs.clear()
        self._session.close()
        self._token = None

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
        """Authenticated call to the api-server; ``path`` is relative to the server root (``/api/v2/...``).

        Does not raise on HTTP errors: callers decide what status they expect.
        """
        if self._token is None:
            resp = self._session.post(
                f"{self.base_url}/auth/token", json={"username": "admin", "password": "admin"}, timeout=10
            )
            resp.raise_for_status()
            self._token = resp.json()["access_token"]
        headers = {"Authorization": f"Bearer {self._token}", **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 30)
        return self._session.request(method, f"{self.base_url}{path}", headers=headers, **kwargs)

    def _get_json(self, path: str, **params: Any) -> Any:
        resp = self.rest("GET", path, params=params or None)
        if not resp.ok:
            raise AirflowStackError(f"GET {path} -> {resp.status_code}: {resp.text[:2000]}")
        return resp.json()

    def _paged(self, path: str, key: str) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            page = self._get_json(path, limit=100, offset=offset)
            items = page[key]
            yield from items
            offset += len(items)
            if not items or offset >= page["total_entries"]:
                return

    def dags(self) -> list[dict[str, Any]]:
        """Every DAG the dag-processor has written to the DB."""
        return list(self._paged("/api/v2/dags", "dags"))

    def import_errors(self) -> list[dict[str, Any]]:
        """DAG files that failed to parse (``filename``, ``stack_trace``)."""
        return list(self._paged("/api/v2/importErrors", "import_errors"))

    def run_dag(self, dag_id: str, conf: dict[str, Any] | None = None, timeout: float = 240) -> dict[str, Any]:
        """Trigger ``dag_id`` once and wait for the run to end; return the dag run JSON.

        Waits for the dag-processor to have parsed the DAG (a file added after ``start()`` is picked up
        within seconds) and unpauses it first. The run's state may be ``failed``: check ``["state"]``.
        On timeout, raises with every task instance's state and the tail of the logs.
        """
        deadline = time.monotonic() + timeout
        while self.rest("GET", f"/api/v2/dags/{dag_id}").status_code == 404:
            if time.monotonic() > deadline:
                raise AirflowStackError(
                    f"DAG {dag_id!r} was never parsed; import errors: "
                    f"{json.dumps(self.import_errors(), indent=1)[:6000]}"
                )
            time.sleep(0.5)
        resp = self.rest("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})
        if not resp.ok:
            raise AirflowStackError(f"unpausing {dag_id} -> {resp.status_code}: {resp.text}")
        resp = self.rest("POST", f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})
        if not resp.ok:
            raise AirflowStackError(f"triggering {dag_id} -> {resp.status_code}: {resp.text}")
        run_id = resp.json()["dag_run_id"]
        run: dict[str, Any] = resp.json()
        while run.get("state") not in TERMINAL_RUN_STATES:
            if time.monotonic() > deadline:
                states = {
                    f"{ti['task_id']}[{ti['map_index']}]": ti["state"] for ti in self.task_instances(dag_id, run_id)
                }
                raise AirflowStackError(
                    f"DAG run {dag_id}/{run_id} still {run.get('state')!r} after {timeout}s; "
                    f"task states: {states}\n{self._tails()}\n--- task logs ---\n{self._task_logs_tail(dag_id, run_id)}"
                )
            time.sleep(0.3)
            run = self._get_json(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        return run

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Task instances of one run, as returned by the REST API (``task_id``, ``state``, ``map_index``, ...)."""
        return list(self._paged(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", "task_instances"))

    def xcom_values(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """``task_id -> return_value`` XCom of every task of a run that returned something.

        Values are JSON as stored in the DB. For a mapped task the value is the list of its
        ``return_value``s in ``map_index`` order.
        """
        values: dict[str, Any] = {}
        mapped: dict[str, dict[int, Any]] = {}
        for ti in self.task_instances(dag_id, run_id):
            task_id, map_index = ti["task_id"], ti["map_index"]
            resp = self.rest(
                "GET",
                f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value",
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

    # ------------------------------------------------------------------ logs

    def _tail(self, name: str, chars: int = 3000) -> str:
        path = self.components_dir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return f"--- {name} (last {chars} chars) ---\n{text[-chars:]}"

    def _tails(self) -> str:
        return "\n".join(self._tail(name) for name in COMPONENTS)

    def _task_logs_tail(self, dag_id: str, run_id: str, chars: int = 3000) -> str:
        run_dir = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
        parts = [
            f"--- {path.relative_to(run_dir)} ---\n{path.read_text(errors='replace')[-chars:]}"
            for path in sorted(run_dir.rglob("*.log"))
        ]
        return "\n".join(parts) or f"(no task logs under {run_dir})"

    def log_text(self) -> str:
        """Every task log, trigger log, dag-processor log and component output under home, concatenated.

        Meant for leak scans ("the secret appears nowhere"), so it reads every ``*.log`` file under home.
        """
        return "\n".join(
            path.read_text(errors="replace") for path in sorted(self.home.rglob("*.log")) if path.is_file()
        )

    def task_log(self, dag_id: str, run_id: str, task_id: str) -> str:
        """The raw log (JSON lines) of one task in one run: every attempt, map index and trigger log of it."""
        task_dir = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        files = sorted(p for p in task_dir.rglob("*") if p.is_file())
        if not files:
            raise FileNotFoundError(f"no log files under {task_dir}")
        return "\n".join(p.read_text(errors="replace") for p in files)
