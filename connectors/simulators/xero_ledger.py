"""Xero `Payments` and `CreditNotes` JSON for the simulator's ledger records.

A Xero payment pays one invoice (a batch payment arrives as one payment per invoice); its
customer is the invoice's contact. Deleting (or voiding) a payment leaves it listed with
`Status` DELETED. Credit notes carry their `Allocations` to invoices and `RemainingCredit`;
they are AUTHORISED, PAID once fully allocated, DRAFT, VOIDED or DELETED.
"""

from __future__ import annotations

from connectors.simulators.ledger import SimAllocation, SimCredit, SimPayment
from connectors.simulators.model import SimInvoice
from connectors.simulators.xero_render import _b, _day, _money, _s, ms_date, to_ms

_CREDIT_STATUS = {"draft": "DRAFT", "voided": "VOIDED", "deleted": "DELETED"}
_BANK_ACCOUNT = '{"AccountID":"5040915e-8ce7-4177-8d08-fde416232f18","Code":"090"}'


def payment_status(payment: SimPayment) -> str:
    return "AUTHORISED" if payment.live else "DELETED"


def credit_status(credit: SimCredit) -> str:
    if credit.status == "open":
        return "PAID" if credit.remaining == 0 else "AUTHORISED"
    return _CREDIT_STATUS.get(credit.status, "DRAFT")


def render_payment(payment: SimPayment, invoice: SimInvoice | None, contact_name: str) -> bytes:
    """One Payment as GET /Payments lists it (the invoice with its contact inside)."""
    allocation = payment.allocations[0] if payment.allocations else None
    invoice_id = allocation.invoice_id if allocation else ""
    number = invoice.doc_number if invoice else ""
    invoice_type = "ACCPAY" if payment.type == "ACCPAYPAYMENT" else "ACCREC"
    paid_on, _ = _day(payment.paid_on)
    return (
        f'{{"PaymentID":{_s(payment.id)},"Date":"{paid_on}","BankAmount":{_money(payment.amount)},'
        f'"Amount":{_money(payment.amount)},"Reference":{_s(payment.reference)},"CurrencyRate":1.0000000000,'
        f'"PaymentType":{_s(payment.type)},"Status":"{payment_status(payment)}",'
        f'"UpdatedDateUTC":"{ms_date(to_ms(payment.updated_at))}","HasAccount":true,"IsReconciled":false,'
        f'"Account":{_BANK_ACCOUNT},'
        f'"Invoice":{{"Type":"{invoice_type}","InvoiceID":{_s(invoice_id)},"InvoiceNumber":{_s(number)},'
        f'"Contact":{{"ContactID":{_s(payment.customer_id)},"Name":{_s(contact_name)}}},'
        f'"CurrencyCode":{_s(payment.currency)},"HasErrors":false,"IsDiscounted":false}},'
        f'"HasValidationErrors":false}}'
    ).encode()


def render_credit_note(credit: SimCredit, invoices: dict[str, SimInvoice], contact_name: str) -> bytes:
    """One CreditNote as GET /CreditNotes lists it, with its Allocations."""
    issued, issued_text = _day(credit.issue_date)
    allocations = ",".join(_allocation(credit, a, invoices.get(a.invoice_id)) for a in credit.allocations)
    total = _money(credit.total)
    return (
        f'{{"Type":{_s(credit.type)},"CreditNoteID":{_s(credit.id)},"CreditNoteNumber":{_s(credit.doc_number)},'
        f'"Reference":"","Contact":{{"ContactID":{_s(credit.customer_id)},"Name":{_s(contact_name)}}},'
        f'"Date":"{issued}","DateString":"{issued_text}","Status":"{credit_status(credit)}",'
        f'"LineAmountTypes":"Exclusive","SubTotal":{total},"TotalTax":0.00,"Total":{total},'
        f'"UpdatedDateUTC":"{ms_date(to_ms(credit.updated_at))}","CurrencyCode":{_s(credit.currency)},'
        f'"CurrencyRate":1.0000000000,"RemainingCredit":{_money(credit.remaining)},'
        f'"Allocations":[{allocations}],"HasAttachments":false,"HasErrors":false}}'
    ).encode()


def _allocation(credit: SimCredit, allocation: SimAllocation, invoice: SimInvoice | None) -> str:
    on, _ = _day(allocation.on)
    number = invoice.doc_number if invoice else ""
    return (
        f'{{"Amount":{_money(allocation.amount)},"Date":"{on}",'
        f'"Invoice":{{"InvoiceID":{_s(allocation.invoice_id)},"InvoiceNumber":{_s(number)}}},'
        f'"IsDeleted":{_b(False)}}}'
    )


def payment_fields(payment: SimPayment) -> dict[str, str | bool]:
    """The values a `where` clause on Payments may compare against."""
    allocation = payment.allocations[0] if payment.allocations else None
    return {
        "paymentid": payment.id,
        "paymenttype": payment.type,
        "status": payment_status(payment),
        "reference": payment.reference,
        "invoice.invoiceid": allocation.invoice_id if allocation else "",
        "invoice.contact.contactid": payment.customer_id,
    }


def credit_fields(credit: SimCredit) -> dict[str, str | bool]:
    """The values a `where` clause or `Statuses` on CreditNotes may compare against."""
    return {
        "creditnoteid": credit.id,
        "type": credit.type,
        "status": credit_status(credit),
        "creditnotenumber": credit.doc_number,
        "contact.contactid": credit.customer_id,
        "currencycode": credit.currency,
    }
