"""Code Quality API (``/api/code-quality/v1``): code analyses, which end ``Completed``, ``Failed`` or ``Timeout``.

The spec leaves ``status`` a plain string; those three ends are the ones its use case ("code quality")
says to poll for.
"""

from __future__ import annotations

from airflow_provider_odc.api.long_running import kind

CODE_ANALYSES = "/api/code-quality/v1/code-analyses"

CODE_ANALYSIS = kind("code_analysis", CODE_ANALYSES + "/{key}", {"Completed"}, {"Failed", "Timeout"})
