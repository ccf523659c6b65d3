"""A local HTTP simulator of the Xero Accounting API, identity and token endpoints.

One server answers all three Xero hosts by path, so xero-python needs only three URLs:

- accounting `https://api.xero.com/api.xro/2.0` -> `sim.accounting_url` (`/api.xro/2.0/...`)
- identity `https://api.xero.com` (`/Connections`) -> `sim.identity_url`
- token `https://identity.xero.com/connect/token` -> `sim.token_url` (`/connect/token`);
  consent `https://login.xero.com/identity/connect/authorize` -> `sim.authorize_url`.

Several tenants per server (`add_tenant`). Contacts and invoices are served from a
pre-rendered index (see `xero_index`) rebuilt when the company's `revision` changes (the
`mutations` helpers bump it); `with sim.mutate(tenant_id)` makes a change atomic for
in-flight requests. Limits, tokens and faults behave as Xero's (docs/simulators.md, "Xero").
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any

from connectors.simulators.base import (
    Clock,
    Request,
    Response,
    SimServer,
    TokenAuthority,
    TokenPair,
)
from connectors.simulators.model import SimCompany
from connectors.simulators.xero_index import TenantIndex
from connectors.simulators.xero_limits import RateLimits, XeroLimits
from connectors.simulators.xero_query import QueryError, parse_list_query
from connectors.simulators.xero_render import envelope, to_ms

ACCESS_TTL = 1800.0  # Xero access tokens live 30 minutes
REFRESH_GRACE = 1800.0  # a rotated refresh token still answers for 30 minutes
DEFAULT_SCOPE = "offline_access accounting.transactions.read accounting.contacts.read"
API_PREFIX = "/api.xro/2.0/"
_LISTS = {
    "contacts": "Contacts",
    "invoices": "Invoices",
    "payments": "Payments",
    "creditnotes": "CreditNotes",
}
_JSON = "application/json; charset=utf-8"


class XeroTokenAuthority(TokenAuthority):
    """TokenAuthority that can also say when an access token expired (for Xero's 401)."""

    def expired_at(self, access_token: str | None) -> float | None:
        """The expiry time of a known but expired token; None if unknown or still valid."""
        # base.TokenAuthority keeps expiries privately; a public accessor would be nicer.
        with self._lock:
            expires = self._access.get(access_token or "")
        if expires is None or self._clock() < expires:
            return None
        return expires if expires != float("-inf") else self._clock()


def problem(status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    """Xero's problem-details error body (401, 403, 404, 500, 503...)."""
    payload = {
        "Type": None,
        "Title": title,
        "Status": status,
        "Detail": detail,
        "Instance": str(uuid.uuid4()),
        "Extensions": {},
    }
    response = Response.json(payload, status, headers)
    response.content_type = _JSON
    return response


def validation_error(message: str) -> Response:
    """Xero's 400 ValidationException body for a request it cannot run."""
    payload = {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": [{"ValidationErrors": [{"Message": message}]}],
    }
    return Response.json(payload, 400)


class XeroSimulator(SimServer):
    """The Xero API on loopback: tenants, tokens, limits, paging, faults, counters.

    `clock` (seconds, default `time.time`) drives token expiry, the refresh grace and the
    rate-limit windows, so tests can move time without sleeping.
    """

    def __init__(
        self,
        companies: Iterable[SimCompany] = (),
        *,
        latency: float = 0.0,
        clock: Clock = time.time,
        limits: XeroLimits = XeroLimits(),
        access_ttl: float = ACCESS_TTL,
        refresh_grace: float = REFRESH_GRACE,
        client_id: str = "xero-sim-client",
        client_secret: str = "xero-sim-secret",
    ) -> None:
        super().__init__(latency=latency)
        self.clock = clock
        self.tokens = XeroTokenAuthority(
            client_id=client_id,
            client_secret=client_secret,
            access_ttl=access_ttl,
            refresh_grace=refresh_grace,
            clock=clock,
            prefix="xero",
        )
        self.limits = RateLimits(limits, clock)
        self._tenants: dict[str, TenantIndex] = {}
        self._connected: dict[str, str] = {}  # tenant id -> createdDateUtc
        for company in companies:
            self.add_tenant(company)

    # -- URLs for xero-python ----------------------------------------------------------
    @property
    def accounting_url(self) -> str:
        """AccountingApi(api_client, base_url=...)."""
        return f"{self.url}/api.xro/2.0"

    @property
    def api_url(self) -> str:
        """The accounting URL under the QuickBooks simulator's name (the CLI prints it)."""
        return self.accounting_url

    @property
    def identity_url(self) -> str:
        """IdentityApi(api_client, base_url=...) (it appends /Connections)."""
        return self.url

    @property
    def token_url(self) -> str:
        return f"{self.url}/connect/token"

    @property
    def authorize_url(self) -> str:
        return f"{self.url}/identity/connect/authorize"

    # -- tenants -----------------------------------------------------------------------
    def add_tenant(self, company: SimCompany) -> str:
        """Connect `company` as a tenant (its `id` is the tenantId, replacing one there)."""
        self._tenants[company.id] = TenantIndex(company)
        self._connected[company.id] = _iso(self.clock())
        return company.id

    add_company = add_tenant  # the QuickBooks simulator's name, for code serving both

    def remove_tenant(self, tenant_id: str) -> None:
        """Disconnect a tenant: it leaves /Connections and its calls answer 403."""
        self._tenants.pop(tenant_id, None)
        self._connected.pop(tenant_id, None)

    @property
    def tenants(self) -> list[str]:
        """The connected tenant ids, in connection order."""
        return list(self._tenants)

    def company(self, tenant_id: str) -> SimCompany:
        return self._tenants[tenant_id].company

    @contextmanager
    def mutate(self, tenant_id: str) -> Iterator[SimCompany]:
        """Edit a company between syncs (helpers or plain field changes); requests wait,
        then see the whole change."""
        index = self._tenants[tenant_id]
        with index.lock:
            try:
                yield index.company
            finally:
                index.invalidate()

    def prerender(self) -> None:
        """Render every tenant's index now, so the first request of a benchmark is not slow."""
        for index in list(self._tenants.values()):
            index.snapshot()

    def touch(self, tenant_id: str | None = None) -> None:
        """Re-render after editing a company by hand (no `mutate()`, no revision bump)."""
        for key in [tenant_id] if tenant_id else list(self._tenants):
            self._tenants[key].invalidate()

    # -- tokens ------------------------------------------------------------------------
    def issue_token(self, scope: str = DEFAULT_SCOPE) -> dict[str, Any]:
        """A fresh token set shaped like xero-python's token dict (for its token getter)."""
        return self.token_dict(self.tokens.issue(), scope)

    def token_dict(self, pair: TokenPair, scope: str = DEFAULT_SCOPE) -> dict[str, Any]:
        """`pair` as xero-python's token dict; expires_at is wall-clock (the SDK compares it
        with time.time(), whatever the simulator's clock says)."""
        return {
            "access_token": pair.access_token,
            "refresh_token": pair.refresh_token,
            "token_type": "Bearer",
            "expires_in": int(self.tokens.access_ttl),
            "expires_at": time.time() + self.tokens.access_ttl,
            "scope": scope.split(),
        }

    # -- SimServer hooks ---------------------------------------------------------------
    def endpoint(self, request: Request) -> str:
        path = request.path.lower()
        if path == "/connect/token":
            return "token"
        if path == "/connections":
            return "connections"
        if path.startswith(API_PREFIX):
            name = path[len(API_PREFIX) :].strip("/")
            return name if name in _LISTS else "other"
        return "authorize" if path == "/identity/connect/authorize" else "other"

    def admit(self, request: Request) -> AbstractContextManager[Response | None]:
        return self._admit(request)

    @contextmanager
    def _admit(self, request: Request) -> Iterator[Response | None]:
        if not request.path.lower().startswith(API_PREFIX):
            yield None  # identity and token calls are not tenant-limited
            return
        refusal = self._authenticate(request) or self._tenant_refusal(request)
        if refusal is not None:
            yield refusal
            return
        tenant_id = self._tenant_id(request)
        with self.limits.slot(tenant_id) as limit_hit:
            yield None if limit_hit is None else self._too_many(tenant_id, limit_hit)

    def handle(self, request: Request) -> Response:
        name = self.endpoint(request)
        if name == "token":
            return self._token(request)
        if name == "authorize":
            return self.tokens.authorize_redirect(request)
        if name == "connections":
            return self._authenticate(request) or self._connections()
        if name in _LISTS and request.method == "GET":
            return self._list(request, name)
        return problem(404, "NotFound", f"The simulator has no resource {request.path}")

    def fault_response(self, kind: str, request: Request) -> Response:
        """Planned faults in Xero's shapes (a 429 as a minute-limit hit)."""
        tenant_id = self._tenant_id(request)
        headers = self.limits.headers(tenant_id if tenant_id in self._tenants else None)
        if kind == "429":
            headers.update({"Retry-After": "1", "X-Rate-Limit-Problem": "minute"})
            response = problem(429, "Too Many Requests", "Rate limit exceeded", headers)
        elif kind == "503":
            response = problem(503, "Service Unavailable", "The Xero API is unavailable")
        else:
            response = problem(500, "An error occurred", "An unhandled error occurred in Xero")
        response.headers.update(headers)
        return response

    # -- answers -------------------------------------------------------------------------
    def _list(self, request: Request, name: str) -> Response:
        tenant_id = self._tenant_id(request)
        try:
            query = parse_list_query(request.query, request.headers.get("If-Modified-Since"))
        except QueryError as error:
            response = validation_error(str(error))
        else:
            snapshot = self._tenants[tenant_id].snapshot()
            page = getattr(snapshot, name).page(query)
            body = envelope(_LISTS[name], page.items, to_ms(self._now()), page.pagination)
            response = Response(200, body, _JSON)
        response.headers.update(self.limits.headers(tenant_id))
        response.headers["Xero-Correlation-Id"] = str(uuid.uuid4())
        return response

    def _connections(self) -> Response:
        payload = [
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"xero-sim-connection:{tenant_id}")),
                "authEventId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"xero-sim-auth:{tenant_id}")),
                "tenantId": tenant_id,
                "tenantType": "ORGANISATION",
                "tenantName": index.company.name,
                "createdDateUtc": self._connected[tenant_id],
                "updatedDateUtc": self._connected[tenant_id],
            }
            for tenant_id, index in list(self._tenants.items())
        ]
        return Response.json(payload)

    def _token(self, request: Request) -> Response:
        if request.method != "POST":
            return Response.json({"error": "invalid_request"}, 405)
        scope = request.form().get("scope") or DEFAULT_SCOPE
        extra = {"token_type": "Bearer", "scope": scope, "id_token": "xero-sim-id-token"}
        return self.tokens.token_response(request, extra)

    # -- checks --------------------------------------------------------------------------
    def _authenticate(self, request: Request) -> Response | None:
        token = request.bearer()
        if self.tokens.check(token):
            return None
        auth_header = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        expired = self.tokens.expired_at(token)
        if expired is None:
            return problem(401, "Unauthorized", "AuthenticationUnsuccessful", auth_header)
        stamp = datetime.fromtimestamp(expired, UTC).strftime("%m/%d/%Y %H:%M:%S")
        return problem(401, "Unauthorized", f"TokenExpired: token expired at {stamp}", auth_header)

    def _tenant_refusal(self, request: Request) -> Response | None:
        # Xero answers both a missing and an unknown/disconnected tenant id with this 403.
        if self._tenant_id(request) in self._tenants:
            return None
        return problem(403, "Forbidden", "AuthenticationUnsuccessful")

    def _tenant_id(self, request: Request) -> str:
        return (request.headers.get("xero-tenant-id") or "").strip()

    def _too_many(self, tenant_id: str, limit_hit: str) -> Response:
        self.counters.violation(limit_hit)
        headers = self.limits.headers(tenant_id)
        headers["Retry-After"] = str(self.limits.retry_after(tenant_id, limit_hit))
        headers["X-Rate-Limit-Problem"] = limit_hit
        return problem(429, "Too Many Requests", f"Rate limit exceeded: {limit_hit}", headers)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)


def _iso(seconds: float) -> str:
    """Xero's identity-API timestamp form, e.g. 2019-07-09T23:40:30.1833130 (UTC, naive)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0"


def cli_simulator(args: argparse.Namespace, company: SimCompany) -> XeroSimulator:
    """The simulator `python -m connectors.simulators xero ...` serves (one tenant)."""
    limits = XeroLimits(per_minute=args.per_minute or 60, concurrent=args.concurrency or 5)
    return XeroSimulator([company], latency=args.latency, limits=limits)
