"""Catalog stores to test against (imported by the catalog tests for their fixtures): SQLite
in a temporary folder, and a fresh PostgreSQL database per test module on the session's server."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from quanta.catalog import Catalog


def fresh_database(server_url: str, label: str) -> tuple[str, str]:
    """CREATE DATABASE on the test server; returns (SQLAlchemy URL, name)."""
    import psycopg

    name = f"catalog_{label}_{secrets.token_hex(3)}".lower()
    with psycopg.connect(server_url, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False), name


def drop_database(server_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def pg_catalog_url(postgres_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A PostgreSQL database of its own for this test module."""
    url, name = fresh_database(postgres_url, request.module.__name__.rsplit(".", 1)[-1])
    yield url
    drop_database(postgres_url, name)


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test runs once per store."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.db'}"
    return str(request.getfixturevalue("pg_catalog_url"))


@pytest.fixture
def store(catalog_url: str) -> Iterator[Catalog]:
    catalog = Catalog(catalog_url)
    catalog.clear()
    yield catalog
    catalog.close()


def document(domain: str, name: str, *, description: str = "A product.", kind: str =
             "source-aligned", tags: list[str] | None = None, owner: str = "team_a",
             email: str | None = None, ports: list[dict[str, Any]] | None = None,
             upstream: list[str] | None = None, release: int = 1,
             committed_at: str = "2026-01-01T00:00:00+00:00") -> dict[str, Any]:
    """A minimal discovery document, as the catalog indexes it."""
    return {
        "document": "quanta/discovery/v1", "domain": domain, "name": name, "kind": kind,
        "version": "1.0.0", "description": description,
        "owner": {"team": owner, **({"email": email} if email else {})},
        "tags": tags or [], "upstream": upstream or [],
        "ports": ports or [{"name": "main", "description": "", "fields": [
            {"name": "id", "type": "string", "description": "Identifier",
             "classification": "internal"}]}],
        "lifecycle": {"state": "active"},
        "latest_release": {"release": release, "committed_at": committed_at},
    }


def port(name: str, *fields: tuple[str, str, str | None, str], description: str = ""
         ) -> dict[str, Any]:
    """A port of (field name, classification, polyseme, description) fields."""
    return {"name": name, "description": description, "fields": [
        {"name": f, "type": "string", "classification": c, "polyseme": p, "description": d}
        for f, c, p, d in fields]}
