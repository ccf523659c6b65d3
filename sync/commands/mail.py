"""Communication: invitations, request access, reminder planning and the outbox."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import click

from mailer import admin as outbox_admin
from mailer.dispatch import dispatch
from mailer.environment import TemplateProblem, check_templates
from store import portal as portal_api
from store.owners import worker_id
from sync.checks import check_portal_plan, check_portal_url, check_template_dirs
from sync.cli import LazyGroup, State, WorkFailed, now_option, parse_now, pass_state
from sync.interrupt import stop_on_interrupt
from sync.invites import invite as invite_contacts
from sync.mail import invitation_enqueuer, stale_reminders, transport, window_for
from sync.reminders import ReminderReport, plan_reminders
from sync.settings import company_policy

OUTBOX_ID = click.IntRange(1, 2**63 - 1)  # the ids a store can hold: anything else names no message


def deliver_now(
    state: State, now, *, answer_only: bool = False, clock=None, dispatching: bool = False
) -> None:
    """Hand what is due to the mail server now (manual and transactional mail ignore windows).

    With `answer_only` (request access) nothing but the caller's answer is printed and the
    exit code does not depend on the mail: both must be identical whether or not the email
    matched (no account enumeration). A refusal stays in the outbox for `arsync status`.

    Ctrl-C lets the messages already handed to the server finish and have their answers
    recorded (else they would later count as in doubt); the rest stay queued (exit 1).
    A mail server that cannot be reached is said on stderr; it fails `mail dispatch`
    (`dispatching`), whose only work is delivering, and not `invite`, whose invitations
    are issued all the same and go once the server answers.
    """
    with stop_on_interrupt("the messages already handed to the mail server") as stop:
        report = _dispatch(state, now, stop=stop, clock=clock)
    if answer_only:
        return
    partly = f" ({len(report.partly)} of them delivered to their other recipients)" if report.partly else ""
    withdrawn = f", {len(report.withdrawn)} reminder(s) withdrawn: no longer due" if report.withdrawn else ""
    for taken, why in (
        (report.replanned, "to plan again without invoices no longer due"),
        (report.merged, "to plan again as one email per customer"),
        (report.rebalanced, "to plan again with today's balances"),
        (report.readdressed, "to plan again to the customer's current addresses"),
        (report.redated, "withdrawn: an invoice is due later now"),
        (report.held, "withdrawn: an invoice or its customer is quarantined (`arsync status`)"),
        (report.revoked, "invitation(s) withdrawn: can no longer be accepted"),
        (report.unwanted, "automatic invitation(s) withdrawn: auto_invite is off"),
    ):
        if taken:
            withdrawn += f", {len(taken)} {why}"
    handed = f"{len(report.sent)} sent"
    mail = state.config.mail
    if mail.transport == "file":  # nothing reached a mail server: say where it went
        handed = f"{len(report.sent)} written to {mail.folder_shown()} (file transport, not emailed)"
    click.echo(
        f"mail: {handed}, {len(report.failed)} failed, {len(report.retrying)} to retry{partly}{withdrawn}"
    )
    if dispatching and (report.replanned or report.merged or report.rebalanced or report.readdressed):
        # Run from cron with a daily `reminders plan`, they waited for the next day's planning
        click.echo(
            "Note: the reminders taken back go once `arsync reminders plan` runs again "
            "(`arsync run` plans every minute); run it now to send them in this window.",
            err=True,
        )
    if report.stopped and report.left:  # stopped once the last message had begun: all done
        raise WorkFailed(f"stopped: {report.left} message(s) stay queued for the next `arsync mail dispatch`")
    if report.unreachable:
        said = (
            f"the mail server could not be reached ({report.unreachable}); "
            f"{len(report.retrying)} message(s) stay queued and are tried again every few minutes"
        )
        if dispatching:
            raise WorkFailed(said)
        click.echo(f"Warning: {said}", err=True)
    if report.failed:
        raise WorkFailed(f"{len(report.failed)} message(s) not delivered; why is in `arsync status`")


def wall_clock(now: str | None) -> Callable[[], datetime] | None:
    """The dispatcher's clock for a command's `--now`: none with it (the whole run is at that
    instant); without it the real one, read again between batches and as each automatic
    message leaves. Any command's run sends every automatic message due, not only its own
    mail: without the clock, an invitation sent at 17:59 went on sending the reminders
    waiting for the window after it closed at 18:00 (SPEC §2)."""
    return None if now else (lambda: parse_now(None))


def _dispatch(state: State, now, **options):
    """`mailer.dispatch.dispatch` over this configuration's store, transport and windows."""
    return dispatch(
        state.app().engine,
        transport(state.config),  # `file_directory` is anchored to the config file at load
        now=now,
        window_for=window_for(state.config),
        withdraw=stale_reminders(state.config),
        worker_id=worker_id(),
        **options,
    )


@click.command()
@click.argument("company")
@click.option("--customer", "customer_ref", help="The customer's ref in the accounting system.")
@click.option("--email", help="Only this contact of the customer.")
@click.option("--all-eligible", is_flag=True, help="Every eligible contact not yet enabled (all pages).")
@now_option
@pass_state
def invite(
    state: State,
    company: str,
    customer_ref: str | None,
    email: str | None,
    all_eligible: bool,
    now: str | None,
) -> None:
    """Manual portal invitations, sent at once (delivery windows do not apply)."""
    if all_eligible == bool(customer_ref):
        raise click.UsageError("give either --customer REF (optionally with --email) or --all-eligible")
    if email and not customer_ref:
        raise click.UsageError("--email goes with --customer")
    state.company_ids((company,))
    state.require_secrets([], smtp=True)
    check_template_dirs(state.config, [company])
    check_portal_url(state.config, company)
    check_portal_plan(state.config, company)
    at = parse_now(now)
    try:
        report = invite_contacts(
            state.app().engine,
            state.config,
            state.config.company(company),
            now=at,
            customer_ref=customer_ref,
            email=email,
            all_eligible=all_eligible,
        )
    except TemplateProblem as exc:
        raise WorkFailed(f"invitations not sent: {company} ({exc})") from None
    if customer_ref and not report.invited and not report.not_invitable and not report.changed:
        raise _nobody(state, company, customer_ref, email)
    for ref, address, why in report.not_invitable:
        click.echo(f"not invited: customer {ref} {address}: {why}")
    for ref, address in report.changed:
        click.echo(f"not invited: customer {ref} {address}: its portal status changed meanwhile")
    click.echo(f"{company}: {len(report.invited)} invitation(s) queued")
    if report.invited:
        deliver_now(state, at, clock=wall_clock(now))
    elif not all_eligible:
        raise WorkFailed("nobody to invite")


def _nobody(state: State, company: str, customer_ref: str, email: str | None) -> click.BadParameter:
    """Why `--customer` named nobody to invite: no such customer, one the portal does not show
    under the company's settings now (its contacts exist, but an inactive or deleted customer
    has no portal), or no such contacts."""
    from portal_rules.customers import portal_visible_customer
    from store.portal_customers import stored_customer

    customer = stored_customer(state.app().engine, company, customer_ref)
    if customer is None:
        return click.BadParameter(
            f"company {company!r} has no customer {customer_ref!r}", param_hint="'--customer'"
        )
    if not portal_visible_customer(customer, state.config.company(company).import_inactive_customers):
        why = (
            "deleted in the books"
            if customer.deleted
            else "inactive, and inactive customers are not imported"
        )
        problem = f"customer {customer_ref!r} of company {company!r} is not in the portal ({why})"
        return click.BadParameter(problem, param_hint="'--customer'")
    contact = f"contact {email.strip().lower()!r}" if email else "contacts"
    problem = f"company {company!r} has no {contact} for customer {customer_ref!r}"
    return click.BadParameter(problem, param_hint="'--email'" if email else "'--customer'")


@click.command("request-access")
@click.argument("company")
@click.argument("email")
@now_option
@pass_state
def portal_request_access(state: State, company: str, email: str, now: str | None) -> None:
    """The portal's request-access call: invites a matching eligible contact at once."""
    state.company_ids((company,))
    state.require_secrets([], smtp=True)
    check_template_dirs(state.config, [company])
    check_portal_url(state.config, company)
    config = state.config.company(company)
    try:  # before anything depends on the email: a broken template must not tell matches apart
        check_templates(config.template_dir, "invitation")
    except TemplateProblem as exc:
        raise WorkFailed(f"invitations not sent: {company} ({exc})") from None
    at = parse_now(now)
    answer = portal_api.request_access(
        state.app().engine,
        company,
        email,
        policy=company_policy(config),
        portal_url=config.portal_url,
        now=at,
        enqueue=invitation_enqueuer(state.config, config, now=at, automatic=False),
    )
    click.echo(answer)
    deliver_now(state, at, answer_only=True, clock=wall_clock(now))


@click.group(cls=LazyGroup)
def reminders() -> None:
    """Invoice reminders."""


@reminders.command("plan")
@click.argument("companies", nargs=-1)
@click.option("--dry-run", is_flag=True, help="Print what would be enqueued and when; change nothing.")
@now_option
@pass_state
def reminders_plan(state: State, companies: tuple[str, ...], dry_run: bool, now: str | None) -> None:
    """Enqueue the reminders due now (sent by `arsync mail dispatch` inside the delivery window).

    A company whose templates are broken is reported and the others are planned; the
    command then fails (exit 1) naming it, its template file and line.
    """
    at = parse_now(now)
    wanted = state.company_ids(companies)
    check_template_dirs(state.config, wanted)
    failed = []
    for company_id in wanted:
        try:
            report = plan_reminders(
                state.app().engine, state.config, state.config.company(company_id), now=at, dry_run=dry_run
            )
        except TemplateProblem as exc:
            failed.append(f"{company_id} ({exc})")
            continue
        _print_plan(report)
    if failed:
        raise WorkFailed(f"reminders not planned: {'; '.join(failed)}")


def _print_plan(report: ReminderReport) -> None:
    verb = "would enqueue" if report.dry_run else "enqueued"
    click.echo(
        f"{report.company}: {verb} {len(report.planned)} reminder email(s); "
        f"{report.skipped} earlier offset(s) skipped"
    )
    for item in report.planned:
        listed = ", ".join(f"{doc} ({offset:+d}d)" for doc, offset in item.invoices)
        click.echo(
            f"  {item.customer_ref} -> {', '.join(item.recipients)} at {item.send_at.isoformat()}: {listed}"
        )
    for ref in report.no_recipient:
        click.echo(f"  {ref}: no valid email address, nothing sent")
    if report.held:
        held = " and ".join(
            f"{n} {entity[:-1]}(s)" for entity, n in sorted(report.held.items(), reverse=True)
        )
        click.echo(
            f"  held: the reminders of {held} whose latest version in the books could not be read "
            "(quarantined: `arsync status`), until a sync reads them"
        )


@click.group(cls=LazyGroup)
def mail() -> None:
    """The outbox."""


@mail.command("dispatch")
@click.option("--dry-run", is_flag=True, help="Print what would be sent and when; change nothing.")
@now_option
@pass_state
def mail_dispatch(state: State, dry_run: bool, now: str | None) -> None:
    """Deliver the outbox messages whose time (and window) has come."""
    at = parse_now(now)
    if not dry_run:
        state.require_secrets([], smtp=True)
        deliver_now(state, at, clock=wall_clock(now), dispatching=True)
        return
    report = _dispatch(state, at, dry_run=True)
    for p in report.planned:
        how = "automatic" if p.automatic else "manual"
        click.echo(
            f"#{p.id} {p.company_id} {p.kind} ({how}) to {p.recipient}: {p.send_at.isoformat()} [{p.reason}]"
        )
    click.echo(f"{len(report.planned)} message(s) queued")


@mail.command("resend")
@click.argument("company")
@click.argument("outbox_id", type=OUTBOX_ID)
@pass_state
def mail_resend(state: State, company: str, outbox_id: int) -> None:
    """Queue a message in doubt (or failed) again: the admin checked it did not arrive."""
    state.company_ids((company,))
    try:
        outbox_admin.resend(state.app().engine, company, outbox_id)
    except outbox_admin.UnknownMessage as exc:
        raise click.BadParameter(str(exc), param_hint="OUTBOX_ID") from None
    except outbox_admin.OutboxError as exc:
        raise WorkFailed(str(exc)) from None
    click.echo(f"message {outbox_id} queued again")


@mail.command("drop")
@click.argument("company")
@click.argument("outbox_id", type=OUTBOX_ID)
@pass_state
def mail_drop(state: State, company: str, outbox_id: int) -> None:
    """Drop a message in doubt (or failed): it will never be sent."""
    state.company_ids((company,))
    try:
        outbox_admin.drop(state.app().engine, company, outbox_id)
    except outbox_admin.UnknownMessage as exc:
        raise click.BadParameter(str(exc), param_hint="OUTBOX_ID") from None
    except outbox_admin.OutboxError as exc:
        raise WorkFailed(str(exc)) from None
    click.echo(f"message {outbox_id} dropped")
