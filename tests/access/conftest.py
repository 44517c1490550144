"""People and access tests: the emulator's OpenAPI contract fixtures and its spec-checking client."""

from __future__ import annotations

from ..emulator.conftest import client, contract, openapi_contract  # noqa: F401  (fixtures)
