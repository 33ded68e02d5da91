"""The two Rich consoles: data on stdout, people-facing messages and progress on stderr.

Markup and highlighting are off so user strings such as "[Live]" print literally.
"""
from __future__ import annotations

import json
import sys
from typing import Any, Iterable, Sequence

from rich.console import Console
from rich.table import Table

console = Console(markup=False, highlight=False, soft_wrap=False)
err_console = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)  # no hard wraps in messages


def info(message: str) -> None:
    err_console.print(message)


def warn(message: str) -> None:
    err_console.print(f"warning: {message}")


def print_json(data: Any) -> None:
    """Machine-readable output: plain JSON on stdout, no Rich wrapping."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
    sys.stdout.flush()


def make_table(title: str | None, columns: Sequence[str | tuple[str, str]]) -> Table:
    """A table with the given columns; a (name, justify) tuple sets alignment."""
    table = Table(title=title, show_lines=False, header_style="bold")
    for col in columns:
        name, justify = (col, "left") if isinstance(col, str) else col
        table.add_column(name, justify=justify, overflow="fold")
    return table


def print_table(title: str | None, columns: Sequence[str | tuple[str, str]], rows: Iterable[Sequence[Any]]) -> None:
    table = make_table(title, columns)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)
