"""Payments and credit notes served by both simulators, read through the real SDKs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from quickbooks.cdc import change_data_capture
from quickbooks.objects.creditmemo import CreditMemo
from quickbooks.objects.payment import Payment
from xero_python.accounting import AccountingApi

from connectors.simulators import mutations
from connectors.simulators.generator import generate_company
from connectors.simulators.quickbooks import QuickBooksSimulator
from connectors.simulators.xero import XeroSimulator

from .conftest import NOW, TODAY, sdk_client
from .test_xero_sim import ROOMY
from .test_xero_sim import sdk_client as xero_client


def _linked(line) -> list[tuple[str, str]]:
    return [(link.TxnType, link.TxnId) for link in line.LinkedTxn]


def test_quickbooks_payments_and_credit_memos_page_cdc_and_void():
    company = generate_company("quickbooks", seed=2, customers=80, invoices=1800, today=TODAY)
    payments = [p for p in company.payments.values() if p.status != "deleted"]
    assert len(payments) > 1000
    with QuickBooksSimulator(company, now=lambda: NOW) as sim:
        qb = sdk_client(sim)
        pages = [
            Payment.query(f"SELECT * FROM Payment ORDERBY Id STARTPOSITION {start} MAXRESULTS 1000", qb=qb)
            for start in (1, 1001)
        ]
        assert [len(p) for p in pages] == [1000, len(payments) - 1000]
        assert sim.counters.requests["query:Payment"] == 2
        by_id = {p.Id: p for page in pages for p in page}
        carrier = next(p for p in payments if p.amount == 0)  # applies a credit memo, no money
        lines = by_id[carrier.id].Line
        assert by_id[carrier.id].TotalAmt == 0 and {t for line in lines for t, _ in _linked(line)} == {
            "Invoice",
            "CreditMemo",
        }
        memos = CreditMemo.query("SELECT * FROM CreditMemo MAXRESULTS 1000", qb=qb)
        assert {m.Id: Decimal(str(m.Balance)) for m in memos} == {
            c.id: c.remaining for c in company.credits.values() if c.status != "deleted"
        }

        live = next(p for p in payments if p.live and p.amount > 0)
        gone = next(p for p in payments if p.live and p.amount > 0 and p is not live)
        mutations.void_payment(company, live.id, NOW - timedelta(minutes=2))
        mutations.delete_payment(company, gone.id, NOW - timedelta(minutes=1))
        since = (NOW - timedelta(minutes=3)).isoformat(timespec="seconds")  # with its offset
        changes = change_data_capture([Payment, CreditMemo], since, qb=qb)
        seen = {p.Id: p for p in changes.Payment}
        assert seen[live.id].TotalAmt == 0 and seen[live.id].PrivateNote == "Voided"
        assert seen[gone.id].status == "Deleted"
        assert not getattr(changes, "CreditMemo", [])


def test_xero_payments_and_credit_notes_page_filter_and_change():
    company = generate_company("xero", seed=2, customers=80, invoices=1200, today=TODAY)
    with XeroSimulator([company], limits=ROOMY) as sim:
        api = AccountingApi(xero_client(sim, {"token": sim.issue_token()}), base_url=sim.accounting_url)
        sales = 'PaymentType=="ACCRECPAYMENT"'
        listed = api.get_payments(company.id, where=sales, page=1, page_size=1000).payments
        expected = [p for p in company.payments.values() if p.type == "ACCRECPAYMENT"]
        assert sorted(p.payment_id for p in listed) == sorted(p.id for p in expected)
        assert {p.status for p in listed} == {"AUTHORISED", "DELETED"}
        notes = api.get_credit_notes(company.id, page=1, page_size=1000).credit_notes
        applied = next(n for n in notes if n.allocations)
        model = company.credits[applied.credit_note_id]
        assert [(a.invoice.invoice_id, a.amount) for a in applied.allocations] == [
            (a.invoice_id, a.amount) for a in model.allocations
        ]
        assert applied.remaining_credit == model.remaining
        assert {n.credit_note_id for n in notes} == set(company.credits)  # supplier credits too

        since = datetime.now(UTC).replace(microsecond=0)
        victim = next(p for p in expected if p.live)
        mutations.void_payment(company, victim.id, since + timedelta(seconds=5))
        changed = api.get_payments(company.id, if_modified_since=since.replace(tzinfo=None), page=1).payments
        assert [(p.payment_id, p.status) for p in changed] == [(victim.id, "DELETED")]
        assert sim.counters.requests == {"payments": 2, "creditnotes": 1}
