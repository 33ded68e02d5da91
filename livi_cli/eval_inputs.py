"""`livi eval` behind the CLI: the metadata CSV, where each track's embedding comes from, variants, runs.

Embedding sources (one per run):
  columns   e0..eN columns of the CSV (track vectors only)
  file      an .npz keyed by id (each entry a (D,) track vector or a (W, D) stack of window vectors), an
            .npz with arrays `ids` + `embeddings`, or an .npy (N, D) in CSV row order
  catalog   vectors stored by `livi scan`, rows matched by path
  compute   the current model embeds each audio path (per variant: detector, precision, device)

A variant is `name:key=value,...` with keys vocal_detector, precision, device, aggregation (mean|max).
Aggregation "mean": one vector per track, the re-normalised mean of its windows (the paper's).
Aggregation "max": track-to-track similarity is the highest cosine over all pairs of their windows.
"""
from __future__ import annotations

import csv
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from livi_cli.errors import AudioReadError, EvalError

CLIQUE_COLUMNS = ("clique", "work", "clique_id", "work_id")
VARIANT_KEYS = ("vocal_detector", "precision", "device", "aggregation")
AGGREGATIONS = ("mean", "max")


@dataclass
class Metadata:
    source: Path
    ids: list[str]
    cliques: list[str]
    paths: list[Path | None]  # resolved audio paths (None when the CSV has no path column)
    vectors: np.ndarray | None  # (N, D) from e-columns, None when absent


@dataclass
class Variant:
    name: str
    settings: dict = field(default_factory=dict)  # vocal_detector / precision / device overrides
    aggregation: str = "mean"

    def model_key(self) -> tuple:
        """Variants with equal keys share computed embeddings (only aggregation differs)."""
        return tuple(sorted(self.settings.items()))


@dataclass
class Embedded:
    """Embeddings of the usable tracks of one model configuration; skipped tracks listed by reason."""
    keep: list[int]  # indices into Metadata rows
    vectors: list[np.ndarray]  # (D,) per kept track
    windows: list[np.ndarray | None]  # (W, D) per kept track, None when unknown
    skipped: dict[str, list[int]] = field(default_factory=lambda: {"instrumental": [], "unreadable": [],
                                                                   "missing": []})
    errors: dict[int, str] = field(default_factory=dict)  # row → why it was unreadable


def parse_variant(text: str) -> Variant:
    """`name:key=value,...` (or just `key=value,...`, named after its values)."""
    name, sep, spec = text.partition(":")
    if not sep or "=" in name:  # no name: the colon (if any) belongs to a value, e.g. device=cuda:0
        name, spec = "", text
    settings: dict = {}
    aggregation = "mean"
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, eq, value = part.partition("=")
        key, value = key.strip().replace("-", "_"), value.strip()
        if not eq or not value:
            raise EvalError(f"--variant {text!r}: expected key=value, got {part!r}")
        if key not in VARIANT_KEYS:
            raise EvalError(f"--variant {text!r}: unknown key {key!r} (known: {', '.join(VARIANT_KEYS)})")
        if key == "aggregation":
            if value not in AGGREGATIONS:
                raise EvalError(f"--variant {text!r}: aggregation must be mean or max, got {value!r}")
            aggregation = value
        else:
            settings[key] = value
    name = name.strip() or spec.strip() or "default"
    return Variant(name=name, settings=settings, aggregation=aggregation)


def read_metadata(csv_path: Path, audio_root: Path | None = None) -> Metadata:
    """Read id, clique and path / e-columns; relative paths resolve against audio_root or the CSV's folder."""
    csv_path = Path(csv_path)
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            # keys and cells stripped once ("id, clique, e0" is common in hand-written CSVs); cells
            # beyond the header (key None, e.g. a trailing comma) are ignored
            rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise EvalError(f"{csv_path}: cannot read the metadata CSV: {exc}") from exc
    clique_col = next((c for c in CLIQUE_COLUMNS if c in header), None)
    if clique_col is None:
        raise EvalError(f"{csv_path}: no clique column (expected one of {', '.join(CLIQUE_COLUMNS)})")
    has_path = "path" in header
    if "id" not in header and not has_path:
        raise EvalError(f"{csv_path}: needs an 'id' column (or a 'path' column to use as id)")
    e_cols = _embedding_columns(header)
    if not rows:
        raise EvalError(f"{csv_path}: no rows")
    root = Path(audio_root) if audio_root else csv_path.parent
    ids, cliques, paths = [], [], []
    for line, row in enumerate(rows, start=2):
        ident = row.get("id") or row.get("path", "")
        if not ident or not row.get(clique_col):
            raise EvalError(f"{csv_path}: line {line}: empty id or {clique_col}")
        ids.append(ident)
        cliques.append(row[clique_col])
        paths.append(_resolve(row["path"], root) if has_path and row.get("path") else None)
    dupes = len(ids) - len(set(ids))
    if dupes:
        raise EvalError(f"{csv_path}: {dupes} duplicate id(s), e.g. {_first_duplicate(ids)!r}")
    vectors = _read_vectors(csv_path, rows, e_cols) if e_cols else None
    return Metadata(csv_path, ids, cliques, paths, vectors)


def _embedding_columns(header: list[str]) -> list[str]:
    cols = sorted((h for h in header if h.startswith("e") and h[1:].isdigit()), key=lambda h: int(h[1:]))
    if cols and [int(c[1:]) for c in cols] != list(range(len(cols))):
        raise EvalError(f"embedding columns must be e0..e{len(cols) - 1} without gaps")
    return cols


def _read_vectors(csv_path: Path, rows: list[dict], cols: list[str]) -> np.ndarray:
    try:
        return np.array([[float(r[c]) for c in cols] for r in rows], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise EvalError(f"{csv_path}: a value in e0..e{len(cols) - 1} is not a number: {exc}") from exc


def _resolve(path: str, root: Path) -> Path:
    p = Path(os.path.expanduser(path))
    return p if p.is_absolute() else root / p


def _first_duplicate(items: list[str]) -> str:
    seen: set[str] = set()
    for item in items:
        if item in seen:
            return item
        seen.add(item)
    return ""


# ------------------------------------------------------------------ sources
def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


def from_columns(meta: Metadata) -> Embedded:
    return Embedded(keep=list(range(len(meta.ids))), vectors=list(meta.vectors), windows=[None] * len(meta.ids))


def from_file(meta: Metadata, path: Path) -> Embedded:
    """Load an .npz keyed by id (or ids+embeddings arrays) or an .npy in CSV row order."""
    path = Path(path)
    # never unpickle: the file may come from anywhere. np.load reads .npz members lazily, so the
    # table is built inside the try: a damaged zip, an empty file or an object array all end here
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.ndarray):
            table = None
        else:
            with data:
                if "ids" in data.files and "embeddings" in data.files:
                    table = _id_table(path, data["ids"], data["embeddings"])
                else:
                    table = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise EvalError(f"{path}: cannot read embeddings: {exc}") from exc
    if table is None:
        if data.ndim != 2 or len(data) != len(meta.ids) or data.dtype.kind not in "biuf":
            raise EvalError(f"{path}: expected a numeric (N, D) array with N = {len(meta.ids)} CSV rows, "
                            f"got {data.dtype} {data.shape}")
        return Embedded(keep=list(range(len(data))), vectors=list(data), windows=[None] * len(data))
    out = Embedded(keep=[], vectors=[], windows=[])
    dim = None
    for i, ident in enumerate(meta.ids):
        arr = table.get(ident)
        if arr is None:
            out.skipped["missing"].append(i)
            continue
        try:
            arr = np.asarray(arr, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise EvalError(f"{path}: entry {ident!r} is not numeric: {exc}") from exc
        # every entry must share one dimension: (D,) or (W, D); anything else cannot be compared
        if arr.ndim not in (1, 2) or (dim is not None and arr.shape[-1] != dim):
            want = "(D,) or (windows, D)" if dim is None else f"({dim},) or (windows, {dim})"
            raise EvalError(f"{path}: entry {ident!r} has shape {arr.shape}, expected {want}")
        dim = arr.shape[-1]
        if arr.ndim == 2 and len(arr) == 0:
            out.skipped["instrumental"].append(i)  # no windows: nothing sung was embedded
            continue
        out.keep.append(i)
        out.vectors.append(_unit(arr.mean(axis=0)) if arr.ndim == 2 else arr)
        out.windows.append(arr if arr.ndim == 2 else None)
    return out


def _id_table(path: Path, ids: np.ndarray, embeddings: np.ndarray) -> dict:
    """id → vector from parallel `ids` / `embeddings` arrays (byte-string ids, as some tools write them,
    are decoded so they match the CSV's text ids)."""
    if ids.ndim != 1 or len(ids) != len(embeddings):
        raise EvalError(f"{path}: 'ids' {ids.shape} and 'embeddings' {embeddings.shape} do not have one row per id")
    return {(i.decode("utf-8", "replace") if isinstance(i, bytes) else str(i)): e for i, e in zip(ids, embeddings)}


def from_catalog(meta: Metadata, library: Path, want_windows: bool) -> Embedded:
    """Vectors `livi scan` stored, matched to CSV rows by path."""
    from livi_cli.library.catalog import Catalog

    if all(p is None for p in meta.paths):
        raise EvalError(f"{meta.source}: the catalog is matched by path, but the CSV has no 'path' column")
    out = Embedded(keep=[], vectors=[], windows=[])
    with Catalog.open(library, readonly=True) as cat:
        key = cat.model_key()
        for i, path in enumerate(meta.paths):
            track = cat.track_by_path(path) if path is not None else None
            if track is None or track.status == "removed":
                out.skipped["missing"].append(i)
                continue
            if track.status == "instrumental":
                out.skipped["instrumental"].append(i)
                continue
            if track.status == "failed":
                out.skipped["unreadable"].append(i)
                continue
            vec = cat.track_vector(track.id)
            if vec is None or cat.track_embed_key(track.id) != key:
                out.skipped["missing"].append(i)  # not embedded yet, or by another model
                continue
            out.keep.append(i)
            out.vectors.append(vec.astype(np.float64))
            out.windows.append(cat.window_embeddings(track.id) if want_windows else None)
    return out


def compute(meta: Metadata, embedder, batch_tracks: int = 8, progress=None) -> Embedded:
    """Embed every audio path with `embedder` (an Embedder); unreadable / instrumental files are skipped."""
    if all(p is None for p in meta.paths):
        raise EvalError(f"{meta.source}: no 'path' column and no embeddings to evaluate")
    out = Embedded(keep=[], vectors=[], windows=[])
    pending: list[tuple[int, object]] = []

    def flush() -> None:
        for (i, _), emb in zip(pending, embedder.encode([p for _, p in pending])):
            if emb.vector is None:
                out.skipped["instrumental"].append(i)
            else:
                out.keep.append(i)
                out.vectors.append(emb.vector.astype(np.float64))
                out.windows.append(emb.windows)
        pending.clear()

    for i, path in enumerate(meta.paths):
        if path is None:
            out.skipped["missing"].append(i)
        else:
            try:
                pending.append((i, embedder.prepare_path(path)))
            except AudioReadError as exc:
                out.skipped["unreadable"].append(i)
                out.errors[i] = str(exc)
            if len(pending) >= batch_tracks:
                flush()
        if progress is not None:
            progress(i + 1)
    if pending:
        flush()  # batches are flushed in row order, so `keep` is already in CSV order
    return out


# ------------------------------------------------------------------ runs
@dataclass
class VariantResult:
    variant: Variant
    metrics: dict  # also skipped_<reason> counts
    keep: list[int]  # metadata rows that took part; report indices refer to this list
    report: object  # evaluate.RetrievalReport
    errors: dict[int, str] = field(default_factory=dict)  # unreadable rows and why


def pick_source(meta: Metadata, embeddings: Path | None, from_catalog_flag: bool) -> str:
    if embeddings is not None and from_catalog_flag:
        raise EvalError("use either --embeddings or --from-catalog, not both")
    if embeddings is not None:
        return "file"
    if from_catalog_flag:
        return "catalog"
    return "columns" if meta.vectors is not None else "compute"


def run_variants(meta: Metadata, variants: list[Variant], source: str, *, k: int = 100,
                 embeddings: Path | None = None, library: Path | None = None, settings=None,
                 progress=None) -> list[VariantResult]:
    """Evaluate each variant; variants that differ only in aggregation share one embedding pass."""
    if source != "compute":
        for v in variants:
            if v.settings:
                raise EvalError(f"variant {v.name!r}: {', '.join(v.settings)} only apply when livi computes the "
                                f"embeddings; with precomputed embeddings ({source}) only aggregation applies")
    embedders = _embedders(variants, settings) if source == "compute" else {}
    cache: dict[tuple, Embedded] = {}
    results = []
    for v in variants:
        key = v.model_key()
        if key not in cache:
            if source == "columns":
                cache[key] = from_columns(meta)
            elif source == "file":
                cache[key] = from_file(meta, embeddings)
            elif source == "catalog":
                cache[key] = from_catalog(meta, library, want_windows=any(x.aggregation == "max" for x in variants))
            else:
                cache[key] = compute(meta, embedders[key], progress=progress)
        results.append(_score(meta, v, cache[key], source, k))
    return results


def _embedders(variants: list[Variant], settings) -> dict[tuple, object]:
    """One Embedder per distinct model configuration, all checked before any audio is read."""
    from dataclasses import replace

    from livi_cli.config import load_settings
    from livi_cli.embed import Embedder

    base = settings or load_settings()
    out = {}
    for v in variants:
        if v.model_key() not in out:
            emb = Embedder(replace(base, **v.settings))
            emb.check_models()
            _ = emb.precision  # resolves device and precision: a bad value fails now, not after decoding
            _check_detector(emb.settings.vocal_detector, v.name)
            out[v.model_key()] = emb
    return out


def _check_detector(name: str, variant: str) -> None:
    from livi_cli.vocals.detectors import available_detectors

    known = available_detectors()
    if name not in known:
        raise EvalError(f"variant {variant!r}: unknown vocal detector {name!r} (known: {', '.join(known)})")


def _score(meta: Metadata, v: Variant, emb: Embedded, source: str, k: int) -> VariantResult:
    from livi_cli.evaluate import evaluate_retrieval, evaluate_windows

    cliques = [meta.cliques[i] for i in emb.keep]
    skipped = {reason: len(rows) for reason, rows in emb.skipped.items()}
    if not emb.keep:
        raise EvalError(f"variant {v.name!r}: no track could be evaluated "
                        f"(skipped: {', '.join(f'{n} {r}' for r, n in skipped.items() if n) or 'none'})")
    if v.aggregation == "max":
        if any(w is None for w in emb.windows):
            raise EvalError(f"variant {v.name!r}: aggregation=max needs window embeddings, but the {source} "
                            "source has one vector per track")
        report = evaluate_windows(emb.windows, cliques, k=k)
    else:
        report = evaluate_retrieval(np.vstack(emb.vectors), cliques, k=k)
    metrics = dict(report.metrics)
    metrics.update({f"skipped_{r}": n for r, n in skipped.items()})
    return VariantResult(variant=v, metrics=metrics, keep=emb.keep, report=report,
                         errors=emb.errors)


def per_query_rows(meta: Metadata, results: list[VariantResult]) -> list[dict]:
    """One row per (variant, query): rank of the first relevant item and the top false positive."""
    rows = []
    for res in results:
        ids = [meta.ids[i] for i in res.keep]
        cliques = [meta.cliques[i] for i in res.keep]
        for q in res.report.queries:
            fp = q.top_fp_index
            rows.append({
                "variant": res.variant.name, "id": ids[q.index], "clique": cliques[q.index],
                "n_relevant": q.n_relevant, "first_rank": q.first_rank, "first_relevant_id": ids[q.first_index],
                "first_relevant_similarity": round(q.first_similarity, 6), "ap10": round(q.ap10, 6),
                "top_fp_id": "" if fp is None else ids[fp], "top_fp_clique": "" if fp is None else cliques[fp],
                "top_fp_similarity": "" if fp is None else round(q.top_fp_similarity, 6),
            })
    return rows
