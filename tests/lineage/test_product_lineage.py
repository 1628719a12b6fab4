"""Product lineage: declared inputs, the releases each build read, closures that never loop."""

from __future__ import annotations

import random
from pathlib import Path

import networkx as nx
import pytest

from quanta.context import MeshContext
from quanta.errors import NotFoundError, QuantaError
from quanta.lineage import MeshLineage, ProductGraph
from quanta.spec.mesh import Product, load_mesh
from quanta.spec.models import ProductInput


@pytest.fixture
def built(tiny_mesh: Path) -> MeshContext:
    ctx = MeshContext(tiny_mesh)
    assert all(r.ok for r in ctx.build())
    return ctx


def test_upstream_and_downstream_with_the_releases_read(built: MeshContext) -> None:
    up = built.lineage.products("shop.daily_totals", "upstream")
    assert up.upstream == {"shop.orders": 1}
    assert up.downstream == {}
    assert up.release == 1
    [link] = up.links
    assert (link.upstream, link.port, link.downstream, link.input) == (
        "shop.orders", "orders", "shop.daily_totals", "orders")
    assert (link.read_release, link.latest_release, link.stale) == (1, 1, False)
    # the outside sources of the upstream products come along
    assert [(s.product, s.type, s.location) for s in up.sources] == [
        ("shop.orders", "file", "domains/shop/orders/orders.csv")]

    down = built.lineage.products("quanta://shop/orders", "downstream")
    assert down.downstream == {"shop.customers_py": 1, "shop.daily_totals": 1}
    assert down.upstream == {} and down.sources == []
    assert sorted(link.downstream for link in down.links) == [
        "shop.customers_py", "shop.daily_totals"]

    both = built.lineage.products("shop.orders")
    assert both.direction == "both" and set(both.downstream) == set(down.downstream)
    document = both.to_dict()
    assert document["downstream"][0] == {"product": "shop.customers_py", "distance": 1,
                                         "latest_release": 1}


def test_a_newer_upstream_release_makes_the_link_stale_and_at_n_reads_old_facts(
        built: MeshContext) -> None:
    assert built.build(["shop.orders"])[0].ok
    ctx = MeshContext(built.root)
    [link] = ctx.lineage.products("shop.daily_totals", "upstream").links
    assert (link.read_release, link.latest_release, link.stale) == (1, 2, True)
    assert all(r.ok for r in ctx.build(["shop.daily_totals"]))
    [link] = MeshContext(built.root).lineage.products("shop.daily_totals", "upstream").links
    assert (link.read_release, link.stale) == (2, False)
    [old] = MeshContext(built.root).lineage.products("shop.daily_totals@1", "upstream").links
    assert old.read_release == 1


def test_unbuilt_products_have_links_without_releases(tiny_mesh: Path) -> None:
    lineage = MeshLineage(load_mesh(tiny_mesh))
    found = lineage.products("shop.daily_totals")
    assert found.release is None
    assert [(x.read_release, x.latest_release) for x in found.links] == [(None, None)]


def test_bad_addresses_directions_and_depths_are_clear_errors(tiny_mesh: Path) -> None:
    lineage = MeshLineage(load_mesh(tiny_mesh))
    with pytest.raises(NotFoundError) as unknown:
        lineage.products("shop.nope")
    assert "shop.daily_totals" in (unknown.value.hint or "")
    with pytest.raises(QuantaError) as direction:
        lineage.products("shop.orders", "sideways")
    assert "upstream" in (direction.value.hint or "")
    with pytest.raises(QuantaError):
        lineage.products("shop.orders", "upstream", depth=0)
    with pytest.raises(NotFoundError):
        lineage.products("shop.orders@7")  # release 7 was never made


def test_depth_limits_the_closure_and_distances_are_shortest() -> None:
    graph = ProductGraph(list("abcde"), [("a", "b"), ("b", "c"), ("c", "d"), ("a", "d"),
                                         ("d", "e")])
    assert graph.downstream("a") == {"b": 1, "c": 2, "d": 1, "e": 2}
    assert graph.downstream("a", depth=1) == {"b": 1, "d": 1}
    assert graph.upstream("e") == {"d": 1, "a": 2, "c": 2, "b": 3}
    assert graph.upstream("e", depth=2) == {"d": 1, "a": 2, "c": 2}
    assert graph.direct("d", "upstream") == ["a", "c"]
    with pytest.raises(NotFoundError):
        graph.upstream("z")


def test_a_hand_built_cycle_never_loops() -> None:
    graph = ProductGraph(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "a"), ("a", "a")])
    assert graph.downstream("a") == {"b": 1, "c": 2}
    assert graph.upstream("a") == {"c": 1, "b": 2}


def test_a_mesh_with_a_hand_made_cycle_never_loops(tiny_mesh: Path) -> None:
    """The loader refuses cycles; lineage must still terminate on a mesh that has one."""
    mesh = load_mesh(tiny_mesh)
    orders = mesh.products["shop.orders"]
    loop = ProductInput(type="product", name="totals", product="quanta://shop/daily_totals")
    spec = orders.spec.model_copy(update={"inputs": [*orders.spec.inputs, loop]})
    mesh.products["shop.orders"] = Product(spec, orders.doc)
    lineage = MeshLineage(mesh)
    found = lineage.products("shop.orders")
    assert found.upstream == {"shop.daily_totals": 1}
    assert set(found.downstream) == {"shop.daily_totals", "shop.customers_py"}
    # column lineage and impact walk the cycle once, and stop
    views = lineage.columns("shop.daily_totals.totals", "both")
    assert views[0].columns["total"][0].dataset == "shop.orders.orders"
    _, _, impacts = lineage.impact("shop.orders", "amount")
    assert ("shop.daily_totals", "totals", "total") in {
        (i.product, i.port, i.column) for i in impacts}


def test_closures_match_networkx_on_a_random_graph() -> None:
    rng = random.Random(3)
    names = [f"d{i % 7}.p{i}" for i in range(300)]
    edges = {(names[a], names[b]) for a, b in
             (sorted(rng.sample(range(300), 2)) for _ in range(1500))}
    graph = ProductGraph(names, edges)
    reference = nx.DiGraph(list(edges))
    reference.add_nodes_from(names)
    assert graph.edge_count == len(edges)
    for key in rng.sample(names, 20):
        assert set(graph.downstream(key)) == nx.descendants(reference, key)
        assert set(graph.upstream(key)) == nx.ancestors(reference, key)


def test_the_demo_mesh_lineage(demo_mesh: Path) -> None:
    lineage = MeshLineage(load_mesh(demo_mesh))
    found = lineage.products("artists.artist_popularity", "upstream")
    assert set(found.upstream) == {"artists.catalog", "listening.play_events"}
    assert {link.port for link in found.links} == {"plays", "tracks", "artists"}
    assert all(link.read_release == 1 for link in found.links)
    assert {s.type for s in found.sources} == {"file", "sqlite"}
    down = lineage.products("listening.play_events", "downstream")
    assert down.downstream["marketing.churn_features"] == 1
    assert "listening.listener_sessions" in down.downstream
