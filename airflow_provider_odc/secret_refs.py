"""Secrets for ODC configuration values, given by reference only: ``"variable:NAME"`` or ``"connection:CONN_ID"``.

A value typed into an operator argument lands in the DAG file, the serialized DAG and (when the argument is
templated) the rendered-fields view of every run. So secret values are never operator arguments: the operator
holds the name of an Airflow Variable or connection (password field), resolves it when the task runs and hands
the value to Airflow's masker at once. ``looks_secret`` is Airflow's own rule for which names it masks, used to
refuse a secret passed as a plain (rendered) value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from airflow_provider_odc.compat import mask_secret
from airflow_provider_odc.exceptions import OdcError

#: Airflow's ``DEFAULT_SENSITIVE_FIELDS``: a name containing one of these (any case) is masked by Airflow.
SENSITIVE_NAME_PARTS = (
    "access_key",
    "access_token",
    "api_key",
    "apikey",
    "auth_header",
    "authorization",
    "bearer",
    "connection_string",
    "dsn",
    "passphrase",
    "passwd",
    "password",
    "private_key",
    "proxy",
    "proxies",
    "secret",
    "service_account",
    "service_key",
    "token",
    "keyfile_dict",
    "webhook_url",
)
REFERENCE = re.compile(r"(variable|connection):(\S+)")
REFERENCE_HELP = (
    'pass it as a reference, "variable:<Variable key>" or "connection:<connection id>" (its password), '
    "never as a value: a value would be stored in the DAG and shown with its rendered fields"
)


def looks_secret(name: str) -> bool:
    """Whether Airflow would mask a value stored under ``name`` (``ApiKey``, ``DbPassword``, ``AuthToken``...)."""
    folded = name.casefold().replace("-", "_")
    squashed = folded.replace("_", "")
    return any(part in folded or part.replace("_", "") in squashed for part in SENSITIVE_NAME_PARTS)


def check_plain_values(argument: str, values: Mapping[str, object], *, nested: bool = False) -> None:
    """Refuse (ValueError, at DAG parse time) a plain value whose name looks like a secret; never echo it."""
    for name, value in values.items():
        if nested and isinstance(value, Mapping):
            check_plain_values(f"{argument}[{name!r}]", value)
        elif looks_secret(str(name)):
            raise ValueError(
                f"{argument}[{name!r}] looks like a secret: move it to the secret arguments and {REFERENCE_HELP}."
            )


def check_references(argument: str, references: Mapping[str, object], *, nested: bool = False) -> None:
    """Every value of ``references`` must be ``variable:...`` or ``connection:...`` (ValueError otherwise,
    without the value: a literal secret put there by mistake stays out of the error)."""
    for name, reference in references.items():
        if nested and isinstance(reference, Mapping):
            check_references(f"{argument}[{name!r}]", reference)
        elif not isinstance(reference, str) or not REFERENCE.fullmatch(reference):
            raise ValueError(f"{argument}[{name!r}] is not a reference: {REFERENCE_HELP}.")


def resolve(reference: str, *, used_for: str) -> str:
    """The secret a reference names, masked before it is returned. Errors name the reference, never a value."""
    match = REFERENCE.fullmatch(reference)
    if match is None:
        raise OdcError(f"{used_for}: {reference!r} is not a reference; {REFERENCE_HELP}.")
    source, name = match.groups()
    what = f"Airflow {'Variable' if source == 'variable' else 'connection'} {name!r}"
    try:
        if source == "variable":
            from airflow.sdk import Variable

            value = Variable.get(name)
        else:
            from airflow_provider_odc.compat import BaseHook

            value = BaseHook.get_connection(name).password
    except Exception as exc:
        raise OdcError(f"{used_for}: the {what} could not be read ({type(exc).__name__}); create it.") from None
    if not isinstance(value, str) or not value:
        raise OdcError(f"{used_for}: the {what} holds no value.")
    mask_secret(value)
    return value


def resolve_all(references: Mapping[str, str], *, used_for: str) -> dict[str, str]:
    return {name: resolve(ref, used_for=f"{used_for} {name}") for name, ref in references.items()}


def mask_all(values: Iterable[str]) -> None:
    for value in values:
        if value:
            mask_secret(value)
