"""Lineage closures: every product upstream or downstream of one, on a big synthetic mesh.

The graph has 10,000 products in 50 domains and 100,000 links, layered like a real mesh
(source-aligned products at the bottom, consumer-aligned ones at the top: each link goes
from a lower layer to a higher one), so closures from low products reach most of the mesh.
For a sample of products, ``ProductGraph.upstream`` / ``downstream`` (what ``quanta lineage``
uses) run beside ``networkx.ancestors`` / ``descendants`` on the same graph, round by round;
both must find the same products. Target: every closure under 50 ms.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Callable

import networkx as nx

from benchmarks.common import Row, Settings, at_most
from quanta.lineage.graph import ProductGraph

PRODUCTS, LINKS, LAYERS, DOMAINS = 10_000, 100_000, 12, 50
SAMPLE, QUICK_SAMPLE = 200, 40
TARGET_MS = 50.0


def synthetic_mesh(seed: int = 11) -> tuple[list[str], list[tuple[str, str]]]:
    """Product keys and (upstream, downstream) links of a layered, acyclic mesh."""
    rng = random.Random(seed)
    names = [f"domain{i % DOMAINS}.product{i}" for i in range(PRODUCTS)]
    layer = sorted(rng.randrange(LAYERS) for _ in names)  # names in layer order
    first = {lay: layer.index(lay) for lay in set(layer)}
    links: set[tuple[int, int]] = set()
    while len(links) < LINKS:
        reader = rng.randrange(PRODUCTS)
        if layer[reader] == 0:
            continue
        read = rng.randrange(first[layer[reader]])  # any product of a lower layer
        links.add((read, reader))
    return names, [(names[a], names[b]) for a, b in sorted(links)]


def run(settings: Settings) -> list[Row]:
    names, links = synthetic_mesh()
    start = time.perf_counter()
    graph = ProductGraph(names, links)
    build_quanta = time.perf_counter() - start
    start = time.perf_counter()
    reference: nx.DiGraph = nx.DiGraph()
    reference.add_nodes_from(names)
    reference.add_edges_from(links)
    build_networkx = time.perf_counter() - start
    assert graph.edge_count == LINKS and reference.number_of_edges() == LINKS
    sample = random.Random(5).sample(names, QUICK_SAMPLE if settings.quick else SAMPLE)
    settings.log(f"{len(names):,} products, {LINKS:,} links; built in {build_quanta:.2f}s "
                 f"(networkx {build_networkx:.2f}s); {len(sample)} products sampled")
    rows = []
    # the widest closures: the first product of the bottom layer reaches most of the mesh
    # downstream, the last one of the top layer most of it upstream
    for direction, widest, theirs in (("downstream", names[0], nx.descendants),
                                      ("upstream", names[-1], nx.ancestors)):
        ours = graph.downstream if direction == "downstream" else graph.upstream
        wide_ours, wide_theirs, wide_sizes = _timed([widest] * max(settings.repeats, 5), ours,
                                                    lambda k, f=theirs: f(reference, k))
        mine, other, sizes = _timed(sample, ours, lambda k, f=theirs: f(reference, k))
        wide, wide_base = statistics.median(wide_ours), statistics.median(wide_theirs)
        worst = max([*mine, *wide_ours])
        settings.log(f"{direction}: widest ({wide_sizes[0]:,} products) {wide * 1e3:.2f} ms, "
                     f"networkx {wide_base * 1e3:.2f} ms; sample p50 "
                     f"{statistics.median(mine) * 1e3:.2f} ms (networkx "
                     f"{statistics.median(other) * 1e3:.2f} ms), max {worst * 1e3:.2f} ms")
        rows.append(Row(
            f"lineage: widest {direction} closure, 10k products / 100k links", wide, wide_base,
            wide_base / wide if wide else None, f"every closure < {TARGET_MS:g} ms",
            at_most(worst * 1e3, TARGET_MS),
            f"{wide_sizes[0]:,} products found in {wide * 1e3:.1f} ms (networkx "
            f"{wide_base * 1e3:.1f} ms); slowest of {len(sample) + len(wide_ours)} closures "
            f"{worst * 1e3:.1f} ms; ratio = networkx / quanta",
            details={"max_s": worst, "sample_p50_s": statistics.median(mine),
                     "sample_networkx_p50_s": statistics.median(other),
                     "sample_sizes_p50": statistics.median(sizes), "sample": len(sample)},
        ))
    rows.append(Row(
        "lineage: graph build, 10k products / 100k links", build_quanta, build_networkx,
        build_networkx / build_quanta if build_quanta else None, "-", "INFO",
        "ProductGraph vs networkx.DiGraph, once per loaded mesh"))
    return rows


def _timed(sample: list[str], ours: Callable[[str], dict[str, int]],
           theirs: Callable[[str], set[str]]) -> tuple[list[float], list[float], list[int]]:
    """Both closures of every sampled product, alternating who goes first.

    The collector is off while a closure runs, as in ``timeit``: networkx's graph holds
    some 100,000 dicts, and a full collection that happens to start inside one call would
    time the collector (tens of ms here), not the closure.
    """
    mine, other, sizes = [], [], []
    gc.collect()
    for number, key in enumerate(sample):
        found: dict[str, set[str]] = {}
        for name in ("ours", "theirs") if number % 2 else ("theirs", "ours"):
            gc.disable()
            start = time.perf_counter()
            result = set(ours(key)) if name == "ours" else theirs(key)
            elapsed = time.perf_counter() - start
            gc.enable()
            (mine if name == "ours" else other).append(elapsed)
            found[name] = result
        if found["ours"] != found["theirs"]:
            raise RuntimeError(f"closures of {key} differ from networkx")
        sizes.append(len(found["ours"]))
    return mine, other, sizes
