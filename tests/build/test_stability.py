"""Schema stability: a breaking interface change needs a new major version, and the consumers
who would break are named before anything is released."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import cli
from quanta.address import Address
from quanta.build import stability
from quanta.context import MeshContext
from quanta.spec.mesh import load_mesh
from quanta.storage import FieldContract, PortContract

SPEC = "domains/shop/orders/dataproduct.yaml"


def edit(mesh: Path, old: str, new: str) -> None:
    file = mesh / SPEC
    text = file.read_text()
    assert old in text
    file.write_text(text.replace(old, new))


def built(mesh: Path) -> MeshContext:
    ctx = MeshContext(mesh)
    assert all(r.ok for r in ctx.build())
    return ctx


def test_a_meaning_change_without_a_major_version_is_refused_naming_consumers(
        tiny_mesh: Path) -> None:
    ctx = built(tiny_mesh)
    ctx.sidecar.grants.grant("finance-svc", Address("shop", "orders"))
    reader = ctx.principal("olga", ["shop"])
    ctx.sidecar.grants.grant("olga", Address("shop", "orders"))
    ctx.query("SELECT count(*) FROM shop.orders", principal=reader)
    ctx.close()
    edit(tiny_mesh, "classification: pii, polyseme: customer_id",
         "classification: confidential, polyseme: customer_id")

    checked = cli("validate", "--mesh", str(tiny_mesh))
    assert checked.exit_code == 1
    assert f"{SPEC}:5:10:" in checked.stdout.replace(str(tiny_mesh) + "/", "")
    assert "orders.customer_id: classification pii → confidential" in checked.stdout
    assert "product shop.daily_totals" in checked.stdout  # reads shop.orders
    assert "finance-svc" in checked.stdout  # granted
    assert "olga" in checked.stdout  # read it (audit log)
    assert "version: 2.0.0" in checked.stdout

    ctx = MeshContext(tiny_mesh)
    [result] = ctx.build(["shop.orders"])
    assert not result.ok and result.error is not None
    assert result.error.code == "breaking_change"
    assert "shop.daily_totals" in result.error.message
    assert [r.release for r in ctx.releases("shop.orders")] == [1]  # nothing released


def test_a_major_version_lets_the_breaking_change_through(tiny_mesh: Path) -> None:
    built(tiny_mesh).close()
    edit(tiny_mesh, "version: 1.0.0", "version: 2.0.0")
    edit(tiny_mesh, "classification: pii, polyseme: customer_id",
         "classification: confidential, polyseme: customer_id")
    ctx = MeshContext(tiny_mesh)
    assert ctx.validate() == []
    [result] = ctx.build(["shop.orders"])
    assert result.ok and result.release is not None
    assert result.release.interface_version == "2.0.0"


def test_additive_changes_need_no_new_major(tiny_mesh: Path) -> None:
    built(tiny_mesh).close()
    edit(tiny_mesh, "{name: order_id, type: string, description: Order id, nullable: false}",
         "{name: order_id, type: string, description: Order id}")
    ctx = MeshContext(tiny_mesh)
    assert ctx.validate() == []
    [result] = ctx.build(["shop.orders"])
    assert result.ok, result.error


def contract(**types: str) -> PortContract:
    return PortContract(fields=[FieldContract(name=n, type=t, classification="internal")
                                for n, t in types.items()], primary_key=["a"])


@pytest.mark.parametrize(("before", "after", "breaking", "words"), [
    ({"a": "int32"}, {"a": "int64"}, False, "type int32 → int64 (wider)"),
    ({"a": "float32"}, {"a": "float64"}, False, "wider"),
    ({"a": "int64"}, {"a": "int32"}, True, "type int64 → int32"),
    ({"a": "int64"}, {"a": "string"}, True, "type int64 → string"),
    ({"a": "decimal(10,2)"}, {"a": "decimal(12,2)"}, False, "wider"),
    ({"a": "decimal(10,2)"}, {"a": "decimal(10,3)"}, True, "decimal(10,2) → decimal(10,3)"),
    ({"a": "int64"}, {"a": "int64", "b": "string"}, False, "added (string)"),
    ({"a": "int64", "b": "string"}, {"a": "int64"}, True, "removed"),
])
def test_type_and_field_changes(before: dict[str, str], after: dict[str, str],
                                breaking: bool, words: str) -> None:
    found = stability._port_changes("p", contract(**before), contract(**after))
    assert len(found) == 1
    assert found[0].breaking is breaking and words in found[0].describe()


def test_meaning_and_key_changes_break() -> None:
    before = PortContract(fields=[FieldContract(name="a", type="string",
                                                classification="internal", polyseme="x",
                                                nullable=True)], primary_key=["a"])
    after = PortContract(fields=[FieldContract(name="a", type="string", classification="pii",
                                               polyseme="y", nullable=False)], primary_key=[])
    found = {c.what.split(" ")[0]: c.breaking for c in
             stability._port_changes("p", before, after)}
    assert found == {"classification": True, "polyseme": True, "nullable": True,
                     "primary": True}


@pytest.mark.parametrize(("old", "new", "ok"), [
    ("1.4.2", "2.0.0", True), ("1.4.2", "1.5.0", False), ("1.4.2", "1.4.2", False),
    ("0.3.1", "0.4.0", True), ("0.3.1", "0.3.2", False), ("2.0.0", "10.0.0", True),
])
def test_what_counts_as_a_major_version(old: str, new: str, ok: bool) -> None:
    assert stability._major_bump(old, new) is ok


def test_removing_a_port_is_breaking(tiny_mesh: Path) -> None:
    ctx = built(tiny_mesh)
    [previous] = ctx.releases("shop.orders")
    spec = load_mesh(tiny_mesh).products["shop.orders"].spec
    renamed = spec.model_copy(update={"outputs": [
        spec.outputs[0].model_copy(update={"name": "orders_v2"})]})
    found = stability.changes(previous, renamed)
    assert [(c.describe(), c.breaking) for c in found] == [
        ("port orders: removed", True), ("port orders_v2: added", False)]
    ctx.close()


def test_the_previous_major_is_served_beside_the_new_one(tiny_mesh: Path) -> None:
    built(tiny_mesh).close()
    edit(tiny_mesh, "version: 1.0.0", "version: 2.0.0")
    edit(tiny_mesh, "classification: pii, polyseme: customer_id",
         "classification: confidential, polyseme: customer_id")
    ctx = MeshContext(tiny_mesh)
    [result] = ctx.build(["shop.orders"])
    assert result.ok and result.release is not None and result.release.release == 2
    current = ctx.query("SELECT count(*) AS n FROM shop.orders")
    assert current.snapshot == {"shop.orders": 2} and current.notices == []
    old = ctx.query("SELECT count(*) AS n FROM shop.orders", "v1")
    assert old.snapshot == {"shop.orders": 1}
    assert old.notices == ["shop.orders is read at interface 1.0.0 (release 1); the current "
                           "one is 2.0.0 (release 2): move to it before the old major's sunset"]
    with pytest.raises(Exception, match="no release of major version 3") as info:
        ctx.query("SELECT 1 FROM shop.orders", "v3")
    assert "v1, v2" in (getattr(info.value, "hint", "") or "")
    with pytest.raises(Exception, match="ambiguous"):
        ctx.query("SELECT 1 FROM shop.orders JOIN shop.daily_totals ON true", "v1")
    shown = cli("query", "SELECT count(*) FROM shop.orders", "--as-of", "v1",
                "--mesh", str(tiny_mesh))
    assert shown.exit_code == 0 and "interface 1.0.0" in shown.stderr
    ctx.close()
