"""Synthetic play-event data and one-product meshes for the benchmarks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from adbc_driver_sqlite import dbapi

DEVICES = ("ios", "android", "web", "desktop", "smart_speaker")
_START_MS = 1_780_000_000_000  # mid 2026, UTC
_WINDOW_MS = 120 * 86_400_000


def _ids(prefix: str, values: np.ndarray, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pa.array(values).cast(pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def play_events(rows: int, seed: int = 1, offset: int = 0) -> pa.Table:
    """``rows`` play events: unique string id, listener, track, UTC text time, ms, device.

    ``played_at`` is text ('YYYY-MM-DD HH:MM:SS.mmm') as an operational system would log it;
    ``offset`` shifts the ids so that successive versions of a source differ.
    """
    rng = np.random.default_rng(seed)
    played_ms = np.sort(_START_MS + rng.integers(0, _WINDOW_MS, rows))
    played = pa.array(played_ms.astype("datetime64[ms]"))
    return pa.table({
        "play_id": _ids("p", np.arange(1 + offset, rows + 1 + offset), 9),
        "listener_id": _ids("l", rng.integers(1, 100_000, rows), 6),
        "track_id": _ids("t", rng.integers(1, 50_000, rows), 6),
        "played_at": pc.strftime(played, format="%Y-%m-%d %H:%M:%S"),
        "ms_played": rng.integers(1_000, 400_000, rows, dtype=np.int64),
        "device": pa.array(DEVICES).take(pa.array(rng.integers(0, len(DEVICES), rows))),
    })


PLAYS_DDL = """CREATE TABLE plays (
    play_id TEXT NOT NULL PRIMARY KEY, listener_id TEXT NOT NULL, track_id TEXT NOT NULL,
    played_at TEXT NOT NULL, ms_played INTEGER NOT NULL, device TEXT NOT NULL)"""


def write_sqlite(path: Path, table: pa.Table, name: str = "plays") -> None:
    """A fresh SQLite database at ``path`` holding ``table`` as ``plays``."""
    path.unlink(missing_ok=True)
    with dbapi.connect(str(path), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("PRAGMA journal_mode = OFF")
        cur.fetchall()
        cur.execute("PRAGMA synchronous = OFF")
        cur.execute(PLAYS_DDL.replace("plays", name, 1))
        cur.adbc_ingest(name, table, mode="append")


def write_csv(path: Path, table: pa.Table) -> None:
    """``table`` as a plain comma-separated file with a header and no quoting."""
    options = pacsv.WriteOptions(include_header=True, quoting_style="none")
    pacsv.write_csv(table, str(path), write_options=options)


MESH_YAML = "apiVersion: quanta/v1\nname: {name}\n"

PLAYS_SPEC = """\
apiVersion: quanta/v1
name: {product}
domain: {domain}
kind: source-aligned
version: 1.0.0
owner: {{team: bench}}
description: Play events copied from an operational source, for benchmarking.
inputs:
  - {input}
transform:
  type: sql
  sql: >-
    SELECT play_id, listener_id, track_id, CAST(played_at AS TIMESTAMPTZ) AS played_at,
    ms_played, device FROM raw
outputs:
  - name: plays
    event_time: played_at
    primary_key: [play_id]
    fields:
      - {{name: play_id, type: string, nullable: false}}
      - {{name: listener_id, type: string, nullable: false}}
      - {{name: track_id, type: string}}
      - {{name: played_at, type: timestamp}}
      - {{name: ms_played, type: int64}}
      - {{name: device, type: string}}
quality:
  - {{check: not_null, columns: [play_id, listener_id]}}
  - {{check: unique, columns: [play_id]}}
"""


def plays_mesh(root: Path, input_yaml: str, domain: str = "bench", product: str = "plays"
               ) -> Path:
    """A one-product mesh under ``root``; returns the product's folder (for its sources)."""
    folder = root / "domains" / domain / product
    folder.mkdir(parents=True, exist_ok=True)
    (root / "mesh.yaml").write_text(MESH_YAML.format(name=f"bench_{product}"))
    (folder / "dataproduct.yaml").write_text(
        PLAYS_SPEC.format(domain=domain, product=product, input=input_yaml))
    return folder
