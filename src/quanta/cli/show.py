"""Terminal views of one product and of the demo's closing tour."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from quanta.cli.render import schema_table
from quanta.context import MeshContext


def print_product(out: Console, doc: dict[str, Any]) -> None:
    """Header, ports, latest release with checks and metrics, then releases."""
    owner = doc["owner"]
    out.print(f"[bold]{doc['address']}[/]  [dim]{doc['kind']}, interface {doc['version']}[/]")
    out.print(doc["description"])
    lifecycle = doc.get("lifecycle") or {}
    if lifecycle.get("state", "active") != "active":
        sunset = f", sunset {lifecycle['sunset']}" if lifecycle.get("sunset") else ""
        instead = f"; use {lifecycle['replacement']}" if lifecycle.get("replacement") else ""
        colour = "red" if lifecycle["state"] == "retired" else "yellow"
        out.print(f"[{colour}]{lifecycle['state']}[/]{sunset}{instead}")
    contact = f" <{owner['email']}>" if owner.get("email") else ""
    out.print(f"owner: {owner['team']}{contact}   tags: {', '.join(doc['tags']) or '-'}")
    if doc["upstream"] or doc["downstream"]:
        out.print(f"upstream: {', '.join(doc['upstream']) or '-'}   "
                  f"downstream: {', '.join(doc['downstream']) or '-'}")
    slos = ", ".join(f"{k} {v}" for k, v in doc["slos"].items())
    out.print(f"SLOs: {slos or '-'}   retention: {doc['retention'] or '-'}")
    print_observations(out, doc)
    out.print()
    for port in doc["ports"]:
        out.print(schema_table(port))
    if doc["policies"]:
        out.print("[bold]policies[/]")
        for number, text in enumerate(doc["policies"], start=1):
            out.print(f"  {number}. {text}", soft_wrap=True)
    else:
        out.print("[bold]policies[/]: none; only the mesh operator may read it")
    latest = doc["latest_release"]
    if latest is None:
        out.print("\nno release yet; build it with: quanta build "
                  f"{doc['domain']}.{doc['name']}")
        return
    out.print(f"\n[bold]latest release {latest['release']}[/] committed "
              f"{latest['committed_at']:%Y-%m-%d %H:%M:%S} UTC, run {latest['run_id']}")
    if latest["checks"]:
        checks = Table(header_style="bold", title="quality checks", title_justify="left")
        for column in ("check", "port", "severity", "result"):
            checks.add_column(column)
        for c in latest["checks"]:
            result = "[green]passed[/]" if c["passed"] else (
                f"[yellow]{c['message']}[/]" if c["severity"] == "warn" else
                f"[red]{c['message']}[/]")
            checks.add_row(c["name"], c["port"], c["severity"], result)
        out.print(checks)
    if latest["metrics"]:
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in sorted(latest["metrics"].items()))
        out.print(f"quality metrics: {metrics}")
    out.print(f"releases: {len(doc['releases'])} (see: quanta versions {doc['address']})")


def print_observations(out: Console, doc: dict[str, Any]) -> None:
    """SLO attainment and usage, when the document carries them (measured when shown)."""
    from quanta.observe.slo import percent

    measured = doc.get("slo_attainment")
    if measured and measured["slos"]:
        days = round(measured["window_seconds"] / 86_400)
        out.print(f"SLO attainment over {days}d: [bold]{measured['status']}[/]")
        for item in measured["slos"]:
            attained = ("—" if item["attainment"] is None
                        else f"{percent(item['attainment'])} {item['note']}")
            left = item["budget_left"]
            budget = "" if left is None else f", budget left {left:.0%}"
            out.print(f"  {item['slo']} {item['objective']}: {item['status']} ({attained}"
                      f"{budget})", soft_wrap=True)
    usage = doc.get("usage")
    if usage:
        out.print(f"usage over {usage['days']}d: {usage['reads']:,} read(s) by "
                  f"{usage['consumers']:,} consumer(s), {usage['queries_per_day']:g} per day, "
                  f"{usage['denials']:,} denied")


def print_demo_tour(out: Console, ctx: MeshContext, folder: Path, seconds: float) -> None:
    """What was built and how to query it: the first thing a new user reads."""
    table = Table(title="Daff Inc. data mesh", header_style="bold")
    for column in ("product (SQL name)", "kind", "ports", "rows", "release"):
        table.add_column(column, justify="right" if column in ("rows", "release") else "left")
    for key in ctx.mesh.build_order():
        product = ctx.mesh.products[key]
        latest = ctx.storage(key).latest()
        table.add_row(
            key, product.spec.kind,
            ", ".join(p.name for p in product.spec.outputs),
            f"{latest.rows:,}" if latest else "-", str(latest.release) if latest else "-",
        )
    out.print(table)
    out.print(f"[green]✓[/] demo mesh ready in {seconds:.1f}s at {folder.resolve()}\n")
    out.print("[bold]Try it[/]")
    steps = [f"cd {folder}"]
    here = Path(sys.executable).parent
    if shutil.which("quanta") != str(here / "quanta"):
        steps.insert(0, f"source {here / 'activate'}")
    steps += [
        "quanta show listening.play_events",
        "quanta query \"SELECT device, count(*) AS plays FROM listening.play_events "
        "GROUP BY ALL ORDER BY plays DESC\"",
        "quanta query \"SELECT artist_name, sum(plays) AS plays FROM "
        "artists.artist_popularity GROUP BY ALL ORDER BY plays DESC LIMIT 10\"",
        "quanta versions quanta://listening/play_events",
        "quanta runs",
        "quanta slo                                     # SLO attainment and error budgets",
        "quanta usage                                   # who reads what, per day",
        "quanta demo . --append-events 1000             # new plays arrive at the source",
        "quanta run --once                              # products react, upstream first",
    ]
    for step in steps:
        out.print(f"  [cyan]{step}[/]", soft_wrap=True)
    out.print("\n[bold]Serve it[/] (another terminal, same folder)")
    serving = [
        "quanta serve                                   # HTTP :8080 (docs at /docs), Flight :8815",
        "export TOKEN=$(quanta token create ana --group analysts)",
        "curl -s localhost:8080/api/v1/query -H \"Authorization: Bearer $TOKEN\" "
        "-d '{\"sql\": \"SELECT * FROM listening.play_events LIMIT 3\"}'",
        "curl -s \"localhost:8080/api/v1/products/listening/play_events/ports/plays/rows?limit=3\" "
        "-H \"Authorization: Bearer $TOKEN\"",
        "curl -s localhost:8080/api/v1/products/listening/play_events/slo "
        "-H \"Authorization: Bearer $TOKEN\"",
        "curl -s localhost:8080/metrics                 # Prometheus",
        "curl -s localhost:8080/api/v1/query -H \"Authorization: Bearer $TOKEN\" "
        "-H 'Accept: application/vnd.apache.parquet' -d '{\"sql\": \"SELECT * FROM "
        "artists.catalog\"}' -o catalog.parquet",
        "python -c \"import quanta, os; c = quanta.connect('grpc://127.0.0.1:8815', "
        "token=os.environ['TOKEN']); print(c.sql('SELECT count(*) FROM listening.play_events'))\"",
    ]
    for step in serving:
        out.print(f"  [cyan]{step}[/]", soft_wrap=True)
