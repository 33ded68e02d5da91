"""Run every bench/bench_*.py module and print one table (see bench/README.md for the convention).

    python bench/run_all.py [--quick] [--json PATH] [--only embed,stages]

Modules run in one process, sorted by name, so cached measurements are shared (bench_stages reuses the
encoder timings of bench_embed). A module that fails gives an ERROR row; the others still run.
"""
from __future__ import annotations

import argparse
import importlib
import platform
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import print_rows, row, write_json  # noqa: E402


def discover(only: set[str] | None = None) -> list[str]:
    names = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if only:
        unknown = only - {n.removeprefix("bench_") for n in names}
        if unknown:
            raise SystemExit(f"error: no bench module named {', '.join(sorted(unknown))} "
                             f"(have: {', '.join(n.removeprefix('bench_') for n in names)})")
        names = [n for n in names if n.removeprefix("bench_") in only]
    return names


def run_module(name: str, quick: bool, scripts_out: list[str]) -> list[dict]:
    start = time.perf_counter()
    try:
        module = importlib.import_module(name)
        if hasattr(module, "run"):
            rows = list(module.run(quick))
        else:  # not (yet) following the convention: run it as a script and keep its own output
            rows = [run_script(name, scripts_out)]
    except Exception as exc:  # one broken module must not hide the others' numbers
        traceback.print_exc(file=sys.stderr)
        rows = [row("ERROR", float("nan"), "", note=f"{type(exc).__name__}: {exc}"[:300])]
    elapsed = time.perf_counter() - start
    for r in rows:
        r["module"] = name.removeprefix("bench_")
    print(f"[{name}: {len(rows)} rows in {elapsed:.0f} s]", file=sys.stderr, flush=True)
    return rows


def run_script(name: str, scripts_out: list[str]) -> dict:
    import subprocess

    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(HERE / f"{name}.py")], capture_output=True, text=True, cwd=HERE.parent)
    secs = time.perf_counter() - start
    scripts_out.append(f"\n===== {name}.py (exit {proc.returncode}, {secs:.0f} s) =====\n{proc.stdout}")
    if proc.returncode != 0:
        raise RuntimeError(f"{name}.py exited {proc.returncode}: {proc.stderr.strip()[-200:]}")
    return row("ran as a script (no run())", secs, "s", note="its own output is printed below the table")


def machine() -> str:
    import os

    try:
        import torch

        extra = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
        if torch.cuda.is_available():
            extra += f", {torch.cuda.get_device_name(0)}"
    except ImportError:
        extra = "no torch"
    load = ", load %.1f" % os.getloadavg()[0] if hasattr(os, "getloadavg") else ""
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs{load}, {extra}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run every livi benchmark and print one table.")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (~2 minutes instead of ~10)")
    parser.add_argument("--json", metavar="PATH", help="also write all rows (plus machine info) as JSON")
    parser.add_argument("--only", metavar="NAMES", help="comma-separated module names, e.g. embed,stages")
    args = parser.parse_args(argv)
    only = {n.strip().removeprefix("bench_") for n in args.only.split(",")} if args.only else None
    start = time.perf_counter()
    rows: list[dict] = []
    scripts_out: list[str] = []
    for name in discover(only):
        rows += run_module(name, args.quick, scripts_out)
    total = time.perf_counter() - start
    print_rows(rows, title=f"livi benchmarks ({'quick' if args.quick else 'default'} mode, {total:.0f} s; {machine()})")
    for text in scripts_out:
        print(text)
    if args.json:
        write_json({"machine": machine(), "quick": args.quick, "seconds": round(total, 1), "rows": rows}, args.json)
    return 1 if any(r["name"] == "ERROR" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
