"""Bundles: package a product, unpack it elsewhere, and it validates and builds on its own;
a damaged or tampered bundle is a clear error that changes nothing."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest
from units import orders_with_outside_source

from conftest import cli, copy_fixture
from quanta.container import BundleError, package, read_lock, unpack, verify
from quanta.container.lock import LOCK_FILE
from quanta.context import MeshContext
from quanta.spec.mesh import load_mesh


def rewrite(bundle: Path, change: dict[str, bytes | None], target: Path | None = None) -> Path:
    """A copy of a tar.gz bundle with members changed (bytes), removed (None) or added."""
    target = target or bundle.with_name(f"changed-{bundle.name}")
    with tarfile.open(bundle) as source:
        members = {m.name: source.extractfile(m).read() for m in source if m.isfile()}  # type: ignore[union-attr]
    for name, data in change.items():
        if data is None:
            members.pop(name, None)
        else:
            members[name] = data
    with tarfile.open(target, "w:gz") as out:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    return target


def test_a_bundle_unpacks_into_a_one_product_mesh_that_builds_from_sources_given_at_run_time(
        tmp_path: Path) -> None:
    mesh = orders_with_outside_source(tmp_path)
    done = package(load_mesh(mesh), "shop.orders", tmp_path / "dist")
    assert done.path.name == "shop.orders-1.0.0.quanta.tar.gz"
    lock = done.lock
    assert lock.product == "shop.orders" and lock.address == "quanta://shop/orders"
    assert lock.mesh == "tiny" and lock.quanta and lock.python and "duckdb" in lock.dependencies
    assert set(lock.files) == {"mesh.yaml", "domains/shop/orders/dataproduct.yaml",
                               "domains/shop/orders/transform.sql"}
    [source] = lock.external
    assert (source.name, source.type, source.mesh_path) == ("raw_orders", "file",
                                                            "sources/orders.csv")
    # elsewhere: the source comes from a folder given at run time, not from the bundle
    elsewhere = tmp_path / "ops"
    (elsewhere / "sources").mkdir(parents=True)
    (mesh / "sources/orders.csv").rename(elsewhere / "sources/orders.csv")
    root = unpack(done.path, tmp_path / "unit", sources=elsewhere)
    assert root == (tmp_path / "unit").resolve() and verify(root).product == "shop.orders"
    ctx = MeshContext(root)
    assert sorted(ctx.mesh.products) == ["shop.orders"]
    assert ctx.validate() == []
    [built] = ctx.build()
    assert built.ok, built.error
    assert ctx.query("SELECT count(*) AS n FROM shop.orders").table.to_pylist() == [{"n": 3}]
    ctx.close()
    # unpacking again (a new version of the bundle, say) keeps the unit's releases
    unpack(done.path, root, sources=elsewhere)
    assert [r.release for r in MeshContext(root).releases("shop.orders")] == [1]


def test_missing_sources_are_named(tmp_path: Path) -> None:
    mesh = orders_with_outside_source(tmp_path)
    done = package(load_mesh(mesh), "shop.orders", tmp_path / "dist")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BundleError, match=r"sources not found .*'raw_orders' "
                       r"\(sources/orders.csv\)"):
        unpack(done.path, tmp_path / "unit", sources=empty)


def test_policies_and_standards_travel_with_the_product(tmp_path: Path) -> None:
    mesh = copy_fixture("secure", tmp_path)
    done = package(load_mesh(mesh), "people.plays", tmp_path / "plays.quanta.zip")
    assert zipfile.is_zipfile(done.path)
    assert "governance/policies/federation.yaml" in done.lock.files
    assert "governance/policies/regions.py" in done.lock.files
    assert "domains/people/plays/plays.csv" in done.lock.files  # inside its folder: carried
    assert done.lock.requires == ["people.consents"]  # its consent source
    root = unpack(done.path, tmp_path / "unit")
    unpacked = load_mesh(root)
    assert unpacked.spec.name == "secure"
    assert unpacked.spec.governance.policies == ["governance/policies"]
    assert unpacked.spec.serving.operator == "ops"


def test_product_inputs_are_recorded_not_copied(tiny_mesh: Path, tmp_path: Path) -> None:
    done = package(load_mesh(tiny_mesh), "shop.daily_totals", tmp_path)
    assert done.lock.requires == ["shop.orders"]
    assert [(i.type, i.product) for i in done.lock.external] == [
        ("product", "quanta://shop/orders/orders")]
    assert not any("orders/" in f for f in done.lock.files)


def test_a_source_outside_the_mesh_cannot_be_packaged(tiny_mesh: Path, tmp_path: Path) -> None:
    spec = tiny_mesh / "domains/shop/orders/dataproduct.yaml"
    spec.write_text(spec.read_text().replace("path: orders.csv",
                                             "path: ../../../../elsewhere/orders.csv"))
    with pytest.raises(BundleError, match="outside the mesh folder"):
        package(load_mesh(tiny_mesh), "shop.orders", tmp_path)


@pytest.mark.parametrize("change, message", [
    ({"domains/shop/orders/transform.sql": b"SELECT 1 AS hacked"},
     "transform.sql does not match its digest"),
    ({"domains/shop/orders/transform.sql": None}, "missing domains/shop/orders/transform.sql"),
    ({"domains/shop/orders/extra.py": b"import os"}, "not in the lock: "
                                                      "domains/shop/orders/extra.py"),
    ({LOCK_FILE: None}, "not a quanta bundle"),
    ({LOCK_FILE: b"{not json"}, "is not a quanta bundle lock"),
    ({"../escape.txt": b"x"}, "would be written outside its folder"),
], ids=["changed", "missing", "added", "no-lock", "bad-lock", "escape"])
def test_a_tampered_bundle_is_refused_and_changes_nothing(
        tiny_mesh: Path, tmp_path: Path, change: dict[str, bytes | None], message: str) -> None:
    done = package(load_mesh(tiny_mesh), "shop.orders", tmp_path / "dist")
    unit = tmp_path / "unit"
    unpack(done.path, unit)
    before = sorted(p.relative_to(unit) for p in unit.rglob("*"))
    with pytest.raises(BundleError, match=message) as caught:
        unpack(rewrite(done.path, change), unit)
    assert caught.value.hint
    assert sorted(p.relative_to(unit) for p in unit.rglob("*")) == before
    assert not list(tmp_path.glob(".unit.unpacking-*"))
    verify(unit)


def test_a_changed_lock_digest_does_not_help_a_tamperer_who_misses_one(
        tiny_mesh: Path, tmp_path: Path) -> None:
    done = package(load_mesh(tiny_mesh), "shop.orders", tmp_path)
    with tarfile.open(done.path) as source:
        lock = json.loads(source.extractfile(LOCK_FILE).read())  # type: ignore[union-attr]
    lock["files"]["domains/shop/orders/transform.sql"] = "0" * 64
    changed = rewrite(done.path, {LOCK_FILE: json.dumps(lock).encode()})
    with pytest.raises(BundleError, match="does not match its digest"):
        unpack(changed, tmp_path / "unit")


def test_links_and_damaged_archives_are_refused(tiny_mesh: Path, tmp_path: Path) -> None:
    done = package(load_mesh(tiny_mesh), "shop.orders", tmp_path)
    linked = tmp_path / "linked.quanta.tar.gz"
    with tarfile.open(linked, "w:gz") as out:
        info = tarfile.TarInfo("domains/shop/orders/transform.sql")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        out.addfile(info)
    with pytest.raises(BundleError, match="not a regular file"):
        unpack(linked, tmp_path / "a")
    cut = tmp_path / "cut.quanta.tar.gz"
    cut.write_bytes(done.path.read_bytes()[:200])
    with pytest.raises(BundleError, match="not a readable bundle"):
        unpack(cut, tmp_path / "b")
    with pytest.raises(BundleError, match="does not exist"):
        unpack(tmp_path / "nothing.quanta.tar.gz", tmp_path / "c")


def test_unpacking_over_something_else_is_refused(tiny_mesh: Path, tmp_path: Path) -> None:
    mesh = load_mesh(tiny_mesh)
    orders = package(mesh, "shop.orders", tmp_path)
    customers = package(mesh, "shop.customers_py", tmp_path)
    unit = tmp_path / "unit"
    unpack(orders.path, unit)
    with pytest.raises(BundleError, match=r"holds the unpacked bundle of shop\.orders"):
        unpack(customers.path, unit)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(BundleError, match="not empty"):
        unpack(orders.path, busy)


def test_a_file_changed_after_unpacking_is_caught(tiny_mesh: Path, tmp_path: Path) -> None:
    done = package(load_mesh(tiny_mesh), "shop.orders", tmp_path)
    root = unpack(done.path, tmp_path / "unit")
    (root / "domains/shop/orders/transform.sql").write_text("SELECT 1")
    with pytest.raises(BundleError, match="was changed since it was unpacked"):
        verify(root)
    assert read_lock(done.path) == read_lock(root)


def test_the_lock_says_how_this_environment_differs(tiny_mesh: Path, tmp_path: Path) -> None:
    lock = package(load_mesh(tiny_mesh), "shop.orders", tmp_path).lock
    assert lock.differences() == []
    older = lock.model_copy(update={"quanta": "0.0.1", "dependencies": {
        **lock.dependencies, "duckdb": "0.9.0"}})
    assert older.differences() == [
        f"packaged with quanta 0.0.1, running {lock.quanta}",
        f"packaged with duckdb 0.9.0, running {lock.dependencies['duckdb']}"]


def test_quanta_package_on_the_command_line(tiny_mesh: Path, tmp_path: Path) -> None:
    done = cli("package", "shop.orders", "--mesh", str(tiny_mesh), "-o", str(tmp_path / "out"))
    assert done.exit_code == 0, done.output
    assert "packaged shop.orders 1.0.0" in done.stdout and "sha256" in done.stdout
    assert (tmp_path / "out/shop.orders-1.0.0.quanta.tar.gz").is_file()
    failed = cli("package", "shop.nothing", "--mesh", str(tiny_mesh))
    assert failed.exit_code == 1 and "no product 'shop.nothing'" in failed.stderr
