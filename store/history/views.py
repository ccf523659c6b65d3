"""The account-history views: `portal_payments`, `portal_credits`, `portal_statement` (SPEC §9).

Column names and the statement's ordering are a public contract. The SQL reads tables
only (never another view), so a later migration may recreate the first release's views
without touching these. `statement_sql` is shared with `store.portal`, which runs it scoped
to one customer with exact (unpresented) money; changing it changes what the migrations
create (0003: version 1, 0013: version 2), so keep the older SQL behind a parameter (as
`journals`) and add a migration with a new version.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, text

from store.types import money_sql

# Kind order inside one day: what was billed, then credit given, then money received.
KIND_ORDER = {"invoice": 0, "credit": 1, "payment": 2}


def _true(dialect: str) -> str:
    return "1" if dialect == "sqlite" else "TRUE"


def _false(dialect: str) -> str:
    return "0" if dialect == "sqlite" else "FALSE"


def _live(alias: str, dialect: str, *, draft: bool) -> str:
    false = _false(dialect)
    condition = f"{alias}.voided = {false} AND {alias}.deleted = {false}"
    return condition + (f" AND {alias}.draft = {false}" if draft else "")


def order_sql(dialect: str, prefix: str = "") -> str:
    """The statement's order: entry_date (undated first), kind, then ref compared as text."""
    collate = ' COLLATE "C"' if dialect == "postgresql" else ""
    kind = " ".join(f"WHEN '{k}' THEN {n}" for k, n in KIND_ORDER.items())
    return (
        f"{prefix}entry_date IS NULL DESC, {prefix}entry_date, "
        f"CASE {prefix}kind {kind} END, {prefix}ref{collate}"
    )


_SCOPE = "AND i.company_id = :company_id AND i.customer_ref = :customer_ref"
# The same scope said of the allocations too: SQLite (no statistics) otherwise reads every
# allocation of the company to find one customer's (40 ms a statement at 10k customers,
# 0.1 ms with it). Only the scoped query changes: the view's SQL stays as migrated.
_ALLOCATIONS_SCOPE = (
    " AND a.company_id = :company_id AND a.invoice_ref IN (SELECT ref FROM invoices"
    " WHERE company_id = :company_id AND customer_ref = :customer_ref)"
)


def _owner_live(dialect: str) -> str:
    """An allocation counts only while the payment or credit that listed it is live."""
    return f"""(
        (a.owner_kind = 'payment' AND EXISTS (SELECT 1 FROM payments o
            WHERE o.company_id = a.company_id AND o.ref = a.owner_ref
                  AND {_live("o", dialect, draft=False)}))
        OR (a.owner_kind = 'credit' AND EXISTS (SELECT 1 FROM credits o
            WHERE o.company_id = a.company_id AND o.ref = a.owner_ref
                  AND {_live("o", dialect, draft=True)})))"""


def statement_sql(
    dialect: str,
    money: Callable[[str], str],
    *,
    scoped: bool = False,
    journals: bool = True,
    currency: bool = False,
) -> str:
    """The statement's SELECT; `scoped` adds `:company_id`/`:customer_ref` parameters, and
    `currency` (not a column of the view) each line's currency: the payment's or credit's
    own, a journal entry's the invoices'.

    An allocation counts while its owner and its source are live and its invoice is
    visible; payments that only apply credit are no statement line of their own. Credit
    from a QuickBooks journal entry (`source_kind = 'journal'`, not synced itself) is a
    credit line of its own per journal entry and day, ref the entry's id; `journals=False`
    is the view as migration 0003 created it, without those lines.
    """
    true = _true(dialect)
    scope = _SCOPE if scoped else ""
    allocations_scope = _ALLOCATIONS_SCOPE if scoped else ""
    owner_live = _owner_live(dialect)
    journal_date = ", a.allocated_on" if journals else ""
    # the currency column, read by `store.portal` only: the view's SQL stays as migrated
    invoice_currency, source_currency = (", i.currency", ", s.currency") if currency else ("", "")
    journal_currency = ", MIN(k.currency)" if currency else ""
    journal_lines = (
        f"""
            UNION ALL
            SELECT k.company_id, k.customer_ref, k.allocated_on, 'credit', k.source_ref,
                   CAST(NULL AS VARCHAR(64)), -SUM(k.amount){journal_currency}
            FROM counted k
            WHERE k.source_kind = 'journal'
            GROUP BY k.company_id, k.customer_ref, k.allocated_on, k.source_ref"""
        if journals
        else ""
    )
    return f"""
        WITH counted AS (
            SELECT a.company_id, i.customer_ref, a.source_kind, a.source_ref, a.amount{journal_date}{invoice_currency}
            FROM allocations a
            JOIN invoices i ON i.company_id = a.company_id AND i.ref = a.invoice_ref
            JOIN customers c ON c.company_id = i.company_id AND c.ref = i.customer_ref
            WHERE i.visible = {true} AND c.portal_visible = {true} {scope}{allocations_scope} AND {owner_live}
        ), entries AS (
            SELECT i.company_id, i.customer_ref, i.issue_date AS entry_date, 'invoice' AS kind,
                   i.ref, i.doc_number, i.total AS amount{invoice_currency}
            FROM invoices i
            JOIN customers c ON c.company_id = i.company_id AND c.ref = i.customer_ref
            WHERE i.visible = {true} AND c.portal_visible = {true} {scope}
            UNION ALL
            SELECT s.company_id, k.customer_ref, s.issue_date, 'credit', s.ref, s.doc_number,
                   -SUM(k.amount){source_currency}
            FROM counted k
            JOIN credits s ON s.company_id = k.company_id AND s.ref = k.source_ref
            WHERE k.source_kind = 'credit' AND {_live("s", dialect, draft=True)}
            GROUP BY s.company_id, k.customer_ref, s.issue_date, s.ref, s.doc_number{source_currency}
            UNION ALL
            SELECT s.company_id, k.customer_ref, s.paid_on, 'payment', s.ref, s.reference,
                   -SUM(k.amount){source_currency}
            FROM counted k
            JOIN payments s ON s.company_id = k.company_id AND s.ref = k.source_ref
            WHERE k.source_kind = 'payment' AND {_live("s", dialect, draft=False)}
                  AND s.credit_only = {_false(dialect)}
            GROUP BY s.company_id, k.customer_ref, s.paid_on, s.ref, s.reference{source_currency}{journal_lines}
        )
        SELECT e.company_id, e.customer_ref, e.entry_date, e.kind, e.ref, e.doc_number,
               {money("e.amount")} AS amount,
               {money(f"SUM(e.amount) OVER (PARTITION BY e.company_id, e.customer_ref ORDER BY {order_sql(dialect, 'e.')} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)")}
                   AS running_balance{", e.currency" if currency else ""}
        FROM entries e"""  # noqa: E501


def settlements_sql(dialect: str) -> str:
    """One customer's allocations its statement counts (`:company_id`, `:customer_ref`), each
    dated as the statement line it is part of: the payment's or credit's own date, a journal
    entry's allocation date. The same conditions as `statement_sql`, per invoice instead of
    per payment or credit, so that balances as of a day add up to the statement's."""
    true, false = _true(dialect), _false(dialect)
    return f"""
        SELECT a.invoice_ref,
               CASE a.source_kind WHEN 'payment' THEN p.paid_on WHEN 'credit' THEN r.issue_date
                    ELSE a.allocated_on END AS entry_date,
               a.amount
        FROM allocations a
        JOIN invoices i ON i.company_id = a.company_id AND i.ref = a.invoice_ref
        JOIN customers c ON c.company_id = i.company_id AND c.ref = i.customer_ref
        LEFT JOIN payments p ON a.source_kind = 'payment' AND p.company_id = a.company_id
             AND p.ref = a.source_ref AND {_live("p", dialect, draft=False)} AND p.credit_only = {false}
        LEFT JOIN credits r ON a.source_kind = 'credit' AND r.company_id = a.company_id
             AND r.ref = a.source_ref AND {_live("r", dialect, draft=True)}
        WHERE i.visible = {true} AND c.portal_visible = {true} {_SCOPE}{_ALLOCATIONS_SCOPE}
              AND {_owner_live(dialect)}
              AND (a.source_kind = 'journal' OR p.id IS NOT NULL OR r.id IS NOT NULL)"""


def _views_v1(dialect: str) -> dict[str, str]:
    return {**_views_v2(dialect), "portal_statement": statement_sql(dialect, _money(dialect), journals=False)}


def _views_v2(dialect: str) -> dict[str, str]:
    """Migration 0013: the statement shows credit applied from QuickBooks journal entries."""
    money = _money(dialect)
    true = _true(dialect)
    return {
        "portal_payments": f"""
            SELECT p.company_id, p.customer_ref, p.ref AS payment_ref, p.paid_on, p.currency,
                   {money("p.amount")} AS amount, {money("p.unapplied")} AS unapplied, p.reference
            FROM payments p
            JOIN customers c ON c.company_id = p.company_id AND c.ref = p.customer_ref
            WHERE c.portal_visible = {true} AND {_live("p", dialect, draft=False)}
                  AND p.credit_only = {_false(dialect)}""",
        "portal_credits": f"""
            SELECT r.company_id, r.customer_ref, r.ref AS credit_ref, r.doc_number, r.issue_date,
                   r.currency, {money("r.total")} AS total, {money("r.remaining")} AS remaining
            FROM credits r
            JOIN customers c ON c.company_id = r.company_id AND c.ref = r.customer_ref
            WHERE c.portal_visible = {true} AND {_live("r", dialect, draft=True)}""",
        "portal_statement": statement_sql(dialect, money),
    }


def _money(dialect: str) -> Callable[[str], str]:
    return lambda column: money_sql(column, dialect)


VERSIONS = {1: _views_v1, 2: _views_v2}
LATEST = 2


def create_views(connection: Connection, version: int) -> None:
    for name, body in VERSIONS[version](connection.dialect.name).items():
        connection.execute(text(f"DROP VIEW IF EXISTS {name}"))
        connection.execute(text(f"CREATE VIEW {name} AS {body}"))


def drop_views(connection: Connection, version: int) -> None:
    for name in VERSIONS[version](connection.dialect.name):
        connection.execute(text(f"DROP VIEW IF EXISTS {name}"))
