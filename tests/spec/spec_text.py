"""A valid dataproduct.yaml that spec tests edit line by line."""

from __future__ import annotations

# A valid dataproduct.yaml; tests change one line (by number) and expect that line back.
VALID = """\
apiVersion: quanta/v1
name: orders
domain: shop
kind: source-aligned
version: 1.0.0
owner: {team: shop, email: shop@example.com}
description: Orders as the shop recorded them.
inputs:
  - {name: raw_orders, type: file, path: orders.csv}
transform: {type: sql, sql: SELECT * FROM raw_orders}
outputs:
  - name: orders
    event_time: ordered_at
    primary_key: [order_id]
    fields:
      - {name: order_id, type: string, nullable: false}
      - {name: amount, type: 'decimal(10,2)', unit: EUR}
      - {name: ordered_at, type: timestamp}
quality:
  - {check: not_null, columns: [order_id]}
slos: {freshness: 1d}
"""


def edit(text: str, line: int, old: str, new: str) -> str:
    """``text`` with line number ``line`` (1-based, which must read ``old``) replaced."""
    lines = text.splitlines()
    assert lines[line - 1] == old, lines[line - 1]
    lines[line - 1:line] = new.splitlines() if new else []
    return "\n".join(lines) + "\n"
