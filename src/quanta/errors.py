"""The one exception root of quanta and its few subclasses.

Every error a user can cause carries a stable ``code``, a ``message`` saying what went wrong,
a ``hint`` saying how to fix it, and where known a ``location`` (file, line, column).
Boundaries (CLI commands, HTTP handlers, the build step around user code) catch ``QuantaError``
and render it; nothing else should.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Location:
    """A place in a user's file; line and column are 1-based."""

    file: Path | str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        text = str(self.file)
        if self.line is not None:
            text += f":{self.line}"
            if self.column is not None:
                text += f":{self.column}"
        return text


class QuantaError(Exception):
    """Root of every error quanta raises on purpose."""

    code = "quanta_error"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        location: Location | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.location = location
        if code is not None:
            self.code = code

    def render(self) -> str:
        """One line: ``file:line:col: message (hint)``."""
        text = f"{self.location}: {self.message}" if self.location else self.message
        return f"{text} ({self.hint})" if self.hint else text

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready form for ``--json`` output and HTTP error bodies."""
        loc = self.location
        return {
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "file": str(loc.file) if loc else None,
            "line": loc.line if loc else None,
            "column": loc.column if loc else None,
        }

    def __str__(self) -> str:
        return self.render()


class SpecError(QuantaError):
    """One or more problems in mesh.yaml or dataproduct.yaml files."""

    code = "spec_invalid"

    def __init__(self, problems: list[QuantaError]) -> None:
        first = problems[0] if problems else QuantaError("invalid specification")
        count = len(problems)
        summary = first.message if count == 1 else f"{count} problems in specifications"
        super().__init__(summary, location=first.location if count == 1 else None)
        self.problems = problems


class AddressError(QuantaError):
    """A ``quanta://`` address or SQL table name that does not parse or resolve."""

    code = "address_invalid"


class NotFoundError(QuantaError):
    """A mesh, product, port or release that does not exist."""

    code = "not_found"


class InputError(QuantaError):
    """A declared input could not be read (terminal unless ``transient``)."""

    code = "input_failed"

    def __init__(self, message: str, *, transient: bool = False, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.transient = transient


class TransformError(QuantaError):
    """The user's transform failed; location points into the user's code."""

    code = "transform_failed"


class UndeclaredInputError(TransformError):
    """A transform referenced a table, file or product that is not a declared input."""

    code = "undeclared_input"


class SchemaMismatchError(QuantaError):
    """Transform output does not fit the declared schema of an output port."""

    code = "schema_mismatch"


class ChecksFailedError(QuantaError):
    """Blocking quality checks failed, so no release was made."""

    code = "checks_failed"


class StorageError(QuantaError):
    """Release storage is unreadable, inconsistent or could not be written."""

    code = "storage_failed"


class QueryError(QuantaError):
    """A query was refused or failed."""

    code = "query_failed"
