"""`quanta init` and `quanta new`: a new mesh and products that validate and build as they are."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import cli
from quanta.spec.mesh import load_mesh


def run_pytest(mesh: Path, *tests: Path) -> subprocess.CompletedProcess[str]:
    """Run generated test files the way their owners would: pytest, inside the mesh."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *map(str, tests)],
        cwd=mesh, capture_output=True, text=True, timeout=120,
    )


@pytest.fixture
def mesh(tmp_path: Path) -> Path:
    """A mesh freshly made by `quanta init`."""
    folder = tmp_path / "shopmesh"
    result = cli("init", str(folder))
    assert result.exit_code == 0, result.output
    return folder


def new_source(mesh: Path) -> Path:
    result = cli("new", "sales.orders", "--kind", "source-aligned", cwd=mesh)
    assert result.exit_code == 0, result.output
    return mesh / "domains" / "sales" / "orders"


# --- quanta init -------------------------------------------------------------------------------


def test_init_creates_a_mesh_that_validates(mesh: Path) -> None:
    assert (mesh / "mesh.yaml").is_file()
    assert (mesh / "domains").is_dir()
    loaded = load_mesh(mesh)
    assert loaded.spec.name == "shopmesh"
    assert loaded.problems == [] and loaded.products == {}
    result = cli("validate", "--mesh", str(mesh))
    assert result.exit_code == 0, result.output
    assert "0 products valid" in result.stdout


def test_init_names_the_mesh_after_the_folder_in_snake_case(tmp_path: Path) -> None:
    result = cli("init", str(tmp_path / "My-Mesh"))
    assert result.exit_code == 0, result.output
    assert load_mesh(tmp_path / "My-Mesh").spec.name == "my_mesh"


def test_init_twice_refuses(mesh: Path) -> None:
    before = (mesh / "mesh.yaml").read_text()
    result = cli("init", str(mesh))
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert "choose another folder" in result.output
    assert (mesh / "mesh.yaml").read_text() == before


def test_init_with_a_bad_name_refuses_and_creates_nothing(tmp_path: Path) -> None:
    result = cli("init", str(tmp_path / "m"), "--name", "Bad Name")
    assert result.exit_code == 1
    assert "'Bad Name' is not a valid name" in result.output
    assert "snake_case" in result.output
    assert not (tmp_path / "m").exists()


# --- quanta new --------------------------------------------------------------------------------


def test_new_source_aligned_creates_its_files(mesh: Path) -> None:
    folder = new_source(mesh)
    assert sorted(p.name for p in folder.iterdir()) == [
        "dataproduct.yaml", "sample.csv", "test_orders.py", "transform.sql"]
    spec = load_mesh(mesh).product("sales.orders").spec
    assert (spec.kind, spec.domain, spec.name) == ("source-aligned", "sales", "orders")
    assert spec.owner.team == "sales"


def test_new_source_aligned_validates_builds_and_serves_its_sample(mesh: Path) -> None:
    new_source(mesh)
    validated = cli("validate", cwd=mesh)
    assert validated.exit_code == 0, validated.output
    assert "1 products valid" in validated.stdout
    built = cli("build", "sales.orders", cwd=mesh)
    assert built.exit_code == 0, built.output
    assert "built 1 product(s)" in built.stdout
    shown = cli("query", "SELECT count(*) AS n FROM sales.orders", cwd=mesh)
    assert shown.exit_code == 0, shown.output
    assert re.search(r"│\s+3\s+│", shown.stdout), shown.stdout
    as_json = cli("query", "SELECT count(*) AS n FROM sales.orders", "--json", cwd=mesh)
    assert json.loads(as_json.stdout)["rows"] == [{"n": 3}]


def test_new_aggregate_reads_its_input_and_builds(mesh: Path) -> None:
    new_source(mesh)
    assert cli("build", "sales.orders", cwd=mesh).exit_code == 0
    result = cli("new", "sales.order_summary", "--kind", "aggregate",
                 "--input", "quanta://sales/orders", cwd=mesh)
    assert result.exit_code == 0, result.output
    folder = mesh / "domains" / "sales" / "order_summary"
    assert sorted(p.name for p in folder.iterdir()) == [
        "dataproduct.yaml", "test_order_summary.py", "transform.sql"]
    loaded = load_mesh(mesh)
    assert loaded.problems == [], [p.render() for p in loaded.problems]
    summary = loaded.product("sales.order_summary")
    assert summary.spec.kind == "aggregate"
    assert [str(a) for _, a in summary.upstream()] == ["quanta://sales/orders/orders"]
    assert loaded.downstream("sales.orders") == ["sales.order_summary"]
    validated = cli("validate", "--mesh", str(mesh))
    assert validated.exit_code == 0, validated.output
    built = cli("build", "sales.order_summary", "--mesh", str(mesh))
    assert built.exit_code == 0, built.output
    rows = cli("query", "SELECT count(*) AS n FROM sales.order_summary", "--json", cwd=mesh)
    assert json.loads(rows.stdout)["rows"] == [{"n": 3}]


def test_generated_tests_pass_under_pytest(mesh: Path) -> None:
    orders = new_source(mesh)
    assert cli("build", "sales.orders", cwd=mesh).exit_code == 0
    assert cli("new", "sales.order_summary", "--kind", "aggregate", "--input",
               "quanta://sales/orders", cwd=mesh).exit_code == 0
    summary = mesh / "domains" / "sales" / "order_summary"
    result = run_pytest(mesh, orders / "test_orders.py", summary / "test_order_summary.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_generated_test_of_a_derived_product_passes_in_a_fresh_mesh(mesh: Path) -> None:
    new_source(mesh)
    assert cli("new", "sales.order_summary", "--kind", "aggregate", "--input",
               "quanta://sales/orders", cwd=mesh).exit_code == 0
    test = mesh / "domains" / "sales" / "order_summary" / "test_order_summary.py"
    result = run_pytest(mesh, test)
    assert result.returncode == 0, result.stdout + result.stderr


def test_aggregate_without_input_fails_with_a_hint(mesh: Path) -> None:
    result = cli("new", "sales.order_summary", "--kind", "aggregate", cwd=mesh)
    assert result.exit_code == 1
    assert "reads other products" in result.output
    assert "--input quanta://" in result.output
    assert not (mesh / "domains" / "sales" / "order_summary").exists()
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Sales.Orders", "domain 'Sales' is not a valid name"),
        ("sales.Orders", "product 'Orders' is not a valid name"),
        ("sales.order-lines", "product 'order-lines' is not a valid name"),
        ("sales", "product '' is not a valid name"),
    ],
)
def test_bad_product_names_fail_with_a_hint(mesh: Path, name: str, message: str) -> None:
    result = cli("new", name, cwd=mesh)
    assert result.exit_code == 1
    assert message in result.output
    assert "snake_case" in result.output
    assert list((mesh / "domains").iterdir()) == []


def test_unknown_kind_lists_the_kinds(mesh: Path) -> None:
    result = cli("new", "sales.orders", "--kind", "source", cwd=mesh)
    assert result.exit_code == 1
    assert "unknown kind 'source'" in result.output
    assert "source-aligned, aggregate, consumer-aligned" in result.output


def test_new_refuses_to_overwrite_a_product(mesh: Path) -> None:
    folder = new_source(mesh)
    (folder / "transform.sql").write_text("SELECT 1 AS id\n")
    result = cli("new", "sales.orders", cwd=mesh)
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert (folder / "transform.sql").read_text() == "SELECT 1 AS id\n"


def test_input_naming_an_unknown_product_fails_with_a_hint(mesh: Path) -> None:
    new_source(mesh)
    result = cli("new", "sales.summary", "--kind", "aggregate", "--input", "sales.ordrs",
                 cwd=mesh)
    assert result.exit_code == 1
    assert "no product 'sales.ordrs'" in result.output
    assert "sales.orders" in result.output  # listed in the hint
    assert not (mesh / "domains" / "sales" / "summary").exists()


def test_input_naming_an_unknown_port_lists_the_ports(mesh: Path) -> None:
    new_source(mesh)
    result = cli("new", "sales.summary", "--kind", "aggregate", "--input",
                 "quanta://sales/orders/lines", cwd=mesh)
    assert result.exit_code == 1
    assert "has no port 'lines'" in result.output
    assert "(ports: orders)" in result.output


def test_new_outside_a_mesh_suggests_quanta_init(tmp_path: Path) -> None:
    result = cli("new", "sales.orders", cwd=tmp_path)
    assert result.exit_code == 1
    assert "quanta init" in result.output
    assert not (tmp_path / "domains").exists()


def test_copied_descriptions_with_commas_stay_valid(mesh: Path) -> None:
    folder = new_source(mesh)
    spec = folder / "dataproduct.yaml"
    spec.write_text(spec.read_text().replace(
        "description: Amount}", 'description: "Amount, in EUR: gross"}'))
    assert load_mesh(mesh).problems == []
    result = cli("new", "sales.summary", "--kind", "aggregate", "--input", "sales.orders",
                 cwd=mesh)
    assert result.exit_code == 0, result.output
    loaded = load_mesh(mesh)
    assert loaded.problems == [], [p.render() for p in loaded.problems]
    port = loaded.product("sales.summary").spec.port()
    assert port is not None
    field = port.field("amount")
    assert field is not None and field.description == "Amount, in EUR: gross"
