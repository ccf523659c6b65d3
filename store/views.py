"""The public SQL views read by portal services. Column names are a contract: add, never rename.

Visibility is decided by `portal_rules` when rows are written (`invoices.visible`,
`customers.portal_visible`, `contacts.eligible`), so the views only filter and sum.
Each migration that changes a view pins its own SQL version here.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from store.types import money_sql


def _views_v1(dialect: str) -> dict[str, str]:
    def money(column: str) -> str:
        return money_sql(column, dialect)

    true = "1" if dialect == "sqlite" else "TRUE"
    return {
        "portal_invoices": f"""
            SELECT i.company_id, i.customer_ref, i.ref AS invoice_ref, i.doc_number,
                   i.issue_date, i.due_date, i.currency,
                   {money("i.total")} AS total, {money("i.balance")} AS balance
            FROM invoices i
            JOIN customers c ON c.company_id = i.company_id AND c.ref = i.customer_ref
            WHERE i.visible = {true} AND c.portal_visible = {true}""",
        "portal_customers": f"""
            SELECT c.company_id, c.ref AS customer_ref, c.display_name,
                   {money("COALESCE(SUM(CASE WHEN i.visible = " + true + " THEN i.balance END), 0)")}
                       AS balance_due,
                   co.timezone
            FROM customers c
            JOIN companies co ON co.company_id = c.company_id
            LEFT JOIN invoices i ON i.company_id = c.company_id AND i.customer_ref = c.ref
            WHERE c.portal_visible = {true}
            GROUP BY c.company_id, c.ref, c.display_name, co.timezone""",
        "portal_accounts": f"""
            SELECT k.company_id, k.customer_ref, k.email, k.portal_status AS status, k.eligible
            FROM contacts k
            JOIN customers c ON c.company_id = k.company_id AND c.ref = k.customer_ref
            WHERE c.portal_visible = {true} AND k.in_source = {true}""",
        "adjustments": f"""
            SELECT a.id, a.company_id, a.invoice_ref,
                   {money("a.previous_balance")} AS previous_balance,
                   {money("a.new_balance")} AS new_balance,
                   {money("a.amount")} AS amount, a.detected_at
            FROM adjustments_log a""",
    }


VERSIONS = {1: _views_v1}


def create_views(connection: Connection, version: int) -> None:
    for name, body in VERSIONS[version](connection.dialect.name).items():
        connection.execute(text(f"DROP VIEW IF EXISTS {name}"))
        connection.execute(text(f"CREATE VIEW {name} AS {body}"))


def drop_views(connection: Connection, version: int) -> None:
    for name in VERSIONS[version](connection.dialect.name):
        connection.execute(text(f"DROP VIEW IF EXISTS {name}"))
