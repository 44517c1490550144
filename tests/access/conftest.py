"""People and access tests: the emulator's OpenAPI contract fixtures."""

from __future__ import annotations

from ..emulator.conftest import contract, openapi_contract  # noqa: F401  (fixtures)
