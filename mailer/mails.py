"""The inputs of the mailer: plain frozen dataclasses, built by the caller from the store.

Nothing here knows about ORM rows or sessions; `render` turns these into messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailer.statement_doc import StatementDocument


@dataclass(frozen=True, slots=True)
class Sender:
    """Who a company's mail comes from, and where its template overrides live.

    `company_name` becomes the From display name; `from_address` is the configured
    `[mail] from_address`. `template_dir` ("" = none) is searched before the packaged
    templates. `brand_color` and `logo_url` ("" = none) style the default HTML templates.
    """

    company_id: str
    company_name: str
    from_address: str
    template_dir: str = ""
    brand_color: str = ""
    logo_url: str = ""


@dataclass(frozen=True, slots=True)
class InvitationMail:
    """A portal invitation to one contact; `token` is the raw (unhashed) token."""

    customer_name: str
    email: str
    portal_url: str
    token: str
    ttl_days: int


@dataclass(frozen=True, slots=True)
class ReminderLine:
    """One invoice listed in a reminder; `balance` is what the accounting system reports."""

    doc_number: str
    due_date: date
    balance: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class ReminderMail:
    """One reminder email per customer listing every invoice due for a reminder today.

    `today` is the company's local date; a line is marked "Past Due" when its due date is
    before `today` and its balance is positive (the portal's definition).
    """

    customer_name: str
    recipients: tuple[str, ...]
    portal_url: str
    items: tuple[ReminderLine, ...]
    today: date
    statement: StatementDocument | None = None  # attached as a PDF (company setting attach_statement)
