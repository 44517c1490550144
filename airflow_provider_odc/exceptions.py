"""One small hierarchy, so DAG authors can catch what they can act on.

Messages name the connection id and what to check; they never carry a token, a secret or headers.
Raised ``from None`` where the cause is our own plumbing, so a task log shows the message, not our
internals.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_odc.compat import AirflowException


class OdcError(AirflowException):
    """Base class of every error this provider raises.

    Its message is built here, once, from its parts: ``ODC connection '<conn_id>': <step> <what> <hint>``
    (each part only when known). ``describe(named=False)`` leaves the connection out (the UI's Test button
    tests a copy of the connection under a random id).

    :param what: what happened, a sentence (or the end of one that ``step`` starts).
    :param conn_id: the Airflow connection the error concerns.
    :param step: what the provider was doing: ``OIDC discovery at <url>``, ``GET /api/...``.
    :param hint: what to check or do about it.
    """

    def __init__(
        self, what: str, *, conn_id: str | None = None, step: str | None = None, hint: str | None = None
    ) -> None:
        self.what = what
        self.conn_id = conn_id
        self.step = step
        self.hint = hint
        super().__init__(self.describe())

    def describe(self, *, named: bool = True) -> str:
        """The message; ``named=False`` leaves out the connection id."""
        text = f"{self.step} {self.what}" if self.step else self.what
        if self.hint:
            text = f"{text} {self.hint}"
        if named and self.conn_id is not None:
            text = f"ODC connection '{self.conn_id}': {text}"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles (Airflow may) with its parts, not only its message."""
        return _rebuild, (type(self), self.__dict__.copy())


def _rebuild(cls: type[OdcError], state: dict[str, Any]) -> OdcError:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    Exception.__init__(error, error.describe())
    return error


class OdcConfigError(OdcError):
    """The Airflow connection is missing a field or holds a value the provider cannot use."""


class OdcAuthError(OdcError):
    """Discovery or the client-credentials exchange failed.

    ``retryable`` is False for answers that a retry cannot change (bad credentials, a refused
    discovery document); True for transient failures that outlasted the retries.
    """

    def __init__(
        self,
        what: str,
        *,
        oauth_error: str | None = None,
        retryable: bool = False,
        conn_id: str | None = None,
        step: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.oauth_error = oauth_error
        self.retryable = retryable
        super().__init__(what, conn_id=conn_id, step=step, hint=hint)


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
    """An ODC API call failed: ``method``, ``path``, ``status`` (None: no answer at all) and ODC's RFC 7807
    ProblemDetails (``problem``, scrubbed; also as ``title``, ``detail``, ``error_code``, ``trace_id``)."""

    def __init__(
        self,
        what: str,
        *,
        method: str,
        path: str,
        status: int | None,
        problem: dict[str, Any] | None = None,
        conn_id: str | None = None,
        step: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        problem = self.problem = problem or {}
        self.title: str | None = problem.get("title")
        self.detail: str | None = problem.get("detail")
        self.error_code: str | None = problem.get("errorCode")
        self.trace_id: str | None = problem.get("traceId")
        super().__init__(what, conn_id=conn_id, step=step, hint=hint)

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
