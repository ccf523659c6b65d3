"""Stored rows as the plain facts `portal_rules` decides over."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from portal_rules.types import InvoiceFacts


def invoice_facts(row: Mapping[str, Any]) -> InvoiceFacts:
    """An `invoices` row (a mapping of its columns) as `InvoiceFacts`."""
    return InvoiceFacts(
        ref=row["ref"], customer_ref=row["customer_ref"], balance=row["balance"], total=row["total"],
        due_date=row["due_date"], doc_number=row["doc_number"], issue_date=row["issue_date"],
        currency=row["currency"], source_sent=row["source_sent"], sent_override=row["sent_override"],
        voided=row["voided"], deleted=row["deleted"], draft=row["draft"],
    )  # fmt: skip
