"""Who is asking: principals, their groups, and the purpose of a request."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property


@dataclass(frozen=True)
class Principal:
    """An authenticated caller (a person or a service) and the groups it belongs to."""

    name: str
    groups: frozenset[str] = field(default_factory=frozenset)
    operator: bool = False

    def subjects(self) -> frozenset[str]:
        """The names policies may use for this principal: itself, its groups and ``*``."""
        return self._subjects

    @cached_property
    def _subjects(self) -> frozenset[str]:
        return frozenset({self.name, "*", *(f"group:{g}" for g in self.groups)})

    def matches(self, subjects: Iterable[str] | None) -> bool:
        """True when any of ``subjects`` names this principal (None names everyone)."""
        if subjects is None:
            return True
        mine = self._subjects
        return any(s in mine for s in subjects)

    def __str__(self) -> str:
        return self.name
