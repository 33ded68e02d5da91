"""`livi scan PATH...`: add folders to the library (incremental, resumable) and print a summary."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from livi_cli.cli.options import BatchSizeOpt, DeviceOpt, HeadOpt, LibraryOpt, PrecisionOpt, VocalDetectorOpt, WhisperOpt



class RichProgress:
    """ScanProgress drawn with Rich on stderr: tracks done/total, windows, failures, ETA, current file."""

    def __init__(self, console, quiet: bool = False):
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self.console = console
        self.quiet = quiet
        self.windows = 0
        self.failures = 0
        self.task = None
        self.progress = Progress(
            SpinnerColumn(), TextColumn("embedding"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[windows]} windows, {task.fields[failures]} failed"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            TextColumn("{task.fields[current]}", markup=False),
            console=console, transient=True, disable=quiet or not console.is_terminal)

    def message(self, text: str) -> None:
        if not self.quiet:
            self.progress.console.print(text, markup=False, highlight=False)

    def discovered(self, files: int) -> None:
        self.message(f"found {files} audio files")

    def start_embedding(self, total: int) -> None:
        self.message(f"embedding {total} new or changed files")
        self.progress.start()
        self.task = self.progress.add_task("embed", total=total, windows=0, failures=0, current="")

    def track_started(self, path: str) -> None:
        if self.task is not None:
            self.progress.update(self.task, current=_short(path))

    def track_done(self, path: str, *, status: str, windows: int, error: str | None = None) -> None:
        self.windows += windows
        self.failures += status == "failed"
        if self.task is not None:
            self.progress.update(self.task, advance=1, windows=self.windows, failures=self.failures)

    def stop(self) -> None:
        self.progress.stop()


def _short(path: str, width: int = 50) -> str:
    name = Path(path).name
    return name if len(name) <= width else "…" + name[-(width - 1):]


def scan(
    paths: List[Path] = typer.Argument(..., help="Folders or files to scan (recursively)."),
    force: bool = typer.Option(False, "--force", help="Re-embed every file, even unchanged ones."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be processed; change nothing."),
    limit: Optional[int] = typer.Option(None, "--limit", min=0, help="Embed at most N new/changed files (a quick trial)."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
    library: Optional[Path] = LibraryOpt,
    device: Optional[str] = DeviceOpt,
    precision: Optional[str] = PrecisionOpt,
    batch_size: Optional[int] = BatchSizeOpt,
    vocal_detector: Optional[str] = VocalDetectorOpt,
    vocal_threshold: Optional[float] = typer.Option(None, "--vocal-threshold", help="Vocalness above which a segment is sung."),
    include_instrumental: Optional[bool] = typer.Option(None, "--include-instrumental", help="Embed instrumental tracks too (plain windows)."),
    whisper: Optional[str] = WhisperOpt,
    head: Optional[str] = HeadOpt,
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Decode/feature threads running ahead of the encoder."),
) -> None:
    """Scan folders into the library: new and changed files are embedded, moved files keep their
    embedding, deleted files drop out. Exit code 1 when any file failed."""
    from livi_cli import api
    from livi_cli.cli.console import err_console, print_json

    s = api.settings(library=library, device=device, precision=precision, batch_size=batch_size,
                     vocal_detector=vocal_detector, vocal_threshold=vocal_threshold,
                     include_instrumental=include_instrumental, whisper=whisper, head=head)
    progress = RichProgress(err_console, quiet=False)
    try:
        summary = api.scan(paths, s, force=force, dry_run=dry_run, limit=limit, workers=workers, progress=progress)
    finally:
        progress.stop()
    if json_out:
        print_json(summary.to_dict())
    else:
        _print_summary(summary)
    if summary.failed:
        raise typer.Exit(1)


def _print_summary(summary) -> None:
    from livi_cli.cli.console import info, print_table

    if summary.dry_run:
        print_table("Would process", ["action", "path", "from"],
                    ([p["action"], p["path"], p.get("from", "")] for p in summary.planned))
    counts = [("new", summary.new), ("updated", summary.updated), ("moved", summary.moved),
              ("unchanged", summary.unchanged), ("removed", summary.removed),
              ("instrumental", summary.instrumental), ("failed", summary.failed)]
    title = "Dry run (nothing changed)" if summary.dry_run else "Scan summary"
    print_table(title, ["files", ("count", "right")], counts)
    if summary.failures:
        print_table("Failures", ["file", "reason"], ((f.path, f.reason) for f in summary.failures))
    if summary.still_failed:
        info(f"{summary.still_failed} file(s) that failed before are unchanged and were skipped "
             "(`livi scan --force` retries them)")
    if not summary.dry_run:
        info(f"library {summary.library}: {summary.embedded} embedded, {summary.windows} windows, "
             f"{summary.seconds:.1f} s; index {summary.index}")


def register(app: typer.Typer) -> None:
    app.command("scan")(scan)
