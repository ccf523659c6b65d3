"""Every migration can be undone: a store downgrades to nothing and upgrades again, whole.

An operator rolling back a release runs `alembic downgrade` to the revision that release
knew; a step that cannot be undone would strand the store.
"""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from store.db import current_revision, head_revision, make_engine, upgrade
from tests.foundation.schema import declared_indexes, migrate, migrated_indexes


def test_every_migration_downgrades_and_the_store_upgrades_again(store_url):
    engine = make_engine(store_url)
    upgrade(engine)
    migrate(engine, command.downgrade, "-1")  # the newest step alone, as a rollback of one release runs it
    previous = current_revision(engine)
    assert previous not in (None, head_revision())
    assert upgrade(engine) == (previous, head_revision())  # and the release deployed again
    migrate(engine, command.downgrade, "base")
    assert current_revision(engine) is None
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    assert inspect(engine).get_view_names() == []

    assert upgrade(engine) == (None, head_revision())
    declared = declared_indexes()
    assert set(declared) <= set(inspect(engine).get_table_names())
    assert migrated_indexes(engine, declared) == declared
    engine.dispose()
