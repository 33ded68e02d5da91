"""`livi eval`: cover-retrieval quality (MR1, HR@k, MAP@10) on a labelled set, variants side by side."""
from __future__ import annotations

import math
from pathlib import Path
from typing import List, Optional

import typer

from livi_cli.cli.options import BatchSizeOpt, DeviceOpt, HeadOpt, PrecisionOpt, VocalDetectorOpt, WhisperOpt

METRIC_ROWS = [  # (key, label, format)
    ("MR1", "MR1 (lower is better)", "{:.2f}"),
    ("HR1", "HR@1", "{:.4f}"),
    ("HR10", "HR@10", "{:.4f}"),
    ("HR100", "HR@100", "{:.4f}"),
    ("MAP10", "MAP@10", "{:.4f}"),
    ("n_queries", "queries", "{}"),
    ("n_items", "tracks evaluated", "{}"),
    ("skipped_instrumental", "skipped: instrumental", "{}"),
    ("skipped_unreadable", "skipped: unreadable", "{}"),
    ("skipped_missing", "skipped: no embedding", "{}"),
]

HELP = """Measure how well embeddings retrieve cover versions on a labelled set (the paper's protocol).

METADATA is a CSV with one row per track: `id`, a clique column (`clique`, `work`, `clique_id` or `work_id`:
tracks with the same value are versions of one work) and either `path` (audio; relative paths resolve
against --audio-root, default the CSV's folder) or embedding columns e0..eN.

Embeddings come from, in this order: --embeddings FILE (.npz keyed by id, or with `ids` + `embeddings`
arrays, or an .npy in row order), --from-catalog (what `livi scan` stored, matched by path), the CSV's
e-columns, or else the current model embeds every path.

Protocol: all-vs-all cosine; every track with at least one other version is a query; the query itself is
excluded; MR1 is the mean rank of the first relevant item over the full ranking; HR@n the fraction of
queries with a version in the top n; MAP@10 is normalised by min(10, #versions). Exact similarity ties
count against the query.

--variant "name:key=value,..." (repeatable) adds a column: keys vocal_detector, precision, device (these
re-embed the audio) and aggregation=mean|max. mean: one vector per track, the mean of its window embeddings
(the paper's); max: the similarity of two tracks is the best cosine over all pairs of their windows. With
precomputed embeddings only aggregation applies, and max needs window embeddings (--from-catalog or an .npz
whose entries are (windows, dim) arrays).
"""


def eval_command(
    metadata: Path = typer.Argument(..., help="Metadata CSV: id, clique, path or e0..eN."),
    embeddings: Optional[Path] = typer.Option(None, "--embeddings", help=".npz keyed by id, or .npy in CSV row order."),
    from_catalog: bool = typer.Option(False, "--from-catalog", help="Use the vectors stored by `livi scan`, matched by path."),
    library: Optional[Path] = typer.Option(None, "--library", help="Library folder for --from-catalog (env LIVI_LIBRARY)."),
    audio_root: Optional[Path] = typer.Option(None, "--audio-root", help="Folder that relative paths in the CSV start from."),
    variant: Optional[List[str]] = typer.Option(None, "--variant", help='"name:key=value,..." with keys vocal_detector, precision, device, aggregation; repeatable.'),
    k: int = typer.Option(100, "--k", min=1, help="Ranking cut-off: HR@k is reported besides HR@1/10/100."),
    json_out: bool = typer.Option(False, "--json", help="Print the results as JSON on stdout instead of a table."),
    per_query: Optional[Path] = typer.Option(None, "--per-query", help="Write each query's first relevant rank and top false positive to this CSV."),
    whisper: Optional[str] = WhisperOpt,
    head: Optional[str] = HeadOpt,
    device: Optional[str] = DeviceOpt,
    precision: Optional[str] = PrecisionOpt,
    batch_size: Optional[int] = BatchSizeOpt,
    vocal_detector: Optional[str] = VocalDetectorOpt,
) -> None:
    from livi_cli import eval_inputs as ei
    from livi_cli.config import load_settings

    meta = ei.read_metadata(metadata, audio_root)
    variants = [ei.parse_variant(v) for v in (variant or [])] or [ei.Variant("default")]
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise typer.BadParameter(f"variant names must differ: {', '.join(names)}", param_hint="--variant")
    source = ei.pick_source(meta, embeddings, from_catalog)
    settings = load_settings(library=library, whisper=whisper, head=head, device=device, precision=precision,
                             batch_size=batch_size, vocal_detector=vocal_detector)
    with _progress(len(meta.ids), enabled=source == "compute" and not json_out) as progress:
        results = ei.run_variants(meta, variants, source, k=k, embeddings=embeddings, library=settings.library,
                                  settings=settings, progress=progress)
    _warn_unreadable(results)
    if per_query is not None:
        _write_per_query(per_query, ei.per_query_rows(meta, results))
    if json_out:
        from livi_cli.cli.console import print_json

        print_json(_as_json(metadata, source, k, results))
    else:
        _print_table(metadata, source, k, results)


def _warn_unreadable(results, shown: int = 5) -> None:
    """Name the first few unreadable files on stderr (each variant re-reads the same files: report once)."""
    from livi_cli.cli.console import warn

    errors: dict[int, str] = {}
    for r in results:
        errors.update(r.errors)
    for row in sorted(errors)[:shown]:
        warn(f"skipped {errors[row]}")
    if len(errors) > shown:
        warn(f"... and {len(errors) - shown} more unreadable file(s)")


def _print_table(metadata: Path, source: str, k: int, results) -> None:
    from livi_cli.cli.console import print_table

    rows_spec = list(METRIC_ROWS)
    if k not in (1, 10, 100):
        rows_spec.insert(4, (f"HR{k}", f"HR@{k}", "{:.4f}"))
    columns = ["metric"] + [(r.variant.name, "right") for r in results]
    rows = [[label] + [_fmt(r.metrics.get(key), fmt) for r in results] for key, label, fmt in rows_spec]
    print_table(f"{metadata.name}: cover retrieval ({source} embeddings)", columns, rows)


def _fmt(value, fmt: str) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    return fmt.format(value)


def _as_json(metadata: Path, source: str, k: int, results) -> dict:
    def clean(v):
        return None if isinstance(v, float) and math.isnan(v) else v

    return {
        "metadata": str(metadata), "source": source, "k": k,
        "variants": [
            {"name": r.variant.name, "aggregation": r.variant.aggregation, "settings": r.variant.settings,
             "metrics": {key: clean(val) for key, val in r.metrics.items()}}
            for r in results
        ],
    }


def _write_per_query(path: Path, rows: list[dict]) -> None:
    import csv

    from livi_cli.errors import EvalError

    fields = ["variant", "id", "clique", "n_relevant", "first_rank", "first_relevant_id",
              "first_relevant_similarity", "ap10", "top_fp_id", "top_fp_clique", "top_fp_similarity"]
    try:
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
    except OSError as exc:
        raise EvalError(f"{path}: cannot write the per-query CSV: {exc}") from exc


class _progress:
    """A stderr progress bar while audio is embedded; a no-op callback otherwise."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.bar = total, enabled, None

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.progress import Progress

        from livi_cli.cli.console import err_console

        self.bar = Progress(console=err_console, transient=True)
        self.bar.start()
        task = self.bar.add_task("embedding", total=self.total)
        return lambda done: self.bar.update(task, completed=done)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()


def register(app: typer.Typer) -> None:
    app.command("eval", help=HELP)(eval_command)
