"""Pre-rendered, ordered indexes of one tenant's contacts, invoices, payments and credit notes.

A `Collection` is an immutable snapshot: records ordered by UpdatedDateUTC then id, each with
its JSON already rendered, and by id alone once a request asks for that order (`order=` the
record's id field, e.g. `InvoiceID ASC`: the order the Xero connector pages in). A list
request selects a filtered view (memoised, so the pages of one pull filter once) and answers
a page as a slice of it. `TenantIndex` rebuilds snapshots after a mutation, re-rendering only
records whose content changed, so a 100,000-invoice company serves fast and stays cheap to
mutate between syncs.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import NamedTuple

from connectors.simulators.ledger import SimCredit, SimPayment
from connectors.simulators.model import SimCompany, SimCustomer, SimInvoice
from connectors.simulators.xero_ledger import (
    credit_fields,
    payment_fields,
    render_credit_note,
    render_payment,
)
from connectors.simulators.xero_query import UPDATED, ListQuery
from connectors.simulators.xero_render import (
    contact_fields,
    invoice_fields,
    render_contact,
    render_invoice,
    to_ms,
)

_VIEW_MEMO_SIZE = 32


class Entry(NamedTuple):
    updated_ms: int
    id: str
    body: bytes  # the record's JSON
    fields: dict[str, str | bool]  # lower-cased field name -> value, for filters


class Page(NamedTuple):
    items: list[bytes]
    pagination: dict[str, int] | None  # None when the request was not paged


class Collection:
    """One endpoint's records of one tenant, ordered by (UpdatedDateUTC, id), or by id."""

    def __init__(self, entries: Iterable[Entry], *, id_field: str, archived_field: str | None = None) -> None:
        self._entries = sorted(entries, key=lambda entry: (entry.updated_ms, entry.id))
        self._stamps = [entry.updated_ms for entry in self._entries]
        self._id_field = id_field  # lower-cased, as `ListQuery.order_by` names it
        self._archived_field = archived_field  # contacts: hidden unless includeArchived
        self._by_id: list[Entry] | None = None  # sorted when first asked for
        self._views: OrderedDict[tuple, list[Entry]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def page(self, query: ListQuery) -> Page:
        """The records of `query`'s page (all of them when unpaged) and the pagination block."""
        view = self._view(query)
        if query.page is None:
            return Page([entry.body for entry in view], None)
        size = query.page_size
        start = (query.page - 1) * size
        items = [entry.body for entry in view[start : start + size]]
        pagination = {
            "page": query.page,
            "pageSize": size,
            "pageCount": -(-len(view) // size),
            "itemCount": len(view),
        }
        return Page(items, pagination)

    def _view(self, query: ListQuery) -> list[Entry]:
        key = query.view_key()
        with self._lock:
            view = self._views.get(key)
            if view is not None:
                self._views.move_to_end(key)
                return view
        view = self._select(query)
        with self._lock:
            self._views[key] = view
            while len(self._views) > _VIEW_MEMO_SIZE:
                self._views.popitem(last=False)
        return view

    def _select(self, query: ListQuery) -> list[Entry]:
        keep = _predicate(query, None if query.include_archived else self._archived_field)
        start = 0
        if query.modified_after_ms is not None:
            start = bisect_right(self._stamps, query.modified_after_ms)
        if query.order_by != self._id_field:
            view = [entry for entry in self._entries[start:] if keep(entry)]
            descending = query.descending and query.order_by == UPDATED  # other fields: ignored
        elif start:  # changed since: usually a few, sorted here
            view = sorted((entry for entry in self._entries[start:] if keep(entry)), key=_id)
            descending = query.descending
        else:
            view = [entry for entry in self._sorted_by_id() if keep(entry)]
            descending = query.descending
        if descending:
            view.reverse()
        return view

    def _sorted_by_id(self) -> list[Entry]:
        with self._lock:
            if self._by_id is None:
                self._by_id = sorted(self._entries, key=_id)
            return self._by_id


def _id(entry: Entry) -> str:
    return entry.id


def _predicate(query: ListQuery, active_only_field: str | None) -> Callable[[Entry], bool]:
    checks: list[Callable[[Entry], bool]] = []
    if active_only_field is not None:
        checks.append(lambda entry: entry.fields[active_only_field] == "ACTIVE")
    if query.statuses is not None:
        statuses = query.statuses
        checks.append(lambda entry: entry.fields.get("status") in statuses)
    if query.ids is not None:
        ids = query.ids
        checks.append(lambda entry: entry.id.lower() in ids)
    if query.where:
        groups = query.where
        checks.append(lambda entry: any(all(c.matches(entry.fields) for c in group) for group in groups))
    return lambda entry: all(check(entry) for check in checks)


class Snapshot(NamedTuple):
    contacts: Collection
    invoices: Collection
    payments: Collection
    creditnotes: Collection


class TenantIndex:
    """The current snapshot of one tenant, rebuilt lazily after `invalidate()`."""

    def __init__(self, company: SimCompany) -> None:
        self.company = company
        self.lock = threading.RLock()  # held by mutations and rebuilds
        self._snapshot: Snapshot | None = None
        self._revision = company.revision
        self._rendered: dict[tuple[str, str], tuple[tuple, Entry]] = {}  # (state, entry)

    def invalidate(self) -> None:
        """Forget the snapshot; the next request rebuilds it from the (mutated) company."""
        with self.lock:
            self._snapshot = None

    def snapshot(self) -> Snapshot:
        """The snapshot to answer from; rebuilt when the company's `revision` moved on
        (mutation helpers bump it) or after `invalidate()`."""
        with self.lock:
            if self._snapshot is None or self._revision != self.company.revision:
                self._revision = self.company.revision
                self._snapshot = self._rebuild()
            return self._snapshot

    def _rebuild(self) -> Snapshot:
        # Copies first: a helper mutating outside `mutate()` must not break the iteration.
        customers = dict(self.company.customers)
        contacts = [self._contact(customer) for customer in customers.values()]
        invoices = [
            self._invoice(invoice, customers.get(invoice.customer_id))
            for invoice in list(self.company.invoices.values())
        ]
        payments = [self._payment(payment, customers) for payment in list(self.company.payments.values())]
        credits = [self._credit(credit, customers) for credit in list(self.company.credits.values())]
        live = {("c", c.id) for c in contacts} | {("i", i.id) for i in invoices}
        live |= {("p", p.id) for p in payments} | {("n", n.id) for n in credits}
        for key in [key for key in self._rendered if key not in live]:
            del self._rendered[key]
        return Snapshot(
            Collection(contacts, id_field="contactid", archived_field="contactstatus"),
            Collection(invoices, id_field="invoiceid"),
            Collection(payments, id_field="paymentid"),
            Collection(credits, id_field="creditnoteid"),
        )

    def _payment(self, payment: SimPayment, customers: dict[str, SimCustomer]) -> Entry:
        allocation = payment.allocations[0] if payment.allocations else None
        invoice = self.company.invoices.get(allocation.invoice_id) if allocation else None
        name = customers[payment.customer_id].name if payment.customer_id in customers else ""
        number = invoice.doc_number if invoice else ""
        lines = tuple((a.invoice_id, a.amount, a.on) for a in payment.allocations)
        state = (payment.amount, payment.status, payment.reference, payment.updated_at, payment.paid_on,
                 payment.type, lines, name, number)  # fmt: skip

        def build() -> Entry:
            body = render_payment(payment, invoice, name)
            return Entry(to_ms(payment.updated_at), payment.id, body, payment_fields(payment))

        return self._cached(("p", payment.id), state, build)

    def _credit(self, credit: SimCredit, customers: dict[str, SimCustomer]) -> Entry:
        name = customers[credit.customer_id].name if credit.customer_id in customers else ""
        invoices = self.company.invoices
        numbers = {
            a.invoice_id: invoices[a.invoice_id].doc_number
            for a in credit.allocations
            if a.invoice_id in invoices
        }
        lines = tuple((a.invoice_id, a.amount, a.on, numbers.get(a.invoice_id)) for a in credit.allocations)
        state = (credit.doc_number, credit.total, credit.status, credit.updated_at, credit.issue_date,
                 credit.type, credit.currency, lines, name)  # fmt: skip

        def build() -> Entry:
            body = render_credit_note(credit, invoices, name)
            return Entry(to_ms(credit.updated_at), credit.id, body, credit_fields(credit))

        return self._cached(("n", credit.id), state, build)

    def _cached(self, key: tuple[str, str], state: tuple, build: Callable[[], Entry]) -> Entry:
        cached = self._rendered.get(key)
        if cached is not None and cached[0] == state:
            return cached[1]
        entry = build()
        self._rendered[key] = (state, entry)
        return entry

    def _contact(self, customer: SimCustomer) -> Entry:
        state = (*vars(customer).values(), tuple(customer.emails), tuple(customer.contact_persons))
        cached = self._rendered.get(("c", customer.id))
        if cached is not None and cached[0] == state:
            return cached[1]
        entry = Entry(
            to_ms(customer.updated_at),
            customer.id,
            render_contact(customer),
            contact_fields(customer),
        )
        self._rendered[("c", customer.id)] = (state, entry)
        return entry

    def _invoice(self, invoice: SimInvoice, customer: SimCustomer | None) -> Entry:
        name = customer.name if customer is not None else ""
        state = (*vars(invoice).values(), name)
        cached = self._rendered.get(("i", invoice.id))
        if cached is not None and cached[0] == state:
            return cached[1]
        entry = Entry(
            to_ms(invoice.updated_at),
            invoice.id,
            render_invoice(invoice, name),
            invoice_fields(invoice),
        )
        self._rendered[("i", invoice.id)] = (state, entry)
        return entry
