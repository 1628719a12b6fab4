"""End to end on loopback: two products served by two `quanta serve --product` processes,
one catalog, and SDK queries joining them: the same rows as one whole-mesh LocalClient gives,
masks and row filters applied by each product's own sidecar."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from units import Unit, serving

import quanta
from conftest import copy_fixture
from quanta.container.federation import FederatedClient
from quanta.context import MeshContext
from quanta.errors import NotFoundError, QueryError
from quanta.sidecar.access import AuthorizationError

JOIN = ("SELECT l.listener_id, l.email, l.country, p.track_id FROM people.listeners l "
        "JOIN people.plays p ON l.listener_id = p.listener_id ORDER BY ALL")


@dataclass
class Federation:
    mesh: Path
    catalog: str
    tokens: dict[str, str]
    units: dict[str, Unit]

    def client(self, who: str) -> FederatedClient:
        client = quanta.connect(catalog=self.catalog, token=self.tokens[who])
        assert isinstance(client, FederatedClient)
        return client

    def local(self, who: str, groups: list[str] | None = None) -> Any:
        return quanta.connect(self.mesh, principal=who, groups=groups)


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    base = tmp_path_factory.mktemp("federation")
    mesh = copy_fixture("secure", base)
    ctx = MeshContext(mesh)
    assert all(r.ok for r in ctx.build())
    tokens = {who: ctx.sidecar.tokens.create(who, groups)[0]
              for who, groups in (("alice", []), ("pia", ["privacy"]), ("bob", []))}
    ctx.close()
    catalog = f"sqlite:///{base / 'catalog.db'}"
    with serving("people.listeners", "people.listeners", catalog, "--mesh", str(mesh)) as a, \
            serving("people.plays", "people.plays", catalog, "--mesh", str(mesh)) as b:
        yield Federation(mesh, catalog, tokens, {a.product: a, b.product: b})


def rows(table: Any) -> list[dict[str, Any]]:
    return list(table.to_pylist())


def test_a_join_across_two_units_equals_the_whole_mesh_join(federation: Federation) -> None:
    client = federation.client("alice")
    try:
        joined = client.sql(JOIN)
        assert joined.snapshot == {"people.listeners": 1, "people.plays": 1}
        assert joined.endpoints == {key: unit.http for key, unit in federation.units.items()}
    finally:
        client.close()
    local = federation.local("alice")
    try:
        expected = local.sql(JOIN)
    finally:
        local.close()
    assert rows(joined) == rows(expected) and len(joined) == 4  # l5 is hidden from alice
    raw = {r["listener_id"]: r for r in csv.DictReader(
        (federation.mesh / "domains/people/listeners/listeners.csv").open())}
    for row in rows(joined):  # masked columns stay masked: pseudonyms, no e-mail addresses
        assert row["listener_id"] not in raw and len(row["listener_id"]) == 32
        assert "@" not in row["email"]


def test_masks_lift_for_the_privacy_team_on_both_units(federation: Federation) -> None:
    client, local = federation.client("pia"), federation.local("pia", ["privacy"])
    try:
        joined, expected = client.sql(JOIN), local.sql(JOIN)
    finally:
        client.close()
        local.close()
    assert rows(joined) == rows(expected)
    assert {r["listener_id"] for r in rows(joined)} == {"l1", "l2", "l3", "l5"}


@pytest.mark.parametrize("sql", [
    "SELECT country, count(*) AS plays FROM people.listeners l JOIN people.plays p "
    "USING (listener_id) WHERE l.country = 'DE' AND p.track_id <> 't2' GROUP BY ALL",
    "WITH heavy AS (SELECT listener_id, count(*) AS n FROM people.plays GROUP BY ALL) "
    "SELECT l.plan, h.n FROM people.listeners.listeners l JOIN heavy h "
    "ON h.listener_id = l.listener_id ORDER BY ALL",
    "SELECT count(*) AS n FROM people.plays",
])
def test_other_shapes_agree_with_the_whole_mesh(federation: Federation, sql: str) -> None:
    client, local = federation.client("alice"), federation.local("alice")
    try:
        assert rows(client.sql(sql)) == rows(local.sql(sql))
    finally:
        client.close()
        local.close()


def test_purpose_and_as_of_pass_through(federation: Federation) -> None:
    client, local = federation.client("alice"), federation.local("alice")
    now = datetime.now(UTC).isoformat()
    try:
        # marketing reads of plays need consent: the plays unit filters by it
        marketing = client.sql(JOIN, purpose="marketing")
        assert rows(marketing) == rows(local.sql(JOIN, purpose="marketing"))
        assert len(marketing) < len(client.sql(JOIN))
        pinned = client.sql(JOIN, as_of=now)
        assert rows(pinned) == rows(local.sql(JOIN, as_of=now))
        assert pinned.snapshot == {"people.listeners": 1, "people.plays": 1}
        with pytest.raises(QueryError, match="ambiguous"):
            client.sql(JOIN, as_of=1)
        assert len(client.sql("SELECT * FROM people.plays", as_of=1)) == 5
    finally:
        client.close()
        local.close()


def test_read_resolves_the_address_through_the_catalog(federation: Federation) -> None:
    client, local = federation.client("alice"), federation.local("alice")
    try:
        read = client.read("quanta://people/listeners/listeners@1")
        assert rows(read) == rows(local.read("quanta://people/listeners/listeners@1"))
        assert read.snapshot == {"people.listeners": 1}
        assert read.endpoints == {"people.listeners": federation.units["people.listeners"].http}
        assert client.products() == ["people.listeners", "people.plays"]
    finally:
        client.close()
        local.close()


def test_unknown_products_and_denials_are_clear(federation: Federation) -> None:
    alice, bob = federation.client("alice"), federation.client("bob")
    try:
        with pytest.raises(NotFoundError) as caught:
            alice.sql("SELECT * FROM people.consents")
        assert "no endpoint serves people.consents" in caught.value.message
        assert "people.listeners, people.plays" in (caught.value.hint or "")
        with pytest.raises(AuthorizationError):  # the listeners unit's grants decide
            bob.sql(JOIN)
    finally:
        alice.close()
        bob.close()


def test_a_unit_asked_for_another_product_says_where_it_is(federation: Federation) -> None:
    plays = federation.units["people.plays"]
    answer = httpx.post(f"{plays.http}/api/v1/query",
                        headers={"Authorization": f"Bearer {federation.tokens['alice']}"},
                        json={"sql": "SELECT * FROM people.listeners"})
    assert answer.status_code == 404
    hint = answer.json()["error"]["hint"]
    assert hint == (f"people.listeners is served at {federation.units['people.listeners'].http}"
                    f" (Flight {federation.units['people.listeners'].flight})")
