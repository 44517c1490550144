"""The connection is declared once (``connection_fields``): the ``conn-fields`` schema of the Airflow 3.2+
form, the Airflow 3.0/3.1 form widgets and the parser agree on every extra.

Each default parses to itself, each bound is accepted and refused one step outside with the parser's own
message, each label and description appears in both forms, and what the form marks secret is what Airflow
masks. The 3.0/3.1 widgets are built under the stand-ins Airflow's own API server puts in place of
wtforms and flask-appbuilder when they are not installed, and read back as the JSON schema it sends.
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
import types
from typing import Any

import pytest

from airflow_provider_odc.compat import connection_form_widgets, ui_field_behaviour
from airflow_provider_odc.connection_fields import CONN_TYPE, EXTRA_FIELDS, MAX_TEXT_LENGTH, ExtraField
from airflow_provider_odc.exceptions import OdcConfigError
from airflow_provider_odc.get_provider_info import get_provider_info
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.settings import OdcConnectionSettings

from .test_settings import Conn

PARSED = [spec for spec in EXTRA_FIELDS if spec.parse is not None]
NUMBERS = [spec for spec in EXTRA_FIELDS if spec.bounds is not None]
CHOICES = [spec for spec in EXTRA_FIELDS if spec.choices]
#: The form class Airflow 3.0/3.1 gets for each JSON type (a non-integer number is typed in as text).
WIDGET_TYPES = {"number": "string", "integer": "integer", "boolean": "boolean", "string": "string"}


def ids(specs: list[ExtraField]) -> list[str]:
    return [spec.name for spec in specs]


def connection_type() -> dict[str, Any]:
    (entry,) = [ct for ct in get_provider_info()["connection-types"] if ct["connection-type"] == CONN_TYPE]
    return entry


def parsed(extra: dict[str, Any]) -> OdcConnectionSettings:
    return OdcConnectionSettings.from_connection(Conn(extra=extra))


def refusal(extra: dict[str, Any]) -> str:
    with pytest.raises(OdcConfigError) as caught:
        parsed(extra)
    message = str(caught.value)
    assert message.startswith("ODC connection 'odc_test': "), message
    return message


def types_of(schema: dict[str, Any]) -> set[str]:
    declared = schema["type"]
    return {declared} if isinstance(declared, str) else set(declared)


# -- the schema Airflow 3.2+ reads ---------------------------------------------------------------------


def test_conn_fields_are_the_declared_extras_in_order() -> None:
    conn_fields = connection_type()["conn-fields"]
    assert list(conn_fields) == [spec.name for spec in EXTRA_FIELDS]
    for spec in EXTRA_FIELDS:
        entry = conn_fields[spec.name]
        assert (entry["label"], entry["description"]) == (spec.label, spec.text)
        schema = entry["schema"]
        assert schema["type"] == [spec.json_type, "null"], spec.name
        assert (schema.get("minimum"), schema.get("maximum")) == (spec.bounds or (None, None)), spec.name
        assert schema.get("enum") == (list(spec.choices) or None), spec.name
        assert ("default" in schema) == spec.shows_default and schema.get("default") == (
            spec.default if spec.shows_default else None
        ), spec.name
        assert (schema.get("format") == "password") == spec.sensitive, spec.name
    json.dumps(conn_fields, allow_nan=False)  # plain JSON: the API server serves it as it is


def test_no_description_is_left_a_template() -> None:
    for spec in EXTRA_FIELDS:
        assert "{" not in spec.text and "}" not in spec.text, spec.text


# -- the parser ------------------------------------------------------------------------------------------


def test_every_parsed_extra_fills_one_setting_and_only_ca_bundle_path_has_no_parser_of_its_own() -> None:
    standard = {"conn_id", "origin", "client_id", "client_secret"}
    settings_fields = {f.name for f in dataclasses.fields(OdcConnectionSettings)} - standard
    assert sorted(spec.setting for spec in PARSED if spec.setting) == sorted(settings_fields)
    assert [spec.name for spec in EXTRA_FIELDS if spec.parse is None] == ["ca_bundle_path"]
    assert all((spec.setting is None) == (spec.parse is None) for spec in EXTRA_FIELDS)


@pytest.mark.parametrize("spec", PARSED, ids=ids(PARSED))
def test_the_default_is_what_an_empty_field_parses_to_and_parses_to_itself(spec: ExtraField) -> None:
    assert spec.setting is not None
    for empty in ({}, {spec.name: None}, {spec.name: ""}, {spec.name: "  "}):
        assert getattr(parsed(empty), spec.setting) == spec.default, empty
    assert getattr(parsed({spec.name: spec.default}), spec.setting) == spec.default
    field = {f.name: f for f in dataclasses.fields(OdcConnectionSettings)}[spec.setting]
    assert field.default == spec.default, "the settings object's own default is the declared one"


@pytest.mark.parametrize("spec", NUMBERS, ids=ids(NUMBERS))
def test_each_bound_is_accepted_and_refused_one_step_outside(spec: ExtraField) -> None:
    assert spec.setting is not None and spec.bounds is not None
    low, high = spec.bounds
    kind = "a whole number" if spec.whole else "a number"
    expected = f"it must be {kind} from {low:g} to {high:g}."
    for bound in (low, high, str(low), str(high)):
        assert getattr(parsed({spec.name: bound}), spec.setting) == float(bound)
    outside = [math.nextafter(low, -math.inf), math.nextafter(high, math.inf)]
    if spec.json_type == "integer":  # the form's own step
        outside += [low - 1, high + 1]
    if spec.whole:
        outside.append((low + high) / 2 + 0.5)
    for value in outside:
        message = refusal({spec.name: value})
        assert f"extra '{spec.name}' is {value!r}; {expected}" in message, message
    assert f"{low:g}" in spec.text and f"{high:g}" in spec.text and f"{spec.default:g}" in spec.text


def test_a_whole_number_field_parses_to_an_int() -> None:
    for spec in NUMBERS:
        value = getattr(parsed({spec.name: str(spec.limits[1])}), str(spec.setting))
        assert (type(value) is int) == spec.whole, spec.name


@pytest.mark.parametrize("spec", CHOICES, ids=ids(CHOICES))
def test_each_choice_is_accepted_and_nothing_else(spec: ExtraField) -> None:
    for choice in spec.choices:
        assert getattr(parsed({spec.name: choice.upper()}), str(spec.setting)) == choice
        assert choice in spec.text
    message = refusal({spec.name: "redis"})
    assert f"extra '{spec.name}' is 'redis'; use one of {', '.join(spec.choices)}." in message


def test_secret_text_is_bounded_as_its_description_says() -> None:
    (spec,) = [spec for spec in EXTRA_FIELDS if spec.sensitive]
    assert getattr(parsed({spec.name: "k" * MAX_TEXT_LENGTH}), str(spec.setting)) == "k" * MAX_TEXT_LENGTH
    message = refusal({spec.name: "k" * (MAX_TEXT_LENGTH + 1)})
    assert f"is {MAX_TEXT_LENGTH + 1} characters long; at most {MAX_TEXT_LENGTH} are accepted" in message
    assert f"at most {MAX_TEXT_LENGTH} characters" in spec.text


def test_what_the_form_marks_secret_is_what_airflow_masks() -> None:
    try:
        from airflow.sdk._shared.secrets_masker import should_hide_value_for_key
    except ImportError:  # Airflow 3.0 and 3.1
        from airflow.sdk.execution_time.secrets_masker import should_hide_value_for_key
    assert any(spec.sensitive for spec in EXTRA_FIELDS), "the check itself must be able to fail"
    for spec in EXTRA_FIELDS:
        assert bool(should_hide_value_for_key(spec.name)) == spec.sensitive, spec.name


# -- the Airflow 3.0/3.1 form ------------------------------------------------------------------------


@pytest.fixture
def fab_stand_ins(monkeypatch: pytest.MonkeyPatch) -> None:
    """wtforms, flask-babel and flask-appbuilder as Airflow 3.0/3.1's API server replaces them when they are
    not installed (``HookMetaService``'s stand-ins), so each widget carries the JSON schema the UI gets."""
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService as meta

    modules: dict[str, dict[str, Any]] = {
        "wtforms": {
            "StringField": meta.MockStringField,
            "IntegerField": meta.MockIntegerField,
            "PasswordField": meta.MockPasswordField,
            "BooleanField": meta.MockBooleanField,
        },
        "wtforms.validators": {"Optional": meta.MockOptional, "any_of": meta.MockEnum},
        "flask_babel": {"lazy_gettext": str},
        "flask_appbuilder": {},
        "flask_appbuilder.fieldwidgets": {
            "BS3TextFieldWidget": meta.MockAnyWidget,
            "BS3PasswordFieldWidget": meta.MockAnyWidget,
        },
    }
    for name, attributes in modules.items():
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        monkeypatch.setitem(sys.modules, name, module)


@pytest.mark.usefixtures("fab_stand_ins")
def test_the_airflow_3_0_form_shows_the_same_fields_as_conn_fields() -> None:
    widgets = OdcHook.get_connection_form_widgets()
    conn_fields = connection_type()["conn-fields"]
    assert list(widgets) == list(conn_fields)
    for name, widget in widgets.items():
        shown = widget.param.dump()
        declared = conn_fields[name]
        schema = declared["schema"]
        assert shown["schema"]["title"] == declared["label"], name
        assert shown["description"] == declared["description"], name
        assert types_of(shown["schema"]) - {"null"} == {WIDGET_TYPES[schema["type"][0]]}, name
        assert shown["schema"].get("enum") == schema.get("enum"), name
        assert shown["schema"].get("format") == schema.get("format"), name
        assert shown["value"] == schema.get("default"), name


def test_the_airflow_3_0_field_behaviour_is_the_declared_one() -> None:
    declared = connection_type()["ui-field-behaviour"]
    assert OdcHook.get_ui_field_behaviour() == {
        "hidden_fields": declared["hidden-fields"],
        "relabeling": declared["relabeling"],
        "placeholders": declared["placeholders"],
    }
    # The parser names the standard fields by the same labels.
    for name, conn in (("host", Conn(host="")), ("login", Conn(login=" ")), ("password", Conn(password=None))):
        with pytest.raises(OdcConfigError) as caught:
            OdcConnectionSettings.from_connection(conn)
        assert f"{declared['relabeling'][name]} ({name}) is empty" in str(caught.value)


def test_only_the_declared_connection_type_has_a_form() -> None:
    with pytest.raises(KeyError, match="no connection type 'http'"):
        ui_field_behaviour("http")
    with pytest.raises(KeyError, match="no connection type 'http'"):
        connection_form_widgets("http")


# -- provider discovery stays cheap ------------------------------------------------------------------


def test_provider_info_imports_nothing_of_airflow() -> None:
    """Airflow calls ``get_provider_info()`` at provider discovery, in every process that lists providers."""
    script = (
        "import sys\n"
        "from airflow_provider_odc.get_provider_info import get_provider_info\n"
        "get_provider_info()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('airflow', 'requests', 'httpx', 'cryptography')))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "[]", result.stdout
