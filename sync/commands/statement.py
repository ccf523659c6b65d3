"""`arsync statement COMPANY CUSTOMER_REF [--from DATE] [--to DATE] [--json] [--pdf FILE]`."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import click

from portal_rules.money import decimal_text
from sync.cli import State, WorkFailed, now_option, parse_now, pass_state
from sync.days import parse_day


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return parse_day(value)
    except ValueError as exc:
        raise click.BadParameter(f"{exc}: {value!r}", param_hint=option) from None


@click.command()
@click.argument("company")
@click.argument("customer_ref")
@click.option("--from", "start", metavar="DATE", help="First day of the period (YYYY-MM-DD).")
@click.option(
    "--to",
    "end",
    metavar="DATE",
    help="Last day of the period (YYYY-MM-DD); a past day ages the balances as they stood that day.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object; money as decimal strings.")
@click.option("--pdf", "pdf_path", type=click.Path(dir_okay=False, path_type=Path), help="Write a PDF.")
@now_option
@pass_state
def statement(
    state: State,
    company: str,
    customer_ref: str,
    start: str | None,
    end: str | None,
    as_json: bool,
    pdf_path: Path | None,
    now: str | None,
) -> None:
    """A customer's statement: opening balance, lines with running balance, closing balance, aging."""
    state.read_only = True  # reads only: works on a read-only store or replica
    from mailer.statement_doc import load_document
    from mailer.statement_pdf import render_statement, write_private
    from portal_rules.balances import company_today

    first, last = _day(start, "--from"), _day(end, "--to")
    if first and last and first > last:
        raise click.BadParameter(f"{end} is before --from {start}", param_hint="--to")
    state.company_ids((company,))
    config = state.config.company(company)
    day = company_today(parse_now(now), config.timezone)
    if first and not last and first > day:
        raise click.BadParameter(
            f"{start} is after today ({day}): give --to as well for a period ahead", param_hint="--from"
        )
    document = load_document(
        state.app().engine, company, config.name, customer_ref, day=day, start=first, end=last
    )
    if document is None:
        raise click.BadParameter(
            f"no customer {customer_ref!r} in the portal of company {company!r}", param_hint="CUSTOMER_REF"
        )
    if pdf_path is not None:
        rendered = render_statement(document)
        try:
            write_private(pdf_path, rendered.data)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:  # no such place
            raise click.BadParameter(
                f"cannot write {pdf_path}: {exc.strerror or exc}", param_hint="--pdf"
            ) from None
        except OSError as exc:  # the place exists and refused (permissions, a full disk)
            raise WorkFailed(f"cannot write {pdf_path}: {exc.strerror or exc}") from None
        if rendered.unprintable:  # the statement is right otherwise: a warning, not a failure
            click.echo(_unprintable(pdf_path, rendered.unprintable, rendered.mark), err=True)
    if as_json:
        click.echo(json.dumps(as_dict(company, document), indent=2))
    else:
        _print(document)
    if pdf_path is not None and not as_json:
        click.echo(f"PDF statement written to {pdf_path}")


def _unprintable(pdf_path: Path, chars: tuple[str, ...], mark: str, most: int = 20) -> str:
    """The characters the PDF's font has no glyph for, named (the first `most` of them)."""
    from mailer.printable import described

    named = ", ".join(map(described, chars[:most]))
    if len(chars) > most:
        named += f" and {len(chars) - most} more"
    return (
        f"warning: {pdf_path}: the PDF font (Noto Sans) cannot print {named}; "
        f"each is printed as {mark!r} (the text and --json output show them)"
    )


def as_dict(company: str, document) -> dict:
    """The statement as JSON-able data: money as the portal API writes it, dates ISO 8601. With
    several currencies the balances and aging are given per currency (`balances_by_currency`),
    the sums over them are null, and each line says its currency and its running balance in it."""
    statement = document.statement
    several = document.several_currencies
    running = (
        statement.running_in_currency() if several else [line.running_balance for line in statement.lines]
    )
    found = {
        "company": company,
        "customer_ref": document.customer_ref,
        "customer_name": document.customer_name,
        "from": statement.start.isoformat() if statement.start else None,
        "to": statement.end.isoformat() if statement.end else None,
        "opening_balance": None if several else decimal_text(statement.opening_balance),
        "lines": [
            {
                "entry_date": line.entry_date.isoformat() if line.entry_date else None,
                "kind": line.kind,
                "ref": line.ref,
                "doc_number": line.doc_number,
                **({"currency": line.currency} if several else {}),
                "amount": decimal_text(line.amount),
                "running_balance": decimal_text(balance),
            }
            for line, balance in zip(statement.lines, running, strict=True)
        ],
        "closing_balance": None if several else decimal_text(statement.closing_balance),
        "aging_on": document.aging_on.isoformat(),
        "aging": None if several else _buckets(document.aging),
    }
    if several:
        found["balances_by_currency"] = [
            {
                "currency": balance.currency,
                "opening_balance": decimal_text(balance.opening_balance),
                "closing_balance": decimal_text(balance.closing_balance),
                "aging": _buckets(aging),
            }
            for balance, aging in document.by_currency()
        ]
    return found


def _buckets(aging) -> dict[str, str]:
    return {name: decimal_text(amount) for name, amount in aging.buckets().items()}


def _print(document) -> None:
    from mailer.statement_pdf import money, period

    statement = document.statement
    described = [_described(line) for line in statement.lines]
    # as wide as the longest description (a Xero id alone is 36 characters), so columns align
    width = max([40, *(len(what) for what in described)])
    click.echo(f"{document.customer_name} ({document.customer_ref}): {period(statement)}")
    if document.several_currencies:
        _print_currencies(document, described, width)
        return
    if statement.start is not None:
        click.echo(f"{'':<10}  {'opening balance':<{width}} {'':>14} {money(statement.opening_balance):>14}")
    for line, what in zip(statement.lines, described, strict=True):
        when = line.entry_date.isoformat() if line.entry_date else "-"
        click.echo(f"{when:<10}  {what:<{width}} {money(line.amount):>14} {money(line.running_balance):>14}")
    click.echo(f"{'':<10}  {'closing balance':<{width}} {'':>14} {money(statement.closing_balance):>14}")
    click.echo(f"aging on {document.aging_on.isoformat()}: {_aging_text(document.aging)}")


def _print_currencies(document, described: list[str], width: int) -> None:
    """The lines with their currency, running balances in it, then balances and aging per currency."""
    from mailer.statement_pdf import money

    statement, per_currency = document.statement, document.by_currency()
    code = max(3, *(len(balance.currency) for balance, _ in per_currency))
    if statement.start is not None:
        for balance, _ in per_currency:
            label = f"{'opening balance':<{width}} {balance.currency:<{code}}"
            click.echo(f"{'':<10}  {label} {'':>14} {money(balance.opening_balance):>14}")
    running = statement.running_in_currency()
    for line, what, balance in zip(statement.lines, described, running, strict=True):
        when = line.entry_date.isoformat() if line.entry_date else "-"
        label = f"{what:<{width}} {line.currency or '':<{code}}"
        click.echo(f"{when:<10}  {label} {money(line.amount):>14} {money(balance):>14}")
    for balance, _ in per_currency:
        label = f"{'closing balance':<{width}} {balance.currency:<{code}}"
        click.echo(f"{'':<10}  {label} {'':>14} {money(balance.closing_balance):>14}")
    for balance, aging in per_currency:
        click.echo(f"aging on {document.aging_on.isoformat()} in {balance.currency}: {_aging_text(aging)}")


def _aging_text(aging) -> str:
    from mailer.statement_pdf import AGING_LABELS, money

    return ", ".join(f"{AGING_LABELS[k]} {money(v)}" for k, v in aging.buckets().items())


def _described(line) -> str:
    return f"{line.kind} {line.ref}" + (f" ({line.doc_number})" if line.doc_number else "")
