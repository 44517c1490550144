"""The Airflow names whose import path differs between the supported Airflow 3 releases, and the 3.0/3.1 form.

Import these from here, never from Airflow directly, in the provider's modules. ``BaseHook``,
``AirflowException``, ``mask_secret`` and ``conf`` come from ``airflow.providers.common.compat.sdk``
(Airflow's own compatibility provider; 1.22 is the first with ``mask_secret``), which tries each release's
path in turn: ``airflow.sdk`` first, then ``airflow.hooks.base``, ``airflow.exceptions``,
``airflow.sdk.execution_time.secrets_masker`` (3.0.0) and ``airflow.configuration`` (3.0 and 3.1).
``BaseOperator``, ``Variable``, ``Context``, ``DAG`` and ``task`` are in ``airflow.sdk`` on every Airflow 3
release and need nothing here.

The connection form: Airflow 3.2+ builds it from the declarative ``conn-fields`` and
``ui-field-behaviour`` in ``get_provider_info()`` and no longer calls the hook. Airflow 3.0 and 3.1 call
the hook's ``get_connection_form_widgets()`` and ``get_ui_field_behaviour()`` instead;
``connection_form_widgets`` and ``ui_field_behaviour`` below build both from the same declaration
(``connection_fields``), so the two forms cannot differ. On 3.2+ Airflow skips the hook methods whenever
the provider info has ``conn-fields`` (no deprecation warning is emitted).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException, BaseHook, mask_secret

if TYPE_CHECKING:  # the same object; common.compat reaches it through a lazy attribute that mypy sees as Any
    from airflow.sdk import conf
else:
    from airflow.providers.common.compat.sdk import conf

from airflow_provider_odc import connection_fields

__all__ = [
    "AirflowException",
    "BaseHook",
    "conf",
    "connection_form_widgets",
    "mask_secret",
    "ui_field_behaviour",
]


def _check_declared(conn_type: str) -> None:
    if conn_type != connection_fields.CONN_TYPE:
        raise KeyError(f"get_provider_info() declares no connection type {conn_type!r}")


def ui_field_behaviour(conn_type: str) -> dict[str, Any]:
    """``get_ui_field_behaviour()`` for Airflow < 3.2: the declared ``ui-field-behaviour`` in snake_case."""
    _check_declared(conn_type)
    declared = connection_fields.ui_field_behaviour()
    return {
        "hidden_fields": declared["hidden-fields"],
        "relabeling": declared["relabeling"],
        "placeholders": declared["placeholders"],
    }


def connection_form_widgets(conn_type: str) -> dict[str, Any]:
    """``get_connection_form_widgets()`` for Airflow < 3.2, one widget per declared extra.

    Keys are the plain field names, so the form writes the same extra keys as 3.2+ does; labels,
    descriptions, choices and the defaults a form shows are those of ``conn-fields``. Only the four field
    classes Airflow accepts are used: a number that is not an integer becomes a text field (the parser
    reads numbers given as strings). Airflow 3.0/3.1's API server substitutes wtforms and flask-appbuilder
    with stand-ins when they are not installed, so these imports work there.
    """
    _check_declared(conn_type)
    from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import BooleanField, IntegerField, PasswordField, StringField
    from wtforms.validators import Optional, any_of

    widgets: dict[str, Any] = {}
    for spec in connection_fields.EXTRA_FIELDS:
        label = lazy_gettext(spec.label)
        default = spec.default if spec.shows_default else None
        validators: list[Any] = [Optional()]
        if spec.choices:
            validators.append(any_of(list(spec.choices)))
        field: Any
        if spec.json_type == "boolean":
            field = BooleanField(label, description=spec.text, default=default)
        elif spec.json_type == "integer":
            field = IntegerField(label, validators, description=spec.text, widget=BS3TextFieldWidget())
        elif spec.sensitive:
            field = PasswordField(label, validators, description=spec.text, widget=BS3PasswordFieldWidget())
        else:
            widget = BS3TextFieldWidget()
            field = StringField(label, validators, description=spec.text, default=default, widget=widget)
        widgets[spec.name] = field
    return widgets
