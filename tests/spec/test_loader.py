"""Reading spec files: YAML syntax errors and key errors reported as file:line:col (hint)."""

from __future__ import annotations

from pathlib import Path

import pytest
from spec_text import VALID, edit

from quanta.errors import QuantaError
from quanta.spec.loader import read_yaml, validate
from quanta.spec.models import MeshSpec, ProductSpec


def load(tmp_path: Path, text: str) -> tuple[Path, list[QuantaError]]:
    """Write ``text`` as dataproduct.yaml, read and validate it; return the file and problems."""
    file = tmp_path / "dataproduct.yaml"
    file.write_text(text, encoding="utf-8")
    try:
        doc = read_yaml(file)
    except QuantaError as exc:
        return file, [exc]
    spec, problems = validate(doc, ProductSpec)
    assert (spec is None) == bool(problems)
    return file, problems


def where(error: QuantaError) -> tuple[int | None, int | None]:
    assert error.location is not None, error.render()
    return error.location.line, error.location.column


def only(problems: list[QuantaError]) -> QuantaError:
    assert len(problems) == 1, [p.render() for p in problems]
    return problems[0]


def test_valid_spec_has_no_problems(tmp_path: Path) -> None:
    _, problems = load(tmp_path, VALID)
    assert problems == []


# --- YAML syntax -------------------------------------------------------------------------------


def test_bad_indentation_points_at_the_misindented_line(tmp_path: Path) -> None:
    text = edit(VALID, 6, "owner: {team: shop, email: shop@example.com}",
                "owner:\n  team: shop\n email: shop@example.com")
    file, problems = load(tmp_path, text)
    error = only(problems)
    assert error.code == "yaml_invalid"
    assert where(error) == (8, 2)  # ' email:' is line 8, dedented to column 2
    assert error.message.startswith("invalid YAML: ")
    assert error.hint and "indentation" in error.hint
    assert error.render() == f"{file}:8:2: {error.message} ({error.hint})"


def test_key_indented_under_a_scalar_points_at_its_colon(tmp_path: Path) -> None:
    file, problems = load(tmp_path, edit(VALID, 3, "domain: shop", "  domain: shop"))
    error = only(problems)
    assert error.code == "yaml_invalid"
    assert where(error) == (3, 9)
    assert error.render().startswith(f"{file}:3:9: invalid YAML: ")
    assert "mapping values are not allowed" in error.message


def test_tab_indentation_is_reported_where_the_tab_is(tmp_path: Path) -> None:
    _, problems = load(tmp_path, edit(VALID, 3, "domain: shop", "\tdomain: shop"))
    error = only(problems)
    assert error.code == "yaml_invalid"
    assert where(error) == (3, 1)


def test_unclosed_bracket_is_a_yaml_error_at_the_position_the_parser_stopped(
    tmp_path: Path,
) -> None:
    text = edit(VALID, 6, "owner: {team: shop, email: shop@example.com}",
                "owner: {team: shop, email: shop@example.com")
    _, problems = load(tmp_path, text)
    error = only(problems)
    assert error.code == "yaml_invalid"
    # the parser notices on the next line, at the ':' of 'description:'
    assert where(error) == (7, 12)
    assert "expected ',' or '}'" in error.message
    assert error.hint


def test_unterminated_quote_is_a_yaml_error(tmp_path: Path) -> None:
    _, problems = load(tmp_path, edit(VALID, 7, "description: Orders as the shop recorded them.",
                                      "description: 'Orders as the shop recorded them."))
    error = only(problems)
    assert error.code == "yaml_invalid"
    assert error.hint


@pytest.mark.parametrize(
    ("line", "old", "new"),
    [
        (14, "    primary_key: [order_id]", "    primary_key: [order_id"),
        (6, "owner: {team: shop, email: shop@example.com}",
         "owner: {team: shop, email: shop@example.com"),
        (7, "description: Orders as the shop recorded them.",
         'description: "Orders as the shop recorded them.'),
        (21, "slos: {freshness: 1d}", "slos: {freshness: '1d}"),
    ],
)
def test_unclosed_bracket_or_quote_names_the_line_where_it_was_opened(
    tmp_path: Path, line: int, old: str, new: str
) -> None:
    _, problems = load(tmp_path, edit(VALID, line, old, new))
    error = only(problems)
    assert error.location is not None
    assert error.location.line == line or f"line {line}," in error.render()


def test_duplicate_key_points_at_the_second_occurrence(tmp_path: Path) -> None:
    text = edit(VALID, 4, "kind: source-aligned", "kind: source-aligned\ndomain: other")
    file, problems = load(tmp_path, text)
    error = only(problems)
    assert error.code == "yaml_invalid"
    assert where(error) == (5, 1)
    assert "duplicate key" in error.message and '"domain"' in error.message
    assert error.render().startswith(f"{file}:5:1: ")


def test_duplicate_key_inside_a_flow_mapping(tmp_path: Path) -> None:
    text = edit(VALID, 16, "      - {name: order_id, type: string, nullable: false}",
                "      - {name: order_id, type: string, name: id}")
    _, problems = load(tmp_path, text)
    error = only(problems)
    assert "duplicate key" in error.message
    assert where(error)[0] == 16


def test_a_file_that_is_not_a_mapping_is_refused_with_a_hint(tmp_path: Path) -> None:
    file, problems = load(tmp_path, "- name: orders\n- domain: shop\n")
    error = only(problems)
    assert where(error) == (1, 1)
    assert error.render().startswith(f"{file}:1:1: ")
    assert "mapping" in error.message
    assert error.hint and "apiVersion: quanta/v1" in error.hint


def test_an_empty_file_reports_the_missing_keys_instead_of_crashing(tmp_path: Path) -> None:
    _, problems = load(tmp_path, "# nothing yet\n")
    missing = {p.message for p in problems}
    for key in ("name", "domain", "kind", "version", "owner", "description", "transform",
                "outputs"):
        assert f"missing required key '{key}'" in missing


def test_a_missing_file_is_a_quanta_error(tmp_path: Path) -> None:
    with pytest.raises(QuantaError) as info:
        read_yaml(tmp_path / "nope" / "dataproduct.yaml")
    assert info.value.code == "file_missing"
    assert info.value.hint


# --- unknown and missing keys ----------------------------------------------------------------


def test_misspelt_key_gets_did_you_mean_at_the_key(tmp_path: Path) -> None:
    text = edit(VALID, 7, "description: Orders as the shop recorded them.",
                "desciption: Orders as the shop recorded them.")
    file, problems = load(tmp_path, text)
    unknown = [p for p in problems if p.code == "spec_unknown_key"]
    assert len(unknown) == 1
    error = unknown[0]
    assert error.message == "unknown key 'desciption'"
    assert error.hint == "did you mean 'description'?"
    assert where(error) == (7, 1)
    assert error.render() == (
        f"{file}:7:1: unknown key 'desciption' (did you mean 'description'?)"
    )
    # and the real key is then missing
    assert [p.message for p in problems if p.code == "spec_missing_key"] == [
        "missing required key 'description'"
    ]


def test_misspelt_nested_key_names_its_path_and_column(tmp_path: Path) -> None:
    text = edit(VALID, 17, "      - {name: amount, type: 'decimal(10,2)', unit: EUR}",
                "      - {name: amount, tpye: 'decimal(10,2)'}")
    _, problems = load(tmp_path, text)
    unknown = [p for p in problems if p.code == "spec_unknown_key"]
    error = only(unknown)
    assert error.message == "unknown key 'tpye' in outputs[0].fields[1]"
    assert error.hint == "did you mean 'type'?"
    assert where(error) == (17, 24)  # the key 'tpye', not the value


def test_unknown_key_without_close_match_lists_allowed_keys(tmp_path: Path) -> None:
    text = edit(VALID, 6, "owner: {team: shop, email: shop@example.com}",
                "owner: {team: shop, pager: '555'}")
    _, problems = load(tmp_path, text)
    error = only(problems)
    assert error.message == "unknown key 'pager' in owner"
    assert error.hint == "allowed keys here: email, name, team"
    assert where(error) == (6, 21)


def test_missing_top_level_key(tmp_path: Path) -> None:
    text = edit(VALID, 6, "owner: {team: shop, email: shop@example.com}", "")
    file, problems = load(tmp_path, text)
    error = only(problems)
    assert error.code == "spec_missing_key"
    assert error.message == "missing required key 'owner'"
    assert error.hint == "add 'owner: ...'"
    assert where(error) == (1, 1)
    assert error.render() == f"{file}:1:1: missing required key 'owner' (add 'owner: ...')"


def test_missing_nested_key_points_at_its_parent(tmp_path: Path) -> None:
    text = edit(VALID, 6, "owner: {team: shop, email: shop@example.com}",
                "owner: {email: shop@example.com}")
    _, problems = load(tmp_path, text)
    error = only(problems)
    assert error.message == "missing required key 'team' in owner"
    assert error.hint == "add 'team: ...'"
    assert where(error) == (6, 8)  # the '{' of owner's value


def test_missing_key_in_a_list_item_points_at_the_item(tmp_path: Path) -> None:
    text = edit(VALID, 18, "      - {name: ordered_at, type: timestamp}",
                "      - {name: ordered_at}")
    _, problems = load(tmp_path, text)
    error = only(problems)
    assert error.message == "missing required key 'type' in outputs[0].fields[2]"
    assert where(error) == (18, 9)


# --- every problem at once ---------------------------------------------------------------------


def test_all_problems_of_a_file_are_reported_together(tmp_path: Path) -> None:
    text = VALID
    text = edit(text, 4, "kind: source-aligned", "kind: source-algned")
    text = edit(text, 5, "version: 1.0.0", "version: 1.0")
    text = edit(text, 16, "      - {name: order_id, type: string, nullable: false}",
                "      - {name: order_id, type: string, nullable: false, colour: red}")
    text = edit(text, 21, "slos: {freshness: 1d}", "slos: {freshness: 1 day}")
    file, problems = load(tmp_path, text)
    rendered = sorted(p.render() for p in problems)
    assert len(problems) == 4, rendered
    assert sorted(where(p) for p in problems) == [(4, 7), (5, 10), (16, 57), (21, 19)]
    assert all(r.startswith(f"{file}:") for r in rendered)
    messages = " | ".join(rendered)
    for needle in ("source-algned", "version", "colour", "1 day"):
        assert needle in messages


def test_mesh_yaml_errors_are_located_too(tmp_path: Path) -> None:
    file = tmp_path / "mesh.yaml"
    file.write_text("apiVersion: quanta/v1\nname: My-Mesh\nstorage: {rot: .quanta}\n")
    spec, problems = validate(read_yaml(file), MeshSpec)
    assert spec is None
    by_line = {where(p): p for p in problems}
    assert set(by_line) == {(2, 7), (3, 11)}
    assert by_line[(2, 7)].hint and "snake_case" in by_line[(2, 7)].hint
    assert by_line[(3, 11)].hint == "did you mean 'root'?"
