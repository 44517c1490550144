"""One small hierarchy, so DAG authors can catch what they can act on.

Messages name the connection id and what to check; they never carry a token, a secret or headers.
Raised ``from None`` where the cause is our own plumbing, so a task log shows the message, not our
internals.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_odc.compat import AirflowException


class OdcError(AirflowException):
    """Base class of every error this provider raises."""


class OdcConfigError(OdcError):
    """The Airflow connection is missing a field or holds a value the provider cannot use."""


class OdcAuthError(OdcError):
    """Discovery or the client-credentials exchange failed.

    ``retryable`` is False for answers that a retry cannot change (bad credentials, a refused
    discovery document); True for transient failures that outlasted the retries.
    """

    def __init__(self, message: str, *, oauth_error: str | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.oauth_error = oauth_error
        self.retryable = retryable


class OdcUrlRefusedError(OdcConfigError):
    """A URL that would carry the access token or the client secret was refused before anything was sent:
    it is not on the connection's own origin, or it is spelled so that URL parsers disagree about its host
    (see ``airflow_provider_odc.auth.urls``)."""


class OdcTokenEndpointRefusedError(OdcUrlRefusedError, OdcAuthError):
    """The token endpoint (from discovery or from the token cache) was refused; no credentials were sent.

    Also an ``OdcAuthError``: a refresh refused this way falls back to a still-valid token and makes the
    next one rediscover, like any other failed refresh.
    """


class OdcApiError(OdcError):
    """An ODC API call answered with an error status (RFC 7807 ProblemDetails fields kept)."""

    def __init__(
        self,
        message: str,
        *,
        method: str,
        path: str,
        status: int | None,
        problem: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.method = method
        self.path = path
        self.status = status
        problem = problem or {}
        self.title: str | None = problem.get("title")
        self.detail: str | None = problem.get("detail")
        self.error_code: str | None = problem.get("errorCode")
        self.trace_id: str | None = problem.get("traceId")

    @property
    def transient(self) -> bool:
        """No answer at all, 429 or a 5xx: worth asking again later (the hook's own retries are spent)."""
        return self.status is None or self.status == 429 or self.status >= 500


def is_transient(exc: BaseException) -> bool:
    """Could the same read succeed a little later? Unreachable ODC, timeouts, 429 and 5xx (and an identity
    provider that is down) are; 401 after a fresh token, 403 and 404 are not."""
    if isinstance(exc, OdcApiError):
        return exc.transient
    return isinstance(exc, OdcAuthError) and exc.retryable


class OdcOperationFailed(OdcError):
    """A long-running ODC operation (build, deployment, publish, ...) ended in a failure status."""

    def __init__(
        self, kind: str, key: str, status: str | None, messages: list[str], *, result: str | None = None
    ) -> None:
        verdict = f" and result {result}" if result else ""
        text = f"ODC {kind} {key} ended with status {status}{verdict}."
        if messages:
            text += " ODC says:\n" + "\n".join(f"  - {line}" for line in messages)
        else:
            text += " ODC reported no error messages."
        super().__init__(text)
        self.kind = kind
        self.key = key
        self.status = status
        self.result = result
        self.messages = messages
