"""Paging a Xero pull into `Page`s: contacts, sales invoices, customer payments, customer
credit notes, each page with its cursor.

Each listing is read in id order, and each page's cursor keeps the earliest DateTimeUTC of
its listing's answers as the next pass's watermark (see `connectors.xero.cursor`); an
answer without one fails the pull rather than guess where the next pass starts.

Invoice, payment and credit note pages carry Xero's `pagination.itemCount` as `total` (the
listings are filtered by type); contact pages do not: the count includes suppliers.

Suppliers are not customers. A contact is imported when Xero flags it `IsCustomer` (Xero
sets that itself once a contact has a sales invoice) or when a sales invoice names it: such
a contact is held back in the contacts phase (its id kept in the cursor) and, when an
invoices page references it, fetched by id and yielded as an extra customers page just
before that invoices page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import structlog

from connectors.base import ConnectorError
from connectors.xero.ahead import Ahead
from connectors.xero.client import Listing, XeroClient
from connectors.xero.cursor import Cursor
from connectors.xero.normalize import MalformedRecord, is_customer_flag, record_ref, to_customer, to_invoice
from connectors.xero.normalize_ledger import to_credit, to_payment
from connectors.xero.signals import xero_is_customer
from portal_rules.records import CustomerRecord, Entity, InvoiceRecord, Page, Quarantined

log = structlog.get_logger("arsync.connectors.xero")


@dataclass(frozen=True, slots=True)
class _Contacts:
    customers: tuple[CustomerRecord, ...]
    quarantined: tuple[Quarantined, ...]
    held: frozenset[str]


def pages(client: XeroClient, cursor: Cursor) -> Iterator[Page]:
    """Every page from `cursor` to the end of its pass; the last one of a full pass has
    `full_sync_complete`. With more than one request allowed in flight, listing pages are
    fetched ahead (`connectors.xero.ahead`) and still yielded one by one, in order."""
    guard = _LoopGuard()
    source = Ahead(client, cursor) if client.options.concurrent > 1 else client
    try:
        while not cursor.done:
            steps = _STEPS[cursor.phase](source, cursor, guard)  # type: ignore[arg-type]  # lists like a client
            for page, _ in steps:
                yield page
            cursor = steps[-1][1]
    finally:
        if isinstance(source, Ahead):
            source.close()


def _customers_step(client: XeroClient, cursor: Cursor, guard: _LoopGuard) -> list[tuple[Page, Cursor]]:
    listing = client.contacts(cursor.page, cursor.if_modified_since("customers"))
    guard.check("customers", cursor.page, listing)
    answered = _served("customers", cursor.page, listing)
    batch = sort_contacts(listing.items, held=cursor.held, promoted=cursor.promoted)
    after = replace(
        cursor.after_page(_is_last(listing, cursor.page, client.options.page_size)),
        held=batch.held,
        seen=cursor.seen.earliest("customers", answered),
    )
    page = Page(
        "customers",
        batch.customers,
        quarantined=batch.quarantined,
        cursor=after.to_dict(),
        api_calls=listing.calls,
    )
    return [(page, after)]


def _invoices_step(client: XeroClient, cursor: Cursor, guard: _LoopGuard) -> list[tuple[Page, Cursor]]:
    listing = client.invoices(cursor.page, cursor.if_modified_since("invoices"))
    guard.check("invoices", cursor.page, listing)
    answered = _served("invoices", cursor.page, listing)
    invoices, quarantined = sort_invoices(listing.items)
    steps: list[tuple[Page, Cursor]] = []
    wanted = sorted({invoice.customer_ref for invoice in invoices} & cursor.held)
    if wanted:
        promotion, cursor = _promote(client, cursor, wanted)
        steps.append((promotion, cursor))
    after = replace(
        cursor.after_page(_is_last(listing, cursor.page, client.options.page_size)),
        seen=cursor.seen.earliest("invoices", answered),
    )
    page = Page(
        "invoices",
        invoices,
        quarantined=quarantined,
        cursor=after.to_dict(),
        api_calls=listing.calls,
        full_sync_complete=after.done and cursor.full,
        total=listing.item_count,
        read=len(listing.items),
    )
    steps.append((page, after))
    return steps


def _payments_step(client: XeroClient, cursor: Cursor, guard: _LoopGuard) -> list[tuple[Page, Cursor]]:
    return _ledger_step("payments", client.payments, to_payment, client, cursor, guard)


def _credits_step(client: XeroClient, cursor: Cursor, guard: _LoopGuard) -> list[tuple[Page, Cursor]]:
    return _ledger_step("credits", client.credit_notes, to_credit, client, cursor, guard)


def _ledger_step(
    entity: Entity,
    fetch: Callable[[int, datetime | None], Listing],
    normalize: Callable[[Any], Any],
    client: XeroClient,
    cursor: Cursor,
    guard: _LoopGuard,
) -> list[tuple[Page, Cursor]]:
    """One page of payments or credit notes; supplier documents (None) are left out."""
    listing = fetch(cursor.page, cursor.if_modified_since(entity))
    guard.check(entity, cursor.page, listing)
    answered = _served(entity, cursor.page, listing)
    records, quarantined = [], []
    for raw in listing.items:
        try:
            record = normalize(raw)
        except MalformedRecord as error:
            quarantined.append(Quarantined(entity, record_ref(raw, entity), str(error)))
            continue
        if record is not None:
            records.append(record)
    after = replace(
        cursor.after_page(_is_last(listing, cursor.page, client.options.page_size)),
        seen=cursor.seen.earliest(entity, answered),
    )
    page = Page(
        entity,
        tuple(records),
        quarantined=tuple(quarantined),
        cursor=after.to_dict(),
        api_calls=listing.calls,
        full_sync_complete=after.done and cursor.full,
        total=listing.item_count,
        read=len(listing.items),
    )
    return [(page, after)]


def _promote(client: XeroClient, cursor: Cursor, ids: list[str]) -> tuple[Page, Cursor]:
    """Fetch held-back contacts that a sales invoice names; they are customers now."""
    customers: list[CustomerRecord] = []
    quarantined: list[Quarantined] = []
    size, calls = client.options.ids_per_request, 0
    for start in range(0, len(ids), size):
        listing = client.contacts_by_id(ids[start : start + size])
        calls += listing.calls
        batch = sort_contacts(listing.items, promote=True)
        customers += batch.customers
        quarantined += batch.quarantined
    found = frozenset(customer.ref for customer in customers)
    log.info("xero.contacts_promoted", tenant=client.tenant_id, contacts=len(found), asked=len(ids))
    # Same position: the invoices page is re-read if the process stops between the two pages.
    moved = replace(cursor, held=cursor.held - found, promoted=cursor.promoted | found)
    page = Page(
        "customers",
        tuple(customers),
        quarantined=tuple(quarantined),
        cursor=moved.to_dict(),
        api_calls=calls,
    )
    return page, moved


def sort_contacts(
    items: list,
    *,
    held: frozenset[str] = frozenset(),
    promoted: frozenset[str] = frozenset(),
    promote: bool = False,
) -> _Contacts:
    """Customers to yield, malformed contacts, and the updated held-back set.

    A supplier's unreadable contact is held like any supplier's, not quarantined: no sync
    would ever store it, so its quarantine would stay outstanding after it is fixed. A sales
    invoice naming it brings it in (`promote`), quarantined then if still unreadable."""
    customers, quarantined, kept = [], [], set(held)
    for raw in items:
        try:
            record = to_customer(raw)
        except MalformedRecord as error:
            ref = record_ref(raw, "customers")
            if ref is None or xero_is_customer(_flag(raw), promote or ref in promoted):
                quarantined.append(Quarantined("customers", ref, str(error)))
            else:
                kept.add(ref)
            continue
        if xero_is_customer(is_customer_flag(raw), promote or record.ref in promoted):
            customers.append(record)
            kept.discard(record.ref)
        else:
            kept.add(record.ref)
    return _Contacts(tuple(customers), tuple(quarantined), frozenset(kept))


def _flag(raw: Any) -> bool:
    """`IsCustomer` of a contact that may not even be an object."""
    return isinstance(raw, dict) and is_customer_flag(raw)


def sort_invoices(items: list) -> tuple[tuple[InvoiceRecord, ...], tuple[Quarantined, ...]]:
    """Sales invoices, and malformed ones."""
    invoices, quarantined = [], []
    for raw in items:
        try:
            record = to_invoice(raw)
        except MalformedRecord as error:
            quarantined.append(Quarantined("invoices", record_ref(raw, "invoices"), str(error)))
            continue
        if record is not None:  # None: a bill that slipped through the where filter
            invoices.append(record)
    return tuple(invoices), tuple(quarantined)


def _is_last(listing: Listing, page: int, page_size: int) -> bool:
    """Xero's pageCount when sent (no extra empty request); else a short page ends it."""
    if not listing.items:
        return True
    if listing.page_count is not None:
        return page >= listing.page_count
    return len(listing.items) < page_size


def _served(entity: Entity, page: int, listing: Listing) -> datetime:
    """Xero's clock when it answered this page (DateTimeUTC), which every Xero answer carries."""
    if listing.served is None:
        raise ConnectorError(
            f"Xero answered {entity} page {page} without a usable DateTimeUTC: "
            "the time the next sync starts from is unknown"
        )
    return listing.served


_STEPS = {
    "customers": _customers_step,
    "invoices": _invoices_step,
    "payments": _payments_step,
    "credits": _credits_step,
}


class _LoopGuard:
    """Stops a pull whose pages repeat (a server ignoring `page` would loop forever)."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[int, object]] = {}

    def check(self, phase: str, page: int, listing: Listing) -> None:
        first = listing.items[0] if listing.items else None
        previous = self._last.get(phase)
        if previous is not None and first is not None and previous == (page - 1, first):
            raise ConnectorError(f"loop detected in Xero pagination ({phase} page {page} repeats)")
        self._last[phase] = (page, first)
