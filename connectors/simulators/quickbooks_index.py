"""One realm's records, ordered and pre-rendered, so a query page is a slice of bytes.

A `Snapshot` is rebuilt when `company.revision` changes (every mutation helper bumps it;
`RealmIndex.touch()` forces it after hand edits). Each record's JSON is rendered on first
use and cached with a fingerprint of what it shows; a changed fingerprint re-renders it and
bumps its SyncToken, as QBO does on every update. Filtered and ordered views, and each
record's JSON once checked, are memoised per snapshot, so the ceil(n/1000) pages of one
pull filter and sort once and a page is then a join of cached bytes.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import Any, NamedTuple

from connectors.simulators import quickbooks_ledger as ledger
from connectors.simulators import quickbooks_render as render
from connectors.simulators.ledger import credit_lines
from connectors.simulators.model import SimCompany, SimCustomer, SimInvoice
from connectors.simulators.quickbooks_query import Condition, Query, compile_conditions, id_key

_VIEW_MEMO = 32
ZERO = Decimal("0.00")
_MAX_S = 2**62
_FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


class Row(NamedTuple):
    id_key: tuple[int, int | str]
    updated_s: int  # epoch seconds: QBO timestamps have whole seconds
    created_s: int  # CreateTime, epoch seconds
    entity: str  # "Customer", "Invoice", "Payment" or "CreditMemo"
    record: Any  # SimCustomer | SimInvoice | SimPayment | SimCredit
    deleted: bool


def _getters(snapshot: Snapshot) -> dict[str, Callable[[Row], Any]]:
    return {
        "Id": lambda r: r.id_key,
        "MetaData.LastUpdatedTime": lambda r: r.updated_s,
        "MetaData.CreateTime": lambda r: r.created_s,
        "Active": lambda r: r.record.active,
        "DisplayName": lambda r: r.record.name,
        "CompanyName": lambda r: r.record.name,
        "PrimaryEmailAddr": lambda r: render.primary_email(r.record),
        "Balance": lambda r: (
            snapshot.balances.get(r.record.id, ZERO) if r.entity == "Customer" else r.record.balance
        ),
        "DocNumber": lambda r: r.record.doc_number,
        "TxnDate": lambda r: r.record.issue_date,
        "DueDate": lambda r: r.record.due_date,
        "CustomerRef": lambda r: id_key(r.record.customer_id),
        "TotalAmt": lambda r: ZERO if r.record.status == "voided" else r.record.total,
    }


class Snapshot:
    """Immutable view of a company at one revision."""

    def __init__(self, company: SimCompany, tz: tzinfo) -> None:
        self.company, self.revision, self.tz = company, company.revision, tz
        self.balances: dict[str, Decimal] = {}
        first_created: dict[str, int] = {}
        issued_at: dict[date, int] = {}  # a few hundred distinct days: convert each once
        invoices: list[Row] = []
        for invoice in list(company.invoices.values()):
            if invoice.type != "ACCREC":
                continue  # bills are not QuickBooks invoices
            day = invoice.issue_date
            if day not in issued_at:
                issued_at[day] = int(render.created_at(day, _FAR_FUTURE, tz).timestamp())
            row = _row("Invoice", invoice, issued_at[day], invoice.status == "deleted")
            invoices.append(row)
            if not row.deleted and invoice.status != "voided":
                cid = invoice.customer_id
                self.balances[cid] = self.balances.get(cid, ZERO) + invoice.balance
                first_created[cid] = min(row.created_s, first_created.get(cid, row.created_s))
        customers = [
            _row("Customer", c, first_created.get(c.id, _MAX_S), c.deleted)
            for c in list(company.customers.values())
        ]
        payments, credits = _ledger_rows(company, tz, issued_at)
        self.carried = credit_lines(list(company.credits.values()))
        self.live = {
            "Customer": sorted((r for r in customers if not r.deleted), key=lambda r: r.id_key),
            "Invoice": sorted((r for r in invoices if not r.deleted), key=lambda r: r.id_key),
            "Payment": sorted((r for r in payments if not r.deleted), key=lambda r: r.id_key),
            "CreditMemo": sorted((r for r in credits if not r.deleted), key=lambda r: r.id_key),
        }
        # Every record, deleted ones too, oldest change first: the CDC feed.
        everything = customers + invoices + payments + credits
        self.changes = sorted(everything, key=lambda r: (r.updated_s, r.id_key))
        self.change_times = [r.updated_s for r in self.changes]
        common = _getters(self)
        self.getters = {
            "Customer": common,
            "Invoice": common,
            "Payment": {**common, **ledger.getters("Payment")},
            "CreditMemo": {**common, **ledger.getters("CreditMemo")},
        }
        self._views: OrderedDict[tuple, list[Row]] = OrderedDict()
        self._lock = threading.Lock()
        # Each record's JSON as this snapshot shows it (see `RealmIndex.body`).
        self.bodies: dict[tuple[str, str], bytes] = {}

    def select(self, query: Query) -> list[Row]:
        """Rows matching the query's conditions in its order (memoised per snapshot)."""
        conditions = query.conditions
        if query.entity == "Customer" and not any(c.field == "Active" for c in conditions):
            conditions += (Condition("Active", "=", (True,)),)  # QBO: active only by default
        key = (query.entity, conditions, query.order)
        with self._lock:
            view = self._views.get(key)
            if view is not None:
                self._views.move_to_end(key)
                return view
        view = self._compute(query, conditions)
        with self._lock:
            self._views[key] = view
            while len(self._views) > _VIEW_MEMO:
                self._views.popitem(last=False)
        return view

    def _compute(self, query: Query, conditions: tuple[Condition, ...]) -> list[Row]:
        rows = self.live[query.entity]
        if conditions:
            getters = self.getters[query.entity]
            keep = compile_conditions(Query(query.entity, False, conditions), getters, self.tz)
            rows = [row for row in rows if keep(row)]
        for field, descending in reversed(query.order):  # stable sorts, last key first
            if field != "Id" or descending or len(query.order) > 1:
                rows = sorted(rows, key=self.getters[query.entity][field], reverse=descending)
        return rows

    def changed_since(
        self, since_s: int, entities: set[str], limit: int, *, per_entity: bool = False
    ) -> list[Row]:
        """Up to `limit` changes at or after `since_s`, oldest first (CDC); `per_entity`: up
        to `limit` of each entity, each oldest first."""
        out: list[Row] = []
        taken: dict[str, int] = {}
        for row in self.changes[bisect_left(self.change_times, since_s) :]:
            if row.entity not in entities or (per_entity and taken.get(row.entity, 0) >= limit):
                continue
            out.append(row)
            taken[row.entity] = taken.get(row.entity, 0) + 1
            if not per_entity and len(out) >= limit:
                break
        return out


def _ledger_rows(company: SimCompany, tz: tzinfo, issued_at: dict[date, int]) -> tuple[list[Row], list[Row]]:
    """Payment and CreditMemo rows (Xero's supplier payments and credits are not QuickBooks')."""

    def created(day: date) -> int:
        if day not in issued_at:
            issued_at[day] = int(render.created_at(day, _FAR_FUTURE, tz).timestamp())
        return issued_at[day]

    payments = [
        _row("Payment", p, created(p.paid_on), p.status == "deleted")
        for p in list(company.payments.values())
        if p.type == "ACCRECPAYMENT"
    ]
    credits = [
        _row("CreditMemo", c, created(c.issue_date), c.status == "deleted")
        for c in list(company.credits.values())
        if c.type == "ACCRECCREDIT" and c.status != "draft"
    ]
    return payments, credits


def _row(entity: str, record: Any, created_s: int, deleted: bool) -> Row:
    """Created is never after the last update (records are created, then changed)."""
    updated = record.updated_at
    if updated.tzinfo is None:
        updated = updated.replace(tzinfo=UTC)
    updated_s = int(updated.timestamp())
    return Row(id_key(record.id), updated_s, min(created_s, updated_s), entity, record, deleted)


class RealmIndex:
    """Serves one company: snapshots plus a per-record render cache with SyncTokens."""

    def __init__(self, company: SimCompany, tz: tzinfo, home_currency: str) -> None:
        self.company, self.tz, self.home_currency = company, tz, home_currency
        self._snapshot: Snapshot | None = None
        self._cache: dict[tuple[str, str], tuple[tuple, int, bytes]] = {}
        self._lock = threading.Lock()

    def snapshot(self) -> Snapshot:
        snap = self._snapshot
        if snap is None or snap.company is not self.company or snap.revision != self.company.revision:
            with self._lock:
                snap = self._snapshot
                if snap is None or snap.company is not self.company or snap.revision != self.company.revision:
                    snap = self._snapshot = Snapshot(self.company, self.tz)
        return snap

    def replace(self, company: SimCompany) -> None:
        """Serve another company under this realm (cached JSON is dropped)."""
        with self._lock:
            self.company, self._snapshot, self._cache = company, None, {}

    def touch(self) -> None:
        """Forget everything cached: use after editing the company's records by hand."""
        with self._lock:
            self._snapshot, self._cache = None, {}

    def prerender(self) -> int:
        """Render every live record now (a benchmark's first pull then only slices)."""
        snap = self.snapshot()
        rows = [row for rows in snap.live.values() for row in rows]
        for row in rows:
            self.body(snap, row)
        return len(rows)

    def body(self, snap: Snapshot, row: Row) -> bytes:
        """The record's JSON, re-rendered only when what it shows has changed.

        Within one snapshot it cannot change (the company is at one revision), so it is
        checked once per snapshot: the fingerprint, a tuple of everything the JSON shows,
        cost the simulator ~0.8 s of CPU per 100k-invoice pull, on the cores the benchmarked
        sync runs on.
        """
        key = (row.entity, row.record.id)
        known = snap.bodies.get(key)
        if known is None:
            known = snap.bodies[key] = self._checked_body(snap, row)
        return known

    def _checked_body(self, snap: Snapshot, row: Row) -> bytes:
        if row.deleted:
            return render.encode(render.deleted_dict(row.record.id, row.record.updated_at, self.tz))
        customer = self._customer_of(snap, row)
        fingerprint = self._fingerprint(snap, row, customer)
        key = (row.entity, row.record.id)
        cached = self._cache.get(key)
        if cached is not None and cached[0] == fingerprint:
            return cached[2]
        token = 0 if cached is None else cached[1] + 1
        body = render.encode(self._render(snap, row, customer, token))
        self._cache[key] = (fingerprint, token, body)
        return body

    def _customer_of(self, snap: Snapshot, row: Row) -> SimCustomer | None:
        if row.entity == "Customer":
            return row.record
        return snap.company.customers.get(row.record.customer_id)

    def _fingerprint(self, snap: Snapshot, row: Row, customer: SimCustomer | None) -> tuple:
        name = customer.name if customer else ""
        if row.entity == "Payment":
            carried = snap.carried.get(row.record.id, [])
            return ledger.payment_fingerprint(row.record, carried, snap.company.invoices, name)
        if row.entity == "CreditMemo":
            return ledger.credit_fingerprint(row.record, customer)
        if row.entity == "Customer":
            c: SimCustomer = row.record
            balance = snap.balances.get(c.id, ZERO)
            return (c.name, c.active, tuple(c.emails), c.currency, row.updated_s, balance,
                    row.created_s)  # fmt: skip
        i: SimInvoice = row.record
        name = customer.name if customer else ""
        emails = tuple(customer.emails) if customer else ()
        return (i.doc_number, i.customer_id, i.issue_date, i.due_date, i.currency, i.total,
                i.balance, row.updated_s, i.email_sent, i.printed, i.status, name, emails)  # fmt: skip

    def _render(self, snap: Snapshot, row: Row, customer: SimCustomer | None, token: int) -> dict:
        created = datetime.fromtimestamp(row.created_s, UTC)
        meta = (created, token, self.tz, self.home_currency)
        if row.entity == "Payment":
            carried = snap.carried.get(row.record.id, [])
            return ledger.payment_dict(row.record, customer, carried, snap.company.invoices, meta)
        if row.entity == "CreditMemo":
            return ledger.credit_memo_dict(row.record, customer, meta)
        if row.entity == "Customer":
            balance = snap.balances.get(row.record.id, ZERO)
            return render.customer_dict(row.record, balance, created, token, self.tz)
        return render.invoice_dict(row.record, customer, created, token, self.tz, self.home_currency)
