"""How library code reports progress without printing: a Reporter the CLI implements."""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    """Receives progress of long work; the CLI renders it, tests may record it."""

    def started(self, task: str, total: int | None = None) -> None:
        """A unit of work (a product build) began."""

    def stage(self, task: str, stage: str) -> None:
        """The unit moved to a new stage (inputs, transform, checks, write ...)."""

    def finished(self, task: str, ok: bool, summary: str) -> None:
        """The unit ended."""

    def warn(self, message: str) -> None:
        """Something the user should know but that does not stop the work."""


class SilentReporter:
    """Reports nowhere."""

    def started(self, task: str, total: int | None = None) -> None:
        pass

    def stage(self, task: str, stage: str) -> None:
        pass

    def finished(self, task: str, ok: bool, summary: str) -> None:
        pass

    def warn(self, message: str) -> None:
        pass
