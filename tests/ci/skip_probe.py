"""Not collected by the suite (no ``test_`` prefix): ``test_ci_skips.py`` runs it explicitly, with and without CI."""

import pytest


def test_a_piece_is_missing() -> None:
    pytest.skip("the probe's piece is missing")
