"""The page screen (`store.pages.screen`) keeps and quarantines exactly what checking each
record's amounts with `fits_money` and for a fifth decimal place, and its ids against their
columns' lengths, would: its all-at-once check of a page is only a shortcut for pages whose
every value fits."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from portal_rules.records import (
    AllocationRecord,
    CreditRecord,
    InvoiceRecord,
    Page,
    PaymentRecord,
    Quarantined,
)
from store.pages import screen
from store.types import MONEY_LIMIT, fits_money

# Amounts around the store's limit on both sides (just within, rounding within, just past),
# everyday ones, and ones far past it.
EDGES = [MONEY_LIMIT, -MONEY_LIMIT, MONEY_LIMIT + Decimal("0.00004"), MONEY_LIMIT + Decimal("0.00005")]
AMOUNTS = st.one_of(
    st.decimals(min_value=-1000, max_value=1000, places=4),
    st.sampled_from(EDGES),
    st.sampled_from([Decimal("1e30"), Decimal("-1e30"), Decimal("0.00001"), Decimal("12.30000")]),
    st.decimals(min_value=-1000, max_value=1000, places=6),  # five or six places: rounded on write
)
# Ids (64 characters in the store) and currency codes (8) within, at and past their columns.
# ... and texts with a NUL, which PostgreSQL cannot keep in any text column.
REFS = st.sampled_from(["C1", "x" * 64, "y" * 65, "C\x00"])
CURRENCIES = st.sampled_from(["USD", "ABCDEFGH", "ABCDEFGHI", "U\x00D"])
TEXTS = st.sampled_from([None, "INV-1", "INV\x00-1"])


def allocations(owner: str):
    return st.lists(
        st.builds(AllocationRecord, st.just("payment"), st.just(owner), REFS, AMOUNTS, st.just(None)),
        max_size=3,
    ).map(tuple)


def invoices():
    return st.builds(
        lambda n, customer, doc, currency, total, balance: InvoiceRecord(
            f"I{n}", customer, doc, date(2026, 1, 1), None, currency, total, balance, True
        ),
        st.integers(0, 10**6),
        REFS,
        TEXTS,
        CURRENCIES,
        AMOUNTS,
        AMOUNTS,
    )


def payments():
    return st.integers(0, 10**6).flatmap(
        lambda n: st.builds(
            lambda customer, amount, unapplied, reference, owned: PaymentRecord(
                f"P{n}", customer, None, "USD", amount, unapplied, reference, allocations=owned
            ),
            REFS,
            AMOUNTS,
            AMOUNTS,
            TEXTS,
            allocations(f"P{n}"),
        )
    )


def credits():
    return st.integers(0, 10**6).flatmap(
        lambda n: st.builds(
            lambda currency, total, remaining, owned: CreditRecord(
                f"CN{n}", "C1", None, None, currency, total, remaining, allocations=owned
            ),
            CURRENCIES,
            AMOUNTS,
            AMOUNTS,
            allocations(f"CN{n}"),
        )
    )


def one_by_one(page: Page) -> tuple[tuple, tuple]:
    """The screen's definition: each record's every amount through `fits_money`, its ids (and
    its allocations') within 64 characters, its currency within 8, and no NUL in any text."""

    def amounts(record) -> list[Decimal]:
        own = [record.total, record.balance] if page.entity == "invoices" else []
        if page.entity == "payments":
            own = [record.amount, record.unapplied]
        if page.entity == "credits":
            own = [record.total, record.remaining]
        return own + [a.amount for a in getattr(record, "allocations", ())]

    def unkeepable(record) -> list[str]:
        texts = [
            ("ref", record.ref, 64),
            ("customer_ref", record.customer_ref, 64),
            ("currency", record.currency, 8),
        ]
        free = "reference" if page.entity == "payments" else "doc_number"
        texts += [(free, getattr(record, free), None)]
        for line in getattr(record, "allocations", ()):
            texts += [("an allocation's source_ref", line.source_ref, 64)]
            texts += [("an allocation's invoice_ref", line.invoice_ref, 64)]
        reasons = []
        for name, text, most in texts:
            if text and "\x00" in text:
                reasons.append(f"{name} holds a NUL character, which the store cannot keep")
            elif text and most and len(text) > most:
                reasons.append(f"{name} is {len(text)} characters, longer than the store's {most}")
        return reasons

    kept, unfit = [], []
    for record in page.records:
        too_big = [amount for amount in amounts(record) if not fits_money(amount)]
        reasons = [f"amount out of range ({', '.join(map(str, too_big))})"] if too_big else []
        finer = [] if too_big else [a for a in amounts(record) if a != a.quantize(Decimal("0.0001"))]
        if finer:  # the store would round it: the money would change
            reasons = [f"amount with more than 4 decimal places ({', '.join(map(str, finer))})"]
        reasons += unkeepable(record)
        if reasons:
            unfit.append(Quarantined(page.entity, record.ref, "; ".join(reasons)))
        else:
            kept.append(record)
    return tuple(kept), page.quarantined + tuple(unfit)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.lists(invoices(), max_size=8).map(lambda rs: Page("invoices", tuple(rs))),
        st.lists(payments(), max_size=8).map(lambda rs: Page("payments", tuple(rs))),
        st.lists(credits(), max_size=8).map(lambda rs: Page("credits", tuple(rs))),
    )
)
def test_the_page_screen_is_the_record_by_record_screen(page):
    assert screen(page) == one_by_one(page)


def test_a_page_of_amounts_within_the_limit_keeps_every_record_and_its_quarantine():
    earlier = (Quarantined("invoices", "I0", "no customer"),)
    records = tuple(
        InvoiceRecord(f"I{n}", "C1", None, None, None, "USD", MONEY_LIMIT, -MONEY_LIMIT, True)
        for n in range(3)
    )
    assert screen(Page("invoices", records, earlier)) == (records, earlier)


def test_one_amount_past_the_limit_quarantines_only_its_record():
    past = MONEY_LIMIT + Decimal("0.0001")
    owned = (AllocationRecord("payment", "P2", "I1", past, None),)
    records = (
        PaymentRecord("P1", "C1", None, "USD", Decimal(5), Decimal(0), None),
        PaymentRecord("P2", "C1", None, "USD", Decimal(5), Decimal(0), None, allocations=owned),
    )
    kept, quarantined = screen(Page("payments", records))
    assert kept == records[:1]
    assert quarantined == (Quarantined("payments", "P2", f"amount out of range ({past})"),)


def test_an_amount_the_store_would_round_quarantines_its_record_trailing_zeros_do_not():
    records = (
        InvoiceRecord("I1", "C1", None, None, None, "USD", Decimal("10.12345"), Decimal("10.12345"), True),
        InvoiceRecord("I2", "C1", None, None, None, "USD", Decimal("12.30000"), Decimal("0.000000"), True),
    )
    kept, quarantined = screen(Page("invoices", records))
    assert kept == records[1:]
    assert quarantined == (
        Quarantined("invoices", "I1", "amount with more than 4 decimal places (10.12345, 10.12345)"),
    )
