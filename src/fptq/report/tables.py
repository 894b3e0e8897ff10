"""Plain-text tables: markdown for humans and files, JSON for scripts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

__all__ = ["markdown_table", "policy_table", "strategy_summary", "fmt"]


def fmt(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        if abs(value) >= 1e4 or (0 < abs(value) < 1e-3):
            return f"{value:.{digits}g}"
        return f"{value:.{digits}f}".rstrip("0").rstrip(".") if "." in f"{value:.{digits}f}" else f"{value}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence], align_right: bool = True) -> str:
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]

    def line(values):
        return "| " + " | ".join(
            v.rjust(w) if align_right and i else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths))
        ) + " |"

    sep = "|" + "|".join(("-" * (w + 1) + ":") if align_right and i else "-" * (w + 2) for i, w in enumerate(widths)) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in cells)])


def policy_table(rows: Sequence[dict]) -> str:
    """The per-layer policy: layer, max|X|, strategy, max|X| after equalization, static scale."""
    return markdown_table(
        ["layer", "max|X|", "strategy", "max|X| after eq.", "static scale"],
        [
            [r["layer"], round(r["max_abs"], 3), r["strategy"], round(r["max_abs_after_eq"], 3),
             None if r["act_scale"] is None else float(f"{r['act_scale']:.4g}")]
            for r in rows
        ],
    )


def strategy_summary(rows: Sequence[dict]) -> str:
    """Share of layers per strategy, overall and per linear group."""
    total = Counter(r["strategy"] for r in rows)
    groups = sorted({r["group"] for r in rows}, key=[r["group"] for r in rows].index)
    strategies = sorted(total)
    table_rows = []
    for g in groups:
        c = Counter(r["strategy"] for r in rows if r["group"] == g)
        table_rows.append([g, *(c.get(s, 0) for s in strategies), sum(c.values())])
    table_rows.append(["all", *(f"{total[s]} ({100 * total[s] / len(rows):.0f}%)" for s in strategies), len(rows)])
    return markdown_table(["group", *strategies, "layers"], table_rows)
