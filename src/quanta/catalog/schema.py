"""The catalog's tables, as SQLAlchemy Core sees them (Alembic migrations create them).

``catalog_products`` holds one row per product (its discovery document in
``catalog_documents``, so that scans of products stay small); tags, fields,
classifications and upstream links are rows of their own so that filters, facets and the
polyseme registry are plain indexed queries. Full text lives in a SQLite FTS5 table
(``catalog_search``, rowid = product id) or a PostgreSQL ``tsvector`` column (``search``).
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table, Text

VERSION_TABLE = "catalog_version"
HEAD = "0003"
TS_CONFIG = "quanta_search"

metadata = MetaData()

products = Table(
    "catalog_products", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(127), nullable=False, unique=True),
    Column("domain", String(63), nullable=False, index=True),
    Column("name", String(63), nullable=False),
    Column("kind", String(32), nullable=False, index=True),
    Column("owner", String(63), nullable=False, index=True),
    Column("owner_email", String(320)),
    Column("description", Text, nullable=False),
    Column("version", String(64), nullable=False),
    Column("tags", Text, nullable=False),
    Column("ports", Text, nullable=False),
    Column("lifecycle", String(16), nullable=False),
    Column("release", Integer),
    Column("committed_at", String(32), nullable=False),
    Column("registered_at", String(32), nullable=False),
)

documents = Table(
    "catalog_documents", metadata,
    Column("product_id", Integer, ForeignKey("catalog_products.id", ondelete="CASCADE"),
           primary_key=True),
    Column("document", Text, nullable=False),
)

tags = Table(
    "catalog_tags", metadata,
    Column("product_id", Integer, ForeignKey("catalog_products.id", ondelete="CASCADE"),
           primary_key=True),
    Column("tag", String(127), primary_key=True, index=True),
)

fields = Table(
    "catalog_fields", metadata,
    Column("product_id", Integer, ForeignKey("catalog_products.id", ondelete="CASCADE"),
           primary_key=True),
    Column("port", String(63), primary_key=True),
    Column("field", String(63), primary_key=True),
    Column("type", String(63), nullable=False),
    Column("classification", String(32), nullable=False),
    Column("polyseme", String(63), index=True),
    Column("description", Text, nullable=False),
)

classifications = Table(
    "catalog_classifications", metadata,
    Column("product_id", Integer, ForeignKey("catalog_products.id", ondelete="CASCADE"),
           primary_key=True),
    Column("classification", String(32), primary_key=True, index=True),
)

links = Table(
    "catalog_links", metadata,
    Column("product_id", Integer, ForeignKey("catalog_products.id", ondelete="CASCADE"),
           primary_key=True),
    Column("upstream", String(127), primary_key=True, index=True),
)

CHILDREN = (documents, tags, fields, classifications, links)

state = Table(
    "catalog_state", metadata,
    Column("id", Integer, primary_key=True),
    Column("generation", Integer, nullable=False),
)
"""One row: the generation, bumped by every write, so readers know when what they hold in
memory (facet arrays) is stale."""

endpoints = Table(
    "catalog_endpoints", metadata,
    Column("id", String(64), primary_key=True),
    Column("product", String(127), nullable=False, index=True),
    Column("mesh", String(63), nullable=False),
    Column("version", String(64), nullable=False),
    Column("http_url", String(500), nullable=False),
    Column("flight_url", String(500)),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("quanta_version", String(64), nullable=False),
    Column("started_at", String(32), nullable=False),
    Column("heartbeat_at", String(32), nullable=False, index=True),
)
"""Where products are served now (``quanta serve --product``): not derived from discovery
documents, so clearing or rebuilding the index leaves them; rows whose heartbeat is older than
the resolver's window are stale and ignored."""
