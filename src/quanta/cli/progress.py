"""The CLI's Reporter: a rich progress display of builds."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


class RichReporter:
    """Shows one line per product: a spinner and stage while it builds, then the outcome."""

    def __init__(self, console: Console, total: int | None = None) -> None:
        self.console = console
        self.progress = Progress(
            SpinnerColumn(), TextColumn("[bold]{task.fields[product]}"),
            TextColumn("{task.fields[stage]}"), BarColumn(bar_width=None),
            TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
            console=console, transient=True,
        )
        self.overall = self.progress.add_task(
            "build", total=total or 0, product="mesh", stage="", visible=bool(total)
        )
        self.started_at: dict[str, float] = {}

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.progress.stop()

    def started(self, task: str, total: int | None = None) -> None:
        self.started_at[task] = time.perf_counter()
        self.progress.update(self.overall, product=task, stage="starting")

    def stage(self, task: str, stage: str) -> None:
        self.progress.update(self.overall, product=task, stage=stage)

    def finished(self, task: str, ok: bool, summary: str) -> None:
        seconds = time.perf_counter() - self.started_at.get(task, time.perf_counter())
        mark = "[green]✓[/]" if ok else "[red]✗[/]"
        self.console.print(f"{mark} [bold]{task}[/] {summary} [dim]({seconds:.1f}s)[/]",
                           highlight=False)
        self.progress.advance(self.overall)

    def warn(self, message: str) -> None:
        self.console.print(f"[yellow]![/] {message}", highlight=False)
