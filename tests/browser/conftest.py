"""Fixtures for the browser tests: a real Airflow API server (which serves the React UI) and headless Chromium.

What the browser tests need, and how to get it (CI runs the same script):

    bash tests/browser/install-deps.sh .venv     # Debian's chromium + Playwright for Python

Without ``/usr/bin/chromium`` or Playwright the tests are skipped with the reason; with
``ODC_REQUIRE_BROWSER=1`` or ``CI=true`` (tests/required.py) they fail instead, so a CI that installed them
cannot pass by skipping. No browser is ever downloaded (no ``playwright install``): Playwright drives Debian's Chromium.

The API server runs in its own process in a throwaway ``AIRFLOW_HOME`` (SQLite, simple auth manager with
every user an admin, connection testing enabled), bound to 127.0.0.1 on a free port. The ODC emulator runs
in the pytest process (``odc_emulator`` fixture of the provider's pytest plugin); the API server reaches it
over loopback when the Test button runs the hook. Every process started here is stopped at the end of the
module, also when a test fails; the API server's log stays under pytest's basetemp for a post-mortem.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from devtools.stack import die_with_parent, free_port

from ..required import missing

CHROMIUM = Path("/usr/bin/chromium")
REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"
INSTALL_HINT = "install them with: bash tests/browser/install-deps.sh .venv"

# The flags Chromium needs on these machines (root, no GPU, no network beyond loopback). Playwright adds
# --headless and a fresh, empty --user-data-dir of its own to every launch() (it refuses one given in args).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

API_SERVER_START_TIMEOUT = 120.0  # db migrate ~4 s and a ready API server ~6 s here; generous for a busy CI
DEFAULT_TIMEOUT_MS = 20_000  # every Playwright action and expect(); the UI answers within a second or two
NAVIGATION_TIMEOUT_MS = 45_000  # first load of the UI bundle

_timings: dict[str, float] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "browser: drives the Airflow React UI in headless Chromium against a real API server "
        "(needs /usr/bin/chromium and playwright: tests/browser/install-deps.sh)",
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _timings:
        phases = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in _timings.items())
        terminalreporter.write_line(f"browser tests: {phases}; screenshots in {ARTIFACTS}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """Keep each phase's report on the item, so the ``page`` fixture can screenshot a failed test."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _missing_browser_reason() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing; {INSTALL_HINT}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return f"playwright is not installed in {sys.executable}; {INSTALL_HINT}"
    return None


class AirflowApiServer:
    """A running ``airflow api-server`` plus a REST client authenticated through ``POST /auth/token``."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = home / "api-server.log"
        self.session = requests.Session()
        self._proc: subprocess.Popen[bytes] | None = None
        # db migrate writes a 24-byte JWT secret, and PyJWT warns about it on every token.
        self._jwt_secret = secrets.token_urlsafe(64)

    def environment(self) -> dict[str, str]:
        # Drop the test process's own Airflow settings (tests/conftest.py points AIRFLOW_HOME elsewhere).
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}
        return {
            **inherited,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.home / "dags"),
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            # Everybody is admin: the UI needs no login and POST /auth/token accepts any credentials.
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API_AUTH__JWT_SECRET": self._jwt_secret,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__API__EXPOSE_STACKTRACE": "True",
            "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
            "TMPDIR": str(self.home / "tmp"),
            "PYTHONUNBUFFERED": "1",
            "NO_COLOR": "1",
        }

    def start(self, timeout: float = API_SERVER_START_TIMEOUT) -> None:
        t0 = time.monotonic()
        deadline = t0 + timeout
        for folder in (self.home, self.home / "dags", self.home / "tmp"):
            folder.mkdir(parents=True, exist_ok=True)
        airflow = [sys.executable, "-m", "airflow"]
        migrate = subprocess.run(
            [*airflow, "db", "migrate"],
            env=self.environment(),
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if migrate.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{migrate.stdout[-4000:]}{migrate.stderr[-4000:]}")
        _timings["db migrate"] = time.monotonic() - t0
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                [*airflow, "api-server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
                env=self.environment(),
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so stop() reaches anything it starts
                preexec_fn=die_with_parent if sys.platform == "linux" else None,
            )
        last: object = None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"the API server exited with code {self._proc.returncode}:\n{self.tail()}")
            try:
                resp = self.session.get(f"{self.base_url}/api/v2/monitor/health", timeout=5)
                last = resp.status_code
                if resp.ok and resp.json().get("metadatabase", {}).get("status") == "healthy":
                    break
            except requests.RequestException as exc:
                last = exc
            time.sleep(0.3)
        else:
            raise RuntimeError(f"the API server was not ready in {timeout:.0f} s (last: {last}):\n{self.tail()}")
        token = self.session.post(
            f"{self.base_url}/auth/token", json={"username": "admin", "password": "any"}, timeout=30
        )
        token.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        _timings["API server ready"] = time.monotonic() - t0

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM the API server's process group, SIGKILL after ``grace`` seconds. Idempotent."""
        self.session.close()
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def tail(self, chars: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no API server log)"

    # REST helpers -----------------------------------------------------------------------------------

    def rest(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, f"{self.base_url}/api/v2{path}", timeout=30, **kwargs)

    def connection(self, conn_id: str) -> dict[str, Any]:
        resp = self.rest("GET", f"/connections/{conn_id}")
        assert resp.status_code == 200, f"GET /api/v2/connections/{conn_id}: {resp.status_code} {resp.text}"
        return dict(resp.json())

    def set_port(self, conn_id: str, conn_type: str, port: int) -> dict[str, Any]:
        resp = self.rest(
            "PATCH",
            f"/connections/{conn_id}",
            params={"update_mask": "port"},
            json={"connection_id": conn_id, "conn_type": conn_type, "port": port},
        )
        assert resp.status_code == 200, f"PATCH port of {conn_id}: {resp.status_code} {resp.text}"
        return dict(resp.json())

    def airflow_version(self) -> str:
        return str(self.rest("GET", "/version").json().get("version"))


@pytest.fixture(scope="module")
def browser_available() -> None:
    """Skip (or, with ODC_REQUIRE_BROWSER=1, fail) when Chromium or Playwright is missing."""
    reason = _missing_browser_reason()
    if reason is None:
        return
    if os.environ.get("ODC_REQUIRE_BROWSER", "") not in ("", "0"):
        pytest.fail(f"ODC_REQUIRE_BROWSER is set but {reason}", pytrace=False)
    missing(reason)  # under CI a failure too


@pytest.fixture(scope="module")
def airflow_api_server(browser_available: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowApiServer]:
    """A fresh API server (and metadata DB) for the module, stopped at its end whatever happened."""
    server = AirflowApiServer(tmp_path_factory.mktemp("airflow-home-browser"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(browser_available: None) -> Iterator[Any]:
    """Headless Debian Chromium driven by Playwright; closed (with Playwright's driver) at the module's end.

    Module scope, not session: Playwright's sync API keeps an event loop of its own while it runs, and
    the rest of the suite should not run beside it.
    """
    from playwright.sync_api import sync_playwright

    t0 = time.monotonic()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
        _timings["browser launch"] = time.monotonic() - t0
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any, airflow_api_server: AirflowApiServer, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A new browser context and page per test (nothing shared between tests), with bounded timeouts.

    A test that fails leaves ``<test name>-FAILED.png`` in the artifacts folder.
    """
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 1400}, base_url=airflow_api_server.base_url)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            with contextlib.suppress(Exception):
                page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-FAILED.png"), full_page=True)
        context.close()
