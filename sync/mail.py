"""Wiring between decisions and the mailer: senders, transports, windows, stale reminders,
invitation mail."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection

from mailer.mails import InvitationMail, Sender
from mailer.outbox import Rendered, enqueue_keyed, outbox_row, rendered
from mailer.render import render_invitation
from mailer.smtp import SmtpTransport
from mailer.transports import FileTransport, Transport
from mailer.uninvite import INVITATION_KEY
from mailer.withdraw import Withdrawal
from portal_rules.invitations import IssuedInvitation
from portal_rules.windows import DeliveryWindow
from sync.config import CompanyConfig, Config
from sync.logging import REDACTOR
from sync.settings import company_policy


def sender(config: Config, company: CompanyConfig) -> Sender:
    return Sender(
        company.id,
        company.name,
        config.mail.from_address,
        company.template_dir,
        brand_color=company.brand_color,
        logo_url=company.logo_url,
    )


def transport(config: Config) -> Transport:
    """The configured transport (`file` writes .eml files, in `file_directory`, which
    `load_config` made absolute from the configuration file's folder; `smtp` delivers)."""
    mail = config.mail
    if mail.transport == "file":
        return FileTransport(Path(mail.file_directory))
    password = mail.smtp_password()
    REDACTOR.remember(password)  # as every other secret: whatever prints it, the log shows ***
    return SmtpTransport(mail.smtp_host, mail.smtp_port, mail.smtp_security, mail.smtp_username, password)


def window_for(config: Config) -> Callable[[str], DeliveryWindow | None]:
    windows = {c.id: company_policy(c).delivery_window for c in config.companies}
    return windows.get


def stale_reminders(config: Config) -> Withdrawal:
    """The dispatcher's `withdraw`: reminders whose invoices all stopped being due while they
    waited for the window, invitations that can no longer be accepted, and automatic
    invitations of a company whose `auto_invite` is off now are dropped unsent
    (`mailer.withdraw`)."""
    imports = {c.id: company_policy(c).import_inactive_customers for c in config.companies}
    zones = {c.id: c.timezone for c in config.companies}
    auto = {c.id: c.auto_invite for c in config.companies}
    offsets = {c.id: company_policy(c).reminder_offsets_days for c in config.companies}
    # a company the configuration no longer holds sends no automatic mail at all: left as it is
    return Withdrawal(
        lambda company: imports.get(company, False),
        zones.get,
        lambda company: auto.get(company, True),
        offsets.get,
    )


def invitation_enqueuer(
    config: Config, company: CompanyConfig, *, now: datetime, automatic: bool
) -> InvitationPost:
    """A callable putting an invitation mail in the outbox, on the caller's connection.

    Manual (`arsync invite`) and transactional (request access) invitations ignore
    delivery windows; automatic ones (`auto_invite`) wait for them.
    """
    return InvitationPost(sender(config, company), company, now, automatic)


@dataclass(frozen=True, slots=True)
class InvitationPost:
    """A company's invitation mail: rendered and serialized (no store needed), then put in the
    outbox on the caller's connection. Called, it does both; `arsync invite` renders a batch
    before it opens the transaction that records it, so the store's write lock is not held
    while messages are composed (SQLite has one writer: a webhook or a portal request waits
    for it)."""

    from_: Sender
    company: CompanyConfig
    now: datetime
    automatic: bool

    def __call__(self, connection: Connection, issued: IssuedInvitation, customer_name: str) -> int | None:
        message = self.render(issued, customer_name)
        return self.enqueue(connection, [(issued, message)]).get(invitation_key(issued))

    def render(self, issued: IssuedInvitation, customer_name: str) -> Rendered:
        """The invitation's message, serialized as the outbox stores it (a batch of them holds
        strings, not `EmailMessage` trees)."""
        record, company = issued.record, self.company
        mail = InvitationMail(
            customer_name, record.email, company.portal_url, issued.token, company.invitation_ttl_days
        )
        return rendered(render_invitation(self.from_, mail, key=invitation_key(issued), now=self.now))

    def enqueue(
        self, connection: Connection, messages: list[tuple[IssuedInvitation, Rendered]]
    ) -> dict[str, int]:
        """Queue each issued invitation's message; the outbox id of each, by its dedupe key
        (`invitation:` and the token's hash)."""
        rows = [
            outbox_row(
                message,
                company_id=self.company.id,
                kind="invitation",
                automatic=self.automatic,
                dedupe_key=invitation_key(issued),
                not_before=self.now,
            )
            for issued, message in messages
        ]
        return enqueue_keyed(connection, rows)


def invitation_key(issued: IssuedInvitation) -> str:
    """The dedupe key of an invitation's message: it names the invitation it carries."""
    return f"{INVITATION_KEY}{issued.record.token_hash}"
