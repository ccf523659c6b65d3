"""A QuickBooks Online API simulator that python-quickbooks and intuit-oauth talk to unmodified.

Serves, per realm: `/v3/company/{realm}/query` (GET ?query= or POST text), `/batch` (queries
only, up to 30 per request), `/cdc`,
`/customer/{id}`, `/invoice/{id}`, `/companyinfo/{realm}`; and the OAuth side: an OpenID
discovery document (pass its URL as intuit-oauth's `environment`), `/connect/oauth2`
(auto-approved consent, redirects with code and realmId), `/oauth2/v1/tokens/bearer` and
`/oauth2/v1/tokens/revoke`. Limits per realm: 500 requests/minute and 10 in flight, answered
with QBO's XML ThrottleExceeded 429. See docs/simulators.md.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from connectors.simulators import quickbooks_render as render
from connectors.simulators.base import (
    Clock,
    ConcurrencyGauge,
    Counters,
    Request,
    Response,
    SimServer,
    SlidingWindowLimiter,
    TokenAuthority,
)
from connectors.simulators.model import SimCompany
from connectors.simulators.quickbooks_index import RealmIndex, Row, Snapshot
from connectors.simulators.quickbooks_query import (
    ENTITIES,
    Query,
    QueryError,
    parse_query,
    parse_timestamp,
)

_API = re.compile(r"^/v3/company/(?P<realm>[^/]+)/(?P<rest>.*)$")
_SELECT = re.compile(r"select\s+(count\s*\(\s*\*\s*\)|\*|[\w.]+(?:\s*,\s*[\w.]+)*)\s+from\s+(\w+)", re.I)
TOKEN_PATH = "/oauth2/v1/tokens/bearer"
REVOKE_PATH = "/oauth2/v1/tokens/revoke"
AUTHORIZE_PATH = "/connect/oauth2"
DISCOVERY_PATHS = ("/.well-known/openid_configuration", "/.well-known/openid_sandbox_configuration")
MAX_BATCH_ITEMS = 30  # QBO: operations per batch request
REFRESH_TOKEN_LIFETIME = 8_726_400  # 101 days, as QBO reports x_refresh_token_expires_in
# What is left of a refresh token's 5-year limit (from the consent, whatever its use), which QBO
# reports as x_refresh_token_hard_expires_in only when asked for with this header
REFRESH_TOKEN_HARD_LIFETIME = 157_680_000
HARD_EXPIRY_HEADER = "x-include-refresh-token-hard-expires-in"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class QuickBooksSimulator(SimServer):
    """QBO API for one or more realms. `sim.tokens.issue()` mints a usable token pair."""

    def __init__(
        self,
        companies: SimCompany | Iterable[SimCompany] = (),
        *,
        latency: float = 0.0,
        per_minute: int = 500,
        concurrency: int = 10,
        tokens: TokenAuthority | None = None,
        timezone: str = "America/Los_Angeles",
        home_currency: str = "USD",
        now: Callable[[], datetime] = _utcnow,
        limit_clock: Clock = time.monotonic,
        cdc_max_days: int = 30,
        cdc_max_objects: int = 1000,
        cdc_cap_per_entity: bool = False,
    ) -> None:
        super().__init__(latency=latency)
        self.tokens = tokens or TokenAuthority(prefix="qbo", access_ttl=3600.0)
        self.refresh_hard_expires_in = REFRESH_TOKEN_HARD_LIFETIME  # seconds; tests bring the limit near
        self.tz = ZoneInfo(timezone)
        self.home_currency = home_currency
        self.now = now
        self.per_minute, self.concurrency = per_minute, concurrency
        self.cdc_max_days, self.cdc_max_objects = cdc_max_days, cdc_max_objects
        # Intuit documents "a maximum of 1,000 objects" per CDC response; True caps each
        # entity's list at that instead (how some read it), to test a client against both
        self.cdc_cap_per_entity = cdc_cap_per_entity
        self.gauge = ConcurrencyGauge()
        self.realm_counters: dict[str, Counters] = {}
        self.minorversions: set[str] = set()  # every minorversion a client sent
        self._limit_clock = limit_clock
        self._limiters: dict[str, SlidingWindowLimiter] = {}
        self._realms: dict[str, RealmIndex] = {}
        for company in [companies] if isinstance(companies, SimCompany) else companies:
            self.add_company(company)

    # -- configuration --------------------------------------------------------------
    @property
    def api_url(self) -> str:
        """What python-quickbooks calls `api_url_v3` (base URL + "/v3")."""
        return f"{self.url}/v3"

    @property
    def token_url(self) -> str:
        return f"{self.url}{TOKEN_PATH}"

    @property
    def discovery_url(self) -> str:
        """Pass as intuit-oauth `AuthClient(environment=...)`: its endpoints point here."""
        return f"{self.url}{DISCOVERY_PATHS[0]}"

    @property
    def realms(self) -> list[str]:
        return list(self._realms)

    def add_company(self, company: SimCompany) -> None:
        """Serve `company` as realm `company.id` (replacing any company there)."""
        if company.id in self._realms:
            self._realms[company.id].replace(company)
        else:
            self._realms[company.id] = RealmIndex(company, self.tz, self.home_currency)

    def company(self, realm: str) -> SimCompany:
        return self._realms[realm].company

    def touch(self, realm: str | None = None) -> None:
        """Drop cached JSON after editing records by hand (mutation helpers need not)."""
        for key in [realm] if realm else list(self._realms):
            self._realms[key].touch()

    def prerender(self, realm: str | None = None) -> int:
        """Render all records' JSON ahead of the first pull; returns how many."""
        keys = [realm] if realm else list(self._realms)
        return sum(self._realms[key].prerender() for key in keys)

    def set_limits(self, *, per_minute: int | None = None, concurrency: int | None = None) -> None:
        """Change the limits and start fresh minute windows."""
        self.per_minute = per_minute if per_minute is not None else self.per_minute
        self.concurrency = concurrency if concurrency is not None else self.concurrency
        self._limiters.clear()

    # -- SimServer hooks ------------------------------------------------------------
    def endpoint(self, request: Request) -> str:
        match = _API.match(request.path)
        if match is None:
            return _OAUTH_ENDPOINTS.get(request.path, "other")
        rest = match["rest"].lower()
        if rest == "query":
            found = _SELECT.search(_query_text(request))
            name = "other" if found is None else _select_name(found)
        elif rest in ("cdc", "batch"):
            name = rest
        else:
            name = f"read:{rest.split('/')[0]}"
        self.realm_counters.setdefault(match["realm"], Counters()).hit(name)
        return name

    @contextmanager
    def admit(self, request: Request) -> Iterator[Response | None]:
        match = _API.match(request.path)
        if match is None:
            yield None
            return
        realm = match["realm"]
        if not self.gauge.try_enter(realm, self.concurrency):
            self.counters.violation("concurrency")
            yield self._throttled()
            return
        try:
            if not self._limiter(realm).try_acquire():
                self.counters.violation("minute")
                yield self._throttled()
            else:
                yield None
        finally:
            self.gauge.leave(realm)

    def fault_response(self, kind: str, request: Request) -> Response:
        if kind == "429":
            return self._throttled()
        if kind == "503":
            body = b"<html><body><h1>503 Service Unavailable</h1></body></html>"
            return Response(503, body, "text/html")
        detail = "An application error has occurred while processing your request"
        return self._fault(500, "SystemFault", "10000", "An application error has occurred", detail)

    def handle(self, request: Request) -> Response:
        if request.path in DISCOVERY_PATHS:
            return Response.json(self._discovery())
        if request.path == AUTHORIZE_PATH:
            return self.tokens.authorize_redirect(request, realmId=self._default_realm())
        if request.path == TOKEN_PATH and request.method == "POST":
            extra = {"x_refresh_token_expires_in": REFRESH_TOKEN_LIFETIME}
            if (request.headers.get(HARD_EXPIRY_HEADER) or "").lower() == "true":
                extra["x_refresh_token_hard_expires_in"] = int(self.refresh_hard_expires_in)
            return self.tokens.token_response(request, extra)
        if request.path == REVOKE_PATH and request.method == "POST":
            return self._revoke(request)
        match = _API.match(request.path)
        if match is None:
            return Response.json({"error": f"no route for {request.path}"}, 404)
        return self._api(request, match["realm"], match["rest"])

    # -- API ------------------------------------------------------------------------
    def _api(self, request: Request, realm: str, rest: str) -> Response:
        if not self.tokens.check(request.bearer()):
            response = Response.json(render.auth_failed(self._time()), 401)
            response.headers["WWW-Authenticate"] = 'Bearer realm="Intuit", error="invalid_token"'
            return response
        if request.param("minorversion"):
            self.minorversions.add(request.param("minorversion") or "")
        index = self._realms.get(realm)
        if index is None:
            message = "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403"
            return self._fault(403, "AuthorizationFault", "3100", message, f"realm {realm}")
        snap = index.snapshot()
        parts = rest.strip("/").split("/")
        try:
            if parts == ["query"]:
                return self._query(index, snap, parse_query(_query_text(request)))
            if parts == ["cdc"]:
                return self._cdc(index, snap, request)
            if parts == ["batch"] and request.method == "POST":
                return self._batch(index, snap, request)
            if len(parts) == 2:
                return self._read(index, snap, parts[0], parts[1])
        except QueryError as exc:
            return self._fault(400, "ValidationFault", "4000", "Error parsing query", str(exc))
        return self._fault(400, "ValidationFault", "2010", "Unsupported operation", rest)

    def _query(self, index: RealmIndex, snap: Snapshot, query: Query) -> Response:
        return self._envelope(b'{"QueryResponse":', *_query_parts(index, snap, query))

    def _batch(self, index: RealmIndex, snap: Snapshot, request: Request) -> Response:
        """POST /batch: up to 30 operations in one request; only queries are simulated."""
        try:
            items = json.loads(request.body or b"{}")["BatchItemRequest"]
            if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise QueryError("BatchItemRequest must be a list of operations") from None
        if not 1 <= len(items) <= MAX_BATCH_ITEMS:
            raise QueryError(f"a batch holds 1 to {MAX_BATCH_ITEMS} operations, not {len(items)}")
        answers = []
        for item in items:
            bid = json.dumps(str(item.get("bId", ""))).encode()
            try:
                if not isinstance(item.get("Query"), str):
                    raise QueryError("only Query operations are simulated in a batch")
                part = _query_part(index, snap, parse_query(item["Query"]))
                answers.append(b'{"bId":%s,"QueryResponse":%s}' % (bid, part))
            except QueryError as exc:
                fault = {"Error": [{"Message": "Error parsing query", "Detail": str(exc), "code": "4000"}],
                         "type": "ValidationFault"}  # fmt: skip
                answers.append(b'{"bId":%s,"Fault":%s}' % (bid, json.dumps(fault).encode()))
        return self._envelope(b'{"BatchItemResponse":[%s]' % b",".join(answers))

    def _cdc(self, index: RealmIndex, snap: Snapshot, request: Request) -> Response:
        entities = _cdc_entities(request.param("entities") or "")
        since_text = request.param("changedSince")
        if not entities or not since_text:
            raise QueryError("QueryValidationError: entities and changedSince are required")
        since = parse_timestamp(since_text, self.tz)
        oldest = self.now() - timedelta(days=self.cdc_max_days)
        if since < int(oldest.timestamp()):
            detail = f"changedSince cannot be more than {self.cdc_max_days} days in the past"
            message = "Request has invalid or unsupported property"
            return self._fault(400, "ValidationFault", "2010", message, detail)
        rows = snap.changed_since(
            since, set(entities), self.cdc_max_objects, per_entity=self.cdc_cap_per_entity
        )
        parts = [_cdc_part(index, snap, entity, rows) for entity in entities]
        return self._envelope(b'{"CDCResponse":[{"QueryResponse":[%s]}]' % b",".join(parts))

    def _read(self, index: RealmIndex, snap: Snapshot, entity: str, record_id: str) -> Response:
        if entity.lower() == "companyinfo":
            info = {"CompanyName": snap.company.name, "Id": snap.company.id, "Country": "US"}
            return Response.json({"CompanyInfo": info, "time": self._time()})
        name = next((e for e in ENTITIES if e.lower() == entity.lower()), None)
        row = next((r for r in snap.live.get(name or "", []) if r.record.id == record_id), None)
        if name is None or row is None:
            detail = f"Object Not Found : Something you're trying to use has been made inactive or deleted: {record_id}"  # noqa: E501
            return self._fault(400, "ValidationFault", "610", "Object Not Found", detail)
        return self._envelope(b'{"%s":%s' % (name.encode(), index.body(snap, row)))

    # -- helpers --------------------------------------------------------------------
    def _limiter(self, realm: str) -> SlidingWindowLimiter:
        limiter = self._limiters.get(realm)
        if limiter is None:
            limiter = SlidingWindowLimiter(self.per_minute, 60.0, self._limit_clock)
            limiter = self._limiters.setdefault(realm, limiter)
        return limiter

    def _time(self) -> str:
        return render.response_time(self.now(), self.tz)

    def _envelope(self, *opened: bytes) -> Response:
        """Close a JSON object opened by the caller (in parts, joined once) with the envelope's
        "time" field."""
        return Response.raw_json(b"".join((*opened, b',"time":"%s"}' % self._time().encode())))

    def _fault(self, status: int, kind: str, code: str, message: str, detail: str) -> Response:
        return Response.json(render.fault(kind, code, message, detail, self._time()), status)

    def _throttled(self) -> Response:
        return Response(429, render.throttle_xml(self._time()), "text/xml")

    def _default_realm(self) -> str:
        return next(iter(self._realms), "")

    def _revoke(self, request: Request) -> Response:
        if request.basic_auth() != (self.tokens.client_id, self.tokens.client_secret):
            return Response.json({"error": "invalid_client"}, 401)
        try:
            token = json.loads(request.body or b"{}").get("token", "")
        except ValueError:
            return Response.json({"error": "invalid_request"}, 400)
        self.tokens.revoke(token)
        return Response(200, b"", "application/json")

    def _discovery(self) -> dict[str, str]:
        return {
            "issuer": "https://oauth.platform.intuit.com/op/v1",
            "authorization_endpoint": f"{self.url}{AUTHORIZE_PATH}",
            "token_endpoint": self.token_url,
            "userinfo_endpoint": f"{self.url}/v1/openid_connect/userinfo",
            "revocation_endpoint": f"{self.url}{REVOKE_PATH}",
            "jwks_uri": f"{self.url}/op/v1/jwks",
        }


_OAUTH_ENDPOINTS = {
    TOKEN_PATH: "token",
    REVOKE_PATH: "revoke",
    AUTHORIZE_PATH: "authorize",
    **{path: "discovery" for path in DISCOVERY_PATHS},
}


def _query_text(request: Request) -> str:
    """The SELECT statement: ?query= (GET) or the request body (the SDK POSTs text)."""
    return request.param("query") or request.body.decode("utf-8", "replace")


def _query_part(index: RealmIndex, snap: Snapshot, query: Query) -> bytes:
    """The QueryResponse object answering `query` (records, or totalCount for COUNT(*))."""
    return b"".join(_query_parts(index, snap, query))


def _query_parts(index: RealmIndex, snap: Snapshot, query: Query) -> list[bytes]:
    """`_query_part` in pieces, so the whole answer is copied once (a 1000-invoice page is
    2.7 MB: each copy is time the simulator's other requests wait for, under one GIL)."""
    rows = snap.select(query)
    if query.count:
        return [b'{"totalCount":%d}' % len(rows)]
    page = rows[query.start - 1 : query.start - 1 + query.max_results]
    if not page:
        return [b"{}"]
    if query.fields:
        bodies = [_sparse(index.body(snap, row), query.fields) for row in page]
    else:
        bodies = [index.body(snap, row) for row in page]
    # head, body, ",", body, ..., tail: b",".join(bodies) first would be a second copy (+40 %)
    parts = [b",", b""] * len(bodies)
    parts[1::2] = bodies
    parts[0] = b'{"%s":[' % query.entity.encode()
    parts.append(b'],"startPosition":%d,"maxResults":%d}' % (query.start, len(page)))
    return parts


def _select_name(found: re.Match[str]) -> str:
    """`query:Invoice` (SELECT *), `count:Invoice` (COUNT(*)) or `fields:Invoice` (a field list)."""
    entity = next((e for e in ENTITIES if e.lower() == found[2].lower()), found[2])
    what = found[1].replace(" ", "").lower()
    kind = "query" if what == "*" else "count" if what == "count(*)" else "fields"
    return f"{kind}:{entity}"


def _sparse(body: bytes, fields: tuple[str, ...]) -> bytes:
    """A record holding only the selected fields (their top-level part), as QBO marks it."""
    record = json.loads(body)
    kept = {name: record[name] for name in {field.split(".")[0] for field in fields} if name in record}
    return json.dumps({**kept, "domain": "QBO", "sparse": True}, separators=(",", ":")).encode()


def _cdc_entities(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    entities = [e for name in names for e in ENTITIES if e.lower() == name.lower()]
    if len(entities) != len(names):
        raise QueryError(f"QueryValidationError: unsupported CDC entity in {text!r}")
    return entities


def _cdc_part(index: RealmIndex, snap: Snapshot, entity: str, rows: list[Row]) -> bytes:
    mine = [row for row in rows if row.entity == entity]
    counts = b'"startPosition":1,"maxResults":%d,"totalCount":%d' % (len(mine), len(mine))
    if not mine:
        return b"{%s}" % counts
    items = b",".join(index.body(snap, row) for row in mine)
    return b'{"%s":[%s],%s}' % (entity.encode(), items, counts)
