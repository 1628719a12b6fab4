"""Cross-field rules of one product, links between products, and finding and loading a mesh."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from quanta.errors import NotFoundError, QuantaError, SpecError
from quanta.spec.mesh import Mesh, find_mesh_root, load_mesh

MESH_YAML = "apiVersion: quanta/v1\nname: test_mesh\n"

# A valid product with a SQL file transform; tests change one line (by number).
ORDERS = """\
apiVersion: quanta/v1
name: orders
domain: shop
kind: source-aligned
version: 1.0.0
owner: {team: shop}
description: Orders.
inputs:
  - {name: raw_orders, type: file, path: orders.csv}
transform: {type: sql, file: transform.sql}
outputs:
  - name: orders
    event_time: ordered_at
    primary_key: [order_id]
    fields:
      - {name: order_id, type: string}
      - {name: amount, type: float64}
      - {name: ordered_at, type: timestamp}
quality:
  - {check: not_null, columns: [order_id]}
"""

# A product reading other products; {inputs} is a YAML list body.
READER = """\
apiVersion: quanta/v1
name: {name}
domain: {domain}
kind: aggregate
version: 1.0.0
owner: {{team: {domain}}}
description: Reads other products.
inputs:
{inputs}
transform: {{type: sql, sql: SELECT 1 AS id}}
outputs:
  - name: {port}
    fields:
      - {{name: id, type: int64}}
"""


def edit(text: str, line: int, old: str, new: str) -> str:
    """``text`` with line number ``line`` (1-based, which must read ``old``) replaced."""
    lines = text.splitlines()
    assert lines[line - 1] == old, lines[line - 1]
    lines[line - 1:line] = new.splitlines() if new else []
    return "\n".join(lines) + "\n"


def make_mesh(root: Path, products: dict[str, str], transform: bool = True) -> Path:
    """A mesh at ``root`` with ``{"domain/product": dataproduct.yaml text}``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "mesh.yaml").write_text(MESH_YAML)
    for where, text in products.items():
        folder = root / "domains" / where
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "dataproduct.yaml").write_text(text)
        if transform:
            (folder / "transform.sql").write_text("SELECT * FROM raw_orders\n")
    return root


def reader(domain: str, name: str, *inputs: str, port: str | None = None) -> str:
    body = "\n".join(f"  - {{name: {n}, type: product, product: {a}}}" for n, a in
                     (item.split("=", 1) for item in inputs))
    return READER.format(domain=domain, name=name, inputs=body, port=port or name)


def problems_of(tmp_path: Path, text: str, transform: bool = True) -> list[QuantaError]:
    mesh = load_mesh(make_mesh(tmp_path / "mesh", {"shop/orders": text}, transform))
    return mesh.problems


def only(problems: list[QuantaError]) -> QuantaError:
    assert len(problems) == 1, [p.render() for p in problems]
    return problems[0]


def where(error: QuantaError) -> tuple[str, int | None, int | None]:
    assert error.location is not None, error.render()
    loc = error.location
    return Path(loc.file).name, loc.line, loc.column


# --- rules inside one product ------------------------------------------------------------------


def test_valid_product_has_no_problems(tmp_path: Path) -> None:
    mesh = load_mesh(make_mesh(tmp_path / "mesh", {"shop/orders": ORDERS}))
    assert mesh.problems == []
    assert list(mesh.products) == ["shop.orders"]
    mesh.raise_problems()  # nothing to raise


def test_event_time_must_be_a_field(tmp_path: Path) -> None:
    error = only(problems_of(tmp_path, edit(ORDERS, 13, "    event_time: ordered_at",
                                            "    event_time: placed_at")))
    assert error.code == "spec_inconsistent"
    assert where(error) == ("dataproduct.yaml", 13, 17)
    assert error.message == "event_time 'placed_at' is not a field of port 'orders'"
    assert error.hint == "use one of: order_id, amount, ordered_at"


def test_event_time_must_be_a_time(tmp_path: Path) -> None:
    error = only(problems_of(tmp_path, edit(ORDERS, 13, "    event_time: ordered_at",
                                            "    event_time: amount")))
    assert where(error) == ("dataproduct.yaml", 13, 17)
    assert "type float64" in error.message
    assert error.hint and "timestamp or a date" in error.hint


def test_primary_key_column_must_be_a_field(tmp_path: Path) -> None:
    error = only(problems_of(tmp_path, edit(ORDERS, 14, "    primary_key: [order_id]",
                                            "    primary_key: [order_id, line_no]")))
    assert where(error) == ("dataproduct.yaml", 14, 29)  # 'line_no', the second item
    assert error.message == "primary key column 'line_no' is not a field of port 'orders'"
    assert error.hint == "use one of: order_id, amount, ordered_at"


def test_quality_check_naming_an_unknown_column(tmp_path: Path) -> None:
    error = only(problems_of(tmp_path, edit(
        ORDERS, 20, "  - {check: not_null, columns: [order_id]}",
        "  - {check: not_null, columns: [order_id, customer]}")))
    assert where(error) == ("dataproduct.yaml", 20, 5)
    assert error.message == "check 'not_null' names unknown column 'customer' of port 'orders'"
    assert error.hint == "columns: order_id, amount, ordered_at"


def test_quality_check_naming_an_unknown_port(tmp_path: Path) -> None:
    error = only(problems_of(tmp_path, edit(
        ORDERS, 20, "  - {check: not_null, columns: [order_id]}",
        "  - {check: not_null, columns: [order_id], port: totals}")))
    assert where(error) == ("dataproduct.yaml", 20, 50)
    assert error.message == "check names unknown port 'totals'"
    assert error.hint == "ports: orders"


def test_referential_check_naming_an_unknown_input(tmp_path: Path) -> None:
    error = only(problems_of(tmp_path, edit(
        ORDERS, 20, "  - {check: not_null, columns: [order_id]}",
        "  - {check: referential, column: order_id, input: customers, to_column: id}")))
    assert where(error) == ("dataproduct.yaml", 20, 51)
    assert error.message == "referential check names unknown input 'customers'"
    assert error.hint == "declared inputs: raw_orders"


def test_freshness_check_needs_a_column_or_event_time(tmp_path: Path) -> None:
    text = edit(ORDERS, 13, "    event_time: ordered_at", "")
    text = edit(text, 19, "  - {check: not_null, columns: [order_id]}",
                "  - {check: freshness, max_age: 2d}")
    error = only(problems_of(tmp_path, text))
    assert where(error) == ("dataproduct.yaml", 19, 5)
    assert "no column" in error.message and error.hint and "event_time" in error.hint


def test_duplicate_field_names(tmp_path: Path) -> None:
    error = only(problems_of(tmp_path, edit(ORDERS, 17, "      - {name: amount, type: float64}",
                                            "      - {name: order_id, type: float64}")))
    assert error.message == "field 'order_id' of port 'orders' is declared twice"
    assert error.hint == "remove or rename the second one"
    _, line, _ = where(error)
    assert line == 16  # the fields list


def test_duplicate_input_names(tmp_path: Path) -> None:
    error = only(problems_of(tmp_path, edit(
        ORDERS, 9, "  - {name: raw_orders, type: file, path: orders.csv}",
        "  - {name: raw_orders, type: file, path: orders.csv}\n"
        "  - {name: raw_orders, type: file, path: more.csv}")))
    assert error.message == "input 'raw_orders' is declared twice"
    assert where(error)[1] == 9


def test_missing_transform_file(tmp_path: Path) -> None:
    error = only(problems_of(tmp_path, ORDERS, transform=False))
    assert where(error) == ("dataproduct.yaml", 10, 30)
    assert error.message == "transform file 'transform.sql' does not exist"
    assert error.hint == "create it next to dataproduct.yaml, or fix the path"


def test_sql_transform_filling_an_unknown_port(tmp_path: Path) -> None:
    error = only(problems_of(tmp_path, edit(
        ORDERS, 10, "transform: {type: sql, file: transform.sql}",
        "transform: {type: sql, file: transform.sql, port: totals}")))
    assert where(error) == ("dataproduct.yaml", 10, 51)
    assert error.message == "transform fills unknown port 'totals'"


def test_trigger_naming_an_unknown_input(tmp_path: Path) -> None:
    error = only(problems_of(tmp_path, ORDERS + "triggers: [{on: source-change, inputs: [raw]}]\n"))
    assert where(error)[1] == 21
    assert error.message == "trigger names unknown input 'raw'"
    assert error.hint == "declared inputs: raw_orders"


def test_product_input_with_a_bad_address(tmp_path: Path) -> None:
    error = only(problems_of(tmp_path, edit(
        ORDERS, 9, "  - {name: raw_orders, type: file, path: orders.csv}",
        "  - {name: raw_orders, type: product, product: https://shop/raw}")))
    assert where(error) == ("dataproduct.yaml", 9, 48)
    assert "does not start with quanta://" in error.message
    assert error.hint


def test_every_semantic_problem_of_a_product_is_reported(tmp_path: Path) -> None:
    text = edit(ORDERS, 13, "    event_time: ordered_at", "    event_time: placed_at")
    text = edit(text, 14, "    primary_key: [order_id]", "    primary_key: [id]")
    text = edit(text, 20, "  - {check: not_null, columns: [order_id]}",
                "  - {check: unique, columns: [nope]}")
    problems = problems_of(tmp_path, text, transform=False)
    assert sorted(where(p)[1] for p in problems) == [10, 13, 14, 20]


# --- links between products --------------------------------------------------------------------


def test_input_naming_an_unknown_product(tmp_path: Path) -> None:
    root = make_mesh(tmp_path / "mesh", {
        "shop/orders": ORDERS,
        "shop/totals": reader("shop", "totals", "orders=quanta://shop/ordrs/orders"),
    })
    mesh = load_mesh(root)
    error = only(mesh.problems)
    assert error.code == "spec_unknown_product"
    assert where(error) == ("dataproduct.yaml", 9, 44)
    assert "totals" in str(error.location)
    assert error.message == "input 'orders' reads unknown product 'shop.ordrs'"
    assert error.hint == "products: shop.orders, shop.totals"


def test_inputs_naming_external_products_are_accepted_others_are_not(tmp_path: Path
                                                                     ) -> None:
    root = make_mesh(tmp_path / "mesh", {
        "shop/totals": reader("shop", "totals", "orders=quanta://shop/orders/orders",
                              "lines=quanta://shop/lines"),
    })
    (root / "mesh.yaml").write_text(MESH_YAML + "external: [quanta://shop/orders, nonsense]\n")
    mesh = load_mesh(root)
    assert mesh.external_products() == {"shop.orders"}
    assert sorted(p.code for p in mesh.problems) == ["spec_inconsistent",
                                                     "spec_unknown_product"]
    unknown = next(p for p in mesh.problems if p.code == "spec_unknown_product")
    assert "shop.lines" in unknown.message
    assert mesh.build_order() == ["shop.totals"]


def test_input_naming_an_unknown_port(tmp_path: Path) -> None:
    root = make_mesh(tmp_path / "mesh", {
        "shop/orders": ORDERS,
        "shop/totals": reader("shop", "totals", "orders=quanta://shop/orders/lines"),
    })
    error = only(load_mesh(root).problems)
    assert error.code == "spec_unknown_port"
    assert where(error) == ("dataproduct.yaml", 9, 44)
    assert error.message == "input 'orders' reads unknown port 'lines' of 'shop.orders'"
    assert error.hint == "ports: orders"


def test_cycle_between_two_products_shows_the_path(tmp_path: Path) -> None:
    root = make_mesh(tmp_path / "mesh", {
        "shop/alpha": reader("shop", "alpha", "beta=quanta://shop/beta"),
        "shop/beta": reader("shop", "beta", "alpha=shop.alpha"),
    })
    mesh = load_mesh(root)
    error = only(mesh.problems)
    assert error.code == "spec_cycle"
    assert error.message == "products read each other in a cycle: shop.alpha -> shop.beta -> " \
        "shop.alpha"
    assert error.hint and "break the cycle" in error.hint
    assert error.location is not None and error.location.line == 9  # the inputs list
    with pytest.raises(SpecError) as info:
        mesh.raise_problems()
    assert info.value.problems == mesh.problems


def test_cycle_of_three_products(tmp_path: Path) -> None:
    root = make_mesh(tmp_path / "mesh", {
        "a/one": reader("a", "one", "two=a.two"),
        "a/two": reader("a", "two", "three=a.three"),
        "a/three": reader("a", "three", "one=a.one"),
    })
    error = only(load_mesh(root).problems)
    assert error.message == "products read each other in a cycle: a.one -> a.two -> a.three " \
        "-> a.one"


def test_product_reading_itself(tmp_path: Path) -> None:
    root = make_mesh(tmp_path / "mesh", {
        "shop/loop": reader("shop", "loop", "me=quanta://shop/loop/loop"),
    })
    error = only(load_mesh(root).problems)
    assert error.code == "spec_cycle"
    assert error.message == "product 'shop.loop' reads itself"
    assert where(error) == ("dataproduct.yaml", 9, 40)


def test_same_product_declared_in_two_files(tmp_path: Path) -> None:
    root = make_mesh(tmp_path / "mesh", {"shop/orders": ORDERS, "shop/orders_copy": ORDERS})
    mesh = load_mesh(root)
    error = only(mesh.problems)
    assert error.code == "spec_duplicate_product"
    first = root / "domains" / "shop" / "orders" / "dataproduct.yaml"
    second = root / "domains" / "shop" / "orders_copy" / "dataproduct.yaml"
    assert error.message == f"product 'shop.orders' is also declared in {first}"
    assert error.location is not None
    assert (Path(error.location.file), error.location.line) == (second, 2)
    assert error.hint and "unique" in error.hint
    assert mesh.product("shop.orders").doc.file == first


def test_problems_of_several_files_are_collected_and_clean_products_still_load(
    tmp_path: Path,
) -> None:
    broken = edit(ORDERS, 4, "kind: source-aligned", "kind: sorce-aligned")
    root = make_mesh(tmp_path / "mesh", {
        "shop/orders": ORDERS,
        "shop/broken": broken.replace("name: orders", "name: broken"),
        "shop/unparsable": "name: [unclosed\n",
        "shop/totals": reader("shop", "totals", "orders=quanta://shop/orders/orders"),
    })
    mesh = load_mesh(root)
    files = sorted(Path(p.location.file).parent.name for p in mesh.problems if p.location)
    assert files == ["broken", "unparsable"], [p.render() for p in mesh.problems]
    assert sorted(mesh.products) == ["shop.orders", "shop.totals"]
    with pytest.raises(SpecError) as info:
        mesh.raise_problems()
    assert info.value.message == "2 problems in specifications"


# --- the tiny mesh: order, downstream, lookup -------------------------------------------------


def test_build_order_puts_upstream_first(tiny_mesh: Path) -> None:
    mesh = load_mesh(tiny_mesh)
    assert mesh.problems == []
    order = mesh.build_order()
    assert sorted(order) == ["shop.customers_py", "shop.daily_totals", "shop.orders"]
    assert order[0] == "shop.orders"
    # only what was asked for, in order
    assert mesh.build_order(["shop.daily_totals"]) == ["shop.daily_totals"]
    assert mesh.build_order(["shop.daily_totals", "shop.orders"]) == [
        "shop.orders", "shop.daily_totals"]


def test_build_order_follows_a_chain_regardless_of_names(tmp_path: Path) -> None:
    root = make_mesh(tmp_path / "mesh", {
        "a/zeta": ORDERS.replace("name: orders", "name: zeta").replace("domain: shop",
                                                                       "domain: a"),
        "a/mid": reader("a", "mid", "zeta=a.zeta.zeta"),
        "a/alpha": reader("a", "alpha", "mid=quanta://a/mid/mid"),
    })
    mesh = load_mesh(root)
    assert mesh.problems == [], [p.render() for p in mesh.problems]
    assert mesh.build_order() == ["a.zeta", "a.mid", "a.alpha"]
    assert mesh.downstream("a.zeta") == ["a.mid"]
    assert mesh.downstream("a.alpha") == []


def test_downstream_lists_direct_readers(tiny_mesh: Path) -> None:
    mesh = load_mesh(tiny_mesh)
    assert mesh.downstream("shop.orders") == ["shop.customers_py", "shop.daily_totals"]
    assert mesh.downstream("shop.daily_totals") == []


def test_product_lookup(tiny_mesh: Path) -> None:
    mesh = load_mesh(tiny_mesh)
    product = mesh.product("shop.daily_totals")
    assert product.folder == tiny_mesh.resolve() / "domains" / "shop" / "daily_totals"
    assert [(name, str(a)) for name, a in product.upstream()] == [
        ("orders", "quanta://shop/orders/orders")]
    with pytest.raises(NotFoundError) as info:
        mesh.product("shop.nope")
    assert info.value.hint and "shop.orders" in info.value.hint


def test_storage_root_is_relative_to_mesh_yaml(tiny_mesh: Path) -> None:
    assert load_mesh(tiny_mesh).storage_root == tiny_mesh.resolve() / ".quanta"


# --- finding and loading a mesh ----------------------------------------------------------------


def test_find_mesh_root_from_a_nested_folder(tiny_mesh: Path) -> None:
    nested = tiny_mesh / "domains" / "shop" / "orders"
    assert find_mesh_root(nested) == tiny_mesh.resolve()
    assert find_mesh_root(tiny_mesh) == tiny_mesh.resolve()


def test_find_mesh_root_uses_the_working_folder(
    tiny_mesh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QUANTA_MESH", raising=False)
    monkeypatch.chdir(tiny_mesh / "domains" / "shop")
    assert find_mesh_root() == tiny_mesh.resolve()


def test_find_mesh_root_honours_quanta_mesh(
    tiny_mesh: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("QUANTA_MESH", str(tiny_mesh))
    assert find_mesh_root() == tiny_mesh.resolve()


def test_find_mesh_root_without_a_mesh_has_a_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QUANTA_MESH", raising=False)
    empty = tmp_path / "a" / "b"
    empty.mkdir(parents=True)
    monkeypatch.chdir(empty)
    for call in (lambda: find_mesh_root(empty), find_mesh_root):
        with pytest.raises(NotFoundError) as info:
            call()
        assert info.value.code == "mesh_not_found"
        assert str(empty.resolve()) in info.value.message
        assert info.value.hint and "quanta init" in info.value.hint
        assert "--mesh" in info.value.hint and "QUANTA_MESH" in info.value.hint


def test_load_mesh_without_mesh_yaml(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as info:
        load_mesh(tmp_path)
    assert info.value.hint and "quanta init" in info.value.hint


def test_invalid_mesh_yaml_raises_every_problem(tmp_path: Path) -> None:
    (tmp_path / "mesh.yaml").write_text("apiVersion: quanta/v2\nname: Bad Name\nstorag: {}\n")
    with pytest.raises(SpecError) as info:
        load_mesh(tmp_path)
    lines = sorted(p.location.line for p in info.value.problems if p.location)
    assert lines == [1, 2, 3]


def test_custom_product_globs(tmp_path: Path) -> None:
    root = tmp_path / "mesh"
    (root / "products" / "orders").mkdir(parents=True)
    (root / "mesh.yaml").write_text(MESH_YAML + 'products: ["products/*/dataproduct.yaml"]\n')
    (root / "products" / "orders" / "dataproduct.yaml").write_text(ORDERS)
    (root / "products" / "orders" / "transform.sql").write_text("SELECT 1\n")
    # a spec outside the globs is not part of the mesh
    shutil.copytree(root / "products", root / "domains" / "shop")
    mesh = load_mesh(root)
    assert isinstance(mesh, Mesh) and mesh.problems == []
    assert list(mesh.products) == ["shop.orders"]
    assert mesh.product("shop.orders").folder == root.resolve() / "products" / "orders"
