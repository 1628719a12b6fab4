"""Data sovereignty: a product that declares a region keeps its data under that region's own
storage folder; reads, builds downstream and erasure work the same; data is never moved."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import cli
from quanta.context import MeshContext
from quanta.control.erasure import erase

SPEC = "domains/shop/orders/dataproduct.yaml"


@pytest.fixture
def mesh(tiny_mesh: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The tiny mesh with an EU storage folder outside it, and shop.orders in the EU."""
    eu = tmp_path / "eu-storage"
    (tiny_mesh / "mesh.yaml").write_text((tiny_mesh / "mesh.yaml").read_text()
                                         + f"storage: {{regions: {{eu: '{eu}'}}}}\n")
    spec = tiny_mesh / SPEC
    spec.write_text(spec.read_text() + "region: eu\n")
    return tiny_mesh, eu


def test_a_regional_product_keeps_its_data_in_its_region(mesh: tuple[Path, Path]) -> None:
    root, eu = mesh
    ctx = MeshContext(root)
    results = ctx.build()
    assert all(r.ok for r in results), [r.error for r in results if r.error]
    storage = ctx.storage("shop.orders")
    release = storage.latest()
    assert release is not None
    files = [f.resolve() for f in storage.data_files(release, "orders")]
    assert files and all(f.is_relative_to(eu.resolve()) for f in files)
    assert not any(p.suffix == ".parquet" for p in (root / ".quanta").resolve().rglob("*")
                   if "orders" in p.parts and p.is_file())
    other = ctx.storage("shop.daily_totals").latest()
    assert other is not None  # downstream of the EU product, in the usual place
    assert all(not f.resolve().is_relative_to(eu.resolve())
               for f in ctx.storage("shop.daily_totals").data_files(other, "totals"))
    rows = ctx.query("SELECT count(*) AS n FROM shop.orders").table.column("n")[0].as_py()
    assert rows == 3
    report = erase(ctx.sidecar, "customer_id", "c1")
    assert report.verified and report.rows_removed > 0
    assert ctx.query("SELECT count(*) AS n FROM shop.orders").table.column("n")[0].as_py() == 1
    ctx.close()


def test_an_undeclared_region_is_a_located_spec_problem(tiny_mesh: Path) -> None:
    spec = tiny_mesh / SPEC
    spec.write_text(spec.read_text() + "region: mars\n")
    result = cli("validate", "--mesh", str(tiny_mesh))
    assert result.exit_code == 1
    assert "region 'mars' has no storage folder in mesh.yaml" in result.stdout
    assert f"{SPEC}:" in result.stdout


def test_data_is_never_moved_between_regions(tiny_mesh: Path, tmp_path: Path) -> None:
    ctx = MeshContext(tiny_mesh)
    assert all(r.ok for r in ctx.build(["shop.orders"]))
    ctx.close()
    eu = tmp_path / "eu"
    (tiny_mesh / "mesh.yaml").write_text((tiny_mesh / "mesh.yaml").read_text()
                                         + f"storage: {{regions: {{eu: '{eu}'}}}}\n")
    spec = tiny_mesh / SPEC
    original = spec.read_text()
    spec.write_text(original + "region: eu\n")
    [moved] = MeshContext(tiny_mesh).build(["shop.orders"])
    assert not moved.ok and moved.error is not None
    assert moved.error.code == "region_mismatch" and "already has data" in moved.error.message
    assert not eu.exists() or not any(eu.rglob("*.parquet"))
    assert [r.release for r in MeshContext(tiny_mesh).releases("shop.orders")] == [1]
