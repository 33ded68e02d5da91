"""hnswlib index derived from the catalog (sync, patch, rebuild on damage) and the writer lock."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from livi_cli.errors import LibraryLockedError
from livi_cli.library import index
from livi_cli.library.catalog import Catalog
from livi_cli.library.lock import WriterLock, try_lock

DIM = 16


def fill(cat, rng, n, start=0, key="m1"):
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = []
    with cat.transaction():
        if cat.model_key() is None:
            cat.set_model_key(key)
        for i, v in enumerate(x):
            tid = cat.upsert_track(f"/music/t{start + i}.flac", size=1, mtime_ns=1, content_hash=None, tags={},
                                   status="ok")
            cat.set_embedding(tid, key, v, v[None], [(0.0, 30.0)], DIM)
            ids.append(tid)
    return ids, x


def exact_top(cat, q, k):
    ids, mat = cat.embeddings()
    order = np.argsort(-(mat @ q))[:k]
    return [ids[i] for i in order]


@pytest.fixture
def cat(tmp_path):
    with Catalog.open(tmp_path / "lib") as c:
        yield c


def test_sync_builds_then_is_unchanged_then_patches(cat):
    rng = np.random.default_rng(0)
    ids, x = fill(cat, rng, 200)
    assert index.health(cat).state == "missing"
    assert index.sync(cat) == "rebuilt"
    assert index.health(cat).state == "ok"
    assert index.sync(cat) == "unchanged"
    more, _ = fill(cat, rng, 10, start=200)
    with cat.transaction():
        cat.mark_removed(ids[:5])
    h = index.health(cat)
    assert (h.state, h.reason) == ("stale", "catalog changed since the index was built")
    assert index.sync(cat) == "updated"
    assert index.health(cat).state == "ok"
    searcher = index.open_searcher(cat, exact_max=0)
    assert searcher.mode == "hnsw" and len(searcher) == 205
    for q in x[5:25]:  # every live vector finds itself first; removed ones never come back
        hits = searcher.query(q, 10)
        assert hits[0][1] == pytest.approx(1.0, abs=1e-5)
        assert not set(ids[:5]) & {t for t, _ in hits}
        assert [t for t, _ in hits] == exact_top(cat, q, 10)


@pytest.mark.parametrize("damage", ["delete", "truncate", "garbage_sidecar"])
def test_damaged_index_is_detected_and_rebuilt(cat, damage):
    rng = np.random.default_rng(1)
    ids, x = fill(cat, rng, 100)
    index.sync(cat)
    lib = cat.library_dir
    if damage == "delete":
        (lib / index.INDEX_FILE).unlink()
        expected = "missing"
    elif damage == "truncate":
        data = (lib / index.INDEX_FILE).read_bytes()
        (lib / index.INDEX_FILE).write_bytes(data[: len(data) // 2])
        expected = "corrupt"
    else:
        (lib / index.SIDECAR_FILE).write_text("{not json")
        expected = "missing"
    assert index.health(cat).state == expected
    # A reader notices and rebuilds (and saves, since nobody holds the writer lock).
    searcher = index.open_searcher(cat, exact_max=0)
    assert searcher.query(x[3], 1)[0][0] == ids[3]
    assert index.health(cat).state == "ok"


def test_model_change_forces_rebuild(cat):
    rng = np.random.default_rng(2)
    fill(cat, rng, 20)
    index.sync(cat)
    with cat.transaction():
        cat.set_model_key("m2")
    ids, _ = fill(cat, rng, 5, start=100, key="m2")
    h = index.health(cat)
    assert h.state == "stale" and "model" in h.reason
    assert index.sync(cat) == "rebuilt"
    side = json.loads((cat.library_dir / index.SIDECAR_FILE).read_text())
    assert side["model_key"] == "m2" and side["count"] == 5


def test_exact_search_below_threshold(cat):
    rng = np.random.default_rng(3)
    ids, x = fill(cat, rng, 50)
    s = index.open_searcher(cat, exact_max=1000)
    assert s.mode == "exact"
    hits = s.query(x[7], 5)
    assert [t for t, _ in hits] == exact_top(cat, x[7], 5)
    assert hits[0] == (ids[7], pytest.approx(1.0, abs=1e-6))


def test_second_writer_waits_then_refuses(tmp_path):
    lib = tmp_path / "lib"
    with WriterLock(lib, wait=0):
        t0 = time.monotonic()
        with pytest.raises(LibraryLockedError, match="busy: another livi process"):
            WriterLock(lib, wait=0.3).acquire()
        assert time.monotonic() - t0 >= 0.3
        assert try_lock(lib) is None
    with WriterLock(lib, wait=0):  # released: free again
        pass


def test_lock_held_by_another_process_and_freed_when_it_dies(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    code = ("import sys, time; from livi_cli.library.lock import WriterLock; l = WriterLock(sys.argv[1]).acquire();"
            " print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(lib)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(LibraryLockedError, match=f"pid {proc.pid}"):
            WriterLock(lib, wait=0.2).acquire()
    finally:
        proc.kill()
        proc.wait()
    with WriterLock(lib, wait=2):  # the kernel dropped the dead process's lock
        pass


def test_exact_search_uses_the_saved_matrix_only_while_it_matches(cat):
    rng = np.random.default_rng(4)
    ids, x = fill(cat, rng, 60)
    index.sync(cat)
    s = index.open_searcher(cat, exact_max=1000)
    assert isinstance(s.matrix, np.memmap)  # served from index.vectors.npy, not re-read from SQLite
    for q in x[:5]:
        assert [t for t, _ in s.query(q, 5)] == exact_top(cat, q, 5)
    more, y = fill(cat, rng, 3, start=60)
    with cat.transaction():
        cat.mark_removed(ids[:2])
    s = index.open_searcher(cat, exact_max=1000)  # catalog moved on: the stale matrix is not used
    assert not isinstance(s.matrix, np.memmap)
    hits = [t for t, _ in s.query(y[0], 70)]
    assert hits[0] == more[0] and not set(ids[:2]) & set(hits) and len(hits) == 61
    assert index.sync(cat) == "updated"  # patched: old rows reused, new ones read from SQLite
    s = index.open_searcher(cat, exact_max=1000)
    assert isinstance(s.matrix, np.memmap)
    for q in list(x[2:6]) + list(y):
        assert [t for t, _ in s.query(q, 5)] == exact_top(cat, q, 5)


def test_reader_builds_from_one_snapshot_while_a_scan_commits(tmp_path):
    """A reader rebuilding the index lists embedding ids, then reads their vectors; a scan that re-embeds
    a track in between (new embedding id, old one deleted) must not make that lookup fail."""
    rng = np.random.default_rng(5)
    with Catalog.open(tmp_path / "lib") as writer:
        ids, x = fill(writer, rng, 20)
        with Catalog.open(tmp_path / "lib", readonly=True) as reader:
            read_vectors = reader.vectors_by_embedding_id

            def scan_commits_meanwhile(emb_ids):
                v = x[0][::-1].copy()
                with writer.transaction():
                    writer.set_embedding(ids[0], "m1", v, v[None], [(0.0, 30.0)], DIM)
                return read_vectors(emb_ids)

            reader.vectors_by_embedding_id = scan_commits_meanwhile
            built, labels = index.build(reader)
            assert built.get_current_count() == len(labels) == 20
            searcher = index.open_searcher(reader, exact_max=0)  # builds in memory too (no saved index)
            assert searcher.query(x[3], 1)[0][0] == ids[3]


def test_reader_searches_a_library_it_cannot_write(cat):
    """A stale index in a library whose lock file cannot be opened (as in a read-only folder; a directory
    stands in for it since tests may run as root): the reader rebuilds in memory and answers."""
    rng = np.random.default_rng(6)
    ids, x = fill(cat, rng, 30)
    (cat.library_dir / "lock").mkdir()
    assert try_lock(cat.library_dir) is None
    searcher = index.open_searcher(cat, exact_max=0)
    assert searcher.mode == "hnsw" and searcher.query(x[4], 1)[0][0] == ids[4]
    assert index.health(cat).state == "missing"  # nothing could be saved
