"""What CI requires: there a missing piece (PostgreSQL, the ODC OpenAPI specs, a browser, ...) fails the test;
on a developer's machine the test is skipped, saying what is missing and how to get it.

CI is recognised the usual way: the ``CI`` environment variable set to anything but ``""``, ``0``, ``false``
or ``no`` (``.ci/run`` sets ``CI=true``). ``tests/conftest.py`` also turns any other skip into a failure there.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(reason: str) -> NoReturn:
    """Fail under CI, skip elsewhere; ``reason`` says what is missing and how to get it."""
    if IN_CI:
        pytest.fail(f"required in CI: {reason}", pytrace=False)
    pytest.skip(reason)
