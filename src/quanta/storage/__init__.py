"""Infrastructure plane storage: Delta tables per output port, releases, run records."""

from quanta.storage.manifest import (
    CheckResult,
    DataFile,
    FieldContract,
    InputRead,
    PortContract,
    PortRelease,
    Release,
    RunRecord,
)
from quanta.storage.products import ProductStorage, RunLog, schema_hash

__all__ = [
    "CheckResult", "DataFile", "FieldContract", "InputRead", "PortContract", "PortRelease",
    "ProductStorage", "Release", "RunLog", "RunRecord", "schema_hash",
]
