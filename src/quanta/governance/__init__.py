"""Federated governance as code: the mesh's standards, checked on validate and before release.

Public API: ``check_standards(mesh)`` (and ``review_standards`` for validate), ``enforce``,
``Finding`` and ``finding(...)``, and the ``@standard`` decorator for custom standards.
"""

from quanta.governance.builtin import BUILTIN_STANDARDS
from quanta.governance.findings import Finding, FindingSeverity, finding
from quanta.governance.registry import Standard, StandardDefinitionError, standard
from quanta.governance.standards import (
    StandardsError,
    StandardsFailedError,
    StandardsReport,
    active_standards,
    check_standards,
    enforce,
    review_standards,
)

__all__ = [
    "BUILTIN_STANDARDS", "Finding", "FindingSeverity", "Standard", "StandardDefinitionError",
    "StandardsError", "StandardsFailedError", "StandardsReport", "active_standards",
    "check_standards", "enforce", "finding", "review_standards", "standard",
]
