"""CSV / JSON writers shared by every command that exports (`--export csv|json [--output PATH]`).

* UTF-8 always (files and stdout), whatever the locale, so tags in any script survive.
* CSV through the csv module (minimal quoting, "\\n" line ends): commas, double quotes and newlines
  inside tags are quoted and round-trip through any CSV reader. None becomes an empty cell.
* JSON: one document (a list of objects), UTF-8 without escaping, numbers stay numbers.
* Without --output (or with "-") the export goes to stdout; people-facing messages go to stderr.
"""
from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from livi_cli.errors import LiviError

FORMATS = ("csv", "json")


def check_format(fmt: str | None) -> str | None:
    if fmt is None:
        return None
    low = fmt.lower()
    if low not in FORMATS:
        raise LiviError(f"--export: unknown format '{fmt}' (choose csv or json)")
    return low


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if value == value else ""
    return str(value)


def csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """CSV with a header line; each row is a mapping from column name to value (missing → empty)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buf.getvalue()


def json_text(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n"


def write_text(text: str, output: str | Path | None) -> None:
    """To `output` (UTF-8) or, when None or '-', to stdout as UTF-8 bytes."""
    if output is None or str(output) == "-":
        buffer = getattr(sys.stdout, "buffer", None)
        if buffer is not None:
            sys.stdout.flush()
            buffer.write(text.encode("utf-8"))
            buffer.flush()
        else:
            sys.stdout.write(text)
            sys.stdout.flush()
        return
    path = Path(output).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # newline="" so the csv module's "\n" inside quoted fields is written byte for byte
        with open(path, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
    except OSError as exc:
        raise LiviError(f"{path}: cannot write export: {exc.strerror or exc}") from exc


def export(fmt: str, columns: Sequence[str], rows: Sequence[Mapping[str, Any]], output: str | Path | None,
           json_data: Any = None) -> None:
    """Write `rows` as CSV, or `json_data` (default: the rows) as JSON."""
    fmt = check_format(fmt)
    text = csv_text(columns, rows) if fmt == "csv" else json_text(rows if json_data is None else json_data)
    write_text(text, output)
