"""Discovery documents in a table of their own, so that scans of products stay small.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalog_documents",
        sa.Column("product_id", sa.Integer,
                  sa.ForeignKey("catalog_products.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("document", sa.Text, nullable=False),
    )
    op.execute("INSERT INTO catalog_documents (product_id, document) "
               "SELECT id, document FROM catalog_products")
    # SQLite (3.35 and later) and PostgreSQL both drop a plain column in place
    op.execute("ALTER TABLE catalog_products DROP COLUMN document")


def downgrade() -> None:
    op.add_column("catalog_products", sa.Column("document", sa.Text, nullable=True))
    op.execute("UPDATE catalog_products SET document = (SELECT d.document FROM "
               "catalog_documents d WHERE d.product_id = catalog_products.id)")
    op.drop_table("catalog_documents")
