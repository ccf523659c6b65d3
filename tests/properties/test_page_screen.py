"""The page screen (`store.pages.screen`) keeps and quarantines exactly what checking each
record's amounts with `fits_money` would: its all-at-once check of a page's amounts is only
a shortcut for pages whose every amount fits."""

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
    st.sampled_from([Decimal("1e30"), Decimal("-1e30"), Decimal("0.00001")]),
)


def allocations(owner: str):
    return st.lists(
        st.builds(
            AllocationRecord, st.just("payment"), st.just(owner), st.just("I1"), AMOUNTS, st.just(None)
        ),
        max_size=3,
    ).map(tuple)


def invoices():
    return st.builds(
        lambda n, total, balance: InvoiceRecord(
            f"I{n}", "C1", None, date(2026, 1, 1), None, "USD", total, balance, True
        ),
        st.integers(0, 10**6),
        AMOUNTS,
        AMOUNTS,
    )


def payments():
    return st.integers(0, 10**6).flatmap(
        lambda n: st.builds(
            lambda amount, unapplied, owned: PaymentRecord(
                f"P{n}", "C1", None, "USD", amount, unapplied, None, allocations=owned
            ),
            AMOUNTS,
            AMOUNTS,
            allocations(f"P{n}"),
        )
    )


def credits():
    return st.integers(0, 10**6).flatmap(
        lambda n: st.builds(
            lambda total, remaining, owned: CreditRecord(
                f"CN{n}", "C1", None, None, "USD", total, remaining, allocations=owned
            ),
            AMOUNTS,
            AMOUNTS,
            allocations(f"CN{n}"),
        )
    )


def one_by_one(page: Page) -> tuple[tuple, tuple]:
    """The screen's definition: each record's every amount through `fits_money`."""

    def amounts(record) -> list[Decimal]:
        own = [record.total, record.balance] if page.entity == "invoices" else []
        if page.entity == "payments":
            own = [record.amount, record.unapplied]
        if page.entity == "credits":
            own = [record.total, record.remaining]
        return own + [a.amount for a in getattr(record, "allocations", ())]

    kept, unfit = [], []
    for record in page.records:
        too_big = [amount for amount in amounts(record) if not fits_money(amount)]
        if too_big:
            reason = f"amount out of range ({', '.join(map(str, too_big))})"
            unfit.append(Quarantined(page.entity, record.ref, reason))
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
