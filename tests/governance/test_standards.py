"""Standards as code: built-in and custom standards, their scope, severity and findings.

tests/fixtures/standards holds a compliant product (sales.orders) and products that break
every built-in standard once or twice at known places, plus a custom standard of the mesh
(standards/steward.py) scoped to the hr domain.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from conftest import REPO, cli, copy_fixture
from quanta.errors import Location
from quanta.governance import (
    BUILTIN_STANDARDS,
    Finding,
    StandardDefinitionError,
    StandardsError,
    StandardsFailedError,
    check_standards,
    enforce,
    review_standards,
    standard,
)
from quanta.governance.builtin import SQL_RESERVED, owner_required
from quanta.spec.mesh import Mesh, load_mesh

# (standard, product, line, column, text written at that position, part of the message)
EXPECTED = [
    ("pii-needs-steward", "hr.headcount", 6, 8, "{team: hr,", "holds PII but names no steward"),
    ("owner-required", "hr.headcount", 6, 26, "hr at example.com", "is not an email address"),
    ("consumer-use-declared", "hr.payroll_report", 8, 7, "[hr, payroll]",
     "consumer-aligned hr.payroll_report declares no purpose"),
    ("slos-required", "sales.legacy_feed", 2, 7, "legacy_feed", "neither freshness nor"),
    ("owner-required", "sales.legacy_feed", 6, 8, "{team: sales}", "has no email address"),
    ("description-required", "sales.legacy_feed", 7, 14, "TODO describe", "no real description"),
    ("source-reads-operational", "sales.legacy_feed", 9, 26, "product, product:",
     "reads product 'quanta://sales/orders/orders'"),
    ("naming-convention", "sales.legacy_feed", 10, 12, "raw__refunds",
     "input name 'raw__refunds' is not snake_case"),
    ("event-time-required", "sales.legacy_feed", 13, 5, "name: feed",
     "port 'feed' declares no event_time"),
    ("field-description-required", "sales.legacy_feed", 17, 9, "{name: order,",
     "field 'order' of port 'feed' has no description"),
    ("naming-convention", "sales.legacy_feed", 17, 16, "order, type",
     "field name 'order' is a reserved SQL word"),
    ("pii-protected", "sales.legacy_feed", 18, 82, "pii}",
     "PII field 'phone' of port 'feed' has no polyseme and no mask policy"),
    ("field-classification-required", "sales.legacy_feed", 19, 9, "{name: amount",
     "field 'amount' of port 'feed' has no classification"),
    ("field-description-required", "sales.legacy_feed", 19, 52, '"  "',
     "field 'amount' of port 'feed' has no description"),
]
ERRORS_BY_DEFAULT = {"naming-convention", "source-reads-operational"}
MESH_YAML = """\
apiVersion: quanta/v1
name: standards
governance:
  standards: [standards]
"""


@pytest.fixture
def mesh_dir(tmp_path: Path) -> Path:
    return copy_fixture("standards", tmp_path).resolve()


def load(root: Path) -> Mesh:
    mesh = load_mesh(root)
    assert mesh.problems == [], [p.render() for p in mesh.problems]
    return mesh


def spec_file(root: Path, key: str) -> Path:
    domain, product = key.split(".")
    return root / "domains" / domain / product / "dataproduct.yaml"


def edit(root: Path, key: str, old: str, new: str) -> None:
    file = spec_file(root, key)
    text = file.read_text()
    assert text.count(old) == 1, (old, text)
    file.write_text(text.replace(old, new))


def governance(root: Path, *lines: str) -> Path:
    """Rewrite mesh.yaml with extra lines in its governance block; return the file."""
    file = root / "mesh.yaml"
    file.write_text(MESH_YAML + "".join(f"  {line}\n" for line in lines))
    return file


def write_standard(root: Path, name: str, text: str) -> Path:
    file = root / "standards" / name
    file.write_text(text)
    return file


def by_code(findings: list[Finding], code: str) -> list[Finding]:
    return [f for f in findings if f.code == code]


# --- built-in standards -----------------------------------------------------------------------


def test_builtins_are_registered_with_code_severity_and_description() -> None:
    codes = [s.code for s in BUILTIN_STANDARDS]
    assert codes == [
        "owner-required", "description-required", "slos-required", "field-description-required",
        "field-classification-required", "pii-protected", "event-time-required",
        "naming-convention", "source-reads-operational", "consumer-use-declared",
    ]
    assert {s.code for s in BUILTIN_STANDARDS if s.severity == "error"} == ERRORS_BY_DEFAULT
    assert {s.severity for s in BUILTIN_STANDARDS} == {"error", "warn"}
    for rule in BUILTIN_STANDARDS:
        assert rule.description and "\n" not in rule.description, rule.code
        assert rule.domains is None, rule.code
    kinds = {s.code: s.kinds for s in BUILTIN_STANDARDS if s.kinds}
    assert kinds == {"event-time-required": ("source-aligned", "aggregate"),
                     "source-reads-operational": ("source-aligned",),
                     "consumer-use-declared": ("consumer-aligned",)}


def test_each_standard_fires_exactly_where_the_fixture_breaks_it(mesh_dir: Path) -> None:
    findings = check_standards(load(mesh_dir))
    found = [(f.code, f.product, f.location.line, f.location.column)  # type: ignore[union-attr]
             for f in findings]
    assert found == [(c, p, line, col) for c, p, line, col, _, _ in EXPECTED]
    for item, (code, product, _, _, _, message) in zip(findings, EXPECTED, strict=True):
        assert item.location is not None and Path(item.location.file) == spec_file(
            mesh_dir, product)
        assert message in item.message, (code, item.message)
        assert item.hint, code
        expected = "error" if code in ERRORS_BY_DEFAULT else "warn"
        assert item.severity == expected, code
    assert not [f for f in findings if f.product == "sales.orders"]  # the compliant product


@pytest.mark.parametrize(("code", "product", "line", "column", "text", "message"), EXPECTED,
                         ids=[f"{c}@{line}:{col}" for c, _, line, col, _, _ in EXPECTED])
def test_location_points_at_the_offending_yaml_node(
    mesh_dir: Path, code: str, product: str, line: int, column: int, text: str, message: str
) -> None:
    lines = spec_file(mesh_dir, product).read_text().splitlines()
    assert lines[line - 1][column - 1:].startswith(text), (code, lines[line - 1])


# Edits that make a product meet one standard: its findings there must disappear, and only its.
FIXES = {
    "owner-required": [
        ("sales.legacy_feed", "owner: {team: sales}",
         "owner: {team: sales, email: sales@example.com}"),
        ("hr.headcount", "hr at example.com", "hr@example.com"),
    ],
    "description-required": [
        ("sales.legacy_feed", "TODO describe this product.", "Orders, as the old system reads."),
    ],
    "slos-required": [
        ("sales.legacy_feed", "outputs:", "slos: {interval_of_change: 1h}\noutputs:"),
    ],
    "field-description-required": [
        ("sales.legacy_feed", "{name: order, type: int64,", "{name: order, type: int64, "
         "description: Position in the feed,"),
        ("sales.legacy_feed", 'description: "  "', "description: Amount in EUR"),
    ],
    "field-classification-required": [
        ("sales.legacy_feed", "Amount in EUR", "Amount in EUR, classification: internal"),
    ],
    "pii-protected": [
        ("sales.legacy_feed", "classification: pii}", "classification: pii, polyseme: phone}"),
    ],
    "event-time-required": [
        ("sales.legacy_feed", "primary_key: [order_id]",
         "event_time: placed_at\n    primary_key: [order_id]"),
        ("sales.legacy_feed", "    fields:\n", "    fields:\n      - {name: placed_at, "
         "type: timestamp, description: When the order was placed, classification: internal}\n"),
    ],
    "naming-convention": [
        ("sales.legacy_feed", "raw__refunds", "raw_refunds"),
        ("sales.legacy_feed", "{name: order,", "{name: position,"),
    ],
    "source-reads-operational": [
        ("sales.legacy_feed", "{name: orders, type: product, product: quanta://sales/orders/orders}",
         "{name: orders, type: file, path: orders.csv}"),
    ],
    "consumer-use-declared": [("hr.payroll_report", "tags: [hr, payroll]",
                               "tags: [hr, payroll, purpose:payroll_accounting]")],
}


@pytest.mark.parametrize("code", sorted(FIXES))
def test_meeting_a_standard_removes_its_findings_and_no_others(mesh_dir: Path, code: str) -> None:
    before = check_standards(load(mesh_dir))
    assert by_code(before, code)
    if code == "field-classification-required":  # the field needs its description first
        for key, old, new in FIXES["field-description-required"]:
            edit(mesh_dir, key, old, new)
        before = check_standards(load(mesh_dir))
    for key, old, new in FIXES[code]:
        edit(mesh_dir, key, old, new)
    after = check_standards(load(mesh_dir))
    assert by_code(after, code) == []
    assert others(after, code) == others(before, code)


def others(findings: list[Finding], code: str) -> Counter[tuple[str, str | None]]:
    return Counter((f.code, f.product) for f in findings if f.code != code)


def test_event_time_applies_to_source_aligned_and_aggregate_only(mesh_dir: Path) -> None:
    # payroll_report (consumer-aligned) has no event_time and no finding for it
    edit(mesh_dir, "hr.headcount", "    event_time: month\n", "")
    found = by_code(check_standards(load(mesh_dir)), "event-time-required")
    assert [f.product for f in found] == ["hr.headcount", "sales.legacy_feed"]


def test_a_grant_with_purposes_declares_consumer_use(mesh_dir: Path) -> None:
    edit(mesh_dir, "hr.payroll_report", "slos: {freshness: 31d}",
         "slos: {freshness: 31d}\npolicies:\n  - {type: grant, to: [group:finance], "
         "purposes: [payroll_accounting]}")
    assert by_code(check_standards(load(mesh_dir)), "consumer-use-declared") == []


def test_an_empty_purpose_tag_declares_nothing(mesh_dir: Path) -> None:
    edit(mesh_dir, "hr.payroll_report", "tags: [hr, payroll]", "tags: [hr, 'purpose: ']")
    assert len(by_code(check_standards(load(mesh_dir)), "consumer-use-declared")) == 1


def test_a_mask_protects_the_columns_it_names_on_its_ports(mesh_dir: Path) -> None:
    edit(mesh_dir, "sales.orders", "columns: [email]", "columns: [customer_id]")
    found = by_code(check_standards(load(mesh_dir)), "pii-protected")
    assert [(f.product, f.message.split("'")[1]) for f in found] == [
        ("sales.legacy_feed", "phone"), ("sales.orders", "email")]
    edit(mesh_dir, "sales.legacy_feed", "outputs:", "policies:\n  - {type: mask, "
         "columns: [phone], method: last4, ports: [feed]}\noutputs:")
    found = by_code(check_standards(load(mesh_dir)), "pii-protected")
    assert [f.product for f in found] == ["sales.orders"]


def test_a_written_default_classification_counts(mesh_dir: Path) -> None:
    # 'internal' is the model's default; written out it is a decision, left out it is not
    found = by_code(check_standards(load(mesh_dir)), "field-classification-required")
    assert [f.message.split("'")[1] for f in found] == ["amount"]
    edit(mesh_dir, "sales.orders", "{name: order_id, type: string, description: Order id, "
         "classification: internal}", "{name: order_id, type: string, description: Order id}")
    found = by_code(check_standards(load(mesh_dir)), "field-classification-required")
    assert sorted(f.message.split("'")[1] for f in found) == ["amount", "order_id"]


def test_reserved_words_match_the_engine() -> None:
    rows = duckdb.connect().execute(
        "SELECT keyword_name FROM duckdb_keywords() "
        "WHERE keyword_category IN ('reserved', 'type_function')").fetchall()
    assert {name for (name,) in rows} == SQL_RESERVED


def test_a_standard_is_still_a_plain_function(mesh_dir: Path) -> None:
    mesh = load(mesh_dir)
    [item] = owner_required(mesh.product("hr.headcount"), mesh)  # type: ignore[misc]
    assert item.message == "owner email 'hr at example.com' is not an email address"
    assert list(owner_required(mesh.product("sales.orders"), mesh) or []) == []


# --- findings ----------------------------------------------------------------------------------


def test_finding_renders_like_an_error_with_severity_and_code(tmp_path: Path) -> None:
    item = Finding("owner-required", "warn", "sales.feed", "owner has no email",
                   hint="add email", location=Location(tmp_path / "p.yaml", 6, 8))
    assert item.render() == f"{tmp_path / 'p.yaml'}:6:8: warn owner-required: owner has no " \
        "email (add email)"
    assert item.to_dict() == {
        "code": "owner-required", "severity": "warn", "product": "sales.feed",
        "message": "owner has no email", "hint": "add email", "file": str(tmp_path / "p.yaml"),
        "line": 6, "column": 8,
    }
    bare = Finding("x-y", "info", None, "a mesh-wide note")
    assert bare.render() == "info x-y: a mesh-wide note"
    assert bare.to_dict()["file"] is None


# --- scope, severity, switching off -------------------------------------------------------------


def test_scope_limits_a_standard_to_listed_domains(mesh_dir: Path) -> None:
    governance(mesh_dir, "scope: {owner-required: [sales], consumer-use-declared: [sales]}")
    findings = check_standards(load(mesh_dir))
    assert [f.product for f in by_code(findings, "owner-required")] == ["sales.legacy_feed"]
    assert by_code(findings, "consumer-use-declared") == []
    assert len(findings) == len(EXPECTED) - 2


def test_scope_in_the_decorator_limits_a_custom_standard(mesh_dir: Path) -> None:
    # sales.orders holds PII and names no steward either, but the standard is for hr only
    report = review_standards(load(mesh_dir))
    [rule] = [s for s in report.standards if s.code == "pii-needs-steward"]
    assert rule.domains == ("hr",) and rule.scope() == "in hr"
    assert [f.product for f in by_code(report.findings, "pii-needs-steward")] == ["hr.headcount"]
    governance(mesh_dir, "scope: {pii-needs-steward: [sales, hr]}")
    found = by_code(check_standards(load(mesh_dir)), "pii-needs-steward")
    assert sorted(f.product for f in found) == ["hr.headcount", "sales.legacy_feed",  # type: ignore
                                                "sales.orders"]


def test_severity_can_be_raised_and_lowered(mesh_dir: Path) -> None:
    governance(mesh_dir, "severity: {slos-required: error, naming-convention: info}")
    findings = check_standards(load(mesh_dir))
    assert {f.severity for f in by_code(findings, "slos-required")} == {"error"}
    assert {f.severity for f in by_code(findings, "naming-convention")} == {"info"}
    assert len(findings) == len(EXPECTED)


def test_a_standard_switched_off_does_not_run(mesh_dir: Path) -> None:
    governance(mesh_dir, "severity: {event-time-required: 'off', naming-convention: off}")
    report = review_standards(load(mesh_dir))
    codes = {s.code for s in report.standards}
    assert "event-time-required" not in codes and "naming-convention" not in codes
    assert by_code(report.findings, "event-time-required") == []
    assert by_code(report.findings, "naming-convention") == []
    assert len(report.findings) == len(EXPECTED) - 3


def test_settings_naming_an_unknown_standard_are_located_in_mesh_yaml(mesh_dir: Path) -> None:
    file = governance(mesh_dir, "severity:", "  owner-requird: error", "scope: {nope: [hr]}")
    report = review_standards(load(mesh_dir))
    assert [(p.location.line, p.location.column) for p in report.problems  # type: ignore
            ] == [(6, 5), (7, 11)]
    assert all(Path(p.location.file) == file for p in report.problems)  # type: ignore
    assert report.problems[0].message == "governance.severity names unknown standard " \
        "'owner-requird'"
    assert report.problems[0].hint and report.problems[0].hint.startswith(
        "did you mean 'owner-required'?")
    with pytest.raises(StandardsError) as raised:
        check_standards(load(mesh_dir))
    assert [p.render() for p in raised.value.problems] == [p.render() for p in report.problems]


@pytest.mark.parametrize(("line", "message"), [
    ("severity: {Owner_Required: warn}", "mesh.yaml:5:13: governance.severity: 'Owner_Required' "
     "is not a standard code (codes are kebab-case, e.g. owner-required)"),
    ("severity: {owner-required: loud}", "mesh.yaml:5:30: governance.severity.owner-required: "
     "unknown value 'loud' (expected one of: error, warn, info, off)"),
    ("scope: {owner-required: []}", "mesh.yaml:5:27: governance.scope.owner-required: List "
     "should have at least 1 item"),
    ("scope: {owner-required: [Sales]}", "mesh.yaml:5:28: governance.scope.owner-required[0]: "
     "String should match pattern"),
])
def test_malformed_settings_are_spec_problems(mesh_dir: Path, line: str, message: str) -> None:
    governance(mesh_dir, line)
    result = cli("validate", "--mesh", str(mesh_dir))
    assert result.exit_code == 1
    assert f"error: {mesh_dir}/{message}" in result.stderr
    assert "Traceback" not in result.output


# --- custom standards ---------------------------------------------------------------------------


def test_custom_standard_loads_from_the_mesh_folder(mesh_dir: Path) -> None:
    report = review_standards(load(mesh_dir))
    assert report.problems == []
    [rule] = [s for s in report.standards if s.code == "pii-needs-steward"]
    assert rule.severity == "warn"
    assert rule.description == "Products holding PII name a data steward (owner.name)."
    assert rule.origin == Location(mesh_dir / "standards" / "steward.py", 6)
    # standards/_helpers.py raises when run: files starting with '_' are never loaded


def test_a_missing_standards_folder_is_a_located_problem(mesh_dir: Path) -> None:
    file = mesh_dir / "mesh.yaml"
    file.write_text(MESH_YAML.replace("[standards]", "[standards, rules]"))
    [problem] = review_standards(load(mesh_dir)).problems
    assert problem.message.startswith("standards folder 'rules' does not exist")
    assert problem.location == Location(file, 4, 26)


BROKEN = [
    ("syntax.py", "def broken(:\n    pass\n", 1, "standards file has a syntax error"),
    ("raises.py", "VALUE = 1\nraise ValueError('no database here')\n", 2,
     "loading standards file raises.py raised ValueError: no database here"),
    ("bad_code.py", "from quanta.governance import standard\n\n\n@standard('Bad Code')\n"
     "def check(product, mesh):\n    '''Checks.'''\n", 4, "'Bad Code' is not a standard code"),
    ("bad_severity.py", "from quanta.governance import standard\n\n@standard('x-y', "
     "severity='fatal')\ndef check(product, mesh):\n    '''Checks.'''\n", 3,
     "standard 'x-y': unknown severity 'fatal'"),
    ("bad_domains.py", "from quanta.governance import standard\n\n@standard('x-y', "
     "domains='hr')\ndef check(product, mesh):\n    '''Checks.'''\n", 3,
     "standard 'x-y': domains must be a non-empty list, not 'hr'"),
    ("one_argument.py", "from quanta.governance import standard\n\n\n@standard('x-y')\n"
     "def check(product):\n    '''Checks.'''\n", 4,
     "standard 'x-y' must take two arguments (product, mesh)"),
    ("undocumented.py", "from quanta.governance import standard\n\n@standard('x-y')\n"
     "def check(product, mesh):\n    return []\n", 3, "standard 'x-y' has no description"),
    ("empty.py", "LIMIT = 3\n", None, "standards file empty.py defines no standard"),
    ("twice.py", "from quanta.governance import standard\n\n\n@standard('owner-required')\n"
     "def mine(product, mesh):\n    '''Mine.'''\n", 4,
     "standard 'owner-required' is defined twice (first at "),
]


@pytest.mark.parametrize(("name", "text", "line", "message"), BROKEN,
                         ids=[b[0] for b in BROKEN])
def test_a_broken_custom_standard_is_a_clear_problem_naming_file_and_line(
    mesh_dir: Path, name: str, text: str, line: int | None, message: str
) -> None:
    file = write_standard(mesh_dir, name, text)
    report = review_standards(load(mesh_dir))
    [problem] = report.problems
    assert problem.location is not None
    assert (Path(problem.location.file), problem.location.line) == (file, line)
    assert message in problem.message
    assert problem.hint
    assert problem.code == "standard_invalid"
    assert len(report.findings) == len(EXPECTED)  # the others still run
    with pytest.raises(StandardsError):
        check_standards(load(mesh_dir))
    result = cli("validate", "--mesh", str(mesh_dir))
    assert result.exit_code == 1
    where = f"{file}:{line}:" if line else f"{file}: "
    assert any(entry.startswith(where) and message in entry
               for entry in result.stdout.splitlines()), result.stdout
    assert "Traceback" not in result.output


def test_the_decorator_refuses_bad_arguments_where_it_is_used() -> None:
    with pytest.raises(StandardDefinitionError, match="kinds 'source' not allowed"):
        standard("x-y", kinds=["source"])
    with pytest.raises(StandardDefinitionError, match="domains 'Sales' not allowed"):
        standard("x-y", domains=["Sales"])
    with pytest.raises(StandardDefinitionError, match="marks int, not a function"):
        standard("x-y", description="d")(3)  # type: ignore[arg-type]


FAILS = """\
from quanta.governance import standard


@standard("always-fails", severity="info")
def always_fails(product, mesh):
    '''Divides by zero on every product.'''
    scale = 0
    return [1 / scale]
"""


def test_a_standard_that_raises_becomes_an_error_finding(mesh_dir: Path) -> None:
    file = write_standard(mesh_dir, "fails.py", FAILS)
    findings = by_code(check_standards(load(mesh_dir)), "always-fails")
    assert [f.product for f in findings] == [
        "hr.headcount", "hr.payroll_report", "sales.legacy_feed", "sales.orders"]
    first = findings[0]
    assert first.severity == "error"  # fails closed, whatever its own severity
    assert first.message == ("standard 'always-fails' failed on product 'hr.headcount': "
                             "ZeroDivisionError: division by zero")
    assert first.location == Location(file, 8, 13)
    assert first.hint and "always-fails: off" in first.hint
    result = cli("validate", "--mesh", str(mesh_dir))
    assert result.exit_code == 1
    assert f"{file}:8:13: error always-fails: standard 'always-fails' failed on product " \
        "'hr.headcount'" in result.stdout
    assert "Traceback" not in result.output


def test_a_standard_yielding_something_else_than_findings_fails_closed(mesh_dir: Path) -> None:
    file = write_standard(mesh_dir, "strings.py", FAILS.replace(
        "    scale = 0\n    return [1 / scale]\n", "    yield 'looks wrong'\n"))
    findings = by_code(check_standards(load(mesh_dir)), "always-fails")
    assert len(findings) == 4
    assert findings[0].severity == "error"
    assert findings[0].message.endswith("TypeError: it yielded str, not a Finding")
    assert findings[0].location == Location(file, 4)  # the standard's definition


def test_a_standard_returning_none_finds_nothing(mesh_dir: Path) -> None:
    write_standard(mesh_dir, "quiet.py", FAILS.replace(
        "    scale = 0\n    return [1 / scale]\n", "    return None\n"))
    report = review_standards(load(mesh_dir))
    assert "always-fails" in {s.code for s in report.standards}
    assert by_code(report.findings, "always-fails") == []


# --- the entry points ---------------------------------------------------------------------------


def test_check_standards_for_some_products_only(mesh_dir: Path) -> None:
    findings = check_standards(load(mesh_dir), ["hr.headcount"])
    assert {f.product for f in findings} == {"hr.headcount"}
    assert len(findings) == 2


def test_enforce_raises_for_error_findings_of_the_products_asked_for(mesh_dir: Path) -> None:
    findings = check_standards(load(mesh_dir))
    enforce(findings, ["hr.headcount", "sales.orders"])  # only warnings there
    with pytest.raises(StandardsFailedError) as raised:
        enforce(findings, ["sales.legacy_feed"])
    assert [f.code for f in raised.value.findings] == [
        "source-reads-operational", "naming-convention", "naming-convention"]
    assert raised.value.message.startswith("sales.legacy_feed does not meet the mesh's standards")
    assert raised.value.location == raised.value.findings[0].location
    with pytest.raises(StandardsFailedError):
        enforce(findings)


def test_the_demo_mesh_has_no_error_findings_and_is_checked_fast() -> None:
    mesh = load(REPO / "examples" / "daff")
    check_standards(mesh)  # warm up
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        findings = check_standards(mesh)
        timings.append(time.perf_counter() - start)
    assert min(timings) < 0.1, timings
    assert [f.render() for f in findings if f.severity == "error"] == []


# --- quanta validate ----------------------------------------------------------------------------


def test_validate_prints_findings_and_fails_on_errors(mesh_dir: Path) -> None:
    result = cli("validate", "--mesh", str(mesh_dir))
    assert result.exit_code == 1
    feed = spec_file(mesh_dir, "sales.legacy_feed")
    lines = result.stdout.splitlines()
    assert f"{feed}:10:12: error naming-convention: input name 'raw__refunds' is not " \
        "snake_case (join words with single underscores, e.g. 'raw_refunds')" in lines
    assert f"{feed}:6:8: warn owner-required: owner of sales.legacy_feed has no email " \
        "address (add 'email: <the team's address>' to owner, so consumers can reach the " \
        "team)" in lines
    assert len(lines) == len(EXPECTED)
    assert "do not meet the mesh's standards: 3 error(s), 11 warning(s)" in result.stderr
    assert "Traceback" not in result.output


def test_validate_json_lists_every_finding(mesh_dir: Path) -> None:
    governance(mesh_dir, "severity: {slos-required: info}")
    result = cli("validate", "--mesh", str(mesh_dir), "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False and document["errors"] == []
    assert document["standards_checked"] is True
    found = [(f["code"], f["product"], f["line"], f["column"]) for f in document["findings"]]
    assert found == [(c, p, line, col) for c, p, line, col, _, _ in EXPECTED]
    [slos] = [f for f in document["findings"] if f["code"] == "slos-required"]
    assert slos["severity"] == "info"
    assert {f["severity"] for f in document["findings"]} == {"error", "warn", "info"}
    assert set(slos) == {"code", "severity", "product", "message", "hint", "file", "line",
                          "column"}


def test_validate_passes_with_warnings_and_shows_info_only_in_json(mesh_dir: Path) -> None:
    governance(mesh_dir, "severity: {event-time-required: warn, naming-convention: 'off', "
               "source-reads-operational: info}")
    result = cli("validate", "--mesh", str(mesh_dir))
    assert result.exit_code == 0, result.output
    assert f"✓ 4 products valid in {mesh_dir} (11 warning(s), 1 info finding(s), shown with " \
        "--json from the mesh's standards)" in result.stdout
    assert "source-reads-operational" not in result.stdout
    assert "warn event-time-required: port 'feed'" in result.stdout
    as_json = json.loads(cli("validate", "--mesh", str(mesh_dir), "--json").stdout)
    assert as_json["ok"] is True
    assert [f["severity"] for f in as_json["findings"]
            if f["code"] == "source-reads-operational"] == ["info"]


def test_validate_checks_standards_only_once_the_specs_are_valid(mesh_dir: Path) -> None:
    edit(mesh_dir, "sales.orders", "kind: source-aligned", "kind: source")
    result = cli("validate", "--mesh", str(mesh_dir))
    assert result.exit_code == 1
    assert "kind: unknown value 'source'" in result.stdout
    assert "naming-convention" not in result.stdout
    assert "2 problem(s)" in result.stderr  # the kind, and legacy_feed's input
    assert "standards are checked once the specs are valid" in result.stderr
    document = json.loads(cli("validate", "--mesh", str(mesh_dir), "--json").stdout)
    assert document["standards_checked"] is False and document["findings"] == []
