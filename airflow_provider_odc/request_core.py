"""The core of an ODC API call, sans I/O: every decision a call needs, made once for sync and async.

``RequestCore.call`` is a generator in the shape of an httpx ``Auth`` flow. It yields what it needs
done and receives the result:

- ``NeedToken(reject)``: a valid access token (not ``reject``, one ODC just refused);
- ``Send(method, url, path, token)``: send the request once with that bearer token; receive a ``Reply``
  (status, headers, body bytes and the transport's own response) or an ``Unanswered``;
- ``Wait(seconds)``: sleep before the next attempt.

Everything else is decided here from plain values: the URL gate (``auth/urls.py``), which outcomes are
retried and how long to wait (``retries.RetryPolicy``), what a 401 means (one new token, the refused one
rejected, one more try), and how an answer becomes an ``OdcApiError`` (ProblemDetails fields scrubbed
and cut, a redirect refused, the hint for 401/403/429). The sync hook drives it with requests, the
async hook with httpx; they hold only I/O. No Airflow imports.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from airflow_provider_odc.auth.token import AccessToken
from airflow_provider_odc.auth.urls import UrlRefused, display_url, endpoint_url, origin_of
from airflow_provider_odc.exceptions import OdcApiError, OdcError, OdcUrlRefusedError
from airflow_provider_odc.retries import IDEMPOTENT_METHODS, RetryPolicy, Unanswered, Wait
from airflow_provider_odc.scrub import FIELD_LIMIT, scrub

R = TypeVar("R")

#: Where the async adapter keeps a 3xx's Location, so httpx does not parse it (see ``hooks/odc_async``).
UNFOLLOWED_LOCATION = "X-Odc-Unfollowed-Location"
#: The RFC 7807 / ODC ProblemDetails fields kept on an OdcApiError (scrubbed); the rest of a body is dropped.
PROBLEM_FIELDS = ("title", "detail", "errorCode", "traceId")
MAX_DETAIL = 500
_MAX_FIELD = 200
_MAX_PROBLEM_BODY = 65536
_REASON_LIMIT = 160
_OBJECT_PREFIX = re.compile(r"^(?:<[^>]*>|\w+\([^()]*\)):\s*")
_CHARSET = re.compile(r"charset=[\"']?([\w.:-]+)", re.IGNORECASE)
_STATUS_HINTS = {
    401: "ODC refused a freshly fetched token too: check that the API client is not Revoked or Expired.",
    403: "The API client lacks the permission this endpoint needs on this stage; grant it in the ODC "
    "Portal (Management > Govern > API clients).",
}
_RATE_LIMIT_HINT = (
    "ODC's rate limit was still exceeded after waiting up to {wait:g} s in all (100 requests per minute per API, "
    "10 per minute for build and deployment POSTs, shared by every worker); spread the calls out or raise "
    "the connection's 'rate_limit_wait_seconds' extra."
)


@dataclass(frozen=True)
class Reply(Generic[R]):
    """An HTTP answer as plain values, with the transport's own response (``raw``) for the caller."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes
    raw: R


@dataclass(frozen=True)
class NeedToken:
    """A step: give me a valid access token that is not ``reject``."""

    reject: AccessToken | None


@dataclass(frozen=True)
class Send:
    """A step: send ``method url`` once with ``token`` as the bearer; give me a ``Reply`` or an ``Unanswered``."""

    method: str
    url: str
    path: str
    token: AccessToken


Step = NeedToken | Send | Wait
Scrubber = Callable[[object, Iterable[str | None], int], str]


def transport_failure(exc: BaseException, secrets: Iterable[str | None] = ()) -> str:
    """A transport error as a message fragment: its class and, scrubbed and short, its innermost reason.

    A transport's own text names the pool, the URL with its query and the wrapped errors; the innermost
    reason (``[Errno 111] Connection refused``, ``certificate verify failed``) is what a user acts on.
    """
    reason: BaseException = exc
    for _ in range(8):
        inner = getattr(reason, "reason", None)
        if not isinstance(inner, BaseException):
            inner = reason.args[0] if reason.args and isinstance(reason.args[0], BaseException) else None
        if inner is None:
            break
        reason = inner
    text = _OBJECT_PREFIX.sub("", str(reason)) if reason is not exc or reason.args else ""
    text = scrub(text, secrets, limit=_REASON_LIMIT) if text else ""
    return f"{type(exc).__name__} ({text})" if text else type(exc).__name__


def parse_json(headers: Mapping[str, str], content: bytes) -> Any:
    """The JSON of a body (decoded by its declared charset, else as UTF-8/16/32); ValueError if it is not."""
    found = _CHARSET.search(headers.get("Content-Type") or "")
    try:
        return json.loads(content.decode(found.group(1)) if found else content)
    except LookupError:  # an unknown charset
        raise ValueError("unknown charset") from None


def json_body(status: int, headers: Mapping[str, str], content: bytes, method: str, path: str) -> Any:
    """The parsed body of a successful answer, or an OdcApiError that says what came instead."""
    try:
        return parse_json(headers, content)
    except ValueError:
        kind = scrub(headers.get("Content-Type", "no content type"), limit=100)
        raise OdcApiError(
            f"answered HTTP {status} with a body that is not JSON ({kind}, {len(content)} bytes).",
            step=f"ODC {method} {path}",
            hint="Check that the Portal domain (host) is your ODC portal.",
            method=method,
            path=path,
            status=status,
        ) from None


class RequestCore:
    """The decisions of one connection's API calls. Holds no session, no clock and no token cache.

    :param conn_id: named in every error.
    :param origin: the connection's origin: the only place the bearer token goes.
    :param secrets: the client secret and cache secret, kept out of every message.
    :param retry: which outcomes are retried, and how long to wait.
    :param scrub: ``scrub(text, tokens, limit)``: text from a server without this connection's secrets.
    :param reached_from: who must reach the portal, for the advice on a transport failure ("workers").
    :param log: where the 401 refresh is logged (the adapter's logger).
    """

    def __init__(
        self,
        *,
        conn_id: str,
        origin: str,
        secrets: Iterable[str | None],
        retry: RetryPolicy,
        scrub: Scrubber,
        reached_from: str,
        log: logging.Logger | Any,
    ) -> None:
        self.conn_id = conn_id
        self.origin = origin
        self.secrets = tuple(secrets)
        self.retry = retry
        self.scrub = scrub
        self.reached_from = reached_from
        self.log = log

    def url_for(self, endpoint: str) -> str:
        """The URL to send ``endpoint`` to, passed by the URL gate; else OdcUrlRefusedError, nothing sent."""
        try:
            return endpoint_url(endpoint, self.origin)
        except UrlRefused as refused:
            raise OdcUrlRefusedError(
                f"refused the endpoint {display_url(endpoint, self.secrets)}: {refused}; the access token is only "
                f"ever sent to the connection's own origin {self.origin}. Nothing was sent.",
                conn_id=self.conn_id,
            ) from None

    def call(self, method: str, endpoint: str) -> Generator[Step, Any, Reply[Any]]:
        """One API call: token, send (retried where safe), one new token after a 401, the verdict.

        Returns the successful ``Reply``; raises OdcUrlRefusedError before anything is sent, and
        OdcApiError for an error status or when no answer came.
        """
        method = method.upper()
        url = self.url_for(endpoint)
        path = urlsplit(url).path
        token: AccessToken = yield NeedToken(None)
        reply = yield from self._attempts(Send(method, url, path, token))
        if reply.status_code == 401:
            self.log.info(
                "ODC answered 401 to %s %s with token %s; fetching a new token and retrying once.",
                method,
                path,
                token.fingerprint,
            )
            token = yield NeedToken(token)
            reply = yield from self._attempts(Send(method, url, path, token))
        if reply.status_code >= 300:
            raise self.api_error(method, path, reply, sent=token.value)
        return reply

    def _attempts(self, send: Send) -> Generator[Step, Any, Reply[Any]]:
        """``send`` until the retry policy has an answer; no answer at all is an OdcApiError."""
        steps = self.retry.attempts(
            idempotent=send.method in IDEMPOTENT_METHODS, describe=f"ODC {send.method} {send.path}"
        )
        step = next(steps)
        while True:
            outcome = yield (step if isinstance(step, Wait) else send)
            try:
                step = steps.send(outcome)
            except StopIteration as done:
                last = done.value
                break
        if isinstance(last, Unanswered):
            raise self.unanswered_error(send, last)
        reply: Reply[Any] = last
        return reply

    def unanswered_error(self, send: Send, unanswered: Unanswered) -> OdcApiError:
        """No HTTP answer: the transport's reason, scrubbed; a POST that may have been processed is said so."""
        failure = transport_failure(unanswered.cause, [send.token.value, *self.secrets])
        what = f"failed: {failure}"
        if send.method not in IDEMPOTENT_METHODS:
            what += " (the request may have been processed by ODC; it was not sent again)"
        return OdcApiError(
            what + ".",
            conn_id=self.conn_id,
            step=f"{send.method} {send.path}",
            hint=f"Check that the {self.reached_from} can reach the portal.",
            method=send.method,
            path=send.path,
            status=None,
        )

    def api_error(self, method: str, path: str, reply: Reply[Any], *, sent: str | None) -> OdcApiError:
        """An error status as an OdcApiError. Every text ODC sent is scrubbed and cut, ``sent`` (the bearer
        token of the request) included: a server or a proxy in front of it may echo it."""
        status = reply.status_code

        def clean(value: object, limit: int = MAX_DETAIL) -> str:
            return self.scrub(value, [sent], limit)

        problem = {
            key: clean(value, MAX_DETAIL if key == "detail" else _MAX_FIELD)
            for key, value in _problem_details(reply).items()
            if key in PROBLEM_FIELDS and isinstance(value, str) and value
        }
        what = f"failed with HTTP {status}"
        hint = None
        if 300 <= status < 400:
            location = reply.headers.get("Location") or reply.headers.get(UNFOLLOWED_LOCATION)
            what += f": a redirect to {clean(_redirect_target(location))}, which is not followed."
        else:
            for label, key in (("", "title"), (" - ", "detail")):
                if key in problem:
                    what += (label or ": ") + problem[key]
            refs = [f"{key} {problem[key]}" for key in ("errorCode", "traceId") if key in problem]
            if refs:
                what += f" [{', '.join(refs)}]"
            what += "."
            hint = _STATUS_HINTS.get(status)
            if status == 429:
                hint = _RATE_LIMIT_HINT.format(wait=self.retry.rate_limit_wait)
        return OdcApiError(
            what,
            conn_id=self.conn_id,
            step=f"{method} {path}",
            hint=hint,
            method=method,
            path=path,
            status=status,
            problem=problem,
        )


def drive(flow: Generator[Step, Any, Reply[R]], do: Callable[[Step], Any]) -> Reply[R]:
    """Run ``flow`` to its end with ``do`` performing each step (the sync adapters' whole loop)."""
    step = next(flow)
    while True:
        try:
            step = flow.send(do(step))
        except StopIteration as done:
            reply: Reply[R] = done.value
            return reply


async def adrive(flow: Generator[Step, Any, Reply[R]], do: Callable[[Step], Awaitable[Any]]) -> Reply[R]:
    """``drive`` for an async adapter: ``do`` is awaited for each step."""
    step = next(flow)
    while True:
        result = await do(step)
        try:
            step = flow.send(result)
        except StopIteration as done:
            reply: Reply[R] = done.value
            return reply


def _redirect_target(location: str | None) -> str:
    """Where a 3xx points, as an origin; a missing, relative or malformed ``Location`` is said, not raised."""
    if not location:
        return "an unknown location"
    try:
        parts = urlsplit(location)
        if not parts.scheme or not parts.hostname:
            return "a relative location"
        return origin_of(f"{parts.scheme}://{parts.netloc}")  # only where it points: its query may hold anything
    except (ValueError, OdcError):
        return "a malformed location"


def _problem_details(reply: Reply[Any]) -> dict[str, Any]:
    """RFC 7807 fields of an error body, if it has them (bodies are read only up to 64 KiB)."""
    if len(reply.content) > _MAX_PROBLEM_BODY:
        return {}
    try:
        body = parse_json(reply.headers, reply.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


__all__ = [
    "FIELD_LIMIT",
    "NeedToken",
    "Reply",
    "RequestCore",
    "Send",
    "Step",
    "Unanswered",
    "Wait",
    "adrive",
    "drive",
    "json_body",
    "parse_json",
    "transport_failure",
]
