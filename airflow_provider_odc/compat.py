"""The few Airflow names whose import path differs between the supported Airflow 3 releases.

Import them from here, never from Airflow directly, in the provider's modules:

* ``BaseHook``: ``airflow.sdk`` on 3.1+, ``airflow.hooks.base`` on 3.0.
* ``AirflowException``: ``airflow.sdk.exceptions`` on 3.1+, ``airflow.exceptions`` on 3.0.
* ``mask_secret``: ``airflow.sdk.log``; 3.0.0 has it only in ``airflow.sdk.execution_time.secrets_masker``.
* ``conf``: ``airflow.sdk`` on recent releases (3.3), ``airflow.configuration`` on 3.0 and 3.1.

``BaseOperator``, ``Variable``, ``Context``, ``DAG`` and ``task`` are in ``airflow.sdk`` on every
Airflow 3 release and need nothing here.

The connection form: Airflow 3.2+ builds it from the declarative ``conn-fields`` and
``ui-field-behaviour`` in ``get_provider_info()`` and no longer calls the hook. Airflow 3.0 and 3.1
call the hook's ``get_connection_form_widgets()`` and ``get_ui_field_behaviour()`` instead.
``connection_form_widgets`` and ``ui_field_behaviour`` below derive both from the declarative
metadata, so the form is declared once. On 3.2+ Airflow skips the hook methods whenever the provider
info has ``conn-fields`` (no deprecation warning is emitted).

This module imports nothing heavy at import time beyond what the hook module imports anyway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import BaseHook, conf
    from airflow.sdk.exceptions import AirflowException
    from airflow.sdk.log import mask_secret
else:
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # Airflow 3.0.0
        from airflow.sdk.execution_time.secrets_masker import mask_secret
    try:
        from airflow.sdk import BaseHook
    except ImportError:  # Airflow 3.0
        from airflow.hooks.base import BaseHook
    try:
        from airflow.sdk.exceptions import AirflowException
    except ImportError:  # Airflow 3.0
        from airflow.exceptions import AirflowException
    try:
        from airflow.sdk import conf
    except ImportError:  # Airflow 3.0 and 3.1
        from airflow.configuration import conf

__all__ = [
    "AirflowException",
    "BaseHook",
    "conf",
    "connection_form_widgets",
    "mask_secret",
    "ui_field_behaviour",
]


def _connection_type(conn_type: str) -> dict[str, Any]:
    from airflow_provider_odc.get_provider_info import get_provider_info

    for entry in get_provider_info().get("connection-types", []):
        if entry.get("connection-type") == conn_type:
            return dict(entry)
    raise KeyError(f"get_provider_info() declares no connection type {conn_type!r}")


def ui_field_behaviour(conn_type: str) -> dict[str, Any]:
    """``get_ui_field_behaviour()`` for Airflow < 3.2, from the declarative ``ui-field-behaviour``."""
    declared = _connection_type(conn_type).get("ui-field-behaviour") or {}
    return {
        "hidden_fields": list(declared.get("hidden-fields", [])),
        "relabeling": dict(declared.get("relabeling", {})),
        "placeholders": dict(declared.get("placeholders", {})),
    }


def connection_form_widgets(conn_type: str) -> dict[str, Any]:
    """``get_connection_form_widgets()`` for Airflow < 3.2, from the declarative ``conn-fields``.

    Keys are the plain field names, so the form writes the same extra keys as 3.2+ does. Only the four
    field classes Airflow accepts are used: a number that is not an integer becomes a text field (the
    hook parses numbers given as strings). Airflow 3.0/3.1's API server substitutes wtforms and
    flask-appbuilder with stand-ins when they are not installed, so these imports work there.
    """
    from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import BooleanField, IntegerField, PasswordField, StringField
    from wtforms.validators import Optional, any_of

    widgets: dict[str, Any] = {}
    for name, spec in (_connection_type(conn_type).get("conn-fields") or {}).items():
        schema = spec.get("schema", {})
        types = schema.get("type", "string")
        types = {types} if isinstance(types, str) else set(types)
        label = lazy_gettext(spec["label"])
        description = spec.get("description", "")
        validators: list[Any] = [Optional()]
        enum = [value for value in schema.get("enum", []) if value is not None]
        if enum:
            validators.append(any_of(enum))
        field: Any
        if "boolean" in types:
            field = BooleanField(label, description=description)
        elif "integer" in types:
            field = IntegerField(label, validators, description=description, widget=BS3TextFieldWidget())
        elif schema.get("format") == "password":
            field = PasswordField(label, validators, description=description, widget=BS3PasswordFieldWidget())
        else:
            field = StringField(label, validators, description=description, widget=BS3TextFieldWidget())
        widgets[name] = field
    return widgets
