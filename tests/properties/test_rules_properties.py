"""Properties of the portal rules over random facts (hypothesis).

`tests/rules/` holds the readable tables and a few narrow properties (sums over sent
flags, reminders of always-visible invoices). These go wider: every liveness flag, local
override, customer state and plan at once, checked against oracles written here from
SPEC section 2 rather than through the rules' own helpers.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from portal_rules.accounts import assess_accounts
from portal_rules.adjustments import Adjustment, detect_adjustment
from portal_rules.balances import balance_due, past_due_amount
from portal_rules.contacts import is_valid_email
from portal_rules.reminders import due_reminders, reminder_date
from portal_rules.request_access import PUBLIC_ANSWER, decide_request_access
from portal_rules.types import (
    CompanyPolicy,
    ContactFacts,
    CustomerFacts,
    InvoiceFacts,
    PortalAccount,
    PortalStatus,
)
from portal_rules.visibility import is_visible

PROPS = settings(max_examples=200, deadline=None)
TODAY = date(2026, 6, 1)
REFS = ("1", "2", "3", "10", "C-7")

# --------------------------------------------------------------------------------------------
# Strategies

amounts = st.decimals(
    min_value=Decimal("-1e15"), max_value=Decimal("1e15"), places=4, allow_nan=False, allow_infinity=False
)
customers_facts = st.fixed_dictionaries(
    {ref: st.builds(CustomerFacts, st.just(ref), st.booleans(), st.booleans(), st.booleans()) for ref in REFS}
)


@st.composite
def invoice_lists(draw, max_size: int = 12) -> list[InvoiceFacts]:
    count = draw(st.integers(min_value=0, max_value=max_size))
    invoices = []
    for index in range(count):
        balance = draw(amounts)
        invoices.append(
            InvoiceFacts(
                ref=f"I{index}",
                customer_ref=draw(st.sampled_from(REFS)),
                balance=balance,
                total=draw(st.one_of(st.just(balance), amounts)),
                due_date=draw(st.one_of(st.none(), st.integers(-60, 60).map(lambda d: TODAY + timedelta(d)))),
                doc_number=draw(st.one_of(st.none(), st.text(max_size=4))),
                source_sent=draw(st.booleans()),
                sent_override=draw(st.sampled_from([None, True, False])),
                voided=draw(st.booleans()),
                deleted=draw(st.booleans()),
                draft=draw(st.booleans()),
            )
        )
    return invoices


def visible_oracle(invoice: InvoiceFacts, customer_visible: bool) -> bool:
    """SPEC 2, sent-only visibility: sent (override wins either way), live, customer shown."""
    sent = invoice.source_sent if invoice.sent_override is None else invoice.sent_override
    live = not (invoice.voided or invoice.deleted or invoice.draft)
    return sent and live and customer_visible


def customer_shown(customer: CustomerFacts | None, import_inactive: bool) -> bool:
    return customer is not None and not customer.deleted and (customer.active or import_inactive)


def floats_in(value) -> list:
    """Every float reachable from `value` through dataclasses, containers and mappings."""
    if isinstance(value, float):
        return [value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [f for field in dataclasses.fields(value) for f in floats_in(getattr(value, field.name))]
    if isinstance(value, dict):
        return [f for pair in value.items() for item in pair for f in floats_in(item)]
    if isinstance(value, list | tuple | set | frozenset):
        return [f for item in value for f in floats_in(item)]
    return []


def exact(amount: Decimal) -> Fraction:
    return Fraction(amount)


# --------------------------------------------------------------------------------------------
# Visibility and balances


@PROPS
@given(invoices=invoice_lists(), customer_visible=st.booleans())
def test_visibility_follows_sent_live_and_customer(invoices, customer_visible):
    for invoice in invoices:
        shown = is_visible(invoice, customer_visible)
        assert shown is visible_oracle(invoice, customer_visible)
        if invoice.voided or invoice.deleted or invoice.draft:
            assert not shown  # no override makes a voided, deleted or draft invoice visible
        if invoice.sent_override is False or (invoice.sent_override is None and not invoice.source_sent):
            assert not shown  # unsent, whatever else holds


@PROPS
@given(invoices=invoice_lists(max_size=30), customer_visible=st.booleans(), today=st.dates())
def test_balances_are_exact_decimal_sums_of_visible_balances(invoices, customer_visible, today):
    due = balance_due(invoices, customer_visible)
    past = past_due_amount(invoices, today, customer_visible)
    assert type(due) is Decimal and type(past) is Decimal
    shown = [i for i in invoices if visible_oracle(i, customer_visible)]
    assert exact(due) == sum((exact(i.balance) for i in shown), Fraction(0))
    overdue = [i for i in shown if i.balance > 0 and i.due_date is not None and i.due_date < today]
    assert exact(past) == sum((exact(i.balance) for i in overdue), Fraction(0))
    if not customer_visible:
        assert due == 0 and past == 0


# --------------------------------------------------------------------------------------------
# Reminders


@st.composite
def done_keys(draw, invoices: list[InvoiceFacts]) -> set[tuple[str, int]]:
    refs = [i.ref for i in invoices] or ["I0"]
    return draw(st.sets(st.tuples(st.sampled_from(refs), st.integers(-10, 40)), max_size=20))


@PROPS
@given(
    data=st.data(),
    invoices=invoice_lists(),
    customers=customers_facts,
    offsets=st.lists(st.integers(-10, 40), max_size=6),
    import_inactive=st.booleans(),
    today=st.integers(-30, 90).map(lambda d: TODAY + timedelta(d)),
)
def test_reminder_plans(data, invoices, customers, offsets, import_inactive, today):
    done = data.draw(done_keys(invoices))
    plan = due_reminders(invoices, customers, offsets, done, today, import_inactive=import_inactive)
    by_ref = {i.ref: i for i in invoices}
    sent = plan.sent_keys

    assert not set(sent) & done and not set(plan.skipped) & done  # never again, sent or skipped
    assert not set(sent) & set(plan.skipped)
    assert len({ref for ref, _ in sent}) == len(sent)  # at most one offset per invoice
    assert len(set(plan.skipped)) == len(plan.skipped)
    assert floats_in(plan) == []

    customer_refs = [r.customer_ref for r in plan.reminders]
    assert len(customer_refs) == len(set(customer_refs))  # one email per customer
    for reminder in plan.reminders:
        assert reminder.items
        assert all(item.invoice.customer_ref == reminder.customer_ref for item in reminder.items)
        assert type(reminder.balance) is Decimal
        assert exact(reminder.balance) == sum((exact(item.invoice.balance) for item in reminder.items), 0)

    for ref, offset in (*sent, *plan.skipped):
        invoice = by_ref[ref]
        customer = customers[invoice.customer_ref]
        assert offset in offsets
        assert invoice.due_date is not None and today >= reminder_date(invoice.due_date, offset)
        assert visible_oracle(invoice, customer_shown(customer, import_inactive))
        assert invoice.balance > 0 and not customer.reminders_paused

    # Nothing remindable is forgotten: an invoice whose latest due offset is not on record
    # gets exactly that reminder today.
    for invoice in invoices:
        customer = customers[invoice.customer_ref]
        remindable = (
            invoice.due_date is not None
            and invoice.balance > 0
            and not customer.reminders_paused
            and visible_oracle(invoice, customer_shown(customer, import_inactive))
        )
        due_offsets = [o for o in offsets if invoice.due_date and today >= invoice.due_date + timedelta(o)]
        if remindable and due_offsets and (invoice.ref, max(due_offsets)) not in done:
            assert (invoice.ref, max(due_offsets)) in sent


# --------------------------------------------------------------------------------------------
# Portal accounts

EMAILS = ("ap@shared.example", "AP@Shared.Example ", "bob@x.example", "not-an-email", "c@y.example")


@st.composite
def contact_lists(draw) -> list[ContactFacts]:
    keys = draw(
        st.lists(
            st.tuples(st.sampled_from(REFS), st.sampled_from(EMAILS)),
            max_size=12,
            unique_by=lambda k: (k[0], k[1].strip().lower()),  # one contact per customer and email
        )
    )
    return [
        ContactFacts(
            customer_ref=ref,
            email=email,
            position=draw(st.integers(0, 2)),
            in_source=draw(st.booleans()),
            portal_status=draw(st.sampled_from(list(PortalStatus))),
            admin_enabled=draw(st.sampled_from([None, True, False])),
        )
        for ref, email in keys
    ]


policies = st.builds(
    CompanyPolicy,
    plan=st.sampled_from(["basic", "pro", "plus", "enterprise"]),
    timezone=st.just("America/New_York"),
    import_inactive_customers=st.booleans(),
    multi_account_portal=st.booleans(),
)


@PROPS
@given(policy=policies, customers=customers_facts, contacts=contact_lists())
def test_assess_accounts(policy, customers, contacts):
    accounts = assess_accounts(policy, customers, contacts)
    assert [a.key for a in accounts] == [c.key for c in contacts]

    eligible_per_email: dict[str, list[PortalAccount]] = defaultdict(list)
    for contact, account in zip(contacts, accounts, strict=True):
        customer = customers[contact.customer_ref]
        if account.eligible:
            eligible_per_email[account.email].append(account)
            assert account.status not in (PortalStatus.CONFLICT, PortalStatus.DISABLED)
            assert policy.plan != "basic" and is_valid_email(account.email) and contact.in_source
            assert customer_shown(customer, policy.import_inactive_customers)
        if contact.portal_status is PortalStatus.DISABLED:
            assert account.status is PortalStatus.DISABLED  # an admin's switch is never undone
        if policy.multi_account_portal:
            assert account.status is not PortalStatus.CONFLICT

    if not policy.multi_account_portal:
        for email, eligible in eligible_per_email.items():
            assert len(eligible) <= 1, (email, eligible)

    # Re-assessing the outcome changes nothing (each sync recomputes it).
    again = assess_accounts(
        policy,
        customers,
        [dataclasses.replace(c, portal_status=a.status) for c, a in zip(contacts, accounts, strict=True)],
    )
    assert again == accounts


@PROPS
@given(policy=policies, customers=customers_facts, contacts=contact_lists())
def test_single_account_mode_never_takes_access_from_an_enabled_contact_for_a_new_one(
    policy, customers, contacts
):
    single = assess_accounts(dataclasses.replace(policy, multi_account_portal=False), customers, contacts)
    # Eligible but for the sharing: what a multi-account portal would let in.
    multi = assess_accounts(dataclasses.replace(policy, multi_account_portal=True), customers, contacts)
    for email in {a.email for a in single}:
        kept = [a for a in single if a.email == email and a.eligible]
        had_access = [
            c
            for c, a in zip(contacts, multi, strict=True)
            if a.email == email and a.eligible and c.portal_status is PortalStatus.ENABLED
        ]
        if had_access:
            assert len(kept) == 1 and kept[0].status is PortalStatus.ENABLED


# --------------------------------------------------------------------------------------------
# Request access and adjustments

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@PROPS
@given(
    accounts=st.lists(
        st.builds(
            PortalAccount,
            st.sampled_from(REFS),
            st.just("ann@example.com"),
            st.sampled_from(list(PortalStatus)),
            st.booleans(),
        ),
        max_size=5,
        unique_by=lambda a: a.customer_ref,
    ),
    recent=st.lists(st.integers(-200, 10).map(lambda m: NOW + timedelta(minutes=m)), max_size=6),
)
def test_request_access_answers_the_same_whatever_happens(accounts, recent):
    decision = decide_request_access(accounts, recent, NOW)
    assert decision.public_answer == PUBLIC_ANSWER
    assert "ann@example.com" not in decision.public_answer
    if decision.rate_limited:
        assert decision.invite is None
    if decision.invite is not None:
        assert decision.invite in accounts
        assert decision.invite.eligible
        assert decision.invite.status in (PortalStatus.NOT_INVITED, PortalStatus.PENDING)
    elif not decision.rate_limited:
        assert not any(
            a.eligible and a.status in (PortalStatus.NOT_INVITED, PortalStatus.PENDING) for a in accounts
        )


@PROPS
@given(previous=st.one_of(st.none(), amounts), new=amounts)
def test_adjustments_are_decimal_and_only_for_reopened_invoices(previous, new):
    adjustment = detect_adjustment(previous, new)
    if previous is not None and previous == 0 and new > 0:
        assert adjustment is not None
        assert adjustment == Adjustment(previous, new, new)
        assert floats_in(adjustment) == []
        assert all(type(v) is Decimal for v in dataclasses.astuple(adjustment))
    else:
        assert adjustment is None
