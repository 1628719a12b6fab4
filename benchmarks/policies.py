"""Policy decisions: how long the sidecar takes to decide one port's access under 20 policies.

A product with 12 fields (some pii, one with a country) has 5 policies of its own; the mesh
has 15 global ones: 10 in YAML (deny, grant, masks by column and classification, row filters
of which some name columns the port lacks, a consent rule) and 5 Python ``@policy``
functions (narrowing by region, a purpose check, two that abstain, one masking). The reader
is granted by a global grant and gets masks, filters and a consent rule. The decision is
what ``Sidecar.decide`` does once per port per query; the baseline is the same call with no
global policies (the product's 5 only).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import Row, Settings, at_most
from quanta.address import Address
from quanta.governance.policies import load_policies
from quanta.sidecar.access import decide
from quanta.sidecar.principals import Principal
from quanta.spec.mesh import load_mesh

TARGET_US = 50.0
CALLS, QUICK_CALLS = 20_000, 2_000

PRODUCT = """\
apiVersion: quanta/v1
name: plays
domain: listening
kind: source-aligned
version: 1.0.0
owner: {team: listening, email: listening@daff.example}
description: Plays, for timing policy decisions.
inputs:
  - {name: raw, type: file, path: plays.csv}
transform: {type: sql, sql: "SELECT * FROM raw"}
outputs:
  - name: plays
    primary_key: [play_id]
    fields:
      - {name: play_id, type: string}
      - {name: listener_id, type: string, classification: pii, polyseme: listener_id}
      - {name: email, type: string, classification: pii}
      - {name: birth_date, type: date, classification: pii}
      - {name: track_id, type: string}
      - {name: country, type: string}
      - {name: device, type: string}
      - {name: ms_played, type: int64}
      - {name: played_at, type: timestamp}
      - {name: plan, type: string}
      - {name: ip_address, type: string, classification: restricted}
      - {name: consented, type: boolean}
policies:
  - {type: grant, to: ["group:listening"]}
  - {type: mask, classification: pii, method: hash, unless: ["group:privacy"]}
  - {type: mask, columns: [email], method: redact}
  - {type: row_filter, where: "ms_played >= 0"}
  - {type: row_filter, where: "device <> 'test-rig'", to: ["group:analysts"]}
"""

GLOBAL_YAML = """\
policies:
  - {type: deny, purposes: [resale], reason: "never sold"}
  - {type: deny, to: ["group:contractors"], purposes: [export], reason: "no exports"}
  - {type: grant, to: ["group:analysts"], purposes: [analytics, reporting]}
  - {type: grant, to: ["group:internal_audit"], purposes: [audit]}
  - {type: mask, classification: restricted, method: "null", unless: ["group:security"]}
  - {type: mask, columns: [birth_date], method: truncate_year, domains: [listening]}
  - {type: row_filter, where: "plan <> 'internal'", to: ["group:analysts"]}
  - {type: row_filter, where: "region = 'eu'", to: ["group:eu_only"]}
  - {type: row_filter, where: "tenant = 'daff'"}
  - {type: consent, purposes: [analytics], column: listener_id, consented: consented,
     source: "quanta://listening/plays"}
"""

GLOBAL_PYTHON = '''\
from quanta.governance import Decision, policy

REGIONS = {"eu": ("DE", "FR", "SE"), "americas": ("US", "BR")}


@policy("sovereignty")
def sovereignty(request):
    mine = [g[7:] for g in request.groups if g.startswith("region-")]
    if not mine or not request.has_column("country"):
        return None
    listed = ", ".join(f"'{c}'" for r in mine for c in REGIONS.get(r, ()))
    return Decision.narrow("region", row_filters=[f"country IN ({listed})"])


@policy("purposes")
def purposes(request):
    if request.purpose == "training" and request.classified("pii"):
        return Decision.deny("no training on personal data")
    return None


@policy("quiet_a")
def quiet_a(request):
    return None


@policy("quiet_b")
def quiet_b(request):
    return None if request.operator else None


@policy("device_mask")
def device_mask(request):
    if "support" in request.groups:
        return None
    return Decision.narrow("devices are internal", masks={"device": "redact"})
'''


def run(settings: Settings) -> list[Row]:
    calls = QUICK_CALLS if settings.quick else CALLS
    with tempfile.TemporaryDirectory(prefix="quanta-bench-policies-") as tmp:
        root = Path(tmp)
        folder = root / "domains" / "listening" / "plays"
        folder.mkdir(parents=True)
        (root / "mesh.yaml").write_text("apiVersion: quanta/v1\nname: policies\n"
                                        "governance: {policies: [policies]}\n")
        (folder / "dataproduct.yaml").write_text(PRODUCT)
        (root / "policies").mkdir()
        (root / "policies" / "federation.yaml").write_text(GLOBAL_YAML)
        (root / "policies" / "regions.py").write_text(GLOBAL_PYTHON)
        mesh = load_mesh(root)
        if mesh.problems:
            raise RuntimeError("; ".join(p.render() for p in mesh.problems))
        policies = load_policies(mesh)
        if policies.problems or len(policies.placed) + len(policies.python) != 15:
            raise RuntimeError(f"expected 15 global policies: {policies.problems}")
        product = mesh.products["listening.plays"]
        address = Address("listening", "plays", "plays")
        reader = Principal("ana", frozenset({"analysts", "region-eu"}))

        def decided(with_policies: bool) -> float:
            chosen = policies if with_policies else None
            decide(reader, "analytics", product, address, [], policies=chosen)  # warm
            samples = []
            for _ in range(calls):
                start = time.perf_counter()
                decide(reader, "analytics", product, address, [], policies=chosen)
                samples.append(time.perf_counter() - start)
            return statistics.median(samples)

        access = decide(reader, "analytics", product, address, [], policies=policies)
        if not (access.masked and access.filters and access.consents):
            raise RuntimeError(f"the reader should be masked, filtered and need consent: "
                               f"{access}")
        with_global = decided(True)
        local_only_reader = Principal("ana", frozenset({"listening", "analysts"}))
        local_product_only = _local_only(product, address, local_only_reader, calls)
    us = with_global * 1e6
    settings.log(f"decision with 20 policies p50 {us:.1f} µs; the product's 5 only "
                 f"{local_product_only * 1e6:.1f} µs ({calls:,} calls each)")
    return [Row(
        "policies: one port's decision under 20 policies (p50)", with_global,
        local_product_only, with_global / local_product_only if local_product_only else None,
        f"< {TARGET_US:g} µs", at_most(us, TARGET_US),
        f"{us:.1f} µs p50; baseline: the product's own 5 policies "
        f"{local_product_only * 1e6:.1f} µs; masks {len(access.masked)}, filters "
        f"{len(access.filters)}, consents {len(access.consents)}",
    )]


def _local_only(product: object, address: Address, reader: Principal, calls: int) -> float:
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        decide(reader, None, product, address, [])  # type: ignore[arg-type]
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)
