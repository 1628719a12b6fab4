"""Check the federation's standards on a mesh: built-in and custom, as the mesh configures them.

``check_standards(mesh)`` is the entry point for ``quanta validate`` and the build runner. Each
standard runs inside an error boundary: one that raises becomes an error finding naming the
standard and the product (failing closed), never a crash of the caller.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from quanta.errors import QuantaError, SpecError
from quanta.governance.builtin import BUILTIN_STANDARDS
from quanta.governance.custom import PROBLEM_CODE, load_custom_standards, mesh_location, user_frame
from quanta.governance.findings import Finding
from quanta.governance.registry import Standard
from quanta.spec.mesh import Mesh, Product


class StandardsError(SpecError):
    """The mesh's standards could not all be loaded or configured; ``problems`` says where."""

    code = "standards_invalid"

    def __init__(self, problems: list[QuantaError]) -> None:
        super().__init__(problems)
        if len(problems) > 1:
            self.message = f"{len(problems)} problems in the mesh's standards"


class StandardsFailedError(QuantaError):
    """Findings of severity error stop the work (e.g. a release); ``findings`` lists them."""

    code = "standards_failed"

    def __init__(self, findings: list[Finding]) -> None:
        products = sorted({f.product for f in findings if f.product})
        first = findings[0]
        more = f" and {len(findings) - 1} more" if len(findings) > 1 else ""
        super().__init__(
            f"{', '.join(products) or 'the mesh'} does not meet the mesh's standards: "
            f"{first.code}: {first.message}{more}",
            hint="run 'quanta validate' to see every finding; fix them, or change a standard's "
            "severity in mesh.yaml (governance.severity)",
            location=first.location,
        )
        self.findings = findings


@dataclass(frozen=True)
class StandardsReport:
    """What checking the standards found: the standards run, findings and load problems."""

    standards: tuple[Standard, ...]
    findings: list[Finding]
    problems: list[QuantaError]

    def errors(self) -> list[Finding]:
        """Findings of severity error: the ones that fail validation and releases."""
        return [f for f in self.findings if f.severity == "error"]


def check_standards(mesh: Mesh, products: Iterable[str] | None = None) -> list[Finding]:
    """Every finding of the mesh's standards on ``products`` (default: all), in reading order.

    Raises StandardsError when a custom standard does not load or mesh.yaml's settings name
    an unknown standard, so a caller that gates on the findings fails closed.
    """
    report = review_standards(mesh, products)
    if report.problems:
        raise StandardsError(report.problems)
    return report.findings


def review_standards(mesh: Mesh, products: Iterable[str] | None = None) -> StandardsReport:
    """Like ``check_standards`` but returns load problems beside the findings (for validate)."""
    standards, problems = active_standards(mesh)
    keys = sorted(mesh.products) if products is None else [mesh.product(k).key for k in products]
    findings = [
        item
        for key in keys
        for rule in standards if rule.applies_to(mesh.products[key])
        for item in run_standard(rule, mesh.products[key], mesh)
    ]
    findings.sort(key=Finding.sort_key)
    return StandardsReport(tuple(standards), findings, problems)


def enforce(findings: Iterable[Finding], products: Iterable[str] | None = None) -> None:
    """Raise StandardsFailedError when a finding of severity error concerns ``products``."""
    wanted = None if products is None else set(products)
    blocking = [f for f in findings if f.severity == "error"
                and (wanted is None or f.product is None or f.product in wanted)]
    if blocking:
        raise StandardsFailedError(blocking)


def active_standards(mesh: Mesh) -> tuple[list[Standard], list[QuantaError]]:
    """Built-in and custom standards with the mesh's severity and scope settings applied."""
    custom, problems = load_custom_standards(mesh)
    standards, duplicates = _unique([*BUILTIN_STANDARDS, *custom])
    configured, unknown = _configure(standards, mesh)
    return configured, problems + duplicates + unknown


def run_standard(rule: Standard, product: Product, mesh: Mesh) -> list[Finding]:
    """The findings of one standard on one product; an exception becomes an error finding."""
    try:
        result = rule.check(product, mesh)
        found = list(result) if result is not None else []
        wrong = next((f for f in found if not isinstance(f, Finding)), None)
        if wrong is not None:
            raise TypeError(f"it yielded {type(wrong).__name__}, not a Finding")
    except (Exception, SystemExit) as exc:
        return [_failure(rule, product, exc)]
    return [replace(f, code=rule.code, severity=rule.severity, product=f.product or product.key)
            for f in found]


def _failure(rule: Standard, product: Product, exc: BaseException) -> Finding:
    origin = Path(rule.origin.file) if rule.origin else None
    return Finding(
        code=rule.code, severity="error", product=product.key,
        message=f"standard '{rule.code}' failed on product '{product.key}': "
        f"{type(exc).__name__}: {exc}",
        hint="fix the standard, which fails closed until then, or switch it off in mesh.yaml: "
        f"governance.severity: {{{rule.code}: off}}",
        location=user_frame(exc, origin) or rule.origin,
    )


def _did_you_mean(code: str, codes: set[str]) -> str:
    close = difflib.get_close_matches(code, sorted(codes), n=1)
    known = f"standards: {', '.join(sorted(codes))}"
    return f"did you mean '{close[0]}'? {known}" if close else known


def _unique(standards: list[Standard]) -> tuple[list[Standard], list[QuantaError]]:
    """Keep the first standard of each code; a second one is a problem at its definition."""
    seen: dict[str, Standard] = {}
    problems = []
    for rule in standards:
        first = seen.get(rule.code)
        if first is None:
            seen[rule.code] = rule
            continue
        problems.append(QuantaError(
            f"standard '{rule.code}' is defined twice (first at {first.origin})",
            hint="give the custom standard its own code; change a built-in one's severity or "
            "scope in mesh.yaml instead of redefining it",
            location=rule.origin, code=PROBLEM_CODE,
        ))
    return list(seen.values()), problems


def _configure(standards: list[Standard], mesh: Mesh) -> tuple[list[Standard], list[QuantaError]]:
    """Apply ``governance.severity`` (``off`` drops a standard) and ``governance.scope``."""
    settings = mesh.spec.governance
    codes = {rule.code for rule in standards}
    problems = [
        QuantaError(
            f"governance.{block} names unknown standard '{code}'",
            hint=_did_you_mean(code, codes),
            location=mesh_location(mesh, ("governance", block, code), key=True),
            code=PROBLEM_CODE,
        )
        for block, mapping in (("severity", settings.severity), ("scope", settings.scope))
        for code in mapping if code not in codes
    ]
    configured = []
    for rule in standards:
        level = settings.severity.get(rule.code, rule.severity)
        if level == "off":
            continue
        domains = settings.scope.get(rule.code)
        configured.append(replace(rule, severity=level,
                                  domains=tuple(domains) if domains else rule.domains))
    return configured, problems
