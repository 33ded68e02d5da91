"""The SQLite catalog: the library's source of truth (tracks, tags, status, vectors, model identity).

Layout (schema v1, see library/schema.py):
  tracks      one row per audio file ever seen; `path` is the file system path as bytes (os.fsencode)
              so names that are not valid UTF-8 still round-trip; status ok|failed|instrumental|removed.
  embeddings  one row per embedded track: the track vector (NULL for instrumental tracks) and the
              key of the model that made it. Its `id` is never reused (AUTOINCREMENT): a re-embed gets
              a new id, so the hnswlib index (labels = embedding ids) can diff itself against SQLite.
  windows     per-window spans and vectors of an embedding.
  meta        key/value: model_key (model of the stored vectors), ...
  scans       one row per `livi scan`: start/end time, model, summary JSON.
  migrations  which schema versions were applied when (PRAGMA user_version holds the current one).

The database runs in WAL mode so readers (find-covers, status) work while a scan writes; writers
serialise through library/lock.py. Vectors are float32 little-endian blobs.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from livi_cli.errors import LibraryError
from livi_cli.library.schema import MIGRATIONS, SCHEMA_VERSION

CATALOG_FILE = "catalog.sqlite"


TAG_FIELDS = ("title", "artist", "album", "album_artist", "track_number", "date", "duration", "codec", "bitrate",
              "sample_rate", "channels", "mb_recording_id", "mb_work_id", "mb_release_id", "isrc")


@dataclass
class TrackRow:
    id: int
    path: str
    size: int
    mtime: float  # seconds; the catalog compares mtime_ns exactly
    content_hash: str | None
    title: str | None
    artist: str | None
    album: str | None
    album_artist: str | None
    track_number: str | None
    date: str | None
    duration: float | None
    codec: str | None
    bitrate: int | None
    sample_rate: int | None
    channels: int | None
    mb_recording_id: str | None
    mb_work_id: str | None
    mb_release_id: str | None
    isrc: str | None
    status: str
    error: str | None
    mean_vocalness: float | None
    n_windows: int
    fingerprint: bytes | None
    updated_at: float
    mtime_ns: int = 0
    segments: list | None = None  # [[start, end, vocalness], ...] from the vocal detector
    added_at: float = 0.0

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("fingerprint", "mtime_ns")}
        d["has_fingerprint"] = self.fingerprint is not None
        return d


_ROW_COLS = ("id, path, size, mtime_ns, content_hash, " + ", ".join(TAG_FIELDS)
             + ", status, error, mean_vocalness, n_windows, fingerprint, updated_at, segments, added_at")


def _row(r: sqlite3.Row) -> TrackRow:
    tags = {name: r[name] for name in TAG_FIELDS}
    return TrackRow(
        id=r["id"], path=os.fsdecode(r["path"]), size=r["size"], mtime=r["mtime_ns"] / 1e9,
        content_hash=r["content_hash"], **tags, status=r["status"], error=r["error"],
        mean_vocalness=r["mean_vocalness"], n_windows=r["n_windows"], fingerprint=r["fingerprint"],
        updated_at=r["updated_at"], mtime_ns=r["mtime_ns"],
        segments=json.loads(r["segments"]) if r["segments"] else None, added_at=r["added_at"])


def path_key(path: str | os.PathLike) -> bytes:
    """How a path is stored: absolute, as file-system bytes (lossless for any name)."""
    return os.fsencode(os.path.abspath(os.fspath(path)))


def to_blob(vec: np.ndarray) -> bytes:
    return np.ascontiguousarray(vec, dtype="<f4").tobytes()


def from_blob(blob: bytes, dim: int) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4").reshape(-1, dim)


@dataclass
class ScanEntry:
    """What the incremental diff needs of a track, without tags or blobs."""
    id: int
    path: bytes
    size: int
    mtime_ns: int
    content_hash: str | None
    status: str
    embed_key: str | None  # model key of its embedding, None when never embedded


class Catalog:
    def __init__(self, conn: sqlite3.Connection, library_dir: Path, readonly: bool):
        self.conn = conn
        self.library_dir = library_dir
        self.readonly = readonly

    # ---- opening -------------------------------------------------------------------------
    @classmethod
    def open(cls, library_dir: Path, *, readonly: bool = False) -> "Catalog":
        library_dir = Path(library_dir)
        db = library_dir / CATALOG_FILE
        conn = None
        try:
            if readonly:
                if not db.is_file():
                    raise LibraryError(f"no library at {library_dir} (run `livi scan PATH` first)")
                conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, isolation_level=None,
                                       check_same_thread=False, timeout=30)
            else:
                library_dir.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False, timeout=30)
                conn.execute("PRAGMA journal_mode=WAL")
                # NORMAL is durable across application crashes in WAL mode (only an OS crash can lose
                # the last commits), which is the failure the scan's small batches protect against.
                conn.execute("PRAGMA synchronous=NORMAL")
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys=ON")
            cat = cls(conn, library_dir, readonly)
            cat._check_schema()
            return cat
        except BaseException as exc:
            if conn is not None:  # a refused or damaged catalog must not leak its connection
                conn.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise LibraryError(f"{db}: cannot open the catalog: {exc}") from exc
            if isinstance(exc, OSError):  # e.g. the library folder cannot be created
                raise LibraryError(f"{library_dir}: cannot use as library folder: {exc.strerror or exc}") from exc
            raise

    def _check_schema(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise LibraryError(f"{self.library_dir}: catalog schema v{version} is newer than this livi "
                               f"understands (v{SCHEMA_VERSION}); upgrade livi")
        if version == SCHEMA_VERSION:
            return
        if self.readonly:
            raise LibraryError(f"{self.library_dir}: catalog schema v{version} needs migrating; "
                               "run `livi scan` once to upgrade it")
        self._migrate(version)

    def _migrate(self, current: int) -> None:
        self.conn.execute("CREATE TABLE IF NOT EXISTS migrations "
                          "(version INTEGER PRIMARY KEY, description TEXT, applied_at REAL)")
        for version, description, sql in MIGRATIONS:
            if version <= current:
                continue
            # executescript commits first; the migration runs in its own explicit transaction.
            self.conn.executescript(f"BEGIN IMMEDIATE;\n{sql}\n"
                                    f"INSERT INTO migrations VALUES ({version}, '{description}', {time.time()});\n"
                                    f"PRAGMA user_version = {version};\nCOMMIT;")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Catalog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction: everything inside commits together or not at all."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction: every query inside sees one committed state, even while a scan commits
        (WAL). Readers that combine several queries (ids, then their vectors) need it. Nests."""
        if self.conn.in_transaction:
            yield
            return
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            if self.conn.in_transaction:  # an error inside may have ended it already
                self.conn.execute("COMMIT")

    def schema_version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    # ---- meta ----------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str | None) -> None:
        self.conn.execute("INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                          (key, value))

    def model_key(self) -> str | None:
        return self.get_meta("model_key")

    def set_model_key(self, key: str) -> None:
        self.set_meta("model_key", key)

    # ---- reads ---------------------------------------------------------------------------
    def active_tracks(self) -> list[TrackRow]:
        rows = self.conn.execute(f"SELECT {_ROW_COLS} FROM tracks WHERE status != 'removed' ORDER BY id")
        return [_row(r) for r in rows]

    def all_tracks(self) -> list[TrackRow]:
        return [_row(r) for r in self.conn.execute(f"SELECT {_ROW_COLS} FROM tracks ORDER BY id")]

    def tracks_by_id(self, ids: Iterable[int]) -> dict[int, TrackRow]:
        ids = list(dict.fromkeys(int(i) for i in ids))
        out: dict[int, TrackRow] = {}
        for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for r in self.conn.execute(f"SELECT {_ROW_COLS} FROM tracks WHERE id IN ({marks})", chunk):
                out[r["id"]] = _row(r)
        return out

    def track_by_path(self, path: str | os.PathLike) -> TrackRow | None:
        r = self.conn.execute(f"SELECT {_ROW_COLS} FROM tracks WHERE path=?", (path_key(path),)).fetchone()
        return None if r is None else _row(r)

    def tracks_by_hash(self, content_hash: str) -> list[TrackRow]:
        rows = self.conn.execute(f"SELECT {_ROW_COLS} FROM tracks WHERE content_hash=? ORDER BY id", (content_hash,))
        return [_row(r) for r in rows]

    def scan_entries(self) -> dict[bytes, ScanEntry]:
        """Every track keyed by stored path: the light rows the incremental diff compares against."""
        rows = self.conn.execute(
            "SELECT t.id, t.path, t.size, t.mtime_ns, t.content_hash, t.status, e.model_key "
            "FROM tracks t LEFT JOIN embeddings e ON e.track_id = t.id")
        return {r[1]: ScanEntry(*r) for r in rows}

    def _active_vectors_sql(self, cols: str) -> str:
        return (f"SELECT {cols} FROM embeddings e JOIN tracks t ON t.id = e.track_id "
                "WHERE t.status = 'ok' AND e.vector IS NOT NULL AND e.model_key = "
                "(SELECT value FROM meta WHERE key = 'model_key')")

    def embeddings(self) -> tuple[list[int], np.ndarray]:
        """Track ids and (N, D) unit-norm vectors of active, non-instrumental tracks of the current model."""
        rows = self.conn.execute(self._active_vectors_sql("t.id, e.dim, e.vector") + " ORDER BY t.id").fetchall()
        if not rows:
            return [], np.zeros((0, self.dim() or 0), dtype=np.float32)
        return [r[0] for r in rows], np.vstack([from_blob(r[2], r[1]) for r in rows])

    def index_entries(self) -> tuple[np.ndarray, np.ndarray]:
        """(embedding ids, track ids) of the vectors the search index must hold, sorted by embedding id."""
        rows = self.conn.execute(self._active_vectors_sql("e.id, t.id") + " ORDER BY e.id").fetchall()
        arr = np.array(rows, dtype=np.int64).reshape(-1, 2)
        return arr[:, 0], arr[:, 1]

    def vectors_by_embedding_id(self, ids: Sequence[int]) -> np.ndarray:
        ids = [int(i) for i in ids]
        found: dict[int, np.ndarray] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for r in self.conn.execute(f"SELECT id, dim, vector FROM embeddings WHERE id IN ({marks})", chunk):
                found[r[0]] = from_blob(r[2], r[1])[0]
        if not ids:
            return np.zeros((0, self.dim() or 0), dtype=np.float32)
        return np.vstack([found[i] for i in ids])

    def track_vector(self, track_id: int) -> np.ndarray | None:
        r = self.conn.execute("SELECT dim, vector FROM embeddings WHERE track_id=?", (track_id,)).fetchone()
        return None if r is None or r[1] is None else from_blob(r[1], r[0])[0]

    def track_embed_key(self, track_id: int) -> str | None:
        r = self.conn.execute("SELECT model_key FROM embeddings WHERE track_id=?", (track_id,)).fetchone()
        return None if r is None else r[0]

    def window_embeddings(self, track_id: int) -> np.ndarray:
        rows = self.conn.execute(
            "SELECT e.dim, w.vector FROM windows w JOIN embeddings e ON e.id = w.embedding_id "
            "WHERE e.track_id = ? ORDER BY w.idx", (track_id,)).fetchall()
        if not rows:
            return np.zeros((0, self.dim() or 0), dtype=np.float32)
        return np.vstack([from_blob(r[1], r[0]) for r in rows])

    def window_spans(self, track_id: int) -> list[tuple[float, float]]:
        rows = self.conn.execute(
            "SELECT w.start, w.end FROM windows w JOIN embeddings e ON e.id = w.embedding_id "
            "WHERE e.track_id = ? ORDER BY w.idx", (track_id,))
        return [(r[0], r[1]) for r in rows]

    def fingerprints(self) -> dict[int, bytes]:
        rows = self.conn.execute("SELECT id, fingerprint FROM tracks WHERE status != 'removed' "
                                 "AND fingerprint IS NOT NULL ORDER BY id")
        return {r[0]: r[1] for r in rows}

    def dim(self) -> int | None:
        r = self.conn.execute("SELECT dim FROM embeddings WHERE model_key = (SELECT value FROM meta WHERE "
                              "key='model_key') LIMIT 1").fetchone()
        return None if r is None else r[0]

    def counts(self) -> dict[str, int]:
        out = {"ok": 0, "instrumental": 0, "failed": 0, "removed": 0}
        for status, n in self.conn.execute("SELECT status, COUNT(*) FROM tracks GROUP BY status"):
            out[status] = n
        return out

    def stale_embeddings(self) -> int:
        """Active tracks whose embedding came from another model than the catalog's current one."""
        return self.conn.execute(
            "SELECT COUNT(*) FROM tracks t JOIN embeddings e ON e.track_id = t.id WHERE t.status IN "
            "('ok','instrumental') AND e.model_key IS NOT (SELECT value FROM meta WHERE key='model_key')"
        ).fetchone()[0]

    def last_scan(self) -> dict | None:
        r = self.conn.execute("SELECT * FROM scans ORDER BY id DESC LIMIT 1").fetchone()
        if r is None:
            return None
        return {"started_at": r["started_at"], "finished_at": r["finished_at"], "model_key": r["model_key"],
                "roots": json.loads(r["roots"] or "[]"), "summary": json.loads(r["summary"]) if r["summary"] else None}

    # ---- writes (call inside `with catalog.transaction():`) --------------------------------
    def upsert_track(self, path: str | os.PathLike, *, size: int, mtime_ns: int, content_hash: str | None,
                     tags: dict | None, status: str, error: str | None = None,
                     mean_vocalness: float | None = None, segments: list | None = None,
                     fingerprint: bytes | None = None) -> int:
        """Insert or replace the row for `path` (keeping its id); drops any old embedding."""
        now = time.time()
        tags = {name: (tags or {}).get(name) for name in TAG_FIELDS}
        values = dict(path=path_key(path), size=size, mtime_ns=mtime_ns, content_hash=content_hash, **tags,
                      status=status, error=error, mean_vocalness=mean_vocalness, n_windows=0,
                      segments=json.dumps(segments) if segments is not None else None,
                      fingerprint=fingerprint, updated_at=now)
        cols = ", ".join(values)
        marks = ", ".join(f":{c}" for c in values)
        updates = ", ".join(f"{c}=excluded.{c}" for c in values if c != "path")
        row = self.conn.execute(
            f"INSERT INTO tracks ({cols}, added_at) VALUES ({marks}, :now) "
            f"ON CONFLICT(path) DO UPDATE SET {updates} RETURNING id", {**values, "now": now}).fetchone()
        track_id = row[0]
        self.conn.execute("DELETE FROM embeddings WHERE track_id=?", (track_id,))
        return track_id

    def set_embedding(self, track_id: int, model_key: str, vector: np.ndarray | None,
                      windows: np.ndarray, spans: Sequence[tuple[float, float]], dim: int) -> int:
        """Store a track's vector (None for instrumental) and window vectors under a fresh embedding id."""
        self.conn.execute("DELETE FROM embeddings WHERE track_id=?", (track_id,))
        cur = self.conn.execute(
            "INSERT INTO embeddings (track_id, model_key, dim, vector, created_at) VALUES (?, ?, ?, ?, ?)",
            (track_id, model_key, dim, None if vector is None else to_blob(vector), time.time()))
        emb_id = cur.lastrowid
        windows = np.asarray(windows, dtype=np.float32).reshape(-1, dim)
        self.conn.executemany("INSERT INTO windows VALUES (?, ?, ?, ?, ?)",
                              [(emb_id, i, float(s[0]), float(s[1]), to_blob(w))
                               for i, (s, w) in enumerate(zip(spans, windows))])
        self.conn.execute("UPDATE tracks SET n_windows=? WHERE id=?", (len(windows), track_id))
        return emb_id

    def copy_embedding(self, src_track: int, dst_track: int) -> None:
        """Give `dst_track` the vectors (and analysis) of `src_track`: identical bytes, identical embedding."""
        src = self.conn.execute("SELECT id, model_key, dim, vector FROM embeddings WHERE track_id=?",
                                (src_track,)).fetchone()
        if src is None:
            return
        self.conn.execute("DELETE FROM embeddings WHERE track_id=?", (dst_track,))
        emb = self.conn.execute("INSERT INTO embeddings (track_id, model_key, dim, vector, created_at) "
                                "VALUES (?, ?, ?, ?, ?)", (dst_track, src[1], src[2], src[3], time.time())).lastrowid
        self.conn.execute("INSERT INTO windows SELECT ?, idx, start, end, vector FROM windows WHERE embedding_id=?",
                          (emb, src[0]))
        self.conn.execute(
            "UPDATE tracks SET (status, error, mean_vocalness, n_windows, segments, fingerprint) = "
            "(SELECT status, error, mean_vocalness, n_windows, segments, fingerprint FROM tracks WHERE id=?) "
            "WHERE id=?", (src_track, dst_track))

    def move_track(self, track_id: int, new_path: str | os.PathLike, *, size: int, mtime_ns: int,
                   status: str | None = None) -> None:
        """Re-point a track at its new path; its id, tags and embedding stay."""
        self.conn.execute("DELETE FROM tracks WHERE path=? AND id != ?", (path_key(new_path), track_id))
        sets = "path=?, size=?, mtime_ns=?, updated_at=?" + (", status=?" if status else "")
        args = [path_key(new_path), size, mtime_ns, time.time()] + ([status] if status else [])
        self.conn.execute(f"UPDATE tracks SET {sets} WHERE id=?", (*args, track_id))

    def touch(self, track_id: int, *, size: int, mtime_ns: int) -> None:
        """Content unchanged (same hash) but the stat moved on: remember the new stat."""
        self.conn.execute("UPDATE tracks SET size=?, mtime_ns=? WHERE id=?", (size, mtime_ns, track_id))

    def mark_removed(self, track_ids: Iterable[int]) -> None:
        now = time.time()
        self.conn.executemany("UPDATE tracks SET status='removed', updated_at=? WHERE id=?",
                              [(now, int(i)) for i in track_ids])

    def restore_status(self, track_id: int) -> None:
        """A removed track is back (moved or restored): active again, as ok or instrumental per its vector."""
        self.conn.execute(
            "UPDATE tracks SET status = CASE WHEN (SELECT vector FROM embeddings WHERE track_id = tracks.id) "
            "IS NULL THEN 'instrumental' ELSE 'ok' END, error = NULL, updated_at = ? "
            "WHERE id = ? AND status = 'removed'", (time.time(), track_id))

    def begin_scan(self, model_key: str | None, roots: Sequence[str]) -> int:
        with self.transaction():
            cur = self.conn.execute("INSERT INTO scans (started_at, model_key, roots) VALUES (?, ?, ?)",
                                    (time.time(), model_key, json.dumps([os.fsdecode(r) for r in roots])))
        return cur.lastrowid

    def finish_scan(self, scan_id: int, summary: dict) -> None:
        with self.transaction():
            self.conn.execute("UPDATE scans SET finished_at=?, summary=? WHERE id=?",
                              (time.time(), json.dumps(summary, default=str), scan_id))
