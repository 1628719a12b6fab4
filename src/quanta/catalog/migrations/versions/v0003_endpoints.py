"""Endpoints: where a product is served right now (a product served as its own unit
registers its HTTP and Flight URLs, renews a heartbeat, and deregisters when it stops).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalog_endpoints",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("product", sa.String(127), nullable=False, index=True),
        sa.Column("mesh", sa.String(63), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("http_url", sa.String(500), nullable=False),
        sa.Column("flight_url", sa.String(500)),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("quanta_version", sa.String(64), nullable=False),
        sa.Column("started_at", sa.String(32), nullable=False),
        sa.Column("heartbeat_at", sa.String(32), nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("catalog_endpoints")
