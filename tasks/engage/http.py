"""HTTP plumbing shared by the REST and SOAP clients: the pooled session and the error choke point.

Every ``requests`` exception is sorted here, by one table per method, into "never left"
(:class:`~tasks.core.errors.RequestNotSent`) or "may have arrived"
(:class:`~tasks.core.errors.OutcomeUnknown`), and every error status into a typed
:class:`~tasks.core.errors.EngageAPIError`. Errors quote Engage's answer as it came (quotes cut with
:func:`tasks.core.masking.excerpt`); the delivery layer masks them by the request's values.
"""

from __future__ import annotations

import email.utils
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import requests
from requests import exceptions as req
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
)

from tasks.core.errors import (
    CredentialsRejected,
    EngageAPIError,
    EngageClientError,
    EngageError,
    EngageServerError,
    OutcomeUnknown,
    RateLimited,
    RequestNotSent,
    UnknownRecipient,
)
from tasks.core.masking import excerpt
from tasks.engage import written
from tasks.engage.answers import unexpected
from tasks.engage.bodies import BodyNotRead, read_body
from tasks.engage.deadline import DeadlineAdapter, deadline

#: Connections kept per host: one per worker thread is enough, more only wastes sockets.
POOL_SIZE = 32
#: The operation that sends a message: a 2xx to it that is not the documented one may mean
#: Engage acted.
SENDS = "message/sendSingle"
#: How much of a non-JSON error body is quoted in the error.
BODY_EXCERPT = 200

#: Told of every Engage call: operation, HTTP status (or the error class when no answer came),
#: seconds taken. The worker passes its latency histogram; this layer knows nothing of metrics.
CallObserver = Callable[[str, str, float], None]


class _EngageAdapter(DeadlineAdapter, written.NotingAdapter):
    """Pools whose connections note when a request starts to be written (tasks.engage.written)
    and obey each call's total deadline (tasks.engage.deadline)."""


def make_session(
    username: str, password: str, *, base_url: str, pool_size: int = POOL_SIZE
) -> requests.Session:
    """A pooled session with Basic auth; urllib3's own retries are off (we decide about retries).

    The environment (``HTTPS_PROXY``, ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``, ...) is read once,
    here, for ``base_url``: with ``trust_env`` on, requests reads it again on every call, which
    was 4% of a worker's CPU in the benchmark (docs/benchmarks.md).
    """
    session = requests.Session()
    session.trust_env = False
    session.proxies.update(requests.utils.get_environ_proxies(base_url))
    ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if ca_bundle:
        session.verify = ca_bundle
    session.auth = (username, password)
    adapter = _EngageAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


@dataclass(frozen=True)
class Failure:
    """One row of a failure table: a ``requests`` exception and what it means for the call.

    ``causes`` narrows the row to connection errors whose urllib3 cause is one of these types.
    ``text`` may use ``{connect}``/``{read}`` (the timeouts), ``{error}`` and ``{reason}``.
    """

    raised: type[req.RequestException]
    means: type[RequestNotSent | OutcomeUnknown]
    text: str
    causes: tuple[type[Exception], ...] = ()
    #: The row holds only while no byte of the request was written (see tasks.engage.written).
    before_writing: bool = False

    def matches(self, err: req.RequestException, *, writing_started: bool) -> bool:
        """The exception is of this row's type (and, when given, has one of its causes)."""
        if self.before_writing and writing_started:
            return False
        return isinstance(err, self.raised) and (
            not self.causes or isinstance(_cause(err), self.causes)
        )


#: urllib3 causes proving that no byte of the request left this machine.
NEVER_CONNECTED = (NewConnectionError, NameResolutionError, ConnectTimeoutError)

#: A POST may change something: only failures before any byte of the request was written are
#: "not sent". A TLS error is one only during the handshake: a broken record in the answer (a
#: TLS-inspecting proxy) comes after Engage may have acted. The first matching row wins, so
#: narrower rows come first.
POST_FAILURES = (
    Failure(req.ConnectTimeout, RequestNotSent, "connect timed out after {connect:g} s"),
    Failure(req.SSLError, RequestNotSent, "TLS handshake failed: {error}", before_writing=True),
    Failure(req.SSLError, OutcomeUnknown, "TLS error after the request was sent: {error}"),
    Failure(
        req.ReadTimeout, OutcomeUnknown, "no answer within {read:g} s after the request was sent"
    ),
    Failure(req.ConnectionError, RequestNotSent, "could not connect: {reason}", NEVER_CONNECTED),
    Failure(
        req.ConnectionError, OutcomeUnknown, "connection lost after the request was sent: {reason}"
    ),
    # A cut or garbled answer (chunked encoding, content decoding): the request had left.
    Failure(req.RequestException, OutcomeUnknown, "the answer could not be read: {reason}"),
)
#: A GET changes nothing, so every failure is as safe to retry as one that never left.
GET_FAILURES = (
    Failure(req.ConnectTimeout, RequestNotSent, "connect timed out after {connect:g} s"),
    Failure(req.RequestException, RequestNotSent, "request failed: {reason}"),
)


#: Each method's table, by the method's name.
FAILURES: Mapping[str, Sequence[Failure]] = {"POST": POST_FAILURES, "GET": GET_FAILURES}


def call(
    session: requests.Session,
    method: Literal["GET", "POST"],
    url: str,
    operation: str,
    *,
    timeout: tuple[float, float],
    observe: CallObserver | None = None,
    **kwargs: Any,
) -> requests.Response:
    """One call, its transport failures sorted by the method's table; observed.

    A POST's failure is RequestNotSent or OutcomeUnknown; a GET's is always RequestNotSent,
    since a GET changes nothing and may be retried.
    """
    failures = FAILURES[method]
    return _observed(
        operation,
        observe,
        lambda: _request(session, method, url, operation, failures, timeout, **kwargs),
    )


def post(session: requests.Session, url: str, operation: str, **options: Any) -> requests.Response:
    """:func:`call` with POST (``timeout``, ``observe`` and requests' keyword arguments)."""
    return call(session, "POST", url, operation, **options)


def get(session: requests.Session, url: str, operation: str, **options: Any) -> requests.Response:
    """:func:`call` with GET (``timeout`` and ``observe``)."""
    return call(session, "GET", url, operation, **options)


def _request(  # noqa: PLR0917  (the one place every call goes through)
    session: requests.Session,
    method: str,
    url: str,
    operation: str,
    failures: Sequence[Failure],
    timeout: tuple[float, float],
    **kwargs: Any,
) -> requests.Response:
    """One call, whole answer included, within connect + read timeout (a total deadline).

    The read timeout alone bounds each socket read: a trickled answer (status line, headers or
    body) would pass it forever and outlive the send's lease. At the deadline the call is cut
    and counts as an answer that never came (OutcomeUnknown for a POST).
    """
    written.reset()
    total = timeout[0] + timeout[1]
    try:
        with deadline(total) as call:
            # Never follow a redirect: Engage's API answers none, so one comes from something in
            # front of it (a proxy's login page), and following it would turn that page into a
            # "success" or re-POST a send to a stranger (307/308).
            response = session.request(
                method, url, timeout=timeout, allow_redirects=False, stream=True, **kwargs
            )
            # The body must be read by the time the call's timeouts add up to (the lease
            # counts on it); the deadline's watchdog cuts a read that blocks past it.
            read_body(response, deadline=call.at)
    except BodyNotRead as err:
        if call.expired:
            raise _cut(operation, failures, total) from None
        raise _unread(operation, response, err.why) from None
    except req.RequestException as err:
        if call.expired:
            raise _cut(operation, failures, total) from err
        started = written.started()
        failure = next((f for f in failures if f.matches(err, writing_started=started)), None)
        if failure is None:
            raise
        text = failure.text.format(
            connect=timeout[0], read=timeout[1], error=err, reason=_reason(err)
        )
        raise failure.means(operation, text) from err
    if call.expired:  # an answer read to its end only because the cut looked like one
        raise _cut(operation, failures, total)
    return response


def _cut(operation: str, failures: Sequence[Failure], total: float) -> EngageError:
    """An answer cut at the deadline: what the table's catch-all row says for this method."""
    return failures[-1].means(operation, f"no complete answer within the deadline of {total:g} s")


def _unread(operation: str, response: requests.Response, why: str) -> EngageError:
    """An answer whose body was cut off: an error status still says what Engage meant."""
    if response.status_code >= 400:
        return api_error(
            operation, response.status_code, {}, response.headers, fallback_message=why
        )
    return unexpected(operation, response, why, sends=operation == SENDS)


def _observed(
    operation: str, observe: CallObserver | None, call: Callable[[], requests.Response]
) -> requests.Response:
    """Run one call, telling ``observe`` its status (or error class) and duration."""
    if observe is None:
        return call()
    started = time.perf_counter()
    try:
        response = call()
    except EngageError as err:
        observe(operation, type(err).__name__, time.perf_counter() - started)
        raise
    observe(operation, str(response.status_code), time.perf_counter() - started)
    return response


def _cause(err: Exception) -> object:
    cause: object = err.args[0] if err.args else None
    if isinstance(cause, MaxRetryError):
        cause = cause.reason
    return cause


def _reason(err: Exception) -> str:
    cause = _cause(err)
    if cause is None:
        cause = err
    return type(cause).__name__ if not str(cause) else f"{type(cause).__name__}: {cause}"


def api_error(
    operation: str,
    status: int,
    fields: Mapping[str, Any],
    headers: Mapping[str, str],
    *,
    fallback_message: str | None = None,
) -> EngageAPIError:
    """The typed error for an error answer; ``fields`` is Engage's error body (may be empty)."""
    details = {k: v for k, v in fields.items() if k not in ("errorActor", "errorCode", "message")}
    actor = _str_or_none(fields.get("errorActor"))
    code = _str_or_none(fields.get("errorCode"))
    message = _str_or_none(fields.get("message")) or fallback_message
    retry_after = parse_retry_after(headers.get("Retry-After"))
    kwargs: dict[str, Any] = {
        "status": status,
        "error_actor": actor,
        "error_code": code,
        "message": message,
        "details": details,
        "retry_after": retry_after,
    }
    if status in (401, 403):
        return CredentialsRejected(operation, **kwargs)
    if status == 429:
        return RateLimited(operation, **kwargs)
    if status >= 500:
        return EngageServerError(operation, **kwargs)
    if code == "NO_SUCH_OBJECT" and _about_contact(operation, details):
        return UnknownRecipient(operation, **kwargs)
    return EngageClientError(operation, **kwargs)


def json_error_fields(response: requests.Response) -> tuple[dict[str, Any], str | None]:
    """Engage's JSON error body, or ({}, an excerpt of whatever else came back)."""
    text = response.text
    if not text.strip():
        return {}, f"empty {response.status_code} answer"
    try:
        body = response.json()
    except ValueError:
        return {}, f"non-JSON answer: {excerpt(text, BODY_EXCERPT)}"
    if not isinstance(body, dict):
        return {}, f"unexpected JSON answer: {excerpt(str(body), BODY_EXCERPT)}"
    return body, None


def _about_contact(operation: str, details: Mapping[str, Any]) -> bool:
    object_type = details.get("objectType")
    if object_type is not None:
        return str(object_type).lower() in ("contact", "user", "recipient")
    # Without objectType only the lookup can be about the contact.
    return operation == "contact/get"


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
