"""Local OutSystems Developer Cloud emulator for offline DAG tests, demos and the provider's own tests.

``from airflow_provider_odc.emulator import OdcEmulator`` is resolved lazily: pytest imports this package for
the ``odc_emulator`` plugin in every session, and that must not pull in FastAPI and uvicorn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_odc.emulator.server import OdcEmulator

__all__ = ["OdcEmulator"]


def __getattr__(name: str) -> Any:
    if name == "OdcEmulator":
        from airflow_provider_odc.emulator.server import OdcEmulator

        return OdcEmulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
