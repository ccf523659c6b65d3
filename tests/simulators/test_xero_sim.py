"""The Xero simulator, driven through the real xero-python SDK (and raw HTTP for shapes).

The SDK is configured the way the Xero connector must configure it: its own Configuration
per client (the class caches its first instance process-wide), urllib3 retries disabled (by
default they silently re-send 429s after sleeping Retry-After), and the token URL pointed
at the simulator through a small OAuth2Token subclass.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import urllib3
from urllib3.util.retry import Retry
from xero_python.accounting import AccountingApi
from xero_python.api_client import ApiClient, Configuration
from xero_python.api_client.oauth2 import OAuth2Token
from xero_python.exceptions import ApiException, RateLimitException
from xero_python.identity import IdentityApi

from connectors.simulators import mutations
from connectors.simulators.generator import generate_company, sample_company
from connectors.simulators.model import SimCompany
from connectors.simulators.xero import XeroSimulator
from connectors.simulators.xero_limits import XeroLimits
from connectors.simulators.xero_render import invoice_status

TODAY = date(2025, 6, 1)
INVOICES_PATH = "/api.xro/2.0/Invoices"
MS_DATE = re.compile(r"^/Date\(\d+\+0000\)/$")
ROOMY = XeroLimits(per_minute=10_000, per_day=100_000)  # for tests that are not about limits


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2025, 6, 1, 9, tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SimOAuth2Token(OAuth2Token):
    """xero-python's token, refreshing at the simulator (TokenApi's URL is a class constant)."""

    def __init__(self, token_url: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.token_url = token_url

    def call_refresh_token_api(self, token_api):
        token_api.refresh_token_url = self.token_url  # instance attribute shadows the constant
        return super().call_refresh_token_api(token_api)


def sdk_client(sim: XeroSimulator, store: dict) -> ApiClient:
    """An independent xero-python client for one connection, with urllib3 retries off."""
    config = Configuration()  # a copy of the cached default: set fields, never pass arguments
    config.oauth2_token = SimOAuth2Token(
        sim.token_url, client_id=sim.tokens.client_id, client_secret=sim.tokens.client_secret
    )
    client = ApiClient(
        config,
        oauth2_token_getter=lambda: store["token"],
        oauth2_token_saver=lambda token: store.__setitem__("token", token),
    )
    client.rest_client.pool_manager.connection_pool_kw["retries"] = Retry(total=0)
    return client


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def company() -> SimCompany:
    return generate_company("xero", seed=11, customers=80, invoices=2500, today=TODAY)


@pytest.fixture
def sim(company, clock):
    other = generate_company("xero", seed=12, customers=5, invoices=20, today=TODAY)
    with XeroSimulator([company, other], clock=clock, limits=ROOMY) as server:
        yield server


@pytest.fixture
def store(sim) -> dict:
    return {"token": sim.issue_token()}


@pytest.fixture
def api(sim, store) -> AccountingApi:
    return AccountingApi(sdk_client(sim, store), base_url=sim.accounting_url)


@pytest.fixture
def http() -> urllib3.PoolManager:
    return urllib3.PoolManager(retries=False)


def raw_get(http, sim, path, token, tenant=None, **params):
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if tenant is not None:
        headers["xero-tenant-id"] = tenant
    return http.request("GET", f"{sim.accounting_url}/{path}", fields=params, headers=headers)


def post_token(http, sim, **form):
    form.setdefault("client_id", sim.tokens.client_id)
    form.setdefault("client_secret", sim.tokens.client_secret)
    return http.request("POST", sim.token_url, fields=form, encode_multipart=False)


def pull_invoices(api, tenant_id, **kwargs) -> list:
    """Page through GET /Invoices with pageSize 1000 until the last page."""
    invoices, page = [], 1
    while True:
        answer = api.get_invoices(tenant_id, page=page, page_size=1000, **kwargs)
        invoices.extend(answer.invoices)
        if page >= answer.pagination.page_count:
            return invoices
        page += 1


# -- identity and listing ------------------------------------------------------------------


def test_connections_list_every_tenant(sim, store, company):
    connections = IdentityApi(sdk_client(sim, store), base_url=sim.identity_url).get_connections()
    assert [c.tenant_id for c in connections] == sim.tenants
    first = connections[0]
    assert (first.tenant_type, first.tenant_name) == ("ORGANISATION", company.name)
    assert isinstance(first.created_date_utc, datetime)
    assert sim.counters.requests["connections"] == 1


def test_full_pull_uses_pages_of_1000(sim, api, company):
    invoices = pull_invoices(api, company.id, where='Type=="ACCREC"', order="InvoiceID ASC")
    expected = {i.id for i in company.invoices.values() if i.type == "ACCREC"}
    assert [i.invoice_id for i in invoices] == sorted(expected)  # the connector's order, across pages
    assert len(invoices) == len(expected) > 2000
    assert sim.counters.requests["invoices"] == 3
    last = api.get_invoices(company.id, page=3, page_size=1000, where='Type=="ACCREC"')
    pagination = last.pagination
    assert (pagination.page, pagination.page_size, pagination.page_count) == (3, 1000, 3)
    assert pagination.item_count == len(expected)


def test_unpaged_request_returns_everything_without_pagination(api, company):
    answer = api.get_invoices(company.id)
    assert answer.pagination is None
    assert len(answer.invoices) == len(company.invoices)


def test_page_size_is_capped_at_1000(api, company):
    answer = api.get_invoices(company.id, page=1, page_size=5000)
    assert answer.pagination.page_size == 1000
    assert len(answer.invoices) == 1000


@pytest.mark.parametrize(
    ("where", "types"),
    [
        ('Type=="ACCREC"', {"ACCREC"}),
        ('Type == "ACCREC"', {"ACCREC"}),
        ('Type=="ACCPAY"', {"ACCPAY"}),
        ('Type!="ACCREC"', {"ACCPAY"}),
    ],
    ids=["compact", "spaced", "bills-only", "not-equal"],
)
def test_where_type_filter(api, company, where, types):
    invoices = api.get_invoices(company.id, where=where).invoices
    assert invoices and {i.type for i in invoices} == types
    assert len(invoices) == sum(1 for i in company.invoices.values() if i.type in types)


def test_statuses_and_combined_where(api, company):
    answer = api.get_invoices(company.id, statuses=["AUTHORISED", "PAID"])
    assert {i.status for i in answer.invoices} == {"AUTHORISED", "PAID"}
    paid_sales = api.get_invoices(company.id, where='Type=="ACCREC" AND Status=="PAID"')
    assert paid_sales.invoices
    assert all(i.type == "ACCREC" and i.status == "PAID" for i in paid_sales.invoices)
    assert all(i.amount_due == 0 for i in paid_sales.invoices)


def test_where_groups_joined_by_or(api, company):
    either = api.get_invoices(company.id, where='Type=="ACCPAY" OR Status=="PAID"').invoices
    assert {(i.type == "ACCPAY" or i.status == "PAID") for i in either} == {True}
    assert len(either) == sum(
        1 for i in company.invoices.values() if i.type == "ACCPAY" or invoice_status(i) == "PAID"
    )
    ids = [i.id for i in company.invoices.values()][:3]
    where = " OR ".join(f'InvoiceID==guid("{ref}")' for ref in ids)
    assert sorted(i.invoice_id for i in api.get_invoices(company.id, where=where).invoices) == sorted(ids)
    # AND binds tighter than OR
    mixed = api.get_invoices(company.id, where='Type=="ACCREC" AND Status=="PAID" || Type=="ACCPAY"')
    assert all(i.type == "ACCPAY" or i.status == "PAID" for i in mixed.invoices)
    assert any(i.type == "ACCPAY" for i in mixed.invoices) and any(i.type == "ACCREC" for i in mixed.invoices)


def test_unsupported_where_is_a_400(api, company):
    with pytest.raises(ApiException) as raised:
        api.get_invoices(company.id, where='Total > 100 OR Type=="ACCREC"')
    assert raised.value.status == 400


def by_update(records) -> list[str]:
    return [r.id for r in sorted(records, key=lambda r: (r.updated_at, r.id))]


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (None, by_update),
        ("UpdatedDateUTC ASC", by_update),
        ("UpdatedDateUTC DESC", lambda records: by_update(records)[::-1]),
        ("InvoiceID ASC", lambda records: sorted(r.id for r in records)),
        ("invoiceid", lambda records: sorted(r.id for r in records)),
        ("InvoiceId DESC", lambda records: sorted((r.id for r in records), reverse=True)),
        ("Date DESC", by_update),  # accepted, not simulated: the default order
    ],
    ids=["default", "updated", "updated-desc", "id", "id-lower-case", "id-desc", "other-field"],
)
def test_invoice_orders(api, company, order, expected):
    params = {} if order is None else {"order": order}
    invoices = api.get_invoices(company.id, page=2, page_size=500, **params).invoices
    assert [i.invoice_id for i in invoices] == expected(company.invoices.values())[500:1000]


def test_every_listing_orders_by_its_own_id(sim, api, company):
    contacts = api.get_contacts(company.id, include_archived=True, order="ContactID DESC").contacts
    assert [c.contact_id for c in contacts] == sorted(company.customers, reverse=True)
    payments = api.get_payments(company.id, page=1, order="PaymentID ASC").payments
    assert [p.payment_id for p in payments] == sorted(company.payments)[:100]
    credits = api.get_credit_notes(company.id, page=1, order="CreditNoteID ASC").credit_notes
    assert [c.credit_note_id for c in credits] == sorted(company.credits)[:100]
    # another id field than the listing's own is just another field: the default order
    invoices = api.get_invoices(company.id, page=1, order="ContactID ASC").invoices
    assert [i.invoice_id for i in invoices] == by_update(company.invoices.values())[:100]


def test_in_id_order_a_change_moves_no_record_across_pages(sim, api, company):
    """The connector's reason for id order: a record changed between two pages keeps its place."""
    first = api.get_invoices(company.id, page=1, order="InvoiceID ASC").invoices
    at = max(i.updated_at for i in company.invoices.values()) + timedelta(minutes=1)
    with sim.mutate(company.id) as books:
        mutations.mark_sent(books, first[0].invoice_id, at)
    second = api.get_invoices(company.id, page=2, order="InvoiceID ASC").invoices
    assert [i.invoice_id for i in first + second] == sorted(company.invoices)[:200]
    changed = api.get_invoices(
        company.id, page=1, order="InvoiceID ASC", if_modified_since=at - timedelta(seconds=1)
    )
    assert [i.invoice_id for i in changed.invoices] == [first[0].invoice_id]


def test_contacts_need_include_archived(sim, api, company):
    archived, gdpr = list(company.customers)[:2]
    with sim.mutate(company.id) as data:
        data.customers[archived].active = False
        data.customers[gdpr].gdpr_request = True
    active = api.get_contacts(company.id, page=1).contacts
    assert {c.contact_status for c in active} == {"ACTIVE"}
    everyone = api.get_contacts(company.id, page=1, include_archived=True).contacts
    assert len(everyone) == len(company.customers)
    statuses = {c.contact_id: c.contact_status for c in everyone}
    assert (statuses[archived], statuses[gdpr]) == ("ARCHIVED", "GDPRREQUEST")


def test_contact_fields(api, company):
    contacts = api.get_contacts(company.id, include_archived=True).contacts
    by_id = {c.contact_id: c for c in contacts}
    source = next(c for c in company.customers.values() if c.contact_persons and c.emails)
    contact = by_id[source.id]
    assert (contact.name, contact.email_address) == (source.name, source.emails[0])
    persons = [(p.email_address, p.include_in_emails) for p in contact.contact_persons]
    assert persons == source.contact_persons
    assert all(p.first_name and p.last_name for p in contact.contact_persons)
    assert any(c.is_supplier for c in contacts) and any(not c.is_customer for c in contacts)


def test_sample_company_parses_completely(clock):
    sample = sample_company("xero", today=TODAY)
    with XeroSimulator([sample], clock=clock) as sim:
        api = AccountingApi(sdk_client(sim, {"token": sim.issue_token()}), base_url=sim.accounting_url)
        contacts = api.get_contacts(sample.id, include_archived=True).contacts
        invoices = api.get_invoices(sample.id).invoices
    assert {c.contact_id for c in contacts} == set(sample.customers)
    assert {i.invoice_id for i in invoices} == set(sample.invoices)
    assert {"DRAFT", "VOIDED", "DELETED", "PAID", "AUTHORISED"} <= {i.status for i in invoices}
    assert "GDPRREQUEST" in {c.contact_status for c in contacts}


# -- incremental ---------------------------------------------------------------------------


def test_if_modified_since_returns_only_changes(sim, api, company):
    cursor = max(i.updated_date_utc for i in pull_invoices(api, company.id))
    at = cursor + timedelta(hours=1)
    live = [i for i in company.invoices.values() if i.status == "open" and i.balance > 0]
    voided = mutations.void(company, live[0].id, at)
    paid = mutations.pay(company, live[1].id, live[1].balance, at)
    deleted = mutations.delete(company, live[2].id, at)
    customer = next(iter(company.customers.values()))
    added = mutations.add_invoice(company, customer.id, Decimal("12.30"), at, email_sent=True)
    renamed = mutations.rename_customer(company, customer.id, "Renamed Ltd", at)

    changes = pull_invoices(api, company.id, if_modified_since=cursor)
    status = {i.invoice_id: i.status for i in changes}
    assert status == {voided.id: "VOIDED", paid.id: "PAID", deleted.id: "DELETED", added.id: "AUTHORISED"}
    contacts = api.get_contacts(company.id, include_archived=True, if_modified_since=cursor)
    assert [(c.contact_id, c.name) for c in contacts.contacts] == [(renamed.id, "Renamed Ltd")]
    assert api.get_invoices(company.id, page=1, if_modified_since=at).invoices == []


def test_if_modified_since_accepts_http_dates(sim, http, store, company):
    newest = max(i.updated_at for i in company.invoices.values())
    header = newest.strftime("%a, %d %b %Y %H:%M:%S GMT")
    answer = http.request(
        "GET",
        f"{sim.accounting_url}/Invoices",
        headers={
            "Authorization": f"Bearer {store['token']['access_token']}",
            "xero-tenant-id": company.id,
            "If-Modified-Since": header,
        },
    )
    assert answer.status == 200 and json.loads(answer.data)["Invoices"] == []


# -- payload shapes ------------------------------------------------------------------------


def test_sent_to_contact_is_omitted_when_false(sim, http, store, company):
    answer = raw_get(http, sim, "Invoices", store["token"]["access_token"], company.id)
    body = json.loads(answer.data)
    assert answer.headers["Content-Type"].startswith("application/json")
    for raw in body["Invoices"]:
        expected = company.invoices[raw["InvoiceID"]].email_sent
        assert raw.get("SentToContact", "omitted") == (True if expected else "omitted")


def test_dates_round_trip_through_the_sdk(sim, http, api, store, company):
    raw = json.loads(raw_get(http, sim, "Invoices", store["token"]["access_token"], company.id, page=1).data)[
        "Invoices"
    ][0]
    assert all(MS_DATE.match(raw[key]) for key in ("Date", "DueDate", "UpdatedDateUTC"))
    for invoice in api.get_invoices(company.id, page=1).invoices:
        source = company.invoices[invoice.invoice_id]
        assert (invoice.date, invoice.due_date) == (source.issue_date, source.due_date)
        assert invoice.updated_date_utc == source.updated_at  # whole seconds: exact
        assert invoice.updated_date_utc.utcoffset() == timedelta(0)
        assert invoice.total == source.total and isinstance(invoice.total, Decimal)


def test_non_ascii_names_survive(api, company):
    contacts = api.get_contacts(company.id, include_archived=True).contacts
    names = {c.contact_id: c.name for c in contacts}
    assert names == {c.id: c.name for c in company.customers.values()}


# -- tenants and tokens --------------------------------------------------------------------


def test_tenant_header_is_required(sim, http, store, api):
    answer = raw_get(http, sim, "Invoices", store["token"]["access_token"])
    assert answer.status == 403
    assert json.loads(answer.data)["Detail"] == "AuthenticationUnsuccessful"
    with pytest.raises(ApiException) as raised:
        api.get_invoices("00000000-0000-0000-0000-000000000000")
    assert raised.value.status == 403


def test_refresh_rotates_and_old_token_has_a_30_minute_grace(sim, http, clock, store, company):
    first = store["token"]
    store["token"] = {**first, "expires_at": 0}  # the SDK sees it expired: refreshes first
    AccountingApi(sdk_client(sim, store), base_url=sim.accounting_url).get_invoices(company.id, page=1)
    rotated = store["token"]
    assert rotated["refresh_token"] != first["refresh_token"] and sim.tokens.refreshes == 1

    again = json.loads(
        post_token(http, sim, grant_type="refresh_token", refresh_token=first["refresh_token"]).data
    )
    assert (again["access_token"], again["refresh_token"]) == (
        rotated["access_token"],
        rotated["refresh_token"],
    )  # a lost response, replayed
    clock.advance(31 * 60)
    late = post_token(http, sim, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert (late.status, json.loads(late.data)) == (400, {"error": "invalid_grant"})
    with pytest.raises(ApiException) as raised:
        sdk_client(sim, {"token": {**first, "expires_at": 0}}).refresh_oauth2_token()
    assert raised.value.status == 400
    fresh = post_token(http, sim, grant_type="refresh_token", refresh_token=rotated["refresh_token"])
    assert fresh.status == 200 and json.loads(fresh.data)["expires_in"] == 1800


def test_a_lost_refresh_response_is_recovered_by_the_grace(sim, http, store, company):
    sim.faults.add("/connect/token", "lost")  # rotated at the server, answer never arrives
    first = store["token"]
    client = sdk_client(sim, {"token": {**first, "expires_at": 0}})
    with pytest.raises(urllib3.exceptions.HTTPError):
        client.refresh_oauth2_token()
    retried = post_token(http, sim, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert retried.status == 200 and sim.tokens.refreshes == 1  # the same rotation, replayed


def test_authorization_code_grant(sim, http):
    consent = http.request(
        "GET",
        sim.authorize_url,
        redirect=False,
        fields={"client_id": sim.tokens.client_id, "redirect_uri": "http://localhost/cb", "state": "s1"},
    )
    assert consent.status == 302
    location = consent.headers["Location"]
    assert location.startswith("http://localhost/cb?") and "state=s1" in location
    code = location.split("code=")[1].split("&")[0]
    granted = post_token(
        http, sim, grant_type="authorization_code", code=code, redirect_uri="http://localhost/cb"
    )
    token = json.loads(granted.data)
    assert granted.status == 200 and sim.tokens.check(token["access_token"])
    assert token["token_type"] == "Bearer" and "scope" in token
    reused = post_token(
        http, sim, grant_type="authorization_code", code=code, redirect_uri="http://localhost/cb"
    )
    assert reused.status == 400


def test_expired_access_token_is_a_401(sim, api, clock, company):
    clock.advance(30 * 60 + 1)  # the server's clock; the SDK still believes the token valid
    with pytest.raises(ApiException) as raised:
        api.get_invoices(company.id, page=1)
    body = json.loads(raised.value.body)
    assert raised.value.status == 401
    assert (body["Type"], body["Title"], body["Status"]) == (None, "Unauthorized", 401)
    assert body["Detail"].startswith("TokenExpired: token expired at ")


# -- rate limits ---------------------------------------------------------------------------


def test_minute_then_day_limits(company, clock):
    other = generate_company("xero", seed=12, customers=3, invoices=3, today=TODAY)
    limits = XeroLimits(per_minute=5, per_day=8)
    with XeroSimulator([company, other], clock=clock, limits=limits) as sim:
        store = {"token": sim.issue_token()}
        client = sdk_client(sim, store)
        api = AccountingApi(client, base_url=sim.accounting_url)
        for left in range(4, -1, -1):
            api.get_contacts(company.id, page=1)
            headers = client.last_response.getheaders()
            assert headers["X-MinLimit-Remaining"] == str(left)
            assert "X-DayLimit-Remaining" in headers and "X-AppMinLimit-Remaining" in headers
        minute = _rate_limited(api, company.id)
        assert minute.rate_limit == "minute" and 1 <= int(minute.headers["Retry-After"]) <= 60
        assert minute.headers["X-MinLimit-Remaining"] == "0"
        api.get_contacts(other.id, page=1)  # limits are per tenant
        clock.advance(61)
        for _ in range(3):
            api.get_contacts(company.id, page=1)
        day = _rate_limited(api, company.id)
        assert day.rate_limit == "day" and int(day.headers["Retry-After"]) > 80_000
        assert sim.counters.violations == {"minute": 1, "day": 1}


def _rate_limited(api, tenant_id) -> RateLimitException:
    with pytest.raises(RateLimitException) as raised:
        api.get_contacts(tenant_id, page=1)
    assert raised.value.status == 429
    return raised.value


def test_default_limits_headers(sim, http, store, company):
    with XeroSimulator([company]) as default:
        token = default.issue_token()["access_token"]
        answer = raw_get(http, default, "Contacts", token, company.id, page=1)
    assert (answer.headers["X-MinLimit-Remaining"], answer.headers["X-DayLimit-Remaining"]) == ("59", "4999")


def test_concurrency_limit(company):
    with XeroSimulator([company], latency=0.4, limits=XeroLimits(concurrent=2)) as sim:
        token = sim.issue_token()["access_token"]
        start, statuses = threading.Barrier(4), []

        def call() -> None:
            pool = urllib3.PoolManager(retries=False)
            start.wait()
            answer = raw_get(pool, sim, "Contacts", token, company.id, page=1)
            statuses.append((answer.status, answer.headers.get("X-Rate-Limit-Problem")))

        threads = [threading.Thread(target=call) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(statuses, key=str) == [(200, None)] * 2 + [(429, "concurrent")] * 2
    assert sim.counters.violations == {"concurrent": 2}


# -- faults --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("429", RateLimitException),
        ("500", ApiException),
        ("503", ApiException),
        ("drop", urllib3.exceptions.HTTPError),
        ("lost", urllib3.exceptions.HTTPError),
        ("malformed", ValueError),
    ],
)
def test_fault_plan_kinds(sim, api, company, kind, expected):
    sim.faults.add(INVOICES_PATH, kind)
    with pytest.raises(expected) as raised:
        api.get_invoices(company.id, page=1)
    if kind in ("429", "500", "503"):
        assert raised.value.status == int(kind)
        assert "X-MinLimit-Remaining" in raised.value.headers
    if kind == "429":
        assert raised.value.headers["Retry-After"] == "1"
    assert sim.counters.requests["invoices"] == 1  # retries off: nothing was re-sent
    assert len(api.get_invoices(company.id, page=1).invoices) == 100  # fault consumed


def test_sdk_default_retries_would_resend_a_429(sim, store, company):
    """Why the connector must disable urllib3 retries: the SDK's defaults hide the 429."""
    client = ApiClient(
        sdk_client(sim, store).configuration,
        oauth2_token_getter=lambda: store["token"],
        oauth2_token_saver=lambda token: None,
    )
    sim.faults.add(INVOICES_PATH, "429")
    AccountingApi(client, base_url=sim.accounting_url).get_invoices(company.id, page=1)
    assert sim.counters.requests["invoices"] == 2  # slept Retry-After, then re-sent


def test_configuration_cache_and_independent_clients(sim):
    Configuration.set_default(None)  # start from a process without a cached instance
    try:
        first, second = OAuth2Token(client_id="a"), OAuth2Token(client_id="b")
        Configuration(oauth2_token=first)
        assert Configuration(oauth2_token=second).oauth2_token is first  # the pitfall
        one, two = sdk_client(sim, {}), sdk_client(sim, {})
        assert one.configuration.oauth2_token is not two.configuration.oauth2_token
    finally:
        Configuration.set_default(None)
