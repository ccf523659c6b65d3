"""`arsync demo`: the whole job on a fresh machine, with nothing but this package.

Starts the QuickBooks Online and Xero simulators with one sample company each, writes an
`arsync.toml` pointing at them (SQLite store, file mail transport), connects, syncs, lets
a few things happen in the books (a refund reopening a paid invoice, a void, a deletion,
a customer archived), syncs again, invites the eligible contacts, plans reminders, writes
the mail as .eml files, and prints what the portal now shows.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from connectors.base import Tokens
from connectors.simulators import mutations
from connectors.simulators.generator import sample_company
from connectors.simulators.model import SimCompany
from connectors.simulators.quickbooks import QuickBooksSimulator
from connectors.simulators.xero import XeroSimulator
from mailer.dispatch import dispatch
from portal_rules.balances import company_today
from store import reports
from store.credentials import DbCredentials
from store.db import upgrade
from store.owners import worker_id
from store.portal_customers import busiest_customer
from sync.app import App
from sync.config import load_config
from sync.demo_history import show_account_history
from sync.invites import invite
from sync.logging import REDACTOR, configure_logging
from sync.mail import stale_reminders, transport, window_for
from sync.reminders import plan_reminders
from sync.runner import sync_now

Echo = Callable[[str], None]
SECRETS = {"DEMO_QBO_SECRET": "", "DEMO_XERO_SECRET": ""}


def write_config(
    directory: Path, qbo: QuickBooksSimulator, xero: XeroSimulator, realm: str, tenant: str
) -> Path:
    path = directory / "arsync.toml"
    path.write_text(f"""# Written by `arsync demo`: two sample companies served by the local simulators.
[store]
url = "sqlite:///{directory / "arsync.db"}"

[log]
level = "warning"

[mail]
transport = "file"
from_address = "billing@arsync-demo.example"
file_directory = "{directory / "outbox"}"

[[companies]]
id = "acme"
name = "Acme Landscaping"
timezone = "America/New_York"
portal_url = "https://portal.acme.example"
plan = "pro"
delivery_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
delivery_from_hour = 0
delivery_to_hour = 23
[companies.connection]
kind = "quickbooks"
realm_id = "{realm}"
client_id = "{qbo.tokens.client_id}"
client_secret_env = "DEMO_QBO_SECRET"
api_base_url = "{qbo.api_url}"
token_url = "{qbo.token_url}"

[[companies]]
id = "globex"
name = "Globex Ltd"
timezone = "Europe/London"
portal_url = "https://portal.globex.example"
plan = "plus"
multi_account_portal = false
delivery_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
delivery_from_hour = 0
delivery_to_hour = 23
[companies.connection]
kind = "xero"
tenant_id = "{tenant}"
client_id = "{xero.tokens.client_id}"
client_secret_env = "DEMO_XERO_SECRET"
api_base_url = "{xero.accounting_url}"
token_url = "{xero.token_url}"
""")
    return path


def run_demo(directory: Path, echo: Echo, now: datetime | None = None, log_level: str | None = None) -> int:
    """Run the demo in `directory` (created, reset); returns an exit code."""
    now = now or datetime.now(UTC)
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    for stale in [directory / "arsync.db", *directory.glob("arsync.db-*"), *directory.glob("outbox/*.eml")]:
        stale.unlink(missing_ok=True)
    os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")  # python-quickbooks over loopback http
    books = {
        "quickbooks": sample_company("quickbooks", today=now.date()),
        "xero": sample_company("xero", today=now.date()),
    }
    with ExitStack() as stack:
        qbo = stack.enter_context(QuickBooksSimulator(books["quickbooks"]))
        xero = stack.enter_context(XeroSimulator([books["xero"]]))
        os.environ["DEMO_QBO_SECRET"] = qbo.tokens.client_secret
        os.environ["DEMO_XERO_SECRET"] = xero.tokens.client_secret
        config_path = write_config(directory, qbo, xero, books["quickbooks"].id, books["xero"].id)
        echo(f"arsync demo in {directory}")
        echo(f"  QuickBooks Online simulator at {qbo.url}, Xero simulator at {xero.url}")
        config = load_config(config_path)
        configure_logging(log_level or config.log.level, "json" if log_level else config.log.format)
        app = App.open(config, migrated=False)
        upgrade(app.engine)
        app = App.open(app.config)
        _connect(app, "acme", qbo.tokens.issue(), now)
        _connect(app, "globex", xero.tokens.issue(), now)
        ok = _sync_all(app, echo, now, "first sync (full)")
        _happenings(books, now, echo)
        qbo.touch()
        ok &= _sync_all(app, echo, now + timedelta(minutes=15), "second sync (incremental)")
        _communicate(app, echo, now + timedelta(minutes=16))
        _summary(app, echo, now)
        show_account_history(app, echo, now, directory)
        _next_steps(app, echo, config_path)
        app.close()
        return 0 if ok else 1


def _connect(app: App, company_id: str, pair, now: datetime) -> None:
    DbCredentials(app.engine, company_id, app.box, remember=REDACTOR.remember).save(
        # just issued: a refresh token lives 60 days at least (Xero's; QuickBooks' 100), on the real clock
        Tokens(
            pair.access_token,
            pair.refresh_token,
            now + timedelta(minutes=30),
            datetime.now(UTC) + timedelta(days=60),
        )
    )


def _sync_all(app: App, echo: Echo, now: datetime, title: str) -> bool:
    echo(f"\n{title}")
    ok = True
    for company in app.config.companies:
        summary = sync_now(app.engine, app.box, company, owner=worker_id(), clock=lambda: now)
        echo(f"  {summary.describe()}")
        ok &= summary.status == "ok"
    return ok


def _happenings(books: dict[str, SimCompany], now: datetime, echo: Echo) -> None:
    """A few changes in the books between the two syncs."""
    at = now + timedelta(minutes=5)
    echo("\nmeanwhile, in the books:")
    for kind, company in books.items():
        paid = [
            i for i in company.invoices.values() if i.status == "open" and i.balance == 0 and i.email_sent
        ]
        open_ = [
            i for i in company.invoices.values() if i.status == "open" and i.balance > 0 and i.email_sent
        ]
        if paid:
            mutations.refund(company, paid[0].id, Decimal("25.00"), at)
            echo(f"  {kind}: invoice {paid[0].doc_number} was paid; a 25.00 refund reopens it")
        if len(open_) >= 2:
            mutations.void(company, open_[0].id, at)
            mutations.delete(company, open_[1].id, at)
            echo(f"  {kind}: invoice {open_[0].doc_number} voided, {open_[1].doc_number} deleted")


def _communicate(app: App, echo: Echo, now: datetime) -> None:
    echo("\ninvitations and reminders")
    for company in app.config.companies:
        invited = invite(app.engine, app.config, company, now=now, all_eligible=True)
        planned = plan_reminders(app.engine, app.config, company, now=now)
        echo(
            f"  {company.id:<7} {len(invited.invited)} invitations, {len(planned.planned)} reminder emails "
            f"({planned.skipped} earlier offsets skipped as caught up)"
        )
    report = dispatch(
        app.engine,
        transport(app.config),
        now=now,
        window_for=window_for(app.config),
        worker_id=worker_id(),
        withdraw=stale_reminders(app.config),
    )
    echo(f"  {len(report.sent)} emails written to {app.config.mail.folder_shown()}")


def _summary(app: App, echo: Echo, now: datetime) -> None:
    echo("\nwhat the portal shows")
    for company in app.config.companies:
        today = company_today(now, company.timezone)
        view = reports.portal_overview(app.engine, company.id, today)
        hidden = ", ".join(f"{count} {reason}" for reason, count in sorted(view["hidden"].items())) or "none"
        echo(f"  {company.name} ({company.connection.kind}, today {today})")
        echo(
            f"    customers: {view['customers_in_portal']} in the portal of {view['customers']} stored "
            f"({view['customers_inactive']} inactive)"
        )
        echo(f"    invoices:  {view['invoices_visible']} visible of {view['invoices']}; hidden: {hidden}")
        echo(
            f"    balance due {view['balance_due']:.2f}, past due {view['past_due']:.2f} "
            f'({view["customers_past_due"]} customers show "Past Due")'
        )
        adjustments = ", ".join(f"{ref} +{amount:.2f}" for ref, amount in view["adjustments"]) or "none"
        echo(f"    adjustments: {adjustments}")
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(view["portal_statuses"].items()))
        echo(f"    portal contacts: {statuses}; {view['eligible_contacts']} eligible")


def _next_steps(app: App, echo: Echo, config_path: Path) -> None:
    """Commands to paste next: they read the store, so they work once the simulators are gone."""
    executable = Path(sys.executable).parent / "arsync"
    arsync = f"{shlex.quote(str(executable))} --config {shlex.quote(str(config_path))}"
    echo(f"\nThe store is {app.config.store.url.removeprefix('sqlite:///')}; next, try:")
    commands = ["status", "history", "portal conflicts globex"]
    customer = busiest_customer(app.engine, "acme")  # the most telling one to show
    if customer:
        commands.append(f"customer invoices acme {shlex.quote(customer)}")
        commands.append(f"statement acme {shlex.quote(customer)}")
    for command in commands:
        echo(f"  {arsync} {command}")
