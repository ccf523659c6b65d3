"""The plain facts the rules decide over, and the enums whose values are public contracts.

Callers (sync, store, mailer) build these from their own rows or records; the rules never
see an ORM row, a session or a vendor payload. All money is `Decimal`: a float is refused
at construction, so it cannot slip into a balance unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from portal_rules.contacts import normalize_email
from portal_rules.windows import WORKDAYS, DeliveryWindow

DEFAULT_REMINDER_OFFSETS: tuple[int, ...] = (-3, 0, 7, 14, 30)
DEFAULT_INVITATION_TTL_DAYS = 14

ContactKey = tuple[str, str]
"""(customer_ref, lower-case email): one contact of one company."""


class Plan(StrEnum):
    BASIC = "basic"
    PRO = "pro"
    PLUS = "plus"
    ENTERPRISE = "enterprise"


class PortalStatus(StrEnum):
    """A contact's portal status; the values appear in `portal_accounts.status`."""

    NOT_INVITED = "not_invited"
    PENDING = "pending"  # invitation sent, not accepted
    ENABLED = "enabled"  # invitation accepted
    DISABLED = "disabled"  # by an admin
    CONFLICT = "conflict"  # email shared with another customer, single-account portal


@dataclass(frozen=True, slots=True)
class CompanyPolicy:
    """The per-company settings the rules need (parsed from configuration by `sync`)."""

    plan: Plan
    timezone: str
    import_inactive_customers: bool = False
    multi_account_portal: bool = True
    auto_invite: bool = False
    invitation_ttl_days: int = DEFAULT_INVITATION_TTL_DAYS
    reminder_offsets_days: tuple[int, ...] = DEFAULT_REMINDER_OFFSETS
    delivery_days: frozenset[str] = WORKDAYS
    delivery_from_hour: int = 9
    delivery_to_hour: int = 17

    def __post_init__(self) -> None:
        # Accept the shapes configuration gives (strings, lists) and validate eagerly.
        object.__setattr__(self, "plan", Plan(self.plan))
        object.__setattr__(self, "delivery_days", frozenset(self.delivery_days))
        object.__setattr__(self, "reminder_offsets_days", tuple(self.reminder_offsets_days))
        if self.invitation_ttl_days < 1:
            raise ValueError("invitation_ttl_days must be at least 1")
        self.delivery_window  # noqa: B018 - raises ValueError for a bad window or time zone

    @property
    def delivery_window(self) -> DeliveryWindow:
        return DeliveryWindow(
            days=self.delivery_days,
            from_hour=self.delivery_from_hour,
            to_hour=self.delivery_to_hour,
            tz=self.timezone,
        )


@dataclass(frozen=True, slots=True)
class CustomerFacts:
    ref: str
    active: bool = True  # synced: the source says the customer is active (not archived)
    deleted: bool = False  # synced: gone from the source
    reminders_paused: bool = False  # local: `arsync customer pause-reminders`


@dataclass(frozen=True, slots=True)
class InvoiceFacts:
    ref: str
    customer_ref: str
    balance: Decimal
    total: Decimal
    due_date: date | None = None
    doc_number: str | None = None
    issue_date: date | None = None
    currency: str = "USD"
    source_sent: bool = False  # synced: the accounting system's own sent signal
    sent_override: bool | None = None  # local: mark-sent (True) / mark-unsent (False)
    voided: bool = False
    deleted: bool = False
    draft: bool = False  # not yet approved at the source (never live)

    def __post_init__(self) -> None:
        _require_decimal("balance", self.balance)
        _require_decimal("total", self.total)


@dataclass(frozen=True, slots=True)
class ContactFacts:
    """One email address of one customer, with its local portal state."""

    customer_ref: str
    email: str  # normalized (trimmed, lower-case) on construction
    position: int = 0  # order in the source; 0 is the primary contact
    in_source: bool = True  # still listed by the accounting system
    portal_status: PortalStatus = PortalStatus.NOT_INVITED
    admin_enabled: bool | None = None  # local: `portal enable` (True) / `portal disable` (False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "email", normalize_email(self.email))
        object.__setattr__(self, "portal_status", PortalStatus(self.portal_status))

    @property
    def primary(self) -> bool:
        return self.position == 0

    @property
    def key(self) -> ContactKey:
        return (self.customer_ref, self.email)


@dataclass(frozen=True, slots=True)
class PortalAccount:
    """A contact as the portal sees it: one row of the `portal_accounts` view."""

    customer_ref: str
    email: str  # normalized (trimmed, lower-case) on construction
    status: PortalStatus
    eligible: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "email", normalize_email(self.email))
        object.__setattr__(self, "status", PortalStatus(self.status))

    @property
    def key(self) -> ContactKey:
        return (self.customer_ref, self.email)


def _require_decimal(name: str, value: object) -> None:
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, got {type(value).__name__}")
