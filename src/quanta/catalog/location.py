"""Where a mesh's catalog lives: its URL, and setting a damaged SQLite file aside."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from quanta.errors import QuantaError
from quanta.spec.mesh import Mesh

URL_ENV = "QUANTA_CATALOG_URL"


def catalog_url(mesh: Mesh) -> str:
    """``QUANTA_CATALOG_URL``, else mesh.yaml's ``catalog.url``, else SQLite in storage.

    A relative SQLite path in mesh.yaml is relative to mesh.yaml; ``postgresql://`` means
    ``postgresql+psycopg://``.
    """
    configured = os.environ.get(URL_ENV) or mesh.spec.catalog.url
    if not configured:
        return f"sqlite:///{mesh.storage_root / 'catalog.db'}"
    url = parse_url(configured)
    database = url.database or ""
    if url.get_backend_name() == "sqlite" and database and not Path(database).is_absolute():
        url = url.set(database=str(mesh.root / database))
    return url.render_as_string(hide_password=False)


def parse_url(raw: str) -> URL:
    """A catalog URL checked: SQLite or PostgreSQL (through psycopg 3)."""
    try:
        url = make_url(raw)
    except ArgumentError:
        raise QuantaError("the catalog URL does not parse", code="catalog_url_invalid",
                          hint=f"set {URL_ENV} or catalog.url to sqlite:///PATH or "
                          "postgresql+psycopg://USER@HOST/DB") from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise QuantaError(f"the catalog cannot use {url.get_backend_name()}",
                          code="catalog_url_invalid",
                          hint="use SQLite (sqlite:///PATH) or PostgreSQL "
                          "(postgresql+psycopg://USER@HOST/DB)")
    return url


def set_aside_damaged(url: str) -> Path | None:
    """When ``url`` is a SQLite file that is not a sound database, rename it (dropping its
    WAL) so that a rebuild starts afresh; returns the new name, else None."""
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    path = Path(parsed.database)
    if not path.is_file():
        return None
    try:
        with closing(sqlite3.connect(path)) as con:
            sound = con.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    except sqlite3.Error:
        sound = False
    if sound:
        return None
    target = path.with_name(f"{path.name}.damaged-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
    path.rename(target)
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return target
