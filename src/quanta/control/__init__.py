"""The control port: privileged governance operations on products (access requests, ...)."""

from quanta.control.access import AccessRequest, AccessRequests

__all__ = ["AccessRequest", "AccessRequests"]
