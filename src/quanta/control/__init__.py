"""The control port: privileged governance operations on products (access requests, erasure,
retention)."""

from quanta.control.access import AccessRequest, AccessRequests
from quanta.control.erasure import ErasureError, ErasureReport, erase
from quanta.control.retention import RetentionError, RetentionReport, apply_retention

__all__ = ["AccessRequest", "AccessRequests", "ErasureError", "ErasureReport", "RetentionError",
           "RetentionReport", "apply_retention", "erase"]
