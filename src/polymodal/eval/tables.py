"""Metrics for people: rounded, in a table or on one line (the JSON files keep full precision)."""

from __future__ import annotations

from rich.table import Table


def rounded(value, digits: int = 3):
    """Floats rounded to ``digits`` places, inside dicts and lists too."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value


def metrics_table(metrics: dict, title: str | None = None, digits: int = 3) -> Table:
    """One row per metric, values rounded."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        value = rounded(value, digits)
        table.add_row(key, f"{value:.{digits}f}" if isinstance(value, float) else str(value))
    return table


def metrics_line(metrics: dict, digits: int = 3) -> str:
    """``{"place": {"emergent": 0.94, …}, …}`` → ``place: emergent 0.940, …; shape: …``."""
    def part(value) -> str:
        if isinstance(value, dict):
            return ", ".join(f"{k} {part(v)}" for k, v in value.items())
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    return "; ".join(f"{k}: {part(v)}" for k, v in metrics.items())
