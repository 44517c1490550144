"""Sphinx configuration of the API reference (``make docs``): autodoc over the public modules' docstrings."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

# autodoc imports the package, and with it Airflow. Airflow needs a home it may write its default config
# into; give it a throwaway one so the build neither needs an initialised Airflow nor touches ~/airflow.
os.environ["AIRFLOW_HOME"] = _airflow_home = tempfile.mkdtemp(prefix="odc-docs-airflow-home-")
atexit.register(shutil.rmtree, _airflow_home, ignore_errors=True)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from airflow_provider_odc import __version__  # noqa: E402  (after AIRFLOW_HOME and sys.path)

project = "airflow-provider-odc"
author = "airflow-provider-odc contributors"
copyright = "airflow-provider-odc contributors"
release = version = __version__

extensions = ["sphinx.ext.autodoc"]
exclude_patterns = ["_build"]
html_theme = "alabaster"  # Sphinx's default: nothing to download at build time
html_static_path: list[str] = []

autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_inherit_docstrings = False  # only what this package says: no BaseOperator text under our execute()
autodoc_typehints = "signature"
autodoc_preserve_defaults = True  # show ``UNSET`` as written, not ``<object object at 0x...>``

# Every cross-reference must resolve (nitpicky; -W makes a miss fatal) except to the libraries the package builds on:
# their inventories would have to be downloaded at build time, which the build never does.
nitpicky = True
nitpick_ignore_regex = [
    # The internal modules (docs/index.rst lists them) are not documented, so a public signature that names
    # one of their types (RetryPolicy, OperationKind, the OperationWaiter mixin, the emulator's Fault) cannot
    # link to it.
    (
        r"py:.*",
        r"airflow_provider_odc\.(auth|cache|retries|operations|waiting|compat|attach|scrub|request_core"
        r"|poll_schedule|connection_fields|pacing|access_sync|secret_refs|quality_gate|download|presigned"
        r"|triggers\.shared_poller|hooks\._mixin)(\..*)?",
    ),
    (r"py:.*", r"airflow_provider_odc\.api\.(long_running|_parse)(\..*)?"),
    (r"py:.*", r"airflow_provider_odc\.emulator\.(?!server\.|pytest_plugin\.).*"),
    (r"py:class", r"Context"),  # Airflow's task context, named as annotations in Airflow's own style
    # Internal types in public signatures, named unqualified where the module imports them for type checking.
    (r"py:class", r"(DownloadResult|TryMemory)"),
    (r"py:class", r"urllib\.parse\..*"),
    (r"py:.*", r"(airflow|requests|httpx|pytest|_pytest|collections\.abc|pathlib)\..*"),
]
