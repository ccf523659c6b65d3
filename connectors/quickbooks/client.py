"""python-quickbooks for one realm: bearer token from the TokenManager, pacing, one retry policy.

The SDK is used as shipped and configured per instance (never a shared, mutated client):
- no intuit-oauth `AuthClient`: it would fetch the OpenID discovery document on creation and
  bring a second refresh path; tokens belong to `connectors.oauth.TokenManager` and the
  401 policy to `connectors.bearer`, so the SDK gets a plain bearer session whose token is
  set before every request;
- that session adds timeouts (the SDK sends none) and keeps the status and Retry-After the
  SDK drops, for the error table;
- `use_decimal=True`: amounts are `Decimal` from the JSON parser on, never floats;
- `api_base_url` replaces the production/sandbox base URL (sandbox, proxies, the simulator);
- the sync calls are sent through the SDK's `process_request` (its URLs, headers and
  bearer), but a plain 200 answer is read by `decode` (msgspec, unused fields skipped)
  rather than parsed whole; any other answer meets the SDK's own checks (`sdk_result`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import requests
from quickbooks import QuickBooks
from quickbooks.exceptions import AuthorizationException, QuickbooksException

from connectors.base import ConnectorError
from connectors.bearer import Bearer
from connectors.errors import retry_after_seconds
from connectors.oauth import TokenManager
from connectors.quickbooks.decode import decode
from connectors.quickbooks.errors import CallFailed, MalformedBody, classify
from connectors.quickbooks.listed import Listed
from connectors.quickbooks.options import QboOptions
from connectors.ratelimit import make_pacer
from connectors.registry import ConnectorSettings
from connectors.urls import url_problem

MINOR_VERSION = 75
_OPEN = nullcontext()


class BearerSession(requests.Session):
    """What python-quickbooks needs of its `session`: `.access_token` and `.request()`.

    The token is per thread, so threads sharing one client never send each other's token.
    """

    def __init__(self, timeout: tuple[float, float]) -> None:
        super().__init__()
        self.timeout = timeout
        self._local = threading.local()

    @property
    def access_token(self) -> str:
        return getattr(self._local, "token", "")

    def use(self, token: str) -> None:
        self._local.token = token
        self._local.answer = (None, None)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["timeout"] = kwargs.get("timeout") or self.timeout
        # The body stays in the socket until `_send` reads it: a pull fetching ahead may have
        # many requests in flight but only reads a few bodies at once (memory).
        kwargs.setdefault("stream", True)
        response = super().request(method, url, *args, **kwargs)
        # Only what the error table needs: keeping the response would keep its body (a page
        # of 1000 invoices is ~2.7 MB) alive on every fetching thread until its next request.
        self._local.answer = (response.status_code, retry_after_seconds(response.headers.get("Retry-After")))
        return response

    def last_answer(self) -> tuple[int | None, float | None]:
        """HTTP status and Retry-After of this thread's last response (None: no response)."""
        return getattr(self._local, "answer", (None, None))


@dataclass(frozen=True, slots=True)
class Reply:
    body: dict[str, Any] | Listed  # the JSON envelope (QueryResponse, CDCResponse, "time") or a read page
    calls: int  # HTTP requests it took: attempts, plus token refreshes


def api_base(url: str) -> str:
    """`api_base_url` as python-quickbooks' `api_url_v3`: "/v3" is appended when missing.

    Plain http:// is refused unless the host is loopback (the simulators): tokens travel here.
    """
    problem = url_problem(url)
    if problem:
        raise ConnectorError(f"connection.api_base_url: {problem}")
    base = url.rstrip("/")
    return base if base.endswith("/v3") else f"{base}/v3"


def sdk_client(settings: ConnectorSettings, session: BearerSession) -> QuickBooks:
    """A fresh python-quickbooks client for the settings' realm (no network I/O)."""
    if not settings.realm_id:
        raise ConnectorError("connection.realm_id is required for a QuickBooks connection")
    qb = QuickBooks(company_id=settings.realm_id, minorversion=MINOR_VERSION, use_decimal=True)
    qb.sandbox = settings.environment == "sandbox"
    qb.session = session
    if settings.api_base_url:
        qb.api_url_v3 = qb.sandbox_api_url_v3 = api_base(settings.api_base_url)  # this instance only
    return qb


class QboClient:
    """The two calls a sync needs, each paced, authorised and retried as one unit."""

    def __init__(self, settings: ConnectorSettings, tokens: TokenManager, options: QboOptions) -> None:
        self.tokens = tokens
        self.options = options
        self.session = BearerSession((options.connect_timeout, options.read_timeout))
        self.sdk = sdk_client(settings, self.session)
        self.limiter = make_pacer(
            settings.pacing,
            options.per_minute,
            60.0,
            options.concurrent,
            clock=options.monotonic,
            sleep=options.sleep,
        )
        self.bearer = Bearer(tokens)  # pages fetched ahead share one TokenManager
        self._counts = threading.Lock()
        self._attempts = 0

    @property
    def requests(self) -> int:
        """HTTP requests so far: API calls (every attempt, answered or not) and token refreshes."""
        return self._attempts + self.tokens.requests

    def query(
        self, statement: str, read: Callable[[bytes], Any] = decode, gate: AbstractContextManager[Any] = _OPEN
    ) -> Reply:
        """POST one SELECT statement to the query endpoint (as `QuickBooks.query` does).

        `read` makes the body of a 200 answer what `Reply.body` holds (the envelope dict by
        default; a full listing's `Listed` page); None sends it to the SDK's checks. The body
        is received and read inside `gate` (a pull fetching ahead bounds how many at once).
        """
        url = f"{self.sdk.api_url}/company/{self.sdk.company_id}/query"
        return self._call(lambda qb: _send(qb, "POST", url, {}, statement, "application/text", read, gate))

    def batch(self, queries: list[str]) -> Reply:
        """POST /batch: several SELECT statements in one request (at most 30), answered as
        `BatchItemResponse` items whose `bId` is the statement's index."""
        url = f"{self.sdk.api_url}/company/{self.sdk.company_id}/batch"
        items = [{"bId": str(number), "Query": query} for number, query in enumerate(queries)]
        body = json.dumps({"BatchItemRequest": items})
        return self._call(lambda qb: _send(qb, "POST", url, {}, body, "application/json", decode, _OPEN))

    def cdc(self, entities: str, changed_since: str) -> Reply:
        """GET /cdc?entities=...&changedSince=... (changes since a time, oldest first)."""
        url = f"{self.sdk.api_url}/company/{self.sdk.company_id}/cdc"
        params = {"entities": entities, "changedSince": changed_since}
        return self._call(lambda qb: _send(qb, "GET", url, params, {}, "application/json", decode, _OPEN))

    def _call(self, send: Callable[[QuickBooks], Any]) -> Reply:
        attempts = 0

        def attempt(token: str) -> dict[str, Any]:
            nonlocal attempts
            attempts += 1
            with self._counts:
                self._attempts += 1
            body = None
            try:
                with self.limiter.slot():
                    self.session.use(token)
                    try:
                        body = send(self.sdk)
                    except Exception as exc:
                        raise CallFailed(exc, *self.session.last_answer()) from exc
            except BaseException:
                if isinstance(body, Received):  # the slot's release failed (a shared pacer's store)
                    body.discard()
                raise
            if isinstance(body, Received):  # read once the API is done with the request
                try:
                    body = body.read()
                except Exception as exc:
                    raise CallFailed(exc, *self.session.last_answer()) from exc
            if not isinstance(body, dict | Listed):
                raise CallFailed(MalformedBody("answer is not a JSON object"), 200, None)
            return body

        body, token_requests = self.bearer.call(
            attempt,
            classify,
            attempts=self.options.retry_attempts,
            base_wait=self.options.retry_base_wait,
            sleep=self.options.sleep,
        )
        return Reply(body, attempts + token_requests)


def _send(
    qb: QuickBooks,
    method: str,
    url: str,
    params: dict[str, str],
    data: Any,
    content_type: str,
    read: Callable[[bytes], Any],
    gate: AbstractContextManager[Any],
) -> Any:
    """One request as `QuickBooks.make_request` sends it; a 200 answer read fast when it can be."""
    headers = {
        "Content-Type": content_type,
        "Accept": "application/json",
        "User-Agent": "python-quickbooks V3 library",
    }
    response = qb.process_request(
        method, url, headers=headers, params={**params, "minorversion": qb.minorversion}, data=data
    )
    if response.status_code != 200:
        return sdk_result(response)
    with ExitStack() as held:
        held.enter_context(gate)  # left when the body is read, after the pacing slot
        return Received(response, _content(response), read, held.pop_all())


class Received:
    """A 200 answer's whole body, received inside the request's pacing slot and read after it.

    Once the body is in, the API is done with the request: reading it (a 1000-invoice page
    takes ~15 ms in the page decoder) no longer holds one of the realm's concurrent
    requests, so the next request goes while this one is read. The body holds its place in
    `gate` (the pull's bound on bodies held at once) until it is read or discarded, exactly
    once: a place never given back would stall every later request of the pull.
    """

    __slots__ = ("_held", "content", "reader", "response")

    def __init__(
        self, response: requests.Response, content: bytes, reader: Callable[[bytes], Any], held: ExitStack
    ) -> None:
        self.response, self.content, self.reader, self._held = response, content, reader, held

    def read(self) -> Any:
        """The body as `reader` reads it, or the SDK's own result when it cannot."""
        try:
            body = self.reader(self.content)
        finally:
            self.discard()
        return body if body is not None else sdk_result(self.response)

    def discard(self) -> None:
        """Give the body's place in the gate back (once: a closed stack holds nothing), read or not."""
        self._held.close()


def _content(response: requests.Response) -> bytes:
    """The whole body in one read. `response.content` reads a streamed body 10 KB at a time
    (~270 Python-level reads for a 2.7 MB page); the bytes are kept on the response as it
    would keep them, for the SDK's checks, and the connection goes back to the pool."""
    if response._content is False:  # not read yet: the session streams
        response._content = response.raw.read(decode_content=True) or b""
        response._content_consumed = True
    return response.content


def sdk_result(response: requests.Response) -> Any:
    """What python-quickbooks' `make_request` makes of an answer: the parsed body, or its
    exception (a 401, a body that is not JSON, a Fault, another status), unchanged."""
    if response.status_code == 401:
        raise AuthorizationException(
            "Application authentication failed", error_code=401, detail=response.text
        )
    try:
        result = json.loads(response.text, parse_float=Decimal)
    except Exception:
        raise QuickbooksException(f"Error reading json response: {response.text}", 10000) from None
    if "Fault" in result:
        QuickBooks.handle_exceptions(result["Fault"])
    elif response.status_code != 200:
        raise QuickbooksException(
            f"Error returned with status code '{response.status_code}': {response.text}", 10000
        )
    return result


def batch_answers(body: Any, expected: int) -> list[dict[str, Any]]:
    """Each operation's QueryResponse, in the order asked; a faulted operation fails the pull."""
    items = body.get("BatchItemResponse") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise ConnectorError("unexpected QuickBooks batch answer")
    answers: dict[str, dict[str, Any]] = {}
    for item in items:
        if not isinstance(item, dict):
            raise ConnectorError("unexpected QuickBooks batch answer")
        if "Fault" in item:
            raise ConnectorError(f"QuickBooks refused a query of the batch: {_fault_text(item['Fault'])}")
        if isinstance(item.get("QueryResponse"), dict):
            answers[str(item.get("bId"))] = item["QueryResponse"]
    missing = [str(number) for number in range(expected) if str(number) not in answers]
    if missing:
        raise ConnectorError(f"QuickBooks batch answer lacks operations {', '.join(missing)}")
    return [answers[str(number)] for number in range(expected)]


def _fault_text(fault: Any) -> str:
    errors = fault.get("Error") if isinstance(fault, dict) else None
    error = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    return str(error.get("Detail") or error.get("Message") or fault)[:300]
