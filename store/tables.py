"""The store's tables. Every row is scoped by `company_id` (the id from the config).

Synced columns are overwritten by each sync; local columns (marked "local") never are.
Upserts are keyed by (company_id, external ref).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from store.types import Money, UTCDateTime


def _money(nullable: bool = False) -> Column:
    return Column(Money(), nullable=nullable)


def _when(nullable: bool = True) -> Column:
    return Column(UTCDateTime(), nullable=nullable)


class Company(SQLModel, table=True):
    __tablename__ = "companies"
    company_id: str = Field(primary_key=True, max_length=64)
    name: str
    timezone: str = "UTC"
    kind: str  # connector kind
    # JSON: the settings the company's derived columns were last decided with (`store.rule_settings`)
    rules: str | None = Field(default=None, sa_column=Column(Text))


class CompanyConnection(SQLModel, table=True):
    """One company's link to its accounting system, with its encrypted OAuth tokens."""

    __tablename__ = "connections"
    company_id: str = Field(primary_key=True, max_length=64)
    kind: str
    status: str = "not_connected"  # not_connected | ok | reconnect_needed | rate_limited
    status_detail: str | None = Field(default=None, sa_column=Column(Text))
    access_token: str | None = Field(default=None, sa_column=Column(Text))  # encrypted
    refresh_token: str | None = Field(default=None, sa_column=Column(Text))  # encrypted
    access_expires_at: datetime | None = Field(default=None, sa_column=_when())
    refresh_expires_at: datetime | None = Field(default=None, sa_column=_when())
    refreshed_at: datetime | None = Field(default=None, sa_column=_when())
    blocked_until: datetime | None = Field(default=None, sa_column=_when())


class Lease(SQLModel, table=True):
    """A named cross-process lease (one sync per company, one token refresher per connection)."""

    __tablename__ = "leases"
    name: str = Field(primary_key=True, max_length=128)
    owner: str
    expires_at: datetime = Field(sa_column=_when(nullable=False))


class Customer(SQLModel, table=True):
    __tablename__ = "customers"
    __table_args__ = (UniqueConstraint("company_id", "ref"),)
    id: int | None = Field(default=None, primary_key=True)
    company_id: str = Field(max_length=64)
    ref: str = Field(max_length=64)
    display_name: str
    active: bool = True  # synced
    deleted: bool = False  # synced (deleted in the source or missing from a full sync)
    portal_visible: bool = True  # derived by portal_rules on every write
    reminders_paused: bool = False  # local
    source_updated_at: datetime | None = Field(default=None, sa_column=_when())
    synced_at: datetime | None = Field(default=None, sa_column=_when())
    seen_run: int | None = None  # the sync run that last read it (full-sync deletion reconciliation)


class Contact(SQLModel, table=True):
    """A customer's email address, with the local portal state of that contact."""

    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("company_id", "customer_ref", "email"),
        Index("ix_contacts_company_email", "company_id", "email"),
    )
    id: int | None = Field(default=None, primary_key=True)
    company_id: str = Field(max_length=64)
    customer_ref: str = Field(max_length=64)
    email: str  # trimmed, lower-case
    position: int = 0  # synced: 0 = primary
    valid: bool = True  # synced: syntactically valid (invalid ones are never mailed)
    in_source: bool = True  # synced: still listed by the accounting system
    portal_status: str = "not_invited"  # local: not_invited|pending|enabled|disabled|conflict
    admin_enabled: bool | None = None  # local: explicit enable (True) / disable (False)
    eligible: bool = False  # derived by portal_rules


class Invoice(SQLModel, table=True):
    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("company_id", "ref"),
        Index("ix_invoices_company_customer", "company_id", "customer_ref"),
    )
    id: int | None = Field(default=None, primary_key=True)
    company_id: str = Field(max_length=64)
    ref: str = Field(max_length=64)
    customer_ref: str = Field(max_length=64)
    doc_number: str | None = None
    issue_date: date | None = None
    due_date: date | None = None
    currency: str = Field(default="USD", max_length=8)
    total: Decimal = Field(sa_column=_money())
    balance: Decimal = Field(sa_column=_money())
    source_sent: bool = False  # synced
    voided: bool = False  # synced
    deleted: bool = False  # synced
    draft: bool = False  # synced
    sent_override: bool | None = None  # local: arsync invoice mark-sent / mark-unsent
    visible: bool = False  # derived by portal_rules (sent and live)
    source_updated_at: datetime | None = Field(default=None, sa_column=_when())
    synced_at: datetime | None = Field(default=None, sa_column=_when())
    seen_run: int | None = None  # the sync run that last read it (full-sync deletion reconciliation)


class Adjustment(SQLModel, table=True):
    """Storage of detected adjustments; portal services read the `adjustments` view."""

    __tablename__ = "adjustments_log"
    id: int | None = Field(default=None, primary_key=True)
    company_id: str = Field(max_length=64, index=True)
    invoice_ref: str = Field(max_length=64)
    previous_balance: Decimal = Field(sa_column=_money())
    new_balance: Decimal = Field(sa_column=_money())
    amount: Decimal = Field(sa_column=_money())
    detected_at: datetime = Field(sa_column=_when(nullable=False))


class SyncRun(SQLModel, table=True):
    __tablename__ = "sync_runs"
    # the runs past the retention, oldest first (`store.retention`)
    __table_args__ = (Index("ix_sync_runs_finished_at", "finished_at"),)
    id: int | None = Field(default=None, primary_key=True)
    company_id: str = Field(max_length=64, index=True)
    started_at: datetime = Field(sa_column=_when(nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=_when())
    status: str = "running"  # running | ok | failed | interrupted
    full: bool = False
    customers: int = 0
    invoices: int = 0
    payments: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    credits: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    adjustments: int = 0
    quarantined: int = 0
    api_calls: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text))
    worker: str | None = None  # the worker id that ran it (SPEC §11)


class SyncRunTotal(SQLModel, table=True):
    """What the runs pruned past the retention added up to, per company and status
    (`store.retention`): `/metrics` counts them with the runs still kept."""

    __tablename__ = "sync_run_totals"
    company_id: str = Field(primary_key=True, max_length=64)
    status: str = Field(primary_key=True)
    # years of a fleet's runs and calls: past what a 32-bit integer holds
    runs: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    api_calls: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


class SyncCursor(SQLModel, table=True):
    __tablename__ = "sync_cursors"
    company_id: str = Field(primary_key=True, max_length=64)
    cursor: str = Field(sa_column=Column(Text, nullable=False))  # JSON, owned by the connector
    updated_at: datetime = Field(sa_column=_when(nullable=False))


# a quarantined record the books have not since given in a form the rules could read
OUTSTANDING = text("resolved_at IS NULL")


class QuarantinedRecord(SQLModel, table=True):
    """Every record a sync could not read, with why (`store.quarantine` resolves them)."""

    __tablename__ = "quarantine"
    __table_args__ = (
        # what `arsync status` lists and the reminders hold back (`store.quarantine`)
        Index(
            "ix_quarantine_outstanding",
            "company_id",
            "entity",
            "ref",
            sqlite_where=OUTSTANDING,
            postgresql_where=OUTSTANDING,
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    company_id: str = Field(max_length=64, index=True)
    run_id: int | None = None
    entity: str
    ref: str | None = None
    reason: str = Field(sa_column=Column(Text, nullable=False))
    seen_at: datetime = Field(sa_column=_when(nullable=False))
    # when a later page stored the record, or a full pull ended without it: None while the
    # stored row (if any) is older than what the books hold
    resolved_at: datetime | None = Field(default=None, sa_column=_when())


class Invitation(SQLModel, table=True):
    __tablename__ = "invitations"
    id: int | None = Field(default=None, primary_key=True)
    company_id: str = Field(max_length=64)
    customer_ref: str = Field(max_length=64)
    email: str
    token_hash: str = Field(unique=True, max_length=128)  # sha256 of the token; never the token
    created_at: datetime = Field(sa_column=_when(nullable=False))
    expires_at: datetime = Field(sa_column=_when(nullable=False))
    accepted_at: datetime | None = Field(default=None, sa_column=_when())
    superseded_at: datetime | None = Field(default=None, sa_column=_when())


# an access request decided to invite, not yet issued (its partial index; `store.glance` spells it out)
PENDING = text("invite_ref IS NOT NULL AND handled_at IS NULL")


class AccessRequest(SQLModel, table=True):
    """Request-access calls, kept to rate-limit them per email, with what each decided."""

    __tablename__ = "access_requests"
    __table_args__ = (
        Index("ix_access_requests_lookup", "company_id", "email", "requested_at"),
        # the invitations a worker still has to issue (`store.access_requests.requested_invites`)
        Index(
            "ix_access_requests_pending",
            "company_id",
            sqlite_where=PENDING,
            postgresql_where=PENDING,
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    company_id: str = Field(max_length=64)
    email: str
    requested_at: datetime = Field(sa_column=_when(nullable=False))
    invite_ref: str | None = Field(default=None, max_length=64)  # the customer whose contact to invite
    handled_at: datetime | None = Field(default=None, sa_column=_when())  # None: still to invite
    # the newest invitation's id when the request was made: any later one was issued since
    newest_invitation_id: int | None = Field(default=None)


class Outbox(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("company_id", "dedupe_key"),
        Index("ix_outbox_due", "status", "not_before"),
        # the messages past the retention, oldest first (`mailer.retention`)
        Index("ix_outbox_created_at", "created_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    company_id: str = Field(max_length=64)
    kind: str  # invitation | reminder
    automatic: bool = False  # subject to the company's delivery window
    recipient: str
    subject: str
    message_id: str = Field(unique=True, max_length=255)
    payload: str = Field(sa_column=Column(Text, nullable=False))  # the rendered RFC 5322 message
    dedupe_key: str | None = Field(default=None, max_length=255)
    not_before: datetime = Field(sa_column=_when(nullable=False))
    status: str = "queued"  # queued | claimed | sending | sent | failed | in_doubt | dropped
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_column=_when())
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    claimed_by: str | None = None
    claimed_at: datetime | None = Field(default=None, sa_column=_when())
    created_at: datetime = Field(sa_column=_when(nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=_when())


class ReminderLedger(SQLModel, table=True):
    """Every (invoice, offset) ever sent or skipped: the primary key makes "at most once" hold."""

    __tablename__ = "reminder_ledger"
    __table_args__ = (Index("ix_reminder_ledger_outbox", "outbox_id"),)  # what a waiting message lists
    company_id: str = Field(primary_key=True, max_length=64)
    invoice_ref: str = Field(primary_key=True, max_length=64)
    offset_days: int = Field(primary_key=True)
    status: str  # sent | skipped
    # the message that reminds of it; None: skipped, or that message pruned (`mailer.retention`)
    outbox_id: int | None = None
    recorded_at: datetime = Field(sa_column=_when(nullable=False))
    # a sent pair: the invoice's balance its reminder was rendered with (None: skipped, or older)
    balance: Decimal | None = Field(default=None, sa_column=_money(nullable=True))


class ApiKey(SQLModel, table=True):
    """A portal-API key of one company: only its SHA-256 is kept, the key is shown once."""

    __tablename__ = "api_keys"
    id: int | None = Field(default=None, primary_key=True)
    company_id: str = Field(max_length=64, index=True)
    key_id: str = Field(unique=True, max_length=32)  # public part, named by list and revoke
    key_hash: str = Field(max_length=64)  # sha256 hex of the whole key
    created_at: datetime = Field(sa_column=_when(nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=_when())


metadata = SQLModel.metadata
