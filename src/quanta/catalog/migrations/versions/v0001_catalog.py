"""The catalog: products, tags, fields, classifications, links, full-text search and
the generation counter.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# English stemming without stop words, so that no word of a search is silently dropped
# (SQLite's porter tokenizer drops none either).
_TS_CONFIG = """
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_ts_dict WHERE dictname = 'quanta_english') THEN
    CREATE TEXT SEARCH DICTIONARY quanta_english (TEMPLATE = snowball, LANGUAGE = english);
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = 'quanta_search') THEN
    CREATE TEXT SEARCH CONFIGURATION quanta_search (COPY = simple);
    ALTER TEXT SEARCH CONFIGURATION quanta_search
      ALTER MAPPING FOR asciiword, word, asciihword, hword, hword_part, hword_asciipart
      WITH quanta_english;
  END IF;
END
$$;
"""


def _child(name: str, *columns: sa.Column) -> None:
    op.create_table(
        name,
        sa.Column("product_id", sa.Integer,
                  sa.ForeignKey("catalog_products.id", ondelete="CASCADE"), primary_key=True),
        *columns,
    )


def upgrade() -> None:
    op.create_table(
        "catalog_products",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(127), nullable=False, unique=True),
        sa.Column("domain", sa.String(63), nullable=False, index=True),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False, index=True),
        sa.Column("owner", sa.String(63), nullable=False, index=True),
        sa.Column("owner_email", sa.String(320)),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("ports", sa.Text, nullable=False),
        sa.Column("lifecycle", sa.String(16), nullable=False),
        sa.Column("release", sa.Integer),
        sa.Column("committed_at", sa.String(32), nullable=False),
        sa.Column("registered_at", sa.String(32), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
    )
    _child("catalog_tags", sa.Column("tag", sa.String(127), primary_key=True, index=True))
    _child("catalog_fields",
           sa.Column("port", sa.String(63), primary_key=True),
           sa.Column("field", sa.String(63), primary_key=True),
           sa.Column("type", sa.String(63), nullable=False),
           sa.Column("classification", sa.String(32), nullable=False),
           sa.Column("polyseme", sa.String(63), index=True),
           sa.Column("description", sa.Text, nullable=False))
    _child("catalog_classifications",
           sa.Column("classification", sa.String(32), primary_key=True, index=True))
    _child("catalog_links", sa.Column("upstream", sa.String(127), primary_key=True, index=True))
    state = op.create_table("catalog_state", sa.Column("id", sa.Integer, primary_key=True),
                            sa.Column("generation", sa.Integer, nullable=False))
    op.bulk_insert(state, [{"id": 1, "generation": 0}])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_TS_CONFIG)
        op.add_column("catalog_products", sa.Column("search", postgresql.TSVECTOR))
        op.create_index("ix_catalog_products_search", "catalog_products", ["search"],
                        postgresql_using="gin")
    else:
        op.execute("CREATE VIRTUAL TABLE catalog_search USING fts5(name, tags, owner, "
                   "description, fields, tokenize = 'porter unicode61 remove_diacritics 2')")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TABLE catalog_search")
    for name in ("catalog_state", "catalog_links", "catalog_classifications",
                 "catalog_fields", "catalog_tags", "catalog_products"):
        op.drop_table(name)
