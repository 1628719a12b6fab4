"""Standards as code: a plain function ``(product, mesh) -> findings`` marked with ``@standard``.

The decorator validates what it is given at once (code, severity, scope, the function's
signature), so a malformed custom standard fails where it is written, naming its line.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

from quanta.address import is_identifier
from quanta.errors import Location, QuantaError
from quanta.governance.findings import SEVERITIES, Finding, FindingSeverity
from quanta.spec.mesh import Mesh, Product
from quanta.spec.models import GovernanceSpec, Kind

CheckFunction = Callable[[Product, Mesh], Iterable[Finding] | None]
KINDS: tuple[str, ...] = get_args(Kind)


class StandardDefinitionError(QuantaError):
    """A standard is declared wrongly: bad code, severity, scope or function."""

    code = "standard_invalid"


@dataclass(frozen=True)
class Standard:
    """A rule of the federation: its code, severity, scope and the function that checks it."""

    code: str
    severity: FindingSeverity
    description: str
    check: CheckFunction
    domains: tuple[str, ...] | None = None
    kinds: tuple[str, ...] | None = None
    origin: Location | None = None

    def __call__(self, product: Product, mesh: Mesh) -> Iterable[Finding] | None:
        """Still a plain function: call it like the one it decorates."""
        return self.check(product, mesh)

    def applies_to(self, product: Product) -> bool:
        """Whether ``product`` is in this standard's scope (domains and kinds)."""
        spec = product.spec
        if self.domains is not None and spec.domain not in self.domains:
            return False
        return self.kinds is None or spec.kind in self.kinds

    def scope(self) -> str:
        """The scope in words, for listings: ``every product`` or the domains and kinds."""
        parts = []
        if self.kinds is not None:
            parts.append(" and ".join(self.kinds) + " products")
        if self.domains is not None:
            parts.append("in " + ", ".join(self.domains))
        return " ".join(parts) or "every product"


def standard(
    code: str,
    *,
    severity: FindingSeverity = "error",
    description: str | None = None,
    domains: Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
) -> Callable[[CheckFunction], Standard]:
    """Mark ``function(product, mesh)`` as the standard ``code``.

    ``description`` defaults to the first line of the function's docstring; ``domains`` and
    ``kinds`` limit where it applies (default: every product). The mesh's ``governance``
    block may still change its severity, switch it off or rescope it.
    """
    _check_code(code)
    if severity not in SEVERITIES:
        raise StandardDefinitionError(
            f"standard '{code}': unknown severity {severity!r}",
            hint=f"use one of: {', '.join(SEVERITIES)}",
        )
    scope_domains = _names(code, "domains", domains, is_identifier, "snake_case domain names")
    scope_kinds = _names(code, "kinds", kinds, KINDS.__contains__, ", ".join(KINDS))

    def mark(function: CheckFunction) -> Standard:
        _check_function(code, function)
        text = description or (inspect.getdoc(function) or "").strip().split("\n")[0]
        if not text:
            raise StandardDefinitionError(
                f"standard '{code}' has no description",
                hint="give the function a docstring, or pass description='...'",
            )
        return Standard(code, severity, text, function, scope_domains, scope_kinds,
                        _origin(function))

    return mark


def _check_code(code: object) -> None:
    if not isinstance(code, str) or not GovernanceSpec.STANDARD_CODE.match(code):
        raise StandardDefinitionError(
            f"{code!r} is not a standard code",
            hint="codes are kebab-case: lower-case words joined by '-', e.g. pii-needs-steward",
        )


def _names(
    code: str, what: str, names: Sequence[str] | None, valid: Callable[[str], bool],
    expected: str,
) -> tuple[str, ...] | None:
    """``domains=`` or ``kinds=`` as a tuple, refusing a bare string and unknown values."""
    if names is None:
        return None
    if isinstance(names, str) or not isinstance(names, Sequence) or not names:
        raise StandardDefinitionError(
            f"standard '{code}': {what} must be a non-empty list, not {names!r}",
            hint=f"write {what}=[...] with {expected}",
        )
    wrong = [n for n in names if not (isinstance(n, str) and valid(n))]
    if wrong:
        raise StandardDefinitionError(
            f"standard '{code}': {what} {', '.join(map(repr, wrong))} not allowed",
            hint=f"use {expected}",
        )
    return tuple(names)


def _check_function(code: str, function: object) -> None:
    """The marked object must be callable as ``function(product, mesh)``."""
    if not callable(function):
        raise StandardDefinitionError(
            f"@standard('{code}') marks {type(function).__name__}, not a function",
            hint="put @standard(...) on the line above 'def check(product, mesh):'",
        )
    try:
        inspect.signature(function).bind(None, None)
    except TypeError:
        raise StandardDefinitionError(
            f"standard '{code}' must take two arguments (product, mesh)",
            hint="define it as 'def check(product, mesh):'",
        ) from None
    except ValueError:  # no signature (a builtin); let the call itself decide
        return


def _origin(function: object) -> Location | None:
    """Where the function is defined: its file and the line of its first decorator."""
    code = getattr(function, "__code__", None)
    if code is None:
        return None
    return Location(Path(code.co_filename), code.co_firstlineno)
