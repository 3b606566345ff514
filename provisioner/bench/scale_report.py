"""The table of ``provisioner bench scale``: every figure of issue 11 with its target and ratio."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table


@dataclass
class Figure:
    number: str
    name: str
    measured: float | None  # None: not measured (skipped, failed)
    unit: str
    target: float
    at_most: bool = True  # the target is a ceiling (else a floor)
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.measured is None or not self.target:
            return None
        return self.measured / self.target

    @property
    def met(self) -> bool | None:
        if self.measured is None:
            return None
        return self.measured <= self.target if self.at_most else self.measured >= self.target


@dataclass
class Results:
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # missing accounts/memberships: exit 1
    peaks: dict[str, float] = field(default_factory=dict)  # peak RSS (MB) per process label

    def add(self, *args, **kwargs) -> Figure:
        figure = Figure(*args, **kwargs)
        self.figures.append(figure)
        return figure

    def skipped(self, number: str, name: str, unit: str, target: float, why: str, at_most: bool = True) -> None:
        self.figures.append(Figure(number, name, None, unit, target, at_most, why))


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("x", ""):
        return f"{value:.3f}"
    if abs(value) >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:.2f} {unit}"


def render(results: Results, title: str, console: Console) -> None:
    table = Table(title=title, title_justify="left")
    for col, justify in (("#", "left"), ("figure", "left"), ("measured", "right"), ("target", "right"),
                         ("ratio", "right"), ("", "left"), ("how", "left")):
        table.add_column(col, justify=justify, overflow="fold")
    for f in results.figures:
        target = f"{'<=' if f.at_most else '>='} {_fmt(f.target, f.unit)}"
        ratio = "-" if f.ratio is None else f"{f.ratio:.2f}"
        verdict = {None: "[yellow]n/a[/]", True: "[green]ok[/]", False: "[red]MISSED[/]"}[f.met]
        table.add_row(f.number, f.name, _fmt(f.measured, f.unit), target, ratio, verdict, f.note)
    console.print(table)
    for note in results.notes:
        console.print(note, highlight=False, soft_wrap=True)
    for problem in results.problems:
        console.print(f"[red]MISSING[/] {problem}", highlight=False, soft_wrap=True)
