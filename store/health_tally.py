"""The customer health tally of a whole company in one set-based SQL pass.

`portal_rules.health.tally` defines the counts and sums over invoices; this computes the
same per customer in the database (no row per invoice in Python), on SQLite and PostgreSQL.
Tests hold the two equal on the same invoices.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import date

from sqlalchemy import Connection, Date, bindparam, text

from portal_rules.health import Tally, window_start
from store.types import Money

# `counted` is materialized so that each invoice's late days are worked out once: SQLite
# would otherwise substitute the expression into every aggregate that reads it (a 100k
# company's tally: 0.29 -> 0.23 s; PostgreSQL the same either way).
_TALLY = """
WITH dated AS MATERIALIZED (
    SELECT i.customer_ref, i.due_date, i.total, i.balance,
           CASE WHEN i.balance <= 0 THEN (
               SELECT MAX(a.allocated_on)
               FROM allocations a
               WHERE a.company_id = i.company_id AND a.invoice_ref = i.ref
                 AND {owner_live}
                 AND ((a.source_kind = a.owner_kind AND a.source_ref = a.owner_ref) OR {source_live})
           ) END AS cleared_on
    FROM invoices i
    WHERE i.company_id = :company AND i.visible = {true}
      AND i.due_date BETWEEN :start AND :today {only}
), counted AS MATERIALIZED (
    SELECT d.customer_ref,
           CASE WHEN d.total > 0 THEN d.total ELSE 0 END AS weight,
           CASE WHEN d.balance > 0 THEN 1 ELSE 0 END AS is_open,
           CASE WHEN d.balance <= 0 AND {cleared} IS NULL THEN 1 ELSE 0 END AS undated,
           CASE WHEN d.balance > 0 THEN {days_open}
                WHEN {cleared} IS NULL THEN 0
                ELSE {days_paid} END AS late_days
    FROM dated d
)
SELECT customer_ref,
       COUNT(*) AS invoices,
       SUM(CASE WHEN late_days > 0 THEN 1 ELSE 0 END) AS late,
       SUM(late_days) AS days,
       SUM(weight) AS weight,
       SUM(weight * late_days) AS weighted_days,
       SUM(CASE WHEN late_days > 0 THEN weight ELSE 0 END) AS late_weight,
       SUM(1 - is_open) AS paid,
       SUM(CASE WHEN is_open = 0 AND late_days > 0 THEN 1 ELSE 0 END) AS paid_late,
       SUM(CASE WHEN is_open = 0 THEN late_days ELSE 0 END) AS paid_late_days,
       SUM(undated) AS undated,
       SUM(CASE WHEN is_open = 1 AND late_days > 0 THEN 1 ELSE 0 END) AS overdue,
       MIN(CASE WHEN is_open = 1 AND late_days > 0 THEN late_days END) AS overdue_min_days,
       MAX(CASE WHEN is_open = 1 AND late_days > 0 THEN late_days END) AS overdue_max_days,
       SUM(CASE WHEN is_open = 1 AND late_days = 0 THEN 1 ELSE 0 END) AS due_today
FROM counted
GROUP BY customer_ref"""

_COLUMNS = ("customer_ref", *(f.name for f in fields(Tally)))

# The date a paid invoice was cleared: the latest of its live allocations (owner and source live).
_CLEARED = "d.cleared_on"


def _live(role: str, false: str, true: str) -> str:
    """The allocation's owner or source (`role`) is live: one probe of its own table.

    A payment's allocations are mostly its own money (source = owner): then the source is
    not looked up again. (Joining both tables for both roles was 4 probes an allocation.)
    A journal entry's credit (not synced itself) lives while its owner payment does.
    """
    kind, ref = f"a.{role}_kind", f"a.{role}_ref"
    return (
        f"CASE {kind}"
        f" WHEN 'payment' THEN EXISTS (SELECT 1 FROM payments p WHERE p.company_id = a.company_id"
        f" AND p.ref = {ref} AND p.voided = {false} AND p.deleted = {false})"
        f" WHEN 'credit' THEN EXISTS (SELECT 1 FROM credits c WHERE c.company_id = a.company_id"
        f" AND c.ref = {ref} AND c.voided = {false} AND c.deleted = {false} AND c.draft = {false})"
        f" WHEN 'journal' THEN {true}"
        " END"
    )


def _sql(dialect: str, one_customer: bool) -> str:
    if dialect == "sqlite":

        def days(later: str, earlier: str) -> str:
            return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"

        least, greatest, true, false = "min", "max", "1", "0"
    else:

        def days(later: str, earlier: str) -> str:
            return f"({later} - {earlier})"

        least, greatest, true, false = "LEAST", "GREATEST", "TRUE", "FALSE"
    today = "CAST(:today AS DATE)" if dialect != "sqlite" else ":today"
    return _TALLY.format(
        cleared=_CLEARED,
        owner_live=_live("owner", false, true),
        source_live=_live("source", false, true),
        days_open=days(today, "d.due_date"),
        days_paid=f"{greatest}(0, {days(f'{least}({_CLEARED}, {today})', 'd.due_date')})",
        true=true,
        only="AND i.customer_ref = :customer" if one_customer else "",
    )


def company_tallies(
    connection: Connection, company_id: str, today: date, customer_ref: str | None = None
) -> dict[str, Tally]:
    """customer_ref -> Tally over the company's visible invoices due in the window on `today`."""
    query = (
        text(_sql(connection.dialect.name, customer_ref is not None))
        .bindparams(bindparam("start", type_=Date()), bindparam("today", type_=Date()))
        .columns(weight=Money(), weighted_days=Money(), late_weight=Money())
    )
    params = {"company": company_id, "start": window_start(today), "today": today}
    if customer_ref is not None:
        params["customer"] = customer_ref
    if customer_ref is None and connection.dialect.name == "postgresql":
        # Once the tables have statistics, a 100k company's tally is estimated costly enough
        # for PostgreSQL to compile it (JIT): ~1 s of compiling for a 0.5 s query, every time.
        # One customer's (a scoped recompute runs up to 200 in a transaction) is far from it.
        connection.exec_driver_sql("SET LOCAL jit = off")
    result = connection.execute(query, params)
    if tuple(result.keys()) != _COLUMNS:  # the SELECT list and the dataclass must stay in step
        raise RuntimeError(f"tally columns {tuple(result.keys())} differ from {_COLUMNS}")
    return {ref: Tally(*counts) for ref, *counts in result}
