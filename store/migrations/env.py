"""Alembic environment: migrations run on the connection `store.db.upgrade` hands over."""

from alembic import context
from sqlalchemy import create_engine

import store.fleet_tables  # noqa: F401  (registers the fleet tables on the metadata)
import store.health_tables  # noqa: F401  (registers the health tables on the metadata)
import store.history.tables  # noqa: F401  (registers the account-history tables)
from store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # `alembic` run by hand: url from -x url=...
    url = context.get_x_argument(as_dictionary=True)["url"]
    with create_engine(url).begin() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
