"""Per-query limits: time, rows, bytes; from mesh.yaml, narrowed per principal or group."""

from __future__ import annotations

from dataclasses import dataclass

from quanta.errors import QuantaError
from quanta.sidecar.principals import Principal
from quanta.spec.durations import parse_duration
from quanta.spec.models import LimitsSpec, ServingSpec


class LimitExceeded(QuantaError):
    """A query went past one of its limits and was stopped."""

    code = "limit_exceeded"


@dataclass(frozen=True)
class QueryLimits:
    """The limits one query runs under."""

    timeout: float | None = None
    max_rows: int | None = None
    max_bytes: int | None = None


def limits_for(serving: ServingSpec, principal: Principal) -> QueryLimits:
    """Mesh limits, overridden by the principal's groups, then by the principal itself."""
    layers: list[LimitsSpec] = [serving.limits]
    layers += [serving.principal_limits[f"group:{g}"] for g in sorted(principal.groups)
               if f"group:{g}" in serving.principal_limits]
    if principal.name in serving.principal_limits:
        layers.append(serving.principal_limits[principal.name])
    timeout = max_rows = max_bytes = None
    for layer in layers:
        if layer.timeout is not None:
            timeout = parse_duration(layer.timeout).total_seconds()
        max_rows = layer.max_rows if layer.max_rows is not None else max_rows
        max_bytes = layer.max_bytes if layer.max_bytes is not None else max_bytes
    return QueryLimits(timeout, max_rows, max_bytes)
