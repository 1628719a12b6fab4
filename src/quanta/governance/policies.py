"""Policies as code: the federation's global policies, beside each product's own.

Global policies live in the folders ``governance.policies`` of mesh.yaml names:

- ``*.yaml`` files with ``policies:``, the same types a product declares (``grant``, ``mask``,
  ``row_filter``, ``consent``) plus ``deny``, each optionally scoped to ``domains``,
  ``products`` (``domain.name``) and ``kinds``;
- ``*.py`` files with plain functions marked ``@policy``: they receive a typed
  ``PolicyRequest`` and return a ``Decision`` (or None for no opinion).

Local policies can only narrow what global ones allow: a global ``deny`` (or a Python policy
denying) wins over every grant; global masks and row filters hold whatever a product's own
policies say (a product's ``unless`` cannot lift them). Decisions are made once per port per
query and compiled into SQL by the sidecar; Python never runs per row. A policy that raises
denies (fail closed).
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from quanta.errors import Location, QuantaError
from quanta.governance.custom import mesh_location, user_frame
from quanta.spec.loader import load_model
from quanta.spec.mesh import Mesh, Product
from quanta.spec.models import (
    ConsentPolicy,
    GrantPolicy,
    Identifier,
    Kind,
    MaskMethod,
    MaskPolicy,
    Model,
    RowFilterPolicy,
    Subject,
)

PROBLEM_CODE = "policy_invalid"
METHODS: tuple[str, ...] = ("null", "hash", "redact", "truncate_year", "last4")


# --- global YAML policies ---------------------------------------------------------------------


class Scope(Model):
    """Which products a global policy applies to (default: every product)."""

    domains: list[Identifier] | None = None
    products: list[str] | None = Field(None, description="product keys, domain.name")
    kinds: list[Kind] | None = None

    def covers(self, product: Product) -> bool:
        spec = product.spec
        return ((self.domains is None or spec.domain in self.domains)
                and (self.products is None or spec.key in self.products)
                and (self.kinds is None or spec.kind in self.kinds))


class DenyPolicy(Scope):
    """Refuse reads, whatever any grant says: to these readers, for these purposes."""

    type: Literal["deny"]
    to: list[Subject] | None = Field(None, description="who is refused; default everyone")
    unless: list[Subject] = Field(default_factory=list, description="who is never refused")
    purposes: list[str] | None = Field(None, description="refused purposes; default any")
    without_purpose: bool = Field(False, description="also refuse reads stating no purpose")
    reason: str = Field(min_length=1, description="told to the refused reader")


class GlobalGrant(GrantPolicy, Scope):
    """A grant of the federation (e.g. auditors read every product)."""


class GlobalMask(MaskPolicy, Scope):
    """A mask every product in scope applies, whatever its own policies say."""


class GlobalRowFilter(RowFilterPolicy, Scope):
    """A row filter for every port in scope that has the columns it names."""


class GlobalConsent(ConsentPolicy, Scope):
    """A consent rule for every port in scope that has its subject column."""


GlobalPolicy = Annotated[GlobalGrant | GlobalMask | GlobalRowFilter | GlobalConsent
                         | DenyPolicy, Field(discriminator="type")]


class PolicyFile(Model):
    """A YAML file of global policies."""

    policies: list[GlobalPolicy] = Field(default_factory=list)


@dataclass(frozen=True)
class Placed:
    """A global YAML policy and where it is written."""

    policy: GrantPolicy | MaskPolicy | RowFilterPolicy | ConsentPolicy | DenyPolicy
    location: Location
    name: str  # e.g. privacy.yaml#2

    def covers(self, product: Product) -> bool:
        assert isinstance(self.policy, Scope)
        return self.policy.covers(product)


# --- Python policies --------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnInfo:
    """One column of the port a request reads, with its meaning."""

    name: str
    type: str
    classification: str
    polyseme: str | None = None


@dataclass(frozen=True)
class PolicyRequest:
    """What a Python policy decides on: who reads which port, for what."""

    principal: str
    groups: frozenset[str]
    purpose: str | None
    product: str  # domain.name
    domain: str
    kind: str
    port: str
    columns: tuple[ColumnInfo, ...]
    operator: bool = False

    def in_group(self, group: str) -> bool:
        return group in self.groups

    def classified(self, classification: str) -> list[str]:
        """Names of the columns with ``classification``."""
        return [c.name for c in self.columns if c.classification == classification]

    def has_column(self, name: str) -> bool:
        return any(c.name == name for c in self.columns)


@dataclass(frozen=True)
class Decision:
    """A Python policy's answer. ``allowed``: True grants, False denies (and wins), None
    leaves access to other policies; masks and row filters narrow what is read."""

    allowed: bool | None = None
    reason: str = ""
    masks: Mapping[str, str] = field(default_factory=dict)
    row_filters: tuple[str, ...] = ()

    @staticmethod
    def allow(reason: str, masks: Mapping[str, str] | None = None,
              row_filters: tuple[str, ...] | list[str] = ()) -> Decision:
        return Decision(True, reason, dict(masks or {}), tuple(row_filters))

    @staticmethod
    def deny(reason: str) -> Decision:
        return Decision(False, reason)

    @staticmethod
    def narrow(reason: str, masks: Mapping[str, str] | None = None,
               row_filters: tuple[str, ...] | list[str] = ()) -> Decision:
        return Decision(None, reason, dict(masks or {}), tuple(row_filters))


PolicyFunction = Callable[[PolicyRequest], Decision | None]


@dataclass(frozen=True)
class PythonPolicy:
    """A ``@policy`` function and its scope."""

    name: str
    check: PolicyFunction
    domains: tuple[str, ...] | None = None
    kinds: tuple[str, ...] | None = None
    origin: Location | None = None

    def __call__(self, request: PolicyRequest) -> Decision | None:
        return self.check(request)

    def covers(self, product: Product) -> bool:
        spec = product.spec
        return ((self.domains is None or spec.domain in self.domains)
                and (self.kinds is None or spec.kind in self.kinds))


def policy(name: str | None = None, *, domains: list[str] | None = None,
           kinds: list[str] | None = None) -> Callable[[PolicyFunction], PythonPolicy]:
    """Mark ``def f(request: PolicyRequest) -> Decision | None`` as a global policy."""

    def wrap(function: PolicyFunction) -> PythonPolicy:
        if not callable(function) or len(inspect.signature(function).parameters) != 1:
            raise QuantaError(
                f"@policy needs a function of one argument (the request), not {function!r}",
                hint="def my_policy(request: PolicyRequest) -> Decision | None: ...",
                code=PROBLEM_CODE)
        source = inspect.getsourcefile(function)
        line = inspect.getsourcelines(function)[1] if source else None
        return PythonPolicy(name or function.__name__, function,
                            tuple(domains) if domains else None,
                            tuple(kinds) if kinds else None,
                            Location(source, line) if source else None)

    return wrap


# --- the set of a mesh ------------------------------------------------------------------------


@dataclass
class PolicySet:
    """The mesh's global policies, and the problems loading them."""

    placed: list[Placed] = field(default_factory=list)
    python: list[PythonPolicy] = field(default_factory=list)
    problems: list[QuantaError] = field(default_factory=list)
    _scoped: dict[str, tuple[list[Placed], list[PythonPolicy]]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.placed or self.python or self.problems)

    def for_product(self, product: Product) -> tuple[list[Placed], list[PythonPolicy]]:
        """The policies in scope for ``product`` (computed once per product)."""
        cached = self._scoped.get(product.key)
        if cached is None:
            cached = ([p for p in self.placed if p.covers(product)],
                      [p for p in self.python if p.covers(product)])
            self._scoped[product.key] = cached
        return cached


def load_policies(mesh: Mesh) -> PolicySet:
    """Every global policy in the folders ``governance.policies`` names."""
    found = PolicySet()
    for index, folder in enumerate(mesh.spec.governance.policies):
        path = (mesh.root / folder).resolve()
        if not path.is_dir():
            found.problems.append(QuantaError(
                f"policies folder '{folder}' does not exist ({path})",
                hint="create it, or fix the path (relative to mesh.yaml)",
                location=mesh_location(mesh, ("governance", "policies", index)),
                code=PROBLEM_CODE))
            continue
        for file in sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml")):
            if file.name.endswith((".test.yaml", ".test.yml")):
                continue
            _load_yaml(file, found)
        for file in sorted(path.glob("*.py")):
            if not file.name.startswith("_"):
                _load_python(file, found)
    return found


def _load_yaml(file: Path, found: PolicySet) -> None:
    doc, model, problems = load_model(file, PolicyFile)
    found.problems += problems
    if doc is None or model is None:
        return
    for index, item in enumerate(model.policies):
        found.placed.append(Placed(item, doc.locate(("policies", index)),
                                   f"{file.name}#{index + 1}"))


def _load_python(file: Path, found: PolicySet) -> None:
    module_name = f"quanta_policies_{uuid.uuid4().hex}"
    loader_spec = importlib.util.spec_from_file_location(module_name, file)
    if loader_spec is None or loader_spec.loader is None:
        found.problems.append(QuantaError(f"cannot load policy file {file.name}",
                                          location=Location(file), code=PROBLEM_CODE))
        return
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module
    try:
        loader_spec.loader.exec_module(module)
    except SyntaxError as exc:
        found.problems.append(QuantaError(f"policy file has a syntax error: {exc.msg}",
                                          location=Location(file, exc.lineno, exc.offset),
                                          hint="fix the Python syntax", code=PROBLEM_CODE))
        return
    except Exception as exc:
        message = exc.message if isinstance(exc, QuantaError) else \
            f"loading policy file {file.name} raised {type(exc).__name__}: {exc}"
        found.problems.append(QuantaError(message, location=user_frame(exc, file)
                                          or Location(file), code=PROBLEM_CODE,
                                          hint="fix the module's top-level code"))
        return
    finally:
        sys.modules.pop(module_name, None)
    defined = [v for v in vars(module).values() if isinstance(v, PythonPolicy)
               and v.origin is not None and Path(v.origin.file).resolve() == file.resolve()]
    if not defined:
        found.problems.append(QuantaError(
            f"policy file {file.name} defines no policy", location=Location(file),
            hint="mark a function with @policy from quanta.governance; name helper files "
            "with a leading '_'", code=PROBLEM_CODE))
    found.python += sorted(defined, key=lambda p: p.origin.line or 0 if p.origin else 0)


def check_masks(masks: Mapping[str, str], where: str) -> dict[str, MaskMethod]:
    """A Python policy's masks, validated (an unknown method denies, fail closed)."""
    checked: dict[str, MaskMethod] = {}
    for column, method in masks.items():
        if method not in METHODS:
            raise QuantaError(f"{where} asks for mask method {method!r}",
                              hint=f"methods: {', '.join(METHODS)}", code=PROBLEM_CODE)
        checked[column] = method  # type: ignore[assignment]
    return checked
