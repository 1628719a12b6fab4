"""Who is asking: principals, their groups, and the purpose of a request."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Principal:
    """An authenticated caller (a person or a service) and the groups it belongs to."""

    name: str
    groups: frozenset[str] = field(default_factory=frozenset)
    operator: bool = False

    def subjects(self) -> set[str]:
        """The names policies may use for this principal: itself, its groups and ``*``."""
        return {self.name, "*", *(f"group:{g}" for g in self.groups)}

    def matches(self, subjects: Iterable[str] | None) -> bool:
        """True when any of ``subjects`` names this principal (None names everyone)."""
        if subjects is None:
            return True
        return bool(self.subjects() & set(subjects))

    def __str__(self) -> str:
        return self.name
