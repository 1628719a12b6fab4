"""`quanta validate`: every problem of every spec, as file:line:col: message (hint)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import cli, cli_process, copy_fixture

# Every mistake in tests/fixtures/spec_broken: (file under domains/sales, line, column, text).
BROKEN = [
    ("dupes", 8, 1, 'duplicate key "kind"'),
    ("orders", 4, 7, "kind: unknown value 'source-algned' (did you mean 'source-aligned'?"),
    ("orders", 5, 10, "version: Input should be a valid string (quote the value"),
    ("totals", 10, 30, "transform file 'totals.sql' does not exist (create it next to"),
    ("totals", 13, 17, "event_time 'day' is not a field of port 'totals' (use one of: total)"),
    ("report", 9, 44, "input 'totals' reads unknown product 'sales.totalz' (products: "),
]


@pytest.fixture
def broken_mesh(tmp_path: Path) -> Path:
    return copy_fixture("spec_broken", tmp_path)


def spec_file(mesh: Path, product: str) -> Path:
    return mesh.resolve() / "domains" / "sales" / product / "dataproduct.yaml"


def test_valid_mesh_passes(tiny_mesh: Path) -> None:
    result = cli("validate", "--mesh", str(tiny_mesh))
    assert result.exit_code == 0, result.output
    assert f"✓ 3 products valid in {tiny_mesh.resolve()}" in result.stdout
    assert "error" not in result.output.lower()


def test_broken_mesh_prints_every_problem_with_its_position(broken_mesh: Path) -> None:
    result = cli("validate", "--mesh", str(broken_mesh))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    for product, line, column, text in BROKEN:
        prefix = f"{spec_file(broken_mesh, product)}:{line}:{column}: "
        matching = [entry for entry in lines if entry.startswith(prefix)]
        assert len(matching) == 1, (prefix, result.stdout)
        assert text in matching[0]
    assert len([entry for entry in lines if ".yaml:" in entry]) == len(BROKEN)
    assert f"{len(BROKEN)} problem(s)" in result.stderr
    assert "Traceback" not in result.output


def test_json_output_is_a_document_with_positions_and_hints(broken_mesh: Path) -> None:
    result = cli("validate", "--mesh", str(broken_mesh), "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert document["products"] == ["sales.report", "sales.totals"]
    found = {(Path(e["file"]), e["line"], e["column"]) for e in document["errors"]}
    assert found == {(spec_file(broken_mesh, p), line, col) for p, line, col, _ in BROKEN}
    for error in document["errors"]:
        assert set(error) >= {"code", "message", "hint", "file", "line", "column"}
        assert error["hint"], error
    codes = {e["code"] for e in document["errors"]}
    assert {"yaml_invalid", "spec_invalid_value", "spec_inconsistent",
            "spec_unknown_product"} <= codes


def test_json_output_of_a_valid_mesh(tiny_mesh: Path) -> None:
    result = cli("validate", "--mesh", str(tiny_mesh), "--json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    findings = document.pop("findings")
    assert document == {
        "ok": True, "errors": [], "standards_checked": True,
        "products": ["shop.customers_py", "shop.daily_totals", "shop.orders"],
    }
    assert findings and all(f["severity"] != "error" for f in findings)


def test_a_folder_without_mesh_yaml_suggests_quanta_init(tmp_path: Path) -> None:
    empty = tmp_path / "not_a_mesh"
    empty.mkdir()
    result = cli("validate", "--mesh", str(empty))
    assert result.exit_code == 1
    assert "no mesh.yaml" in result.output
    assert "quanta init" in result.output
    assert "Traceback" not in result.output


def test_a_folder_without_mesh_yaml_in_json_mode(tmp_path: Path) -> None:
    result = cli("validate", "--mesh", str(tmp_path), "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False
    [error] = document["errors"]
    assert error["code"] == "mesh_not_found"
    assert "quanta init" in error["hint"]


def test_invalid_mesh_yaml_is_reported_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "mesh.yaml").write_text("apiVersion: quanta/v1\nname: Not Valid\nstorage: [\n")
    result = cli("validate", "--mesh", str(tmp_path))
    assert result.exit_code == 1
    assert f"{tmp_path.resolve() / 'mesh.yaml'}:" in result.output
    assert "invalid YAML" in result.output
    assert "Traceback" not in result.output


def test_finds_the_mesh_from_a_nested_folder(tiny_mesh: Path) -> None:
    result = cli("validate", cwd=tiny_mesh / "domains" / "shop" / "orders")
    assert result.exit_code == 0, result.output
    assert f"3 products valid in {tiny_mesh.resolve()}" in result.stdout


def test_finds_the_broken_mesh_from_a_nested_folder(broken_mesh: Path) -> None:
    result = cli("validate", cwd=broken_mesh / "domains" / "sales")
    assert result.exit_code == 1
    assert f"{spec_file(broken_mesh, 'orders')}:4:7: " in result.stdout


def test_console_script_on_broken_and_valid_meshes(broken_mesh: Path, tiny_mesh: Path) -> None:
    broken = cli_process("validate", "--mesh", str(broken_mesh))
    assert broken.returncode == 1
    for product, line, column, _ in BROKEN:
        assert f"{spec_file(broken_mesh, product)}:{line}:{column}: " in broken.stdout
    assert "Traceback" not in broken.stdout + broken.stderr
    valid = cli_process("validate", cwd=tiny_mesh / "domains")
    assert valid.returncode == 0, valid.stderr
    assert "3 products valid" in valid.stdout


def test_mesh_option_names_the_mesh_folder_exactly(tiny_mesh: Path) -> None:
    nested = tiny_mesh / "domains" / "shop"
    result = cli("validate", "--mesh", str(nested))
    assert result.exit_code == 1
    assert "no mesh.yaml in" in result.stderr and "quanta init" in result.stderr
