"""`livi find-covers FILE`: the library tracks nearest to one file in LIVI space.

A file the library holds (same path, same size and mtime as scanned) uses its stored vector; a file
whose bytes equal a library track uses that track's vector; anything else is embedded on the fly (and
added to the library only with add=True). The query's own row is excluded from the results; exact
copies of it (same content hash, or a fingerprint match: same recording) stay in, marked as duplicates.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from livi_cli.errors import LiviError, ModelMismatchError
from livi_cli.library.catalog import Catalog, TrackRow
from livi_cli.library.plan import content_hash


@dataclass
class CoverMatch:
    rank: int
    similarity: float
    track: TrackRow
    duplicate: str | None = None  # why it is an exact copy of the query: "same file" | "same recording"

    def to_dict(self) -> dict:
        t = self.track
        return {"rank": self.rank, "similarity": round(self.similarity, 6), "duplicate": self.duplicate,
                "id": t.id, "path": t.path, "title": t.title, "artist": t.artist, "album": t.album,
                "duration": t.duration}


@dataclass
class CoverResult:
    query: str
    in_library: bool = False
    track_id: int | None = None  # the query's own row, when it has one
    instrumental: bool = False
    mean_vocalness: float | None = None
    notice: str | None = None  # said instead of (or before) results
    added: bool = False
    search: str | None = None  # exact | hnsw
    matches: list[CoverMatch] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"query": self.query, "in_library": self.in_library, "track_id": self.track_id,
                "instrumental": self.instrumental, "mean_vocalness": self.mean_vocalness,
                "notice": self.notice, "added": self.added, "search": self.search,
                "results": [m.to_dict() for m in self.matches]}


@dataclass
class _Query:
    vector: np.ndarray | None = None
    content_hash: str | None = None
    fingerprint: bytes | None = None
    embedding: object | None = None  # TrackEmbedding when embedded on the fly
    model_key: str | None = None  # identity of the model that embedded it on the fly
    dim: int = 0


def _instrumental_notice(path: str, vocalness: float | None) -> str:
    level = "" if vocalness is None else f" (mean vocalness {vocalness:.2f})"
    return (f"{path} is instrumental{level}: LIVI matches covers by their sung lyrics, so it does not "
            "apply to this track")


def find_covers(file: str | os.PathLike, library_dir: Path, *, k: int = 10, min_similarity: float | None = None,
                add: bool = False, embedder_factory=None) -> CoverResult:
    """embedder_factory() → a checked Embedder; called only when the file must be embedded."""
    path = os.path.abspath(os.path.expanduser(os.fspath(file)))
    if not os.path.isfile(path):
        raise LiviError(f"{path}: no such file")
    if k < 1:
        raise LiviError(f"-k must be at least 1 (got {k})")
    result = CoverResult(query=path)
    with Catalog.open(library_dir, readonly=True) as cat:
        with cat.snapshot():  # row, embedding key and vector from one state, even while a scan commits
            query = _from_library(cat, path, result)
        if query.vector is None and not result.instrumental:
            query = _embed(cat, path, result, embedder_factory, query.content_hash)
        if result.instrumental:
            result.notice = _instrumental_notice(path, result.mean_vocalness)
        else:
            _search(cat, library_dir, query, result, k, min_similarity)
    if add and not result.in_library:  # an instrumental file is added too (as instrumental)
        _add(library_dir, path, query, result)
    return result


def _from_library(cat: Catalog, path: str, result: CoverResult) -> _Query:
    """The stored vector of the query when the library already has its bytes (same path or same hash);
    otherwise a _Query without a vector (holding the content hash when it was computed)."""
    key = cat.model_key()
    row = cat.track_by_path(path)
    if row is not None and row.status != "removed":
        # The row at this path is the query's own, even when the file changed since the scan:
        # its (outdated) vector must not come back as a match of the file itself.
        result.track_id = row.id
        st = os.stat(path)
        if st.st_size == row.size and st.st_mtime_ns == row.mtime_ns:
            if row.status == "failed":
                raise LiviError(f"{path}: the last scan could not embed this file: {row.error}")
            result.in_library = True
            result.mean_vocalness = row.mean_vocalness
            if cat.track_embed_key(row.id) == key:
                result.instrumental = row.status == "instrumental"
                return _Query(cat.track_vector(row.id), row.content_hash, row.fingerprint)
            return _Query(content_hash=row.content_hash)  # stored under another model: embed it now
    digest = content_hash(path)
    for twin in cat.tracks_by_hash(digest):
        if twin.status in ("ok", "instrumental") and cat.track_embed_key(twin.id) == key:
            result.mean_vocalness = twin.mean_vocalness
            result.instrumental = twin.status == "instrumental"
            return _Query(cat.track_vector(twin.id), digest, twin.fingerprint)
    return _Query(content_hash=digest)


def _embed(cat: Catalog, path: str, result: CoverResult, embedder_factory, digest: str | None) -> _Query:
    from livi_cli.library.scan import fingerprinter, prepare_track

    if embedder_factory is None:
        raise LiviError(f"{path}: not in the library and no model to embed it with")
    emb = embedder_factory()
    stored = cat.model_key()
    if stored is not None and emb.identity.key() != stored:
        raise ModelMismatchError(
            f"the library was built with model {stored} but the configured model is {emb.identity.key()}; "
            "run `livi scan` to re-embed the library with it, or select the library's model")
    prepared, fingerprint = prepare_track(emb, path, fingerprinter())
    te = emb.encode([prepared])[0]
    result.mean_vocalness = te.mean_vocalness
    result.instrumental = te.vector is None and bool(te.instrumental)
    if te.vector is None and not te.instrumental:
        raise LiviError(f"{path}: no audio to embed (empty or silent file)")
    return _Query(te.vector, digest or content_hash(path), fingerprint, te, emb.identity.key(), emb.identity.dim)


def _same_recording(a: bytes | None, b: bytes | None) -> bool:
    if not a or not b:
        return False
    try:
        from livi_cli.groups.fingerprint import same_recording
    except ImportError:
        return False
    try:
        return bool(same_recording(a, b))
    except Exception:  # an unreadable stored fingerprint only costs the duplicate mark
        return False


def _search(cat: Catalog, library_dir: Path, query: _Query, result: CoverResult, k: int,
            min_similarity: float | None) -> None:
    from livi_cli.library.index import open_searcher

    with cat.snapshot():  # the hits' rows come from the same catalog state as the searched vectors
        searcher = open_searcher(cat, library_dir)
        result.search = searcher.mode
        if len(searcher) == 0:
            result.notice = "the library has no embedded tracks yet: run `livi scan PATH` first"
            return
        hits = searcher.query(query.vector, k + 1)
        hits = [(tid, sim) for tid, sim in hits if tid != result.track_id][:k]
        if min_similarity is not None:
            hits = [(tid, sim) for tid, sim in hits if sim >= min_similarity]
        rows = cat.tracks_by_id(tid for tid, _ in hits)
    for rank, (tid, sim) in enumerate(hits, 1):
        row = rows[tid]
        dup = None
        if query.content_hash and row.content_hash == query.content_hash:
            dup = "same file"
        elif _same_recording(query.fingerprint, row.fingerprint):
            dup = "same recording"
        result.matches.append(CoverMatch(rank, min(1.0, sim), row, dup))


def _add(library_dir: Path, path: str, query: _Query, result: CoverResult) -> None:
    """--add: store the embedded query in the library (under the writer lock) and update the index."""
    from livi_cli.library import index
    from livi_cli.library.lock import WriterLock
    from livi_cli.library.scan import read_track_tags, store_embedded

    te = query.embedding
    if te is None:  # same bytes as a library track: the vector is already there under another path
        already = "its audio is already in the library (same file content); nothing added"
        result.notice = f"{result.notice}; {already}" if result.notice else already
        return
    emb_key, dim = query.model_key, query.dim
    with WriterLock(library_dir), Catalog.open(library_dir) as cat:
        stored = cat.model_key()
        if stored not in (None, emb_key):  # a scan with another model ran since the query was embedded
            raise ModelMismatchError(f"{path}: not added: the library is now built with model {stored}, "
                                     f"the file was embedded with {emb_key}")
        st = os.stat(path)
        with cat.transaction():
            if stored is None:
                cat.set_model_key(emb_key)
            tid = store_embedded(cat, path, size=st.st_size, mtime_ns=st.st_mtime_ns,
                                 content_hash=query.content_hash, tags=read_track_tags(path), embedding=te,
                                 fingerprint=query.fingerprint, model_key=emb_key, dim=dim)
        index.sync(cat, library_dir)
    result.added, result.track_id = True, tid

