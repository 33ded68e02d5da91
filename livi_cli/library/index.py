"""The search index: an hnswlib (cosine) file derived from the catalog, plus exact search for small libraries.

SQLite is the source of truth; the index is a cache that is rebuilt whenever it does not match it.
Files in the library folder:
  index.hnsw         the hnswlib graph; labels are embedding ids (catalog `embeddings.id`, never reused)
  index.labels.npy   the labels the graph holds (int64), so an update can diff itself against SQLite
  index.vectors.npy  the same vectors as one float32 matrix (label order), memory-mapped by exact search
  index.json         sidecar: model key, dim, count, checksum of the catalog state it was built from,
                     blake2b of the two files above, hnswlib parameters. Written last: a crash between
                     the three atomic renames leaves checksums that do not match → rebuild.
Every file is written to a temp name in the same folder, fsynced, then os.replace()d.

Search: up to EXACT_SEARCH_MAX vectors, exact search (one matrix-vector product over index.vectors.npy,
memory-mapped) is both exact and fast: ~40 ms per query at 100k × 768 on a 2-core CPU, where hnswlib
on unstructured (i.i.d. Gaussian) vectors reached only 0.67 recall@10 at 29 ms (ef=800) and 0.93 at
62 ms (ef=2400). Above it the hnswlib graph answers; real embeddings are clustered, which is where HNSW
shines (clustered 100k: recall@10 0.999 at ef=400 / 8.6 ms, 1.000 at ef=800 / 18 ms). Numbers:
bench/bench_library.py and the README.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from livi_cli.library.catalog import Catalog

INDEX_FILE = "index.hnsw"
LABELS_FILE = "index.labels.npy"
VECTORS_FILE = "index.vectors.npy"
SIDECAR_FILE = "index.json"
FORMAT = 2

# hnswlib parameters. M and ef_construction set graph quality (build time grows with both); ef is the
# search beam. Measured recall@10 vs exact search is in bench/bench_library.py and the README.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 800
REBUILD_DELETED_FRACTION = 0.25  # more deleted slots than this → rebuild instead of patching
EXACT_SEARCH_MAX = 100_000  # at most this many vectors: exact search (LIVI_EXACT_SEARCH_MAX overrides)
ADD_CHUNK = 10_000  # vectors read from SQLite and added per step (bounds memory on big rebuilds)


def exact_search_max() -> int:
    try:
        return int(os.environ.get("LIVI_EXACT_SEARCH_MAX", EXACT_SEARCH_MAX))
    except ValueError:
        return EXACT_SEARCH_MAX


@dataclass
class IndexHealth:
    state: str  # ok | empty | missing | stale | corrupt
    reason: str
    count: int  # vectors the catalog holds for the index
    indexed: int | None = None  # vectors the index file holds (None when unreadable)
    size_bytes: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def state_checksum(model_key: str | None, labels: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update((model_key or "").encode())
    h.update(np.ascontiguousarray(labels, dtype="<i8").tobytes())
    return h.hexdigest()


def _file_digest(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, lambda: hashlib.blake2b(digest_size=16)).hexdigest()


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.close(fd)
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read_sidecar(library_dir: Path) -> dict | None:
    try:
        data = json.loads((library_dir / SIDECAR_FILE).read_text())
        return data if isinstance(data, dict) and data.get("format") == FORMAT else None
    except (OSError, ValueError):
        return None


def health(catalog: Catalog, library_dir: Path | None = None, *, verify_files: bool = True) -> IndexHealth:
    """Does the index on disk match the catalog? verify_files also checks the files' checksums."""
    library_dir = Path(library_dir or catalog.library_dir)
    labels, _ = catalog.index_entries()
    count = len(labels)
    side = _read_sidecar(library_dir)
    if count == 0 and side is None:
        return IndexHealth("empty", "no vectors to index", 0)
    if side is None:
        return IndexHealth("missing", "no index sidecar", count)
    files = {name: library_dir / name for name in (INDEX_FILE, LABELS_FILE, VECTORS_FILE)}
    if not all(p.is_file() for p in files.values()):
        return IndexHealth("missing", "index file missing", count, side.get("count"))
    size = sum(p.stat().st_size for p in files.values())
    if verify_files and any(_file_digest(p) != side.get("digests", {}).get(name) for name, p in files.items()):
        return IndexHealth("corrupt", "index file checksum mismatch", count, None, size)
    if side.get("model_key") != catalog.model_key():
        return IndexHealth("stale", "built for another model", count, side.get("count"), size)
    if side.get("checksum") != state_checksum(catalog.model_key(), labels):
        return IndexHealth("stale", "catalog changed since the index was built", count, side.get("count"), size)
    return IndexHealth("ok", "matches the catalog", count, side.get("count"), size)


def _new_index(dim: int, capacity: int):
    import hnswlib

    index = hnswlib.Index(space="cosine", dim=dim)
    index.init_index(max_elements=max(capacity, 16), ef_construction=HNSW_EF_CONSTRUCTION, M=HNSW_M,
                     allow_replace_deleted=True)
    return index


def _load_index(library_dir: Path, dim: int, capacity: int):
    import hnswlib

    index = hnswlib.Index(space="cosine", dim=dim)
    index.load_index(str(library_dir / INDEX_FILE), max_elements=max(capacity, 16), allow_replace_deleted=True)
    return index


def _add(index, catalog: Catalog, labels: np.ndarray, replace: bool = False) -> None:
    for start in range(0, len(labels), ADD_CHUNK):
        chunk = labels[start:start + ADD_CHUNK]
        vectors = catalog.vectors_by_embedding_id(chunk)
        index.add_items(vectors, chunk, replace_deleted=replace)


def _write_vectors(library_dir: Path, catalog: Catalog, labels: np.ndarray, dim: int, reuse: bool) -> None:
    """index.vectors.npy in label order. reuse=True (only when the old files were verified) copies the rows
    it already holds and reads just the new ones from SQLite."""
    old_pos: dict[int, int] = {}
    old = None
    if reuse:
        old = np.load(library_dir / VECTORS_FILE, mmap_mode="r")
        old_pos = {lab: i for i, lab in enumerate(np.load(library_dir / LABELS_FILE).tolist())}

    def write(tmp: str) -> None:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(labels), dim))
        kept = [(i, old_pos[lab]) for i, lab in enumerate(labels.tolist()) if lab in old_pos]
        if kept:
            out[[i for i, _ in kept]] = old[[j for _, j in kept]]
        missing = np.array([i for i, lab in enumerate(labels.tolist()) if lab not in old_pos], dtype=np.int64)
        for start in range(0, len(missing), ADD_CHUNK):
            rows = missing[start:start + ADD_CHUNK]
            out[rows] = catalog.vectors_by_embedding_id(labels[rows])
        out.flush()
        del out

    _atomic_write(library_dir / VECTORS_FILE, write)


def _save_npy(path: str, array: np.ndarray) -> None:
    with open(path, "wb") as fh:  # a file object: np.save would append ".npy" to the temp name
        np.save(fh, array)


def _save(index, library_dir: Path, catalog: Catalog, labels: np.ndarray, deleted: int, dim: int,
          reuse_vectors: bool = False) -> None:
    """Write the three files (each atomically), then the sidecar that vouches for them."""
    model_key = catalog.model_key()
    labels = np.asarray(labels, dtype=np.int64)
    _write_vectors(library_dir, catalog, labels, dim, reuse_vectors)  # before the labels file it reuses
    _atomic_write(library_dir / INDEX_FILE, lambda tmp: index.save_index(tmp))
    _atomic_write(library_dir / LABELS_FILE, lambda tmp: _save_npy(tmp, labels))
    side = {"format": FORMAT, "model_key": model_key, "dim": dim, "count": int(len(labels)),
            "deleted": int(deleted), "checksum": state_checksum(model_key, labels),
            "digests": {name: _file_digest(library_dir / name) for name in (INDEX_FILE, LABELS_FILE, VECTORS_FILE)},
            "M": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION}
    _atomic_write(library_dir / SIDECAR_FILE, lambda tmp: Path(tmp).write_text(json.dumps(side, indent=1)))


def build(catalog: Catalog, library_dir: Path | None = None):
    """A fresh hnswlib index of the catalog's vectors (not saved). Returns (index, labels) or (None, labels).

    Reads in one snapshot: a reader building while a scan commits must not look up vectors of
    embeddings the scan has replaced since it listed them."""
    with catalog.snapshot():
        labels, _ = catalog.index_entries()
        dim = catalog.dim()
        if not len(labels) or dim is None:
            return None, labels
        index = _new_index(dim, len(labels))
        _add(index, catalog, labels)
    return index, labels


def sync(catalog: Catalog, library_dir: Path | None = None) -> str:
    """Bring the saved index in line with the catalog (caller holds the writer lock).

    Returns what happened: 'unchanged', 'updated' (deleted/added the difference) or 'rebuilt'.
    """
    library_dir = Path(library_dir or catalog.library_dir)
    state = health(catalog, library_dir)  # checksums too: a damaged file is rebuilt, never patched
    if state.state in ("ok", "empty"):
        return "unchanged"
    model_key, dim = catalog.model_key(), catalog.dim()
    side = _read_sidecar(library_dir)
    want, _ = catalog.index_entries()
    patchable = (state.state == "stale" and side is not None and side.get("model_key") == model_key
                 and side.get("dim") == dim and dim is not None)
    if patchable:
        try:
            return _patch(catalog, library_dir, side, want, dim)
        except (OSError, RuntimeError, ValueError):
            pass  # unreadable: fall through to a rebuild
    index, labels = build(catalog, library_dir)
    if index is None:
        for name in (INDEX_FILE, LABELS_FILE, VECTORS_FILE, SIDECAR_FILE):
            (library_dir / name).unlink(missing_ok=True)
        return "rebuilt"
    _save(index, library_dir, catalog, labels, 0, dim)
    return "rebuilt"


def _patch(catalog: Catalog, library_dir: Path, side: dict, want: np.ndarray, dim: int) -> str:
    have = np.load(library_dir / LABELS_FILE)
    to_delete = np.setdiff1d(have, want, assume_unique=True)
    to_add = np.setdiff1d(want, have, assume_unique=True)
    deleted = int(side.get("deleted", 0)) + len(to_delete) - min(len(to_add), int(side.get("deleted", 0)) + len(to_delete))
    total_slots = len(want) + deleted
    if deleted > REBUILD_DELETED_FRACTION * max(total_slots, 1):
        raise ValueError("too many deleted slots")
    index = _load_index(library_dir, dim, total_slots)
    for label in to_delete:
        index.mark_deleted(int(label))
    _add(index, catalog, to_add, replace=True)
    _save(index, library_dir, catalog, want, deleted, dim, reuse_vectors=True)  # old files verified by sync
    return "updated"


def _cached_matrix(catalog: Catalog, library_dir: Path, labels: np.ndarray) -> np.ndarray | None:
    """index.vectors.npy memory-mapped, when the sidecar vouches for exactly the catalog's current vectors.

    Cheap checks only (this runs on every query): the catalog-state checksum, the labels file (small)
    against the catalog, and the matrix shape. Full file digests are checked by sync and status."""
    side = _read_sidecar(library_dir)
    if side is None or side.get("checksum") != state_checksum(catalog.model_key(), labels) or not len(labels):
        return None
    try:
        if not np.array_equal(np.load(library_dir / LABELS_FILE), labels):
            return None
        matrix = np.load(library_dir / VECTORS_FILE, mmap_mode="r")
    except (OSError, ValueError):
        return None
    return matrix if matrix.shape == (len(labels), side.get("dim")) and matrix.dtype == np.float32 else None


class Searcher:
    """k-nearest track vectors by cosine similarity, exact or through hnswlib."""

    def __init__(self, track_ids: np.ndarray, matrix: np.ndarray | None = None, index=None,
                 label_to_track: dict[int, int] | None = None, mode: str = "exact"):
        self.track_ids = np.asarray(track_ids, dtype=np.int64)
        self.matrix = matrix
        self.index = index
        self.label_to_track = label_to_track or {}
        self.mode = mode

    def __len__(self) -> int:
        return len(self.track_ids)

    def query(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Up to k (track_id, cosine similarity) pairs, best first."""
        k = min(k, len(self))
        if k <= 0:
            return []
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        if self.index is None:
            sims = self.matrix @ vector
            top = np.argpartition(-sims, k - 1)[:k]
            top = top[np.argsort(-sims[top], kind="stable")]
            return [(int(self.track_ids[i]), float(sims[i])) for i in top]
        self.index.set_ef(max(HNSW_EF_SEARCH, k))
        while True:
            try:
                labels, dists = self.index.knn_query(vector[None, :], k=k, num_threads=1)
                break
            except RuntimeError:  # hnswlib found fewer than k (possible after many deletions): ask for fewer
                if k == 1:
                    return []
                k = max(1, k // 2)
        # A label a concurrent scan added after our snapshot of the catalog is skipped, not an error.
        return [(self.label_to_track[int(lab)], float(1.0 - d)) for lab, d in zip(labels[0], dists[0])
                if int(lab) in self.label_to_track]


def open_searcher(catalog: Catalog, library_dir: Path | None = None, *, exact_max: int | None = None) -> Searcher:
    """A Searcher over the catalog's current vectors; loads, or rebuilds, the hnswlib index for big libraries.

    Everything is read in one snapshot of the catalog, so ids, vectors and labels agree with each
    other even while a scan commits."""
    with catalog.snapshot():
        return _open_searcher(catalog, Path(library_dir or catalog.library_dir),
                              exact_search_max() if exact_max is None else exact_max)


def _open_searcher(catalog: Catalog, library_dir: Path, exact_max: int) -> Searcher:
    labels, track_ids = catalog.index_entries()
    if len(labels) <= exact_max:
        matrix = _cached_matrix(catalog, library_dir, labels)
        if matrix is not None:
            return Searcher(track_ids, matrix=matrix, mode="exact")
        ids, matrix = catalog.embeddings()  # no usable cache: straight from SQLite (slower to load, same result)
        return Searcher(np.asarray(ids), matrix=matrix, mode="exact")
    label_to_track = dict(zip(labels.tolist(), track_ids.tolist()))
    if health(catalog, library_dir).state == "ok":
        index = _load_index(library_dir, catalog.dim(), len(labels))
        return Searcher(track_ids, index=index, label_to_track=label_to_track, mode="hnsw")
    # Stale, missing or corrupt: rebuild, and save it when that is possible right now.
    index = _rebuild_saved(catalog, library_dir, len(labels))
    if index is None:
        index, _ = build(catalog, library_dir)
    return Searcher(track_ids, index=index, label_to_track=label_to_track, mode="hnsw")


def _rebuild_saved(catalog: Catalog, library_dir: Path, count: int):
    """sync() and load the saved result, when no scan holds the writer lock and the folder is writable;
    else None (the caller builds in memory, for this search only). Runs in the caller's snapshot."""
    from livi_cli.library.lock import try_lock

    lock = try_lock(library_dir)
    if lock is None:
        return None
    try:
        sync(catalog, library_dir)
        return _load_index(library_dir, catalog.dim(), count)
    except OSError:  # e.g. a full disk: searching must not fail because the cache cannot be written
        return None
    finally:
        lock.release()
