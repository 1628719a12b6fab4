"""Alembic environment: runs on the connection ``quanta.catalog.store`` hands over.

No alembic.ini is needed: the store builds the Config in code, opens a transaction holding
the migration lock, and passes its connection in ``config.attributes["connection"]``.
"""

from __future__ import annotations

from alembic import context

from quanta.catalog.schema import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, version_table=VERSION_TABLE,
                  transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
