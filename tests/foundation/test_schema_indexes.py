"""The migrations build the indexes the table classes declare, no more and no fewer.

The writers pay for every index on every row, and the readers rely on the declared ones: an
index dropped from a class but left in a migration (or the reverse) would go unnoticed.
"""

from __future__ import annotations

from tests.foundation.schema import declared_indexes, migrated_indexes


def test_migrated_indexes_are_the_declared_ones(engine):
    declared = declared_indexes()
    assert migrated_indexes(engine, declared) == declared


def test_allocations_are_indexed_by_invoice_only(engine):
    # read by invoice (statements, the health tally) and by owner (the unique key); migration
    # 0009 dropped the index by source, which nothing read and every allocation paid for
    assert migrated_indexes(engine, ["allocations"]) == {
        "allocations": {"ix_allocations_company_invoice": ("company_id", "invoice_ref")}
    }
