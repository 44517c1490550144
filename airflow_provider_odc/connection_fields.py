"""The ``odc`` connection's form and extras, declared once.

Each extra is one ``ExtraField``: its name, label, description, JSON type, default, bounds and parser.
From this one tuple come the ``conn-fields`` of ``get_provider_info()`` (the form on Airflow 3.2+), the
form widgets of Airflow 3.0/3.1 (``compat.connection_form_widgets``) and the parsing of the extras in
``settings.OdcConnectionSettings``, so a bound or a default cannot differ between the form and the
parser. Descriptions that state a bound or a default are templates filled from the field itself.

Airflow imports this module at provider discovery (through ``get_provider_info``): it imports the standard
library and ``scrub`` only, nothing of Airflow. Extra names matter: Airflow masks any extra whose name
contains ``secret``, ``token``, ``password``, ... so the one secret extra is ``cache_secret`` and nothing
else carries such a word.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from airflow_provider_odc.scrub import quoted

CONN_TYPE = "odc"
#: The longest client id, secret, cache secret or CA bundle path accepted (a pasted file is not one).
MAX_TEXT_LENGTH = 4096
CacheMode = Literal["variable", "memory", "off"]
CACHE_MODES: tuple[CacheMode, ...] = ("variable", "memory", "off")
PacingMode = Literal["off", "variable"]
PACING_MODES: tuple[PacingMode, ...] = ("off", "variable")

#: Builds the error for a refused value from a message (``settings`` prefixes the connection id).
Problem = Callable[[str], Exception]
JsonType = Literal["number", "integer", "boolean", "string"]

# The standard fields: the form hides ``schema`` and ``port``, and relabels the others with placeholders.
_HIDDEN_FIELDS = ("schema", "port")
_RELABELING = {"host": "Portal domain", "login": "Client ID", "password": "Client secret"}
_PLACEHOLDERS = {
    "host": "acme.outsystems.dev",
    "login": "API client ID from ODC Portal > Govern > API clients",
    "password": "API client secret",
}


def ui_field_behaviour() -> dict[str, Any]:
    """``ui-field-behaviour`` of ``get_provider_info()``, kebab-case as Airflow 3.2+ reads it (a new dict each call)."""
    return {
        "hidden-fields": list(_HIDDEN_FIELDS),
        "relabeling": dict(_RELABELING),
        "placeholders": dict(_PLACEHOLDERS),
    }


def standard_field(name: str) -> str:
    """A standard field as error messages name it: its form label, then its Airflow name."""
    return f"{_RELABELING[name]} ({name})"


@dataclass(frozen=True)
class ExtraField:
    """One extra of the connection: how the form shows it and how the parser reads it.

    ``description`` may hold ``{low}``, ``{high}``, ``{default}`` and ``{max_length}`` (format specs
    allowed); ``text`` is the description with them filled in. ``parse`` reads the field from the extra
    dict and returns the value ``OdcConnectionSettings.<setting>`` holds; a field without a parser is read
    by another field's (``ca_bundle_path`` by ``verify``'s).
    """

    name: str
    label: str
    description: str
    json_type: JsonType
    parse: Callable[[ExtraField, Mapping[str, Any], Problem], Any] | None
    setting: str | None = None
    default: Any = None
    bounds: tuple[float, float] | None = None
    #: Parsed as a whole number (``json_type`` is what the form offers; the parser may be more lenient).
    whole: bool = False
    choices: tuple[str, ...] = ()
    #: A secret: a password input (and a name Airflow masks).
    sensitive: bool = False

    @property
    def text(self) -> str:
        """The description with its bounds and default filled in."""
        low, high = self.bounds or (None, None)
        return self.description.format(low=low, high=high, default=self.default, max_length=MAX_TEXT_LENGTH)

    @property
    def shows_default(self) -> bool:
        """Whether the form shows the default: a checkbox or a list of choices always shows a value; an
        empty typed-in field means the default (its description says which)."""
        return self.json_type == "boolean" or bool(self.choices)

    @property
    def limits(self) -> tuple[float, float]:
        """``bounds`` of a number field (a field without bounds has no limits to give)."""
        if self.bounds is None:
            raise TypeError(f"extra '{self.name}' has no bounds")
        return self.bounds

    def schema(self) -> dict[str, Any]:
        """The field's JSON schema in ``conn-fields``: null (an empty field) is always allowed."""
        schema: dict[str, Any] = {"type": [self.json_type, "null"]}
        if self.choices:
            schema["enum"] = list(self.choices)
        if self.shows_default:
            schema["default"] = self.default
        if self.sensitive:
            schema["format"] = "password"
        if self.bounds is not None:
            schema["minimum"], schema["maximum"] = self.bounds
        return schema

    def read(self, extra: Mapping[str, Any], problem: Problem) -> Any:
        """The parsed value, or ``problem(...)`` raised."""
        if self.parse is None:
            raise TypeError(f"extra '{self.name}' is read by another field's parser")
        return self.parse(self, extra, problem)


# -- value helpers (the parsers below and ``settings`` share them) ------------------------------------


def blank_to_none(value: Any) -> Any:
    """The React form stores every empty field as null, other tools as ''; both mean 'use the default'."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return value.strip() if isinstance(value, str) else value


def shown(value: Any) -> str:
    """A value quoted in an error message, cut short: an extra can hold megabytes."""
    return quoted(value, limit=60)


def text_of(value: Any, label: str, problem: Problem) -> str:
    """A connection field that must be text of a sane length (None is empty). Never quotes the value."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise problem(f"{label} must be text, not {type(value).__name__}.")
    if len(value) > MAX_TEXT_LENGTH:
        raise problem(f"{label} is {len(value)} characters long; at most {MAX_TEXT_LENGTH} are accepted.")
    return value


# -- parsers --------------------------------------------------------------------------------------


def _number(field: ExtraField, extra: Mapping[str, Any], problem: Problem) -> float:
    """A finite number within the field's bounds (a JSON number or a numeric string, as forms store them).

    Booleans are refused although Python counts them as numbers; so are nan and infinity, which compare
    false with every bound and would turn a timer into 'never' or 'always'. A whole-number field gives an int.
    """
    value = blank_to_none(extra.get(field.name))
    if value is None:
        return field.default  # type: ignore[no-any-return]
    low, high = field.limits
    refused = (
        f"extra '{field.name}' is {shown(value)}; it must be {'a whole number' if field.whole else 'a number'} "
        f"from {low:g} to {high:g}."
    )
    try:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError
        number = float(value)
    except (ValueError, OverflowError):
        raise problem(refused) from None
    if not math.isfinite(number) or (field.whole and not number.is_integer()) or not low <= number <= high:
        raise problem(refused)
    return int(number) if field.whole else number


def _choice(field: ExtraField, extra: Mapping[str, Any], problem: Problem) -> str:
    """One of the field's choices, read case-insensitively."""
    value = blank_to_none(extra.get(field.name))
    if value is None:
        return field.default  # type: ignore[no-any-return]
    for choice in field.choices:
        if isinstance(value, str) and value.lower() == choice:
            return choice
    raise problem(f"extra '{field.name}' is {shown(value)}; use one of {', '.join(field.choices)}.")


def _secret_text(field: ExtraField, extra: Mapping[str, Any], problem: Problem) -> str | None:
    """Text or nothing; never quoted in a message (it is a secret even when it has the wrong type)."""
    value = blank_to_none(extra.get(field.name))
    if value is None:
        return None
    return text_of(value, f"extra '{field.name}'", problem)


_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def _verify(field: ExtraField, extra: Mapping[str, Any], problem: Problem) -> bool | str:
    """``verify`` (bool, or a CA bundle path as requests takes it) and ``ca_bundle_path``.

    A bundle path must name an existing file or directory on this worker: requests and httpx would
    otherwise fail with an ``OSError`` on the first call, far from the field that caused it.
    """
    given = blank_to_none(extra.get(CA_BUNDLE_PATH.name))
    if given is not None and not isinstance(given, str):
        raise problem(f"extra '{CA_BUNDLE_PATH.name}' is {shown(given)}; it must be a path (text).")
    ca_bundle: str | None = given
    field_name = CA_BUNDLE_PATH.name
    value = blank_to_none(extra.get(field.name))
    if isinstance(value, str):
        if value.lower() in _TRUE:
            value = True
        elif value.lower() in _FALSE:
            value = False
        elif ca_bundle is None:  # a path given in 'verify', as requests accepts it
            ca_bundle, value, field_name = value, True, field.name
        else:
            value = True
    if value is False:
        return False
    if value is not None and value is not True:
        raise problem(f"extra '{field.name}' is {shown(value)}; use true, false or a CA bundle path.")
    if ca_bundle is None:
        return bool(field.default)
    if len(ca_bundle) > MAX_TEXT_LENGTH or "\x00" in ca_bundle or not os.path.exists(ca_bundle):
        raise problem(
            f"extra '{field_name}' is {shown(ca_bundle)}, which is not a file or directory on this worker; "
            "give the path of a PEM CA bundle that every worker has."
        )
    return ca_bundle


# -- the extras, in form order ----------------------------------------------------------------------

# Every number is bounded, so nan, inf or 1e12 never reach a timer. The timeout also sets the cross-worker
# lease's TTL, so a dead holder blocks the others at most this long; a margin above half of ODC's 12-hour
# token lifetime would never apply (it is capped at half the lifetime); the rate-limit wait is bounded so a
# typo cannot park a worker slot for hours.
TIMEOUT = ExtraField(
    "timeout",
    "Request timeout (seconds)",
    "Timeout of each HTTP request to ODC, token requests included: {low:g} to {high:g} seconds. Default {default:g}.",
    "number",
    _number,
    setting="timeout",
    default=60.0,
    bounds=(1, 300),
)
VERIFY = ExtraField(
    "verify",
    "Verify TLS certificates",
    "Turn off only for a test portal with a self-signed certificate. Default on.",
    "boolean",
    _verify,
    setting="verify",
    default=True,
)
CA_BUNDLE_PATH = ExtraField(
    "ca_bundle_path",
    "CA bundle path",
    "Path to a PEM CA bundle (a file or directory every worker has), for a portal behind a corporate TLS "
    "proxy. Used instead of the system CAs when set.",
    "string",
    None,  # read by VERIFY's parser: the two make one setting
)
REFRESH_MARGIN = ExtraField(
    "refresh_margin_seconds",
    "Refresh margin (seconds)",
    "Fetch a new access token this long before the cached one expires (never more than half its lifetime): "
    "{low:g} to {high:g} seconds. Default {default:g}.",
    "integer",
    _number,
    setting="refresh_margin",
    default=300.0,
    bounds=(0, 21600),
)
CACHE_MODE = ExtraField(
    "cache_mode",
    "Access token cache",
    "variable: one encrypted token shared by every task on every worker (default). memory: shared within one "
    "process only. off: every hook fetches its own.",
    "string",
    _choice,
    setting="cache_mode",
    default="variable",
    choices=CACHE_MODES,
)
CACHE_SECRET = ExtraField(
    "cache_secret",
    "Cache encryption secret",
    "Optional text (at most {max_length} characters). Encrypts the cached token instead of the client secret; "
    "set it to keep the cache valid across client secret rotations.",
    "string",
    _secret_text,
    setting="cache_secret",
    sensitive=True,
)
MAX_RETRIES = ExtraField(
    "max_retries",
    "Max retries",
    "Retries after 5xx and connection errors (only where a retry cannot repeat a processed request): a whole "
    "number from {low:g} to {high:g}. Default {default:g}. 429s follow the rate-limit wait.",
    "integer",
    _number,
    setting="max_retries",
    default=3,
    bounds=(0, 10),
    whole=True,
)
RATE_LIMIT_WAIT = ExtraField(
    "rate_limit_wait_seconds",
    "Rate-limit wait (seconds)",
    "How long one call may wait in total when ODC answers 429 (its limits are per minute: each wait is about "
    "60 s unless ODC says otherwise). 0 fails at the first 429. Default {default:g}, at most {high:g}.",
    "number",
    _number,
    setting="rate_limit_wait",
    default=300.0,
    bounds=(0, 1800),
)

REQUEST_PACING = ExtraField(
    "request_pacing",
    "Rate-limit pacing",
    "variable: every worker on every host reserves its send slot in a shared ledger (Airflow Variables) before "
    "each request ODC rate-limits, so a mass redeploy waits for its turn instead of collecting 429s. off: send "
    "at once and wait out any 429 (default).",
    "string",
    _choice,
    setting="request_pacing",
    default="off",
    choices=PACING_MODES,
)

EXTRA_FIELDS: tuple[ExtraField, ...] = (
    TIMEOUT,
    VERIFY,
    CA_BUNDLE_PATH,
    REFRESH_MARGIN,
    CACHE_MODE,
    CACHE_SECRET,
    MAX_RETRIES,
    RATE_LIMIT_WAIT,
    REQUEST_PACING,
)


def conn_fields() -> dict[str, Any]:
    """``conn-fields`` of ``get_provider_info()``: the extras of the Airflow 3.2+ form."""
    return {
        field.name: {"label": field.label, "description": field.text, "schema": field.schema()}
        for field in EXTRA_FIELDS
    }
