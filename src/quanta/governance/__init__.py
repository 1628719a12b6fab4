"""Federated governance as code: the mesh's standards, checked on validate and before release.

Public API: ``check_standards(mesh)`` (and ``review_standards`` for validate), ``enforce``,
``Finding`` and ``finding(...)``, and the ``@standard`` decorator for custom standards; global
policies: ``load_policies(mesh)``, the ``@policy`` decorator, ``PolicyRequest`` and
``Decision``; the governance report: ``governance_report`` (compliance and fitness
functions of the whole mesh), ``ReportSources``, ``GovernanceReport``, ``FitnessHistory``.
"""

from quanta.governance.builtin import BUILTIN_STANDARDS
from quanta.governance.findings import Finding, FindingSeverity, finding
from quanta.governance.policies import (
    ColumnInfo,
    Decision,
    PolicyRequest,
    PolicySet,
    load_policies,
    policy,
)
from quanta.governance.registry import Standard, StandardDefinitionError, standard
from quanta.governance.report import (
    FitnessHistory,
    GovernanceReport,
    ReportSources,
    governance_report,
)
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
    "BUILTIN_STANDARDS", "ColumnInfo", "Decision", "Finding", "FindingSeverity",
    "FitnessHistory", "GovernanceReport", "PolicyRequest", "PolicySet", "ReportSources",
    "Standard", "StandardDefinitionError", "StandardsError", "StandardsFailedError",
    "StandardsReport", "active_standards", "check_standards", "enforce", "finding",
    "governance_report", "load_policies", "policy", "review_standards", "standard",
]
