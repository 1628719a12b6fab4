"""One file per schema revision; Alembic loads them by path."""
