"""Findings: what a standard reports about a product, with severity and location.

A finding renders like a spec problem (``file:line:col: ...  (hint)``) with its severity and
standard code in front of the message, so editors and CI parse both the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from quanta.errors import Location
from quanta.spec.loader import PathItem
from quanta.spec.mesh import Product

FindingSeverity = Literal["error", "warn", "info"]
SEVERITIES: tuple[FindingSeverity, ...] = ("error", "warn", "info")


@dataclass(frozen=True)
class Finding:
    """One place where a product does not meet a standard of the federation."""

    code: str
    severity: FindingSeverity
    product: str | None
    message: str
    hint: str | None = None
    location: Location | None = None

    def render(self) -> str:
        """One line: ``file:line:col: severity code: message (hint)``."""
        text = f"{self.severity} {self.code}: {self.message}"
        if self.location is not None:
            text = f"{self.location}: {text}"
        return f"{text} ({self.hint})" if self.hint else text

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready form, shaped like ``QuantaError.to_dict`` plus severity and product."""
        loc = self.location
        return {
            "code": self.code,
            "severity": self.severity,
            "product": self.product,
            "message": self.message,
            "hint": self.hint,
            "file": str(loc.file) if loc else None,
            "line": loc.line if loc else None,
            "column": loc.column if loc else None,
        }

    def sort_key(self) -> tuple[str, int, int, str, str]:
        """Order of reading: by file, line and column, then standard."""
        loc = self.location
        return (str(loc.file) if loc else "", (loc.line or 0) if loc else 0,
                (loc.column or 0) if loc else 0, self.code, self.message)


def finding(
    product: Product,
    message: str,
    *,
    at: Sequence[PathItem] = (),
    hint: str | None = None,
    key: bool = False,
) -> Finding:
    """A finding about ``product`` at the YAML path ``at`` (e.g. ``("owner", "email")``).

    Path items that are not written in the file are skipped, so a missing key points at the
    nearest enclosing node. The standard that yields it sets its code and severity.
    """
    return Finding(
        code="", severity="error", product=product.key, message=message, hint=hint,
        location=product.doc.locate(tuple(at), key=key),
    )


def count(findings: Sequence[Finding], severity: FindingSeverity) -> int:
    """How many of ``findings`` have ``severity``."""
    return sum(1 for f in findings if f.severity == severity)
