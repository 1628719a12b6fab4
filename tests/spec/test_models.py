"""The spec models: what a valid dataproduct.yaml becomes, and how bad values are reported."""

from __future__ import annotations

from pathlib import Path

import pytest
from spec_text import VALID, edit

from quanta.errors import QuantaError
from quanta.spec.loader import read_yaml, validate
from quanta.spec.models import (
    FileInput,
    MeshSpec,
    NotNullCheck,
    ProductInput,
    ProductSpec,
    RangeCheck,
    SqlTransform,
)


def load(tmp_path: Path, text: str) -> tuple[ProductSpec | None, list[QuantaError]]:
    file = tmp_path / "dataproduct.yaml"
    file.write_text(text, encoding="utf-8")
    return validate(read_yaml(file), ProductSpec)


def only_error(tmp_path: Path, text: str) -> QuantaError:
    spec, problems = load(tmp_path, text)
    assert spec is None
    assert len(problems) == 1, [p.render() for p in problems]
    return problems[0]


def where(error: QuantaError) -> tuple[int | None, int | None]:
    assert error.location is not None, error.render()
    return error.location.line, error.location.column


# --- a valid spec ------------------------------------------------------------------------------


def test_valid_spec_loads_with_values_and_defaults(tmp_path: Path) -> None:
    spec, problems = load(tmp_path, VALID)
    assert problems == []
    assert isinstance(spec, ProductSpec)
    assert spec.api_version == "quanta/v1"
    assert (spec.name, spec.domain, spec.key) == ("orders", "shop", "shop.orders")
    assert spec.kind == "source-aligned"
    assert spec.version == "1.0.0"
    assert (spec.owner.team, spec.owner.email, spec.owner.name) == (
        "shop", "shop@example.com", None)
    assert spec.description == "Orders as the shop recorded them."
    # inputs
    [raw] = spec.inputs
    assert isinstance(raw, FileInput)
    assert (raw.name, raw.path, raw.format, raw.header) == ("raw_orders", "orders.csv", None, True)
    assert spec.input("raw_orders") is raw
    assert spec.input("nope") is None
    # transform
    assert isinstance(spec.transform, SqlTransform)
    assert spec.transform.sql == "SELECT * FROM raw_orders"
    assert spec.transform.file is None and spec.transform.port is None
    # outputs
    port = spec.port()
    assert port is not None and spec.port("orders") is port and spec.port("nope") is None
    assert port.event_time == "ordered_at" and port.primary_key == ["order_id"]
    assert [f.name for f in port.fields] == ["order_id", "amount", "ordered_at"]
    assert [f.type for f in port.fields] == ["string", "decimal(10,2)", "timestamp"]
    order_id, amount, _ = port.fields
    assert order_id.nullable is False and amount.nullable is True
    assert amount.unit == "EUR" and order_id.unit is None
    assert all(f.classification == "internal" for f in port.fields)
    assert port.field("amount") is amount and port.field("nope") is None
    # quality, slos and the rest
    [check] = spec.quality
    assert isinstance(check, NotNullCheck)
    assert (check.columns, check.severity, check.port) == (["order_id"], "error", None)
    assert spec.slos.freshness == "1d" and spec.slos.completeness is None
    assert (spec.tags, spec.triggers, spec.policies, spec.retention) == ([], [], [], None)


def test_specs_are_frozen(tmp_path: Path) -> None:
    spec, _ = load(tmp_path, VALID)
    assert spec is not None
    with pytest.raises(ValueError, match="frozen"):
        spec.name = "other"  # type: ignore[misc]


def test_product_input_and_python_transform(tmp_path: Path) -> None:
    text = edit(VALID, 9, "  - {name: raw_orders, type: file, path: orders.csv}",
                "  - {name: orders, type: product, product: quanta://shop/raw/orders, release: 2}")
    text = edit(text, 10, "transform: {type: sql, sql: SELECT * FROM raw_orders}",
                "transform: {type: python, file: transform.py}")
    spec, problems = load(tmp_path, text)
    assert problems == [], [p.render() for p in problems]
    assert spec is not None
    [item] = spec.inputs
    assert isinstance(item, ProductInput)
    assert (item.product, item.release) == ("quanta://shop/raw/orders", 2)
    assert spec.transform.type == "python"
    assert spec.transform.function == "transform"  # type: ignore[union-attr]


def test_mesh_spec_defaults(tmp_path: Path) -> None:
    file = tmp_path / "mesh.yaml"
    file.write_text("apiVersion: quanta/v1\nname: tiny\n")
    spec, problems = validate(read_yaml(file), MeshSpec)
    assert problems == [] and spec is not None
    assert spec.name == "tiny"
    assert spec.storage.root == ".quanta"
    assert spec.catalog.url is None
    assert spec.products == ["domains/*/*/dataproduct.yaml"]
    assert spec.engine == "duckdb"


# --- wrong values, each pointing at its line and column --------------------------------------


def test_unquoted_number_version_gets_a_quoting_hint(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit(VALID, 5, "version: 1.0.0", "version: 1.0"))
    assert where(error) == (5, 10)
    assert error.message.startswith("version: ")
    assert error.hint == "quote the value if it should be text, e.g. version: '1.0.0'"
    assert error.render().endswith(f"{error.message} ({error.hint})")


def test_misspelt_kind_gets_did_you_mean(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit(VALID, 4, "kind: source-aligned", "kind: source-algned"))
    assert where(error) == (4, 7)
    assert error.message == "kind: unknown value 'source-algned'"
    assert error.hint == ("did you mean 'source-aligned'? expected one of: source-aligned, "
                          "aggregate, consumer-aligned")


def test_unknown_input_type_lists_the_types(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit(
        VALID, 9, "  - {name: raw_orders, type: file, path: orders.csv}",
        "  - {name: raw_orders, type: ftp, path: orders.csv}"))
    assert where(error) == (9, 30)  # the value 'ftp'
    assert error.message == "inputs[0].type: unknown value 'ftp'"
    assert error.hint == "expected one of: file, sqlite, postgres, product"


def test_input_without_type_asks_for_one(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit(
        VALID, 9, "  - {name: raw_orders, type: file, path: orders.csv}",
        "  - {name: raw_orders, path: orders.csv}"))
    assert where(error) == (9, 5)
    assert error.hint == "add 'type: ...'"


def test_unknown_check_name_gets_did_you_mean(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit(VALID, 20, "  - {check: not_null, columns: [order_id]}",
                                      "  - {check: not_nul, columns: [order_id]}"))
    assert where(error) == (20, 13)
    assert error.message == "quality[0].check: unknown value 'not_nul'"
    assert error.hint is not None and error.hint.startswith("did you mean 'not_null'?")
    assert "referential" in error.hint


def test_bad_duration_points_at_the_value(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit(VALID, 21, "slos: {freshness: 1d}",
                                      "slos: {freshness: 1 hour}"))
    assert where(error) == (21, 19)
    assert error.message.startswith("slos.freshness: '1 hour' is not a duration")
    assert "1h" in error.render()


def test_bad_semver_points_at_the_value(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit(VALID, 5, "version: 1.0.0", "version: v1"))
    assert where(error) == (5, 10)
    assert error.message.startswith("version: 'v1' is not a semantic version")
    assert "1.0.0" in error.render()


@pytest.mark.parametrize("version", ["1.0", "01.0.0", "1.0.0.0", "1.0.0-"])
def test_semver_edge_cases_are_rejected(tmp_path: Path, version: str) -> None:
    error = only_error(tmp_path, edit(VALID, 5, "version: 1.0.0", f"version: '{version}'"))
    assert where(error) == (5, 10)
    assert "not a semantic version" in error.message


def test_prerelease_semver_is_accepted(tmp_path: Path) -> None:
    spec, problems = load(tmp_path, edit(VALID, 5, "version: 1.0.0", "version: 2.1.0-rc.1"))
    assert problems == [] and spec is not None and spec.version == "2.1.0-rc.1"


def test_name_with_capitals_is_not_an_identifier(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit(VALID, 2, "name: orders", "name: Orders"))
    assert where(error) == (2, 7)
    assert error.message.startswith("name: ")
    assert error.hint is not None and "snake_case" in error.hint


def test_field_name_with_dash_points_into_the_flow_mapping(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit(
        VALID, 18, "      - {name: ordered_at, type: timestamp}",
        "      - {name: ordered-at, type: timestamp}"))
    assert where(error) == (18, 16)
    assert error.message.startswith("outputs[0].fields[2].name: ")
    assert error.hint is not None and "snake_case" in error.hint


def test_decimal_cut_by_a_flow_comma_says_to_quote_it(tmp_path: Path) -> None:
    text = edit(VALID, 17, "      - {name: amount, type: 'decimal(10,2)', unit: EUR}",
                "      - {name: amount, type: decimal(10,2), unit: EUR}")
    spec, problems = load(tmp_path, text)
    assert spec is None
    cut = [p for p in problems if "cut at a comma" in p.message]
    assert len(cut) == 1, [p.render() for p in problems]
    assert where(cut[0]) == (17, 30)
    assert cut[0].message.startswith("outputs[0].fields[1].type: ")
    assert "type: 'decimal(10,2)'" in cut[0].render()
    # anything else reported is on the same line
    assert {where(p)[0] for p in problems} == {17}


@pytest.mark.parametrize("type_", ["'decimal(38,9)'", "\"decimal(10, 2)\"", "date", "binary"])
def test_known_field_types_are_accepted(tmp_path: Path, type_: str) -> None:
    text = edit(VALID, 17, "      - {name: amount, type: 'decimal(10,2)', unit: EUR}",
                f"      - {{name: amount, type: {type_}}}")
    _, problems = load(tmp_path, text)
    assert problems == [], [p.render() for p in problems]


def test_unknown_field_type_lists_the_types(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit(
        VALID, 18, "      - {name: ordered_at, type: timestamp}",
        "      - {name: ordered_at, type: datetime}"))
    assert where(error) == (18, 34)
    assert "unknown type 'datetime'" in error.message
    assert "timestamp" in error.render()


@pytest.mark.parametrize(
    ("line", "old", "new"),
    [
        (21, "slos: {freshness: 1d}", "slos: {freshness: 1 hour}"),
        (5, "version: 1.0.0", "version: v1"),
        (17, "      - {name: amount, type: 'decimal(10,2)', unit: EUR}",
         "      - {name: amount, type: 'decimal(10,x)', unit: EUR}"),
    ],
)
def test_value_errors_carry_a_hint(tmp_path: Path, line: int, old: str, new: str) -> None:
    error = only_error(tmp_path, edit(VALID, line, old, new))
    assert error.hint
    assert error.render().endswith(f"({error.hint})")


# --- rules inside one model ------------------------------------------------------------------


def test_sql_transform_needs_exactly_one_of_file_and_sql(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit(
        VALID, 10, "transform: {type: sql, sql: SELECT * FROM raw_orders}",
        "transform: {type: sql, sql: SELECT 1, file: transform.sql}"))
    assert where(error)[0] == 10
    assert "exactly one of 'file'" in error.message


def test_range_check_needs_a_bound(tmp_path: Path) -> None:
    check = "  - {check: not_null, columns: [order_id]}"
    error = only_error(tmp_path, edit(VALID, 20, check,
                                      f"{check}\n  - {{check: range, column: amount}}"))
    assert where(error) == (21, 5)
    assert "needs 'min', 'max' or both" in error.message
    ok, problems = load(tmp_path, edit(VALID, 20, check,
                                       f"{check}\n  - {{check: range, column: amount, max: 5}}"))
    assert problems == [] and ok is not None and isinstance(ok.quality[1], RangeCheck)


def test_trigger_has_exactly_one_of_every_and_on(tmp_path: Path) -> None:
    error = only_error(tmp_path, VALID + "triggers: [{every: 15m, on: upstream}]\n")
    assert where(error) == (22, 12)
    assert "exactly one of 'every" in error.message


def test_postgres_url_env_must_not_be_a_url(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit(
        VALID, 9, "  - {name: raw_orders, type: file, path: orders.csv}",
        "  - {name: raw_orders, type: postgres, url_env: 'postgresql://u@h/db', table: t}"))
    assert where(error) == (9, 49)  # the quoted value
    assert "never the URL itself" in error.message


def test_string_where_a_list_belongs(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit(VALID, 14, "    primary_key: [order_id]",
                                      "    primary_key: order_id"))
    assert where(error) == (14, 18)
    assert error.message.startswith("outputs[0].primary_key: ")
