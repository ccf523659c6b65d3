"""Writing one page of synced records, whatever its entity: the sync's single entry to the store.

A page is screened (amounts and texts the store cannot hold go to the quarantine), handed
to its entity's writer, and its quarantined records are stored for `arsync status`. A new
record type needs one writer in `WRITERS`, its money fields in `_AMOUNTS` and its text
fields in `_TEXTS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from itertools import chain
from operator import attrgetter

from sqlalchemy import Connection, Table, select

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
from store.bulk import among
from store.history.tables import ALLOCATIONS, CREDITS, PAYMENTS
from store.history.writes import write_credits, write_payments
from store.quarantine import record as record_quarantined
from store.quarantine import resolve_stored
from store.types import MONEY_LIMIT, MONEY_SCALE, all_kept_exactly, fits_money, kept_exactly
from store.writes import CUSTOMERS, INVOICES, write_customers, write_invoices


@dataclass(frozen=True, slots=True)
class PageContext:
    company_id: str
    policy: CompanyPolicy
    now: datetime
    run_id: int
    assess: bool  # re-assess portal accounts for the contacts a customers page touched
    new: bool = False  # its records are expected not to be stored: inserted unread (`insert_new`)
    resolves: bool = True  # the entity may have outstanding quarantine rows its records resolve


@dataclass(frozen=True, slots=True)
class Written:
    rows: int  # records written (including ones marked deleted)
    adjustments: int  # reopened invoices recorded
    quarantined: tuple[Quarantined, ...]  # the connector's and the screen's, all stored
    gone: dict[str, int] | None = None  # per entity, rows the end of a full pull marked deleted
    # the customers the page's stored records belonged to before it (`PageContext.assess`): a
    # deletion names none (QuickBooks' CDC), a record moved names only its new customer
    owners_before: frozenset[str] = frozenset()


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


@dataclass(frozen=True, slots=True)
class _Money:
    """The amounts a record type carries (every one of which the store must hold exactly):
    its own money fields, and its allocations' amounts when it owns allocations."""

    fields: tuple[str, ...] = ()
    allocations: bool = False

    def of(self, record: Record) -> tuple[Decimal, ...]:
        return tuple(self.on((record,)))

    def on(self, records: Sequence[Record]) -> Iterator[Decimal]:
        """Every amount of `records`, read column by column in C-level maps."""
        columns: list[Iterable[Decimal]] = [map(attrgetter(name), records) for name in self.fields]
        if self.allocations:
            columns.append(map(_AMOUNT, chain.from_iterable(map(_ALLOCATIONS, records))))
        return chain.from_iterable(columns)


NUL = "\x00"


@dataclass(frozen=True, slots=True)
class _Texts:
    """The text a record type writes, as the store can hold it: no NUL character anywhere,
    and its ids and codes within their columns' lengths.

    PostgreSQL refuses a NUL in any text ('invalid byte sequence for encoding "UTF8": 0x00')
    and a value longer than its column ("value too long for type character varying(64)"),
    and with it the page and every later sync of the company; SQLite would keep both. A
    record carrying one is quarantined, as one with an amount out of range is: no accounting
    system sends such ids (QuickBooks' are numbers, Xero's GUIDs), but a broken answer or a
    pasted name might.

    `bounded`: (field, column length) of the record's ids and codes; `free`: its other text
    fields (a text or None); `lists`: fields holding several texts (a customer's emails);
    `allocations`: (field, length) of its allocations' refs, when it owns allocations.
    """

    bounded: tuple[tuple[str, int], ...]
    free: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()
    allocations: tuple[tuple[str, int], ...] = ()

    def fit(self, records: Sequence[Record]) -> bool:
        """Whether every text of `records` fits, read column by column in C-level maps (a
        TypeError when an id is missing: then the caller screens record by record)."""
        lines = list(chain.from_iterable(map(_ALLOCATIONS, records))) if self.allocations else []
        texts = []
        for rows, named in ((records, self.bounded), (lines, self.allocations)):
            for name, limit in named:
                column = list(map(attrgetter(name), rows))
                if max(map(len, column), default=0) > limit:
                    return False
                texts.append(column)
        texts += [filter(None, map(attrgetter(name), records)) for name in self.free]
        texts += [chain.from_iterable(map(attrgetter(name), records)) for name in self.lists]
        return NUL not in "".join(chain.from_iterable(texts))

    def unfit(self, record: Record) -> list[str]:
        """What of `record` the store cannot hold, said so (none: an empty list)."""
        texts = [(name, getattr(record, name), limit) for name, limit in self.bounded]
        texts += [(name, getattr(record, name), None) for name in self.free]
        texts += [(f"one of its {name}", text, None) for name in self.lists for text in getattr(record, name)]
        for line in getattr(record, "allocations", ()) if self.allocations else ():
            texts += [(f"an allocation's {n}", getattr(line, n), most) for n, most in self.allocations]
        problems = []
        for name, text, limit in texts:
            if text and NUL in text:
                problems.append(f"{name} holds a NUL character, which the store cannot keep")
            elif text and limit is not None and len(text) > limit:
                problems.append(f"{name} is {len(text)} characters, longer than the store's {limit}")
        return problems


def _bounded(table, *names: str) -> tuple[tuple[str, int], ...]:
    """(column, its length) for `names`, as the table declares them."""
    return tuple((name, table.c[name].type.length) for name in names)


_AMOUNT, _ALLOCATIONS = attrgetter("amount"), attrgetter("allocations")
_LINE_IDS = _bounded(ALLOCATIONS, "source_ref", "invoice_ref")
_TEXTS: dict[Entity, _Texts] = {
    "customers": _Texts(_bounded(CUSTOMERS, "ref"), ("display_name",), ("emails",)),
    "invoices": _Texts(_bounded(INVOICES, "ref", "customer_ref", "currency"), ("doc_number",)),
    "payments": _Texts(
        _bounded(PAYMENTS, "ref", "customer_ref", "currency"), ("reference",), allocations=_LINE_IDS
    ),
    "credits": _Texts(
        _bounded(CREDITS, "ref", "customer_ref", "currency"), ("doc_number",), allocations=_LINE_IDS
    ),
}
_AMOUNTS: dict[Entity, _Money] = {
    "customers": _Money(),
    "invoices": _Money(("total", "balance")),
    "payments": _Money(("amount", "unapplied"), allocations=True),
    "credits": _Money(("total", "remaining"), allocations=True),
}


def screen(page: Page) -> tuple[tuple[Record, ...], tuple[Quarantined, ...]]:
    """The page's records the store can hold, and quarantine entries for the others.

    The page's amounts and texts are first checked all at once, in C (a 1000-payment page
    holds about 3,000 amounts): when the largest amount is within the store's limit, their
    exact sum has no more than four decimal places (so none has: `all_kept_exactly`) and
    every text fits (`_Texts`), every record fits, as `fits_money`, `kept_exactly` and
    `_Texts.unfit` would say of each. Only a page with a value beyond them (or an amount the
    comparison cannot order) is screened record by record: an amount the store would round
    is quarantined, as one out of range is, since either would change the money.
    """
    money, texts = _AMOUNTS[page.entity], _TEXTS[page.entity]
    try:
        amounts = list(money.on(page.records))
        if (
            max(map(abs, amounts), default=0) <= MONEY_LIMIT
            and all_kept_exactly(amounts)
            and texts.fit(page.records)
        ):
            return tuple(page.records), page.quarantined
    except (ArithmeticError, TypeError):  # a NaN or a non-number: the per-record screen decides
        pass
    kept: list[Record] = []
    unfit: list[Quarantined] = []
    for record in page.records:
        amounts = money.of(record)
        problems = texts.unfit(record)
        if not all(map(fits_money, amounts)):
            too_big = ", ".join(str(amount) for amount in amounts if not fits_money(amount))
            problems.insert(0, f"amount out of range ({too_big})")
        elif not all(map(kept_exactly, amounts)):  # rounded on write: money would change
            finer = ", ".join(str(amount) for amount in amounts if not kept_exactly(amount))
            problems.insert(0, f"amount with more than {MONEY_SCALE} decimal places ({finer})")
        if problems:
            unfit.append(Quarantined(page.entity, record.ref, "; ".join(problems)))
        else:
            kept.append(record)
    return tuple(kept), page.quarantined + tuple(unfit)


_OWNED: dict[Entity, Table] = {"invoices": INVOICES, "payments": PAYMENTS, "credits": CREDITS}


def write_page(connection: Connection, page: Page, ctx: PageContext) -> Written:
    """Write `page` in the caller's transaction.

    Outside a full pull (`ctx.assess`), the customers its records belonged to before are read
    first (`Written.owners_before`): what follows a sync (health) concerns them too."""
    records, quarantined = screen(page)
    owners = _owners(connection, ctx.company_id, page.entity, records) if ctx.assess and not ctx.new else ()
    rows, adjustments = WRITERS[page.entity](connection, ctx, records) if records else (0, 0)
    if records and ctx.resolves:
        resolve_stored(connection, ctx.company_id, page.entity, records, ctx.now)
    if quarantined:
        kept = [Quarantined(q.entity, _keepable(q.ref), _keepable(q.reason)) for q in quarantined]
        record_quarantined(connection, ctx.company_id, ctx.run_id, kept, ctx.now)
    return Written(rows, adjustments, quarantined, owners_before=frozenset(owners))


def _owners(connection: Connection, company_id: str, entity: Entity, records: Sequence[Record]) -> list[str]:
    """The customers `records` (of an entity owned by a customer) are stored under now."""
    table = _OWNED.get(entity)
    if table is None or not records:
        return []
    refs = sorted({record.ref for record in records})
    query = select(table.c.customer_ref).where(
        table.c.company_id == company_id, among(connection, table.c.ref, refs)
    )
    return list(connection.execute(query.distinct()).scalars())


def _keepable(text: str | None) -> str | None:
    """`text` with any NUL shown as U+FFFD: a quarantined ref or reason may quote one."""
    return text.replace(NUL, "\ufffd") if text else text
