"""Shared helpers for bench modules: timing, row construction, table/JSON output, script entry."""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout: make livi_cli importable
    sys.path.insert(0, str(ROOT))


def row(name: str, value: float, unit: str, *, note: str = "", limit: float | None = None) -> dict:
    """One result row; numpy scalars become plain floats so the row is JSON-serialisable."""
    return {"name": name, "value": _plain(value), "unit": unit, "limit": _plain(limit), "note": note}


def _plain(value):
    if value is None:
        return None
    if isinstance(value, (int, str)):
        return value
    return float(value)


def timeit(fn: Callable[[], object], *, repeat: int = 3, warmup: int = 0) -> float:
    """Best wall-clock seconds over `repeat` calls (best-of filters noise from other processes)."""
    for _ in range(warmup):
        fn()
    best = math.inf
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if value != value:  # NaN
        return "nan"
    mag = abs(value)
    if mag == 0:
        return "0"
    if mag >= 1000:
        return f"{value:,.0f}"
    if mag >= 10:
        return f"{value:.1f}"
    if mag >= 0.01:
        return f"{value:.3f}"
    return f"{value:.2e}"


def print_rows(rows: Iterable[dict], title: str | None = None) -> None:
    """Rich table: module, name, value, unit, value/limit, note."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, header_style="bold")
    for col, justify in (("module", "left"), ("name", "left"), ("value", "right"), ("unit", "left"),
                         ("limit", "right"), ("value/limit", "right"), ("note", "left")):
        table.add_column(col, justify=justify, overflow="fold")
    for r in rows:
        limit = r.get("limit")
        value = r.get("value")
        ratio = ""
        if isinstance(limit, (int, float)) and limit and isinstance(value, (int, float)):
            ratio = fmt(value / limit)
        table.add_row(str(r.get("module", "")), str(r.get("name", "")), fmt(value), str(r.get("unit", "")),
                      fmt(limit), ratio, str(r.get("note", "")))
    Console(markup=False, highlight=False, width=200).print(table)


def write_json(data, path: str | Path) -> None:
    """NaN (a skipped figure) becomes null so the file stays valid JSON."""
    def clean(v):
        if isinstance(v, float) and v != v:
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v

    Path(path).write_text(json.dumps(clean(data), indent=2) + "\n", encoding="utf-8")


def main(run: Callable[[bool], list[dict]], title: str) -> None:
    """Script entry for one bench module: `python bench/bench_x.py [--quick] [--json PATH]`."""
    parser = argparse.ArgumentParser(description=title)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, faster")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    args = parser.parse_args()
    rows = run(args.quick)
    print_rows(rows, title=title)
    if args.json:
        write_json(rows, args.json)
