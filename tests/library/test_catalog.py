"""Catalog: schema and migrations, round trips of rows and vectors, model filtering, odd paths."""
from __future__ import annotations

import os
import sqlite3

import numpy as np
import pytest

from livi_cli.errors import LibraryError
from livi_cli.library.catalog import SCHEMA_VERSION, Catalog


def unit(rng, n, d=8):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def add_track(cat, path, vec, key="m1", status="ok", windows=None, **tags):
    with cat.transaction():
        tid = cat.upsert_track(path, size=10, mtime_ns=123, content_hash=f"h-{os.path.basename(str(path))}",
                               tags=tags, status=status, mean_vocalness=0.9, segments=[[0.0, 1.0, 0.8]])
        w = np.stack([vec, vec]) if windows is None else windows
        cat.set_embedding(tid, key, vec if status == "ok" else None, w, [(0.0, 30.0), (30.0, 40.0)][:len(w)], len(vec))
    return tid


def test_schema_created_versioned_and_wal(tmp_path):
    with Catalog.open(tmp_path / "lib") as cat:
        assert cat.schema_version() == SCHEMA_VERSION
        assert cat.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        applied = cat.conn.execute("SELECT version FROM migrations").fetchall()
        assert [r[0] for r in applied] == list(range(1, SCHEMA_VERSION + 1))
    # reopening does not re-run migrations
    with Catalog.open(tmp_path / "lib") as cat:
        assert cat.conn.execute("SELECT COUNT(*) FROM migrations").fetchone()[0] == SCHEMA_VERSION


def test_newer_schema_refused_and_readonly_missing(tmp_path):
    with pytest.raises(LibraryError, match="no library"):
        Catalog.open(tmp_path / "nothing", readonly=True)
    Catalog.open(tmp_path / "lib").close()
    conn = sqlite3.connect(tmp_path / "lib" / "catalog.sqlite")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(LibraryError, match="newer than this livi"):
        Catalog.open(tmp_path / "lib")


def test_garbage_file_is_a_clear_error(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "catalog.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(LibraryError, match="cannot open the catalog"):
        Catalog.open(tmp_path / "lib")


def test_rows_vectors_and_model_filter(tmp_path):
    rng = np.random.default_rng(0)
    v = unit(rng, 3)
    with Catalog.open(tmp_path / "lib") as cat:
        with cat.transaction():
            cat.set_model_key("m1")
        a = add_track(cat, tmp_path / "a [Live].flac", v[0], title="Song, [Live]", artist="Ünïcode, Band")
        b = add_track(cat, tmp_path / "b.mp3", v[1], key="m0")  # made by an older model
        c = add_track(cat, tmp_path / "c.wav", v[2], status="instrumental")
        ids, mat = cat.embeddings()
        assert ids == [a]  # b: other model, c: instrumental
        np.testing.assert_array_equal(mat[0], v[0])
        assert cat.window_embeddings(a).shape == (2, 8)
        assert cat.window_spans(a) == [(0.0, 30.0), (30.0, 40.0)]
        row = cat.tracks_by_id([a])[a]
        assert (row.title, row.artist, row.path) == ("Song, [Live]", "Ünïcode, Band", str(tmp_path / "a [Live].flac"))
        assert row.segments == [[0.0, 1.0, 0.8]] and row.n_windows == 2
        assert cat.counts() == {"ok": 2, "instrumental": 1, "failed": 0, "removed": 0}
        assert cat.stale_embeddings() == 1
        with cat.transaction():
            cat.mark_removed([a])
        assert cat.embeddings()[0] == []
        assert [t.id for t in cat.active_tracks()] == [b, c]


def test_upsert_keeps_id_and_replaces_embedding(tmp_path):
    rng = np.random.default_rng(1)
    v = unit(rng, 2)
    with Catalog.open(tmp_path / "lib") as cat:
        with cat.transaction():
            cat.set_model_key("m1")
        a = add_track(cat, tmp_path / "a.flac", v[0])
        emb_before = cat.index_entries()[0].tolist()
        a2 = add_track(cat, tmp_path / "a.flac", v[1])
        assert a2 == a
        emb_after = cat.index_entries()[0].tolist()
        assert len(emb_after) == 1 and emb_after != emb_before  # a re-embed gets a fresh embedding id
        np.testing.assert_array_equal(cat.track_vector(a), v[1])
        assert cat.conn.execute("SELECT COUNT(*) FROM windows").fetchone()[0] == 2


def test_move_and_copy_keep_vectors(tmp_path):
    rng = np.random.default_rng(2)
    v = unit(rng, 1)
    with Catalog.open(tmp_path / "lib") as cat:
        with cat.transaction():
            cat.set_model_key("m1")
        a = add_track(cat, tmp_path / "a.flac", v[0])
        with cat.transaction():
            cat.move_track(a, tmp_path / "moved" / "a.flac", size=10, mtime_ns=5)
            b = cat.upsert_track(tmp_path / "copy.flac", size=10, mtime_ns=6, content_hash="h-a.flac", tags={},
                                 status="ok")
            cat.copy_embedding(a, b)
        assert cat.track_by_path(tmp_path / "a.flac") is None
        assert cat.track_by_path(tmp_path / "moved" / "a.flac").id == a
        ids, mat = cat.embeddings()
        assert ids == [a, b]
        np.testing.assert_array_equal(mat[0], mat[1])
        assert cat.window_embeddings(b).shape == (2, 8)
        assert cat.tracks_by_id([b])[b].mean_vocalness == pytest.approx(0.9)


def test_undecodable_path_bytes_round_trip(tmp_path):
    name = os.fsdecode(b"caf\xe9 latin-1.mp3")  # not valid UTF-8: a surrogate-escaped str
    with Catalog.open(tmp_path / "lib") as cat:
        with cat.transaction():
            tid = cat.upsert_track(tmp_path / name, size=1, mtime_ns=1, content_hash=None, tags={"title": "x"},
                                   status="failed", error="bad")
        row = cat.tracks_by_id([tid])[tid]
        assert os.fsencode(row.path).endswith(b"caf\xe9 latin-1.mp3")
        assert cat.track_by_path(row.path).id == tid


def test_transaction_rolls_back_on_error(tmp_path):
    with Catalog.open(tmp_path / "lib") as cat:
        with pytest.raises(RuntimeError):
            with cat.transaction():
                cat.upsert_track(tmp_path / "a.flac", size=1, mtime_ns=1, content_hash=None, tags={}, status="ok")
                raise RuntimeError("boom")
        assert cat.active_tracks() == []


def test_reader_sees_committed_rows_while_writer_holds_transaction(tmp_path):
    lib = tmp_path / "lib"
    with Catalog.open(lib) as w:
        with w.transaction():
            w.upsert_track(tmp_path / "a.flac", size=1, mtime_ns=1, content_hash=None, tags={}, status="failed")
        w.conn.execute("BEGIN IMMEDIATE")
        w.upsert_track(tmp_path / "b.flac", size=1, mtime_ns=1, content_hash=None, tags={}, status="failed")
        with Catalog.open(lib, readonly=True) as r:  # WAL: no blocking, sees only committed data
            assert [t.path for t in r.active_tracks()] == [str(tmp_path / "a.flac")]
        w.conn.execute("COMMIT")


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open files through /proc")
def test_refused_catalog_closes_its_connection(tmp_path):
    Catalog.open(tmp_path / "lib").close()
    conn = sqlite3.connect(tmp_path / "lib" / "catalog.sqlite")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "catalog.sqlite").write_bytes(b"this is not a database" * 100)
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):  # a long-lived process (tests, the Python API) retrying must not leak file handles
        for lib, readonly in ((tmp_path / "lib", False), (tmp_path / "lib", True), (tmp_path / "bad", False)):
            with pytest.raises(LibraryError):
                Catalog.open(lib, readonly=readonly)
    assert len(os.listdir("/proc/self/fd")) == before
