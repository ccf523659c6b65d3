"""0017: the quarantine rows kept before it are resolved where the store shows the record was
read since; only what may still be unreadable stays outstanding (`store.quarantine`)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from store.db import make_engine, upgrade
from tests.foundation.schema import migrate

BEFORE = [
    "INSERT INTO customers (company_id, ref, display_name, active, deleted, portal_visible, reminders_paused,"
    " seen_run) VALUES ('acme', 'C1', 'Zoë', {t}, {f}, {t}, {f}, 7)",
    "INSERT INTO invoices (company_id, ref, customer_ref, currency, total, balance, source_sent, voided,"
    " deleted, draft, visible, seen_run) VALUES ('acme', '{ref}', 'C1', 'USD', 0, 0, {t}, {f}, {f}, {f},"
    " {t}, {seen})",
]
QUARANTINED = [  # (run, entity, ref)
    (3, "invoices", "I1"),  # read again by run 5: resolved
    (6, "invoices", "I2"),  # stored row last read by run 5, before it: outstanding
    (2, "invoices", "I3"),  # quarantined again by run 4 (the next row): resolved
    (4, "invoices", "I3"),  # the newest row of I3, never stored since: outstanding
    (8, "customers", "C1"),  # the customer, last read by run 7: outstanding
    (8, "invoices", None),  # no ref: cannot be matched, taken as resolved
    (9, "invoices", "I9"),  # never stored: outstanding
]


def test_rows_the_store_shows_read_since_are_resolved_the_others_stay_outstanding(store_url):
    engine = make_engine(store_url)
    migrate(engine, command.upgrade, "0016_schedule_abandoned_runs")
    sqlite = engine.dialect.name == "sqlite"
    flags = {"t": "1" if sqlite else "TRUE", "f": "0" if sqlite else "FALSE"}
    with engine.begin() as connection:
        connection.execute(text(BEFORE[0].format(**flags)))
        for ref, seen in (("I1", 5), ("I2", 5), ("I3", 1)):
            connection.execute(text(BEFORE[1].format(ref=ref, seen=seen, **flags)))
        for run, entity, ref in QUARANTINED:
            connection.execute(
                text(
                    "INSERT INTO quarantine (company_id, run_id, entity, ref, reason, seen_at)"
                    " VALUES ('acme', :run, :entity, :ref, 'unreadable', '2026-12-01 00:00:00')"
                ),
                {"run": run, "entity": entity, "ref": ref},
            )

    upgrade(engine)

    with engine.connect() as connection:
        outstanding = connection.execute(
            text("SELECT run_id, entity, ref FROM quarantine WHERE resolved_at IS NULL ORDER BY id")
        ).all()
    assert [tuple(row) for row in outstanding] == [
        (6, "invoices", "I2"),
        (4, "invoices", "I3"),
        (8, "customers", "C1"),
        (9, "invoices", "I9"),
    ]
    engine.dispose()
