"""Alembic migrations of the catalog's schema, run by ``quanta.catalog.store`` on open."""
