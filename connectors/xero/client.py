"""One tenant's HTTP access to Xero through xero-python: isolated client, tokens, pacing, retries.

xero-python pitfalls handled here, once:
- `Configuration()` returns a copy of the first instance ever built in the process (its
  metaclass caches it, with its `oauth2_token` shared by reference); we build ours without
  touching that cache, so two tenants or base URLs in one process never share state;
- urllib3's default retries re-send 429s after sleeping Retry-After, invisibly; they are
  off, so every HTTP request is an attempt of `connectors.retry`'s policy;
- the SDK refreshes tokens itself when it knows an expiry; it never learns one here (the
  token it sees has no expiry and no client credentials): `TokenManager` owns refreshes,
  so a rotated refresh token is committed before its access token is used, and
  `connectors.bearer` decides when (ahead of expiry, or once after a 401).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any, NamedTuple

from urllib3.util.retry import Retry
from xero_python.accounting import AccountingApi
from xero_python.api_client import ApiClient, Configuration
from xero_python.api_client.oauth2 import OAuth2Token
from xero_python.exceptions import ApiException

from connectors.base import ConnectorError
from connectors.bearer import Bearer
from connectors.oauth import TokenManager
from connectors.ratelimit import PacingFactory, make_pacer
from connectors.xero import decode
from connectors.xero.errors import classify
from connectors.xero.normalize import ORDER, SALES_INVOICES, parse_answer
from connectors.xero.normalize_ledger import SALES_CREDITS, SALES_PAYMENTS
from connectors.xero.options import XeroOptions
from portal_rules.records import Entity


class Listing(NamedTuple):
    items: list[Any]  # raw records, normalized by the caller
    page_count: int | None  # pagination.pageCount when Xero sent it
    calls: int = 0  # HTTP requests it took: attempts, and token refreshes made for it
    item_count: int | None = None  # pagination.itemCount: records in the whole listing
    served: datetime | None = None  # the answer's DateTimeUTC: Xero's clock when it answered


def isolated_api_client(token: Callable[[], dict]) -> ApiClient:
    """An ApiClient of its own: fresh Configuration and OAuth2Token, urllib3 retries off."""
    configuration = type.__call__(Configuration)  # bypass the process-wide instance cache
    configuration.oauth2_token = OAuth2Token()  # no client id/secret: the SDK cannot refresh
    client = ApiClient(configuration, oauth2_token_getter=token, oauth2_token_saver=_no_sdk_saves)
    client.rest_client.pool_manager.connection_pool_kw["retries"] = Retry(total=0, redirect=0)
    return client


def _no_sdk_saves(token: dict) -> None:
    raise ConnectorError("xero-python tried to store a token; TokenManager owns refreshes")


class XeroClient:
    """GET /Contacts, /Invoices, /Payments and /CreditNotes for one tenant, paced, retried and counted."""

    def __init__(
        self,
        *,
        company_id: str,
        tenant_id: str,
        base_url: str,
        tokens: TokenManager,
        options: XeroOptions,
        clock: Callable[[], datetime] | None = None,
        pacing: PacingFactory | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.classify = partial(classify, company=company_id)
        self.tokens = tokens
        self.options = options
        self.pacer = make_pacer(
            pacing, options.per_minute, 60.0, options.concurrent, clock=options.monotonic, sleep=options.sleep
        )
        self.day_remaining: int | None = None  # X-DayLimit-Remaining, the lowest answered
        self._counts = threading.Lock()
        self._api_requests = 0
        self._clock = clock or (lambda: datetime.now(UTC))
        self._bearer = Bearer(tokens)  # pages fetched ahead share one TokenManager
        self._tokens_sent = threading.local()  # the token each thread's next request carries
        self.api = AccountingApi(isolated_api_client(self._sdk_token), base_url=base_url or None)

    @property
    def requests(self) -> int:
        """HTTP requests so far: API calls (every attempt) and token refreshes."""
        return self._api_requests + self.tokens.requests

    def contacts(self, page: int, since: datetime | None) -> Listing:
        """One page of contacts, archived ones included, changed since `since` if given."""
        params = self._paged("customers", page, since)
        return self._list("customers", self.api.get_contacts, include_archived=True, **params)

    def contacts_by_id(self, ids: list[str]) -> Listing:
        """The contacts with these ids (at most `ids_per_request`), archived ones included."""
        return self._list(
            "customers", self.api.get_contacts, i_ds=ids, include_archived=True, page=1, page_size=len(ids)
        )

    def by_ids(self, entity: Entity, ids: list[str]) -> Listing:
        """The records of `entity` with these ids (GUIDs, at most `ids_per_request`), any status.

        Contacts and Invoices take `IDs`; Payments and CreditNotes only a `where` filter.
        """
        paged: dict[str, Any] = {"page": 1, "page_size": len(ids)}
        if entity == "customers":
            return self._list(entity, self.api.get_contacts, i_ds=ids, include_archived=True, **paged)
        if entity == "invoices":
            return self._list(entity, self.api.get_invoices, i_ds=ids, **paged)
        field, operation = {
            "payments": ("PaymentID", self.api.get_payments),
            "credits": ("CreditNoteID", self.api.get_credit_notes),
        }[entity]
        where = " OR ".join(f'{field}==guid("{ref}")' for ref in ids)
        return self._list(entity, operation, where=where, **paged)

    def invoices(self, page: int, since: datetime | None) -> Listing:
        """One page of sales invoices (ACCREC), changed since `since` if given."""
        params = self._paged("invoices", page, since)
        return self._list("invoices", self.api.get_invoices, where=SALES_INVOICES, **params)

    def payments(self, page: int, since: datetime | None) -> Listing:
        """One page of customer payments (ACCRECPAYMENT), changed since `since` if given."""
        params = self._paged("payments", page, since)
        return self._list("payments", self.api.get_payments, where=SALES_PAYMENTS, **params)

    def credit_notes(self, page: int, since: datetime | None) -> Listing:
        """One page of customer credit notes (ACCRECCREDIT) with their allocations."""
        params = self._paged("credits", page, since)
        return self._list("credits", self.api.get_credit_notes, where=SALES_CREDITS, **params)

    def _paged(self, entity: Entity, page: int, since: datetime | None) -> dict[str, Any]:
        """A listing page's parameters: in id order (`normalize.ORDER`), If-Modified-Since if given."""
        params: dict[str, Any] = {"page": page, "page_size": self.options.page_size, "order": ORDER[entity]}
        return params if since is None else {**params, "if_modified_since": since}

    def _list(self, entity: Entity, operation: Callable[..., Any], **params: Any) -> Listing:
        requests = 0  # this listing's own API requests: pages fetched ahead run on other threads

        def attempt(token: str) -> Listing:
            nonlocal requests
            with self.pacer.slot():
                requests += 1
                self._api_requests += 1
                self._tokens_sent.token = token
                body = self._send(operation, params)
            items, paging, served = decode.listing(body, entity) or parse_answer(body, entity)
            return Listing(items, paging.page_count, item_count=paging.item_count, served=served)

        listing, token_requests = self._bearer.call(
            attempt,
            self.classify,
            attempts=self.options.retry_attempts,
            base_wait=self.options.retry_base_wait,
            sleep=self.options.sleep,
            now=self._clock,
        )
        return listing._replace(calls=requests + token_requests)

    def _send(self, operation: Callable[..., Any], params: dict[str, Any]) -> bytes:
        timeout = (self.options.connect_timeout, self.options.read_timeout)
        try:
            response = operation(self.tenant_id, _preload_content=False, _request_timeout=timeout, **params)
        except ApiException as error:
            # Only the day count: after a 429 the policy waits Retry-After, and a zero
            # minute hint would make the pacer wait a second time.
            headers = error.headers if error.http_resp is not None else None
            self._note_limits(headers, minute=False)
            raise
        try:
            self._note_limits(response.headers)
            return response.data
        finally:
            response.release_conn()

    def _sdk_token(self) -> dict:
        token = getattr(self._tokens_sent, "token", "")
        return {"access_token": token, "token_type": "Bearer", "scope": None, "expires_in": None}

    def _note_limits(self, headers: Any, *, minute: bool = True) -> None:
        """Pace from Xero's remaining counts (X-MinLimit-Remaining, X-DayLimit-Remaining)."""
        if not headers:
            return
        left = _int(headers.get("X-MinLimit-Remaining")) if minute else None
        if left is not None:
            self.pacer.remaining_hint = left
        day = _int(headers.get("X-DayLimit-Remaining"))
        if day is not None:
            with self._counts:  # answers come back in any order: the lowest count is the newest
                self.day_remaining = day if self.day_remaining is None else min(self.day_remaining, day)


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
