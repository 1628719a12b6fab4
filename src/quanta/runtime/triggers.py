"""Whether a product's own triggers fire, judged from its own inputs, events and clock.

A product declares ``triggers`` in dataproduct.yaml: ``on: upstream`` (a new release of an input
product, all or the ones named in ``inputs``), ``on: source-change`` (a file or SQLite input's
content changed), ``every: 15m`` and ``on: manual`` (only ``quanta trigger``). A product that
declares none reacts to upstream releases and source changes. Upstream and source triggers
compare the inputs now with the ones the latest release recorded, so a trigger that arrives
twice, or late, never rebuilds from the same inputs twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from quanta.address import Address
from quanta.errors import QuantaError
from quanta.inputs.base import RemoteInputs
from quanta.inputs.probe import current_inputs, recorded_inputs
from quanta.runtime.state import ProductState
from quanta.spec.durations import parse_duration
from quanta.spec.mesh import Product
from quanta.spec.models import ProductInput, Trigger
from quanta.storage import ProductStorage
from quanta.storage.events import MeshEvent

DEFAULT_TRIGGERS = (Trigger(on="upstream"), Trigger(on="source-change"))


@dataclass(frozen=True)
class Pending:
    """Why a product should build now (empty ``reasons``: it should not)."""

    product: str
    reasons: list[str] = field(default_factory=list)
    force: bool = False
    identity: str = ""
    cursor: int = 0
    retry_at: datetime | None = None
    held: str | None = None
    triggered_at: datetime | None = None  # the newest manual trigger, when ``force``

    @property
    def due(self) -> bool:
        return bool(self.reasons) and self.held is None


def pending_reasons(product: Product, storage_root: Path, state: ProductState,
                    events: Sequence[MeshEvent], now: datetime,
                    remote: RemoteInputs | None = None) -> Pending:
    """Evaluate ``product``'s triggers against the facts at ``now``; ``remote`` tells the
    releases of input products served by other units."""
    key = product.key
    spec = product.spec
    cursor = max((e.seq for e in events), default=state.cursor)
    storage = ProductStorage(storage_root, key)
    try:
        retired = storage.lifecycle().state == "retired"
    except QuantaError:
        retired = False
    if retired:
        return Pending(key, cursor=cursor, held="retired")
    triggers = spec.triggers or list(DEFAULT_TRIGGERS)
    manual_only = all(t.on == "manual" for t in triggers)
    definition = product.definition_digest()
    inputs_now = current_inputs(spec, product.folder, storage_root, remote)
    identity = _identity(definition, inputs_now)
    reasons: list[str] = []
    force = False
    triggered_at = None
    for event in events:
        if event.kind == "trigger" and event.product == key and event.seq > state.cursor:
            reasons.append(f"triggered by {event.by or 'someone'}")
            force = True
            triggered_at = event.at
    latest = storage.latest()
    if latest is None:
        if not manual_only:
            reasons.append("no release yet")
    else:
        before = recorded_inputs(latest)
        upstream = {i.name: Address.parse(i.product).product_key for i in spec.inputs
                    if isinstance(i, ProductInput)}
        for trigger in triggers:
            names = set(trigger.inputs or inputs_now)
            if trigger.on == "upstream":
                reasons += [f"upstream {upstream[n]} has release "
                            f"{str(inputs_now[n]).removeprefix('release:')}"
                            for n in sorted(names & upstream.keys())
                            if inputs_now[n] is not None and inputs_now[n] != before.get(n)]
            elif trigger.on == "source-change":
                reasons += [f"source '{n}' changed" for n in sorted(names - upstream.keys())
                            if inputs_now[n] is not None and inputs_now[n] != before.get(n)]
            elif trigger.every is not None:
                last = max(state.last_attempt or latest.committed_at, latest.committed_at)
                if now - last >= parse_duration(trigger.every):
                    reasons.append(f"every {trigger.every}")
        if not manual_only and latest.definition not in (None, definition):
            reasons.append("spec or code changed")
    if state.retry_at is not None:  # owed after a transient failure, whatever else fires
        reasons.append(f"retry {state.failures} after a transient failure")
    reasons = list(dict.fromkeys(reasons))
    if reasons and not force:
        # a failed build is not repeated from the same spec, code and inputs; inputs that
        # cannot be probed (PostgreSQL) are tried again only when an interval trigger fires
        interval_due = any(r.startswith("every ") for r in reasons)
        if state.failed_identity == identity and not interval_due:
            return Pending(key, reasons, identity=identity, cursor=cursor,
                           held="failed with these inputs; fix it or quanta trigger")
        if state.retry_at is not None and now < state.retry_at:
            return Pending(key, reasons, identity=identity, cursor=cursor,
                           retry_at=state.retry_at,
                           held=f"retrying at {state.retry_at:%H:%M:%S}")
    return Pending(key, reasons, force=force, identity=identity, cursor=cursor,
                   triggered_at=triggered_at)


def _identity(definition: str, inputs: dict[str, str | None]) -> str:
    text = json.dumps([definition, inputs], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
