"""Policy tests: given a request, the decision the policies must make; run in CI.

Test files are ``*.test.yaml`` in the mesh's policy folders (``governance.policies``) and
``policies.test.yaml`` beside any ``dataproduct.yaml``::

    tests:
      - name: resale is refused even to granted readers
        as: alice
        purpose: resale
        read: quanta://people/listeners
        expect: {allowed: false, reason: never sold}
      - name: latam staff see Brazil only
        as: pia
        groups: [privacy, region-latam]
        read: quanta://people/listeners/listeners
        expect:
          allowed: true
          masked: {email: redact}
          clear: [listener_id]
          row_filters: ["country IN ('BR')"]

Decisions come from the specs and global policies only: grants made at run time
(``quanta grant``, approved access requests) are left out, so a test means the same on every
machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field

from quanta.address import Address
from quanta.errors import Location, QuantaError
from quanta.governance.policies import PolicySet, load_policies
from quanta.sidecar.access import AuthorizationError, PortAccess, decide
from quanta.sidecar.principals import Principal
from quanta.spec.loader import load_model
from quanta.spec.mesh import Mesh
from quanta.spec.models import Identifier, MaskMethod, Model

TEST_SUFFIXES = (".test.yaml", ".test.yml")
PRODUCT_TESTS = "policies.test.yaml"


class Expectation(Model):
    """What the decision must be. Only what is written is checked."""

    allowed: bool
    reason: str | None = Field(None, description="words the refusal must contain")
    masked: dict[Identifier, MaskMethod] | None = Field(
        None, description="columns that must be masked, with the method")
    clear: list[Identifier] | None = Field(None, description="columns that must be clear")
    row_filters: list[str] | None = Field(None, description="conditions that must apply")
    consents: list[Identifier] | None = Field(
        None, description="columns whose subjects must have consented")


class PolicyTest(Model):
    """One request and the decision expected for it."""

    name: str = Field(min_length=1)
    as_: str = Field(alias="as", min_length=1, description="the principal asking")
    groups: list[str] = Field(default_factory=list)
    purpose: str | None = None
    read: str = Field(description="quanta://domain/product[/port]")
    expect: Expectation


class PolicyTestFile(Model):
    """A file of policy tests."""

    tests: list[PolicyTest] = Field(min_length=1)


@dataclass
class Outcome:
    """The result of one policy test."""

    name: str
    file: str
    line: int | None
    passed: bool
    problems: list[str] = field(default_factory=list)
    decision: str = ""


@dataclass
class PolicyTestReport:
    """Every test run, and the problems that kept some from running."""

    outcomes: list[Outcome] = field(default_factory=list)
    problems: list[QuantaError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.outcomes) and all(
            o.passed for o in self.outcomes)


def policy_test_files(mesh: Mesh) -> list[Path]:
    """Policy test files of the mesh, in a stable order."""
    files: list[Path] = []
    for folder in mesh.spec.governance.policies:
        path = (mesh.root / folder).resolve()
        if path.is_dir():
            files += sorted(f for f in path.iterdir() if f.name.endswith(TEST_SUFFIXES))
    for product in sorted(mesh.products.values(), key=lambda p: p.key):
        candidate = product.folder / PRODUCT_TESTS
        if candidate.is_file():
            files.append(candidate)
    return files


def run_policy_tests(mesh: Mesh, policies: PolicySet | None = None) -> PolicyTestReport:
    """Run every policy test of the mesh."""
    policies = policies if policies is not None else load_policies(mesh)
    report = PolicyTestReport(problems=list(policies.problems))
    for file in policy_test_files(mesh):
        doc, model, problems = load_model(file, PolicyTestFile)
        report.problems += problems
        if doc is None or model is None:
            continue
        for index, test in enumerate(model.tests):
            where = doc.locate(("tests", index))
            report.outcomes.append(_run(mesh, policies, test, file, where))
    return report


def _run(mesh: Mesh, policies: PolicySet, test: PolicyTest, file: Path, where: Location
         ) -> Outcome:
    outcome = Outcome(test.name, str(file.relative_to(mesh.root)), where.line, passed=False)
    try:
        address = Address.parse(test.read)
        product = mesh.product(address)
        port = product.spec.port(address.port)
        if port is None:
            raise QuantaError(f"{product.key} has no port '{address.port}'")
        full = Address(address.domain, address.product, port.name)
        principal = Principal(test.as_, frozenset(test.groups))
    except QuantaError as exc:
        outcome.problems.append(f"the test cannot run: {exc.message}")
        return outcome
    expect = test.expect
    try:
        access = decide(principal, test.purpose, product, full, [], policies=policies)
    except AuthorizationError as exc:
        outcome.decision = f"denied: {exc.message}"
        if expect.allowed:
            outcome.problems.append(f"expected allowed, got {outcome.decision}")
        elif expect.reason and expect.reason.lower() not in exc.message.lower():
            outcome.problems.append(f"refused, but the reason does not say {expect.reason!r}: "
                                    f"{exc.message}")
        outcome.passed = not outcome.problems
        return outcome
    outcome.decision = _describe(access)
    if not expect.allowed:
        outcome.problems.append(f"expected a refusal, got allowed ({outcome.decision})")
    for column, method in (expect.masked or {}).items():
        got = access.masked.get(column)
        if got != method:
            outcome.problems.append(f"expected {column} masked with {method}, got "
                                    f"{got or 'clear'}")
    for column in expect.clear or []:
        if column in access.masked:
            outcome.problems.append(f"expected {column} clear, got masked with "
                                    f"{access.masked[column]}")
    for condition in expect.row_filters or []:
        if condition not in access.filters:
            outcome.problems.append(f"expected row filter {condition!r}; filters: "
                                    f"{access.filters or 'none'}")
    for column in expect.consents or []:
        if column not in [c.column for c in access.consents]:
            outcome.problems.append(f"expected consent on {column}")
    outcome.passed = not outcome.problems
    return outcome


def _describe(access: PortAccess) -> str:
    parts = ["allowed"]
    if access.masked:
        parts.append("masked " + ", ".join(f"{c}={m}" for c, m in access.masked.items()))
    if access.filters:
        parts.append("rows where " + " AND ".join(access.filters))
    if access.consents:
        parts.append("consent on " + ", ".join(c.column for c in access.consents))
    return "; ".join(parts)
