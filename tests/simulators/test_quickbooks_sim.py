"""The QuickBooks Online simulator, driven through the real python-quickbooks SDK and
intuit-oauth AuthClient (raw HTTP only where the status, headers or raw body are the point)."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from intuitlib.exceptions import AuthClientError
from quickbooks.cdc import change_data_capture
from quickbooks.exceptions import (
    AuthorizationException,
    QuickbooksException,
    SevereException,
    ValidationException,
)
from quickbooks.objects.customer import Customer
from quickbooks.objects.invoice import Invoice

from connectors.simulators import base, mutations
from connectors.simulators.base import TokenAuthority
from connectors.simulators.quickbooks import QuickBooksSimulator

from .conftest import LIVE_INVOICES, NOW, auth_client, make_qbo_company, raw_query, sdk_client

ALL_CUSTOMERS = "SELECT * FROM Customer WHERE Active IN (true,false) STARTPOSITION 1 MAXRESULTS 1000"


def _updated(record) -> datetime:
    """MetaData.LastUpdatedTime of an SDK object (a dict on some classes, an object on others)."""
    meta = record.MetaData
    value = meta["LastUpdatedTime"] if isinstance(meta, dict) else meta.LastUpdatedTime
    return datetime.fromisoformat(value)


def _pull_invoices(qb, page_size=1000):
    pages, start = [], 1
    while True:
        query = f"SELECT * FROM Invoice ORDERBY Id STARTPOSITION {start} MAXRESULTS {page_size}"
        page = Invoice.query(query, qb=qb)
        pages.append(page)
        if len(page) < page_size:
            return pages
        start += page_size


# -- query: paging, limits, filters ------------------------------------------------------


def test_full_invoice_pull_costs_one_request_per_thousand(qbo, qb):
    qbo.counters.reset()
    pages = _pull_invoices(qb)
    assert [len(page) for page in pages] == [1000, 1000, 500]
    assert qbo.counters.requests == {"query:Invoice": 3}
    ids = [int(invoice.Id) for page in pages for invoice in page]
    assert ids == sorted(ids) and len(set(ids)) == LIVE_INVOICES
    assert Invoice.count(qb=qb) == LIVE_INVOICES


def test_maxresults_is_capped_at_1000_and_defaults_to_100(qb):
    assert len(Invoice.query("SELECT * FROM Invoice MAXRESULTS 5000", qb=qb)) == 1000
    assert len(Invoice.query("SELECT * FROM Invoice", qb=qb)) == 100
    last = Invoice.query("SELECT * FROM Invoice STARTPOSITION 2401 MAXRESULTS 1000", qb=qb)
    assert len(last) == 100


def test_customers_are_active_only_unless_asked(qb_company, qb):
    active = sum(c.active for c in qb_company.customers.values())
    inactive = len(qb_company.customers) - active
    assert 0 < inactive < active
    assert len(Customer.query("SELECT * FROM Customer MAXRESULTS 1000", qb=qb)) == active
    assert Customer.count(qb=qb) == active
    assert Customer.count("Active = false", qb=qb) == inactive
    everyone = Customer.query(ALL_CUSTOMERS, qb=qb)
    assert len(everyone) == len(qb_company.customers)
    assert {c.Active for c in everyone} == {True, False}


def test_last_updated_time_filter_and_order(qb_company, qb):
    invoices = [i for i in qb_company.invoices.values() if i.status != "deleted"]
    pivot = sorted(i.updated_at for i in invoices)[len(invoices) // 2]
    stamp = pivot.astimezone(UTC).isoformat()  # an offset the simulator must honour
    expected_ge = sum(i.updated_at >= pivot for i in invoices)
    where = f"MetaData.LastUpdatedTime >= '{stamp}'"
    assert Invoice.count(where, qb=qb) == expected_ge
    assert Invoice.count(f"MetaData.LastUpdatedTime > '{stamp}'", qb=qb) == expected_ge - sum(
        i.updated_at == pivot for i in invoices
    )
    page = Invoice.query(
        f"SELECT * FROM Invoice WHERE {where} ORDERBY MetaData.LastUpdatedTime MAXRESULTS 1000",
        qb=qb,
    )
    times = [_updated(i) for i in page]
    assert times == sorted(times) and times[0] == pivot


def test_id_filters_and_empty_results(qb_company, qbo, qb):
    some = list(qb_company.invoices)[:3]
    found = Invoice.query(f"SELECT * FROM Invoice WHERE Id IN ('{some[0]}', '{some[2]}')", qb=qb)
    assert sorted(i.Id for i in found) == sorted([some[0], some[2]])
    assert [i.Id for i in Invoice.where(f"Id = '{some[1]}'", qb=qb)] == [some[1]]
    body = raw_query(qbo, "SELECT * FROM Invoice WHERE Id = '999999'").json()
    assert body["QueryResponse"] == {} and "time" in body


def test_a_field_list_answers_sparse_records(qb_company, qbo):
    some = sorted(qb_company.invoices, key=int)[:2]
    qbo.counters.reset()
    body = raw_query(qbo, f"select Id from Invoice where Id in ('{some[0]}','{some[1]}','999999')").json()
    rows = body["QueryResponse"]["Invoice"]
    assert rows == [{"Id": ref, "domain": "QBO", "sparse": True} for ref in some]
    assert qbo.counters.requests == {"fields:Invoice": 1}


def test_a_batch_answers_each_query_in_one_request(qb_company, qbo):
    token = qbo.tokens.issue().access_token
    url = f"{qbo.api_url}/company/{qbo.realms[0]}/batch"
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    queries = ["select count(*) from Invoice", "select * from Invoice maxresults 3", "select * from Bill"]
    items = [{"bId": str(n), "Query": q} for n, q in enumerate(queries)]
    qbo.counters.reset()
    body = requests.post(url, json={"BatchItemRequest": items}, headers=headers, timeout=10).json()
    counted, page, refused = body["BatchItemResponse"]
    assert counted == {"bId": "0", "QueryResponse": {"totalCount": LIVE_INVOICES}}
    assert page["bId"] == "1" and len(page["QueryResponse"]["Invoice"]) == 3
    assert refused["bId"] == "2" and refused["Fault"]["type"] == "ValidationFault"
    assert "time" in body and qbo.counters.requests == {"batch": 1}
    too_many = {"BatchItemRequest": [{"bId": str(n), "Query": queries[0]} for n in range(31)]}
    answer = requests.post(url, json=too_many, headers=headers, timeout=10)
    assert answer.status_code == 400 and "30" in answer.text


def test_records_render_like_qbo(qb_company, qbo, qb):
    when = NOW - timedelta(hours=2)
    target = next(i for i in qb_company.invoices.values() if i.status == "open" and i.balance)
    mutations.void(qb_company, target.id, when)
    voided = Invoice.get(target.id, qb=qb)
    assert (voided.TotalAmt, voided.Balance) == (0, 0)
    assert voided.PrivateNote.startswith("Voided")
    customers = Customer.query(ALL_CUSTOMERS, qb=qb)
    joined = [c.PrimaryEmailAddr.Address for c in customers if c.PrimaryEmailAddr]
    assert any("," in address for address in joined) and any(";" in address for address in joined)
    raw = raw_query(qbo, "SELECT * FROM Invoice MAXRESULTS 1").json()["QueryResponse"]
    invoice = raw["Invoice"][0]
    assert (raw["startPosition"], raw["maxResults"]) == (1, 1) and "totalCount" not in raw
    assert isinstance(invoice["TotalAmt"], float | int) and isinstance(invoice["Balance"], float | int)
    assert invoice["EmailStatus"] in {"EmailSent", "NotSet", "NeedToSend"}
    assert invoice["PrintStatus"] in {"PrintComplete", "NotSet"}
    assert set(invoice["CustomerRef"]) == {"value", "name"}
    assert invoice["MetaData"]["LastUpdatedTime"].endswith(("-07:00", "-08:00"))


def test_mutations_show_up_with_a_new_sync_token(qb_company, qb):
    invoice = next(i for i in qb_company.invoices.values() if i.status == "open" and i.balance)
    before = Invoice.get(invoice.id, qb=qb)
    mutations.rename_customer(qb_company, invoice.customer_id, "Renamed Ltd", NOW)
    mutations.pay(qb_company, invoice.id, invoice.balance, NOW)
    after = Invoice.get(invoice.id, qb=qb)
    assert after.CustomerRef.name == "Renamed Ltd" and after.Balance == 0
    assert int(after.SyncToken) == int(before.SyncToken) + 1


def test_bad_queries_are_validation_faults(qb):
    with pytest.raises(ValidationException):
        Invoice.query("SELECT * FROM Invoice WHERE Nonsense = '1'", qb=qb)
    with pytest.raises(ValidationException):
        Customer.query("SELECT * FROM Customer WHERE Active = true OR Active = false", qb=qb)


# -- change data capture -----------------------------------------------------------------


def test_cdc_returns_changes_and_deletions(qb_company, qb):
    since = NOW - timedelta(hours=3)
    baseline = change_data_capture([Customer, Invoice], since.isoformat(), qb=qb)
    before = {i.Id for i in getattr(baseline, "Invoice", [])}
    open_ids = [i.id for i in qb_company.invoices.values() if i.status == "open" and i.balance]
    customer_id = next(c.id for c in qb_company.customers.values() if c.active)
    mutations.pay(qb_company, open_ids[0], Decimal("1.00"), NOW - timedelta(hours=2))
    mutations.delete(qb_company, open_ids[1], NOW - timedelta(hours=1))
    mutations.deactivate_customer(qb_company, customer_id, NOW - timedelta(minutes=30))
    result = change_data_capture([Customer, Invoice], since.isoformat(), qb=qb)
    changed = {i.Id: i for i in result.Invoice if i.Id not in before}
    assert set(changed) == {open_ids[0], open_ids[1]}
    assert getattr(changed[open_ids[1]], "status", None) == "Deleted"
    assert not hasattr(changed[open_ids[0]], "status")
    assert [(c.Id, c.Active) for c in result.Customer] == [(customer_id, False)]


def test_cdc_older_than_30_days_is_rejected(qb):
    too_old = (NOW - timedelta(days=31)).isoformat()
    with pytest.raises(ValidationException):
        change_data_capture([Invoice], too_old, qb=qb)
    change_data_capture([Invoice], (NOW - timedelta(days=29)).isoformat(), qb=qb)


def test_cdc_returns_at_most_1000_oldest_first(qb_company, qb):
    start = NOW - timedelta(days=2)
    for n, invoice_id in enumerate(list(qb_company.invoices)[:1200]):
        if qb_company.invoices[invoice_id].status != "deleted":
            mutations.mark_sent(qb_company, invoice_id, start + timedelta(seconds=n))
    first = change_data_capture([Invoice], start.isoformat(), qb=qb).Invoice
    assert len(first) == 1000
    stamps = [_updated(i) for i in first]
    assert stamps == sorted(stamps) and stamps[0] == start
    rest = change_data_capture([Invoice], stamps[-1].isoformat(), qb=qb).Invoice
    assert 0 < len(rest) < 1000 and rest[0].Id == first[-1].Id  # inclusive lower bound


# -- OAuth ---------------------------------------------------------------------------------


def test_refresh_rotates_and_a_reused_refresh_token_is_invalid_grant(qbo):
    _, first_refresh = qbo.tokens.issue()
    auth = auth_client(qbo)
    auth.refresh(refresh_token=first_refresh)
    second_refresh = auth.refresh_token
    assert second_refresh != first_refresh and auth.expires_in == 3600
    auth.refresh(refresh_token=second_refresh)
    assert auth.refresh_token not in (first_refresh, second_refresh)
    with pytest.raises(AuthClientError) as refused:
        auth.refresh(refresh_token=first_refresh)
    assert refused.value.status_code == 400
    assert refused.value.response.json() == {"error": "invalid_grant"}


def test_bad_client_secret_is_refused(qbo):
    _, refresh = qbo.tokens.issue()
    auth = auth_client(qbo)
    auth.client_secret = "wrong"
    with pytest.raises(AuthClientError) as refused:
        auth.refresh(refresh_token=refresh)
    assert refused.value.status_code == 401


def test_refresh_grace_window_returns_the_same_pair():
    clock = [1000.0]
    tokens = TokenAuthority(refresh_grace=1800, clock=lambda: clock[0])
    _, refresh = tokens.issue()
    new_pair = tokens.refresh(refresh)
    clock[0] += 1799
    assert tokens.refresh(refresh) == new_pair  # the response was lost: same answer
    clock[0] += 2
    with pytest.raises(Exception, match="already used"):
        tokens.refresh(refresh)


def test_authorization_code_flow(qbo):
    auth = auth_client(qbo)
    consent = requests.get(auth.get_authorization_url([]), allow_redirects=False, timeout=10)
    assert consent.status_code == 302
    params = parse_qs(urlsplit(consent.headers["Location"]).query)
    assert params["realmId"] == [qbo.realms[0]] and params["state"] == [auth.state_token]
    auth.get_bearer_token(params["code"][0], realm_id=params["realmId"][0])
    assert qbo.tokens.check(auth.access_token)
    with pytest.raises(AuthClientError):
        auth.get_bearer_token(params["code"][0])  # codes are single-use


def test_expired_access_token_is_401(qbo, qb):
    assert Customer.count(qb=qb) > 0
    qbo.tokens.expire()
    with pytest.raises(AuthorizationException):
        Customer.count(qb=qb)
    response = raw_query(qbo, "SELECT * FROM Customer", token="not-a-token")
    assert response.status_code == 401
    assert "AuthenticationFailed" in response.json()["Fault"]["Error"][0]["Message"]


def test_access_tokens_expire_after_their_lifetime():
    clock = [0.0]
    tokens = TokenAuthority(access_ttl=3600, clock=lambda: clock[0])
    access, _ = tokens.issue()
    clock[0] = 3599
    assert tokens.check(access)
    clock[0] = 3600
    assert not tokens.check(access)


# -- rate limits ---------------------------------------------------------------------------


def test_minute_limit_answers_xml_throttle_even_for_json():
    clock = [0.0]
    with QuickBooksSimulator(make_qbo_company(customers=5, live_invoices=5), per_minute=3,
                             limit_clock=lambda: clock[0], now=lambda: NOW) as sim:  # fmt: skip
        client = sdk_client(sim)
        for _ in range(3):
            Customer.count(qb=client)
        throttled = raw_query(sim, "SELECT * FROM Customer")
        assert throttled.status_code == 429
        assert throttled.headers["Content-Type"].startswith("text/xml")
        assert throttled.text.startswith("<?xml")
        assert '<Fault type="ThrottleExceeded"><Error code="003001">' in throttled.text
        with pytest.raises(QuickbooksException):
            Customer.count(qb=client)  # the SDK only sees a body it cannot parse as JSON
        assert sim.counters.violations == {"minute": 2}
        clock[0] = 60.0
        assert Customer.count(qb=client) == 5


def test_concurrency_cap_refuses_requests_over_the_cap(qbo):
    qbo.set_limits(concurrency=2)
    qbo.latency = 0.8  # long enough that all five are in flight together
    token = qbo.tokens.issue().access_token
    barrier, statuses = threading.Barrier(5), []

    def call() -> None:
        barrier.wait()
        statuses.append(raw_query(qbo, "SELECT COUNT(*) FROM Invoice", token).status_code)

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses).count(429) >= 1 and set(statuses) <= {200, 429}
    assert qbo.gauge.peak[qbo.realms[0]] == 2
    assert qbo.counters.violations["concurrency"] == statuses.count(429)


def test_latency_is_the_whole_answer_time_its_making_included(qbo, monkeypatch):
    """An API's response time includes its own work: with 0.8 s of latency, an answer that
    took 0.3 s to make waits 0.5 s more, not 0.8 (the simulator's clock, no timing here)."""

    class Clock:
        now, slept = 0.0, []

        def monotonic(self) -> float:
            return self.now

        def sleep(self, seconds: float) -> None:
            self.slept.append(round(seconds, 6))

    clock = Clock()
    handle = type(qbo).handle

    def making(self, request):
        clock.now += 0.3  # the answer's making, on the simulator's clock
        return handle(self, request)

    monkeypatch.setattr(base, "time", clock)
    monkeypatch.setattr(qbo._released, "wait", clock.sleep)  # the latency's wait, until released
    monkeypatch.setattr(type(qbo), "handle", making)
    qbo.latency = 0.8
    assert raw_query(qbo, "SELECT COUNT(*) FROM Invoice").status_code == 200
    assert clock.slept == [0.5]


# -- planned faults ------------------------------------------------------------------------


def test_each_fault_kind(qbo, qb):
    path = f"/v3/company/{qbo.realms[0]}/query"
    expected = {
        "429": QuickbooksException,  # XML ThrottleExceeded
        "500": SevereException,  # SystemFault 10000
        "503": QuickbooksException,  # an HTML gateway page
        "malformed": QuickbooksException,  # "Error reading json response"
        "drop": requests.ConnectionError,
        "lost": requests.ConnectionError,
    }
    for kind, error in expected.items():
        qbo.faults.add(path, kind)
        with pytest.raises(error):
            Customer.count(qb=qb)
        assert Customer.count(qb=qb) > 0, f"only one request fails after {kind}"
    assert qbo.faults.pending() == 0


def test_lost_token_response_is_recovered_inside_the_grace_window(qb_company):
    tokens = TokenAuthority(refresh_grace=1800)
    with QuickBooksSimulator(qb_company, tokens=tokens, now=lambda: NOW) as sim:
        _, refresh = sim.tokens.issue()
        auth = auth_client(sim)
        sim.faults.add("/oauth2/v1/tokens/bearer", "lost")
        with pytest.raises(requests.ConnectionError):
            auth.refresh(refresh_token=refresh)
        auth.refresh(refresh_token=refresh)  # retried with the same (rotated) token
        assert sim.tokens.check(auth.access_token) and sim.tokens.refreshes == 1


# -- realms and the command line ---------------------------------------------------------


def test_realms_are_isolated_and_counted_separately(qb_company):
    other = make_qbo_company(seed=99, customers=7, live_invoices=30)
    with QuickBooksSimulator([qb_company, other], now=lambda: NOW) as sim:
        assert Invoice.count(qb=sdk_client(sim, other.id)) == 30
        assert Invoice.count(qb=sdk_client(sim, qb_company.id)) == LIVE_INVOICES
        assert sim.realm_counters[other.id].requests == {"count:Invoice": 1}
        assert sim.minorversions == {"75"}


def test_stop_drops_kept_alive_connections_and_restart_keeps_the_url(qb_company):
    sim = QuickBooksSimulator(qb_company, now=lambda: NOW)
    url = sim.start()
    client = sdk_client(sim)
    assert Customer.count(qb=client) > 0
    sim.stop()
    with pytest.raises(requests.ConnectionError):
        Customer.count(qb=client)  # the SDK's pooled connection was closed too
    assert sim.start() == url
    try:
        assert Customer.count(qb=client) > 0  # same URL, same tokens
    finally:
        sim.stop()


def test_command_line_prints_url_realm_and_tokens():
    process = subprocess.Popen(
        [sys.executable, "-m", "connectors.simulators", "quickbooks", "--customers", "5",
         "--invoices", "20", "--seed", "3"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        lines = [process.stdout.readline() for _ in range(8)]
    finally:
        process.terminate()
        process.wait(timeout=10)
    text = "".join(lines)
    url = lines[0].split(" at ")[1].strip()
    token = next(line.split()[-1] for line in lines if line.startswith("access token"))
    realm = next(line.split()[-1] for line in lines if line.startswith("company id"))
    assert "refresh token:" in text and url.startswith("http://127.0.0.1:")
    assert token and realm.isdigit()
