"""Writing one page of synced records, whatever its entity: the sync's single entry to the store.

A page is screened (amounts the store cannot hold go to the quarantine), handed to its
entity's writer, and its quarantined records are stored for `arsync status`. A new record
type needs one writer in `WRITERS` and one screen in `_AMOUNTS`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, insert

from portal_rules.records import (
    CreditRecord,
    CustomerRecord,
    Entity,
    InvoiceRecord,
    Page,
    PaymentRecord,
    Quarantined,
    Record,
)
from portal_rules.types import CompanyPolicy
from store.accounts import recompute_accounts
from store.history.writes import write_credits, write_payments
from store.tables import QuarantinedRecord
from store.types import fits_money
from store.writes import write_customers, write_invoices


@dataclass(frozen=True, slots=True)
class PageContext:
    company_id: str
    policy: CompanyPolicy
    now: datetime
    run_id: int
    assess: bool  # re-assess portal accounts for the contacts a customers page touched
    new: bool = False  # its records are expected not to be stored: inserted unread (`insert_new`)


@dataclass(frozen=True, slots=True)
class Written:
    rows: int  # records written (including ones marked deleted)
    adjustments: int  # reopened invoices recorded
    quarantined: tuple[Quarantined, ...]  # the connector's and the screen's, all stored
    gone: dict[str, int] | None = None  # per entity, rows the end of a full pull marked deleted


Writer = Callable[[Connection, PageContext, Sequence[Record]], tuple[int, int]]


def _customers(
    connection: Connection, ctx: PageContext, records: Sequence[CustomerRecord]
) -> tuple[int, int]:
    written, emails = write_customers(
        connection,
        ctx.company_id,
        records,
        import_inactive=ctx.policy.import_inactive_customers,
        now=ctx.now,
        run_id=ctx.run_id,
    )
    if ctx.assess:
        recompute_accounts(connection, ctx.company_id, ctx.policy, emails)
    return written, 0


def _invoices(connection: Connection, ctx: PageContext, records: Sequence[InvoiceRecord]) -> tuple[int, int]:
    return write_invoices(connection, ctx.company_id, records, now=ctx.now, run_id=ctx.run_id, new=ctx.new)


def _payments(connection: Connection, ctx: PageContext, records: Sequence[PaymentRecord]) -> tuple[int, int]:
    return write_payments(connection, ctx.company_id, records, now=ctx.now, run_id=ctx.run_id, new=ctx.new), 0


def _credits(connection: Connection, ctx: PageContext, records: Sequence[CreditRecord]) -> tuple[int, int]:
    return write_credits(connection, ctx.company_id, records, now=ctx.now, run_id=ctx.run_id, new=ctx.new), 0


WRITERS: dict[Entity, Writer] = {
    "customers": _customers,
    "invoices": _invoices,
    "payments": _payments,
    "credits": _credits,
}


# The money each record type carries, every amount of which the store must hold exactly.
_AMOUNTS: dict[Entity, Callable[[Record], tuple[Decimal, ...]]] = {
    "customers": lambda record: (),
    "invoices": lambda record: (record.total, record.balance),
    "payments": lambda record: (record.amount, record.unapplied, *(a.amount for a in record.allocations)),
    "credits": lambda record: (record.total, record.remaining, *(a.amount for a in record.allocations)),
}


def screen(page: Page) -> tuple[tuple[Record, ...], tuple[Quarantined, ...]]:
    """The page's records the store can hold, and quarantine entries for the others."""
    amounts = _AMOUNTS[page.entity]
    kept: list[Record] = []
    unfit: list[Quarantined] = []
    for record in page.records:
        if all(map(fits_money, amounts(record))):
            kept.append(record)
        else:
            too_big = ", ".join(str(amount) for amount in amounts(record) if not fits_money(amount))
            unfit.append(Quarantined(page.entity, record.ref, f"amount out of range ({too_big})"))
    return tuple(kept), page.quarantined + tuple(unfit)


def write_page(connection: Connection, page: Page, ctx: PageContext) -> Written:
    """Write `page` in the caller's transaction."""
    records, quarantined = screen(page)
    rows, adjustments = WRITERS[page.entity](connection, ctx, records) if records else (0, 0)
    if quarantined:
        connection.execute(
            insert(QuarantinedRecord),
            [
                {
                    "company_id": ctx.company_id,
                    "run_id": ctx.run_id,
                    "entity": q.entity,
                    "ref": q.ref,
                    "reason": q.reason,
                    "seen_at": ctx.now,
                }
                for q in quarantined
            ],
        )
    return Written(rows, adjustments, quarantined)
