"""A scan killed with SIGKILL mid-way leaves a catalog the next scan completes: no lost or duplicate rows."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np

from livi_cli import api
from livi_cli.library import index
from livi_cli.library.catalog import Catalog
from tests.synth import write_track

N_FILES = 10


def committed_ok(db) -> int:
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=1)
        try:
            return conn.execute("SELECT COUNT(*) FROM tracks WHERE status = 'ok'").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return 0  # schema not created yet


def test_sigkill_mid_scan_then_rescan_completes(tiny_env, tmp_path, monkeypatch):
    music = tmp_path / "music"
    for i in range(N_FILES):
        write_track(music / f"{i:02d} track.wav", seconds=4, seed=100 + i)
    monkeypatch.setenv("LIVI_VOCAL_DETECTOR", "none")
    monkeypatch.setenv("LIVI_SCAN_COMMIT_EVERY", "1")  # one track per transaction: many kill points
    db = tiny_env / "library" / "catalog.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "livi_cli", "scan", str(music), "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while committed_ok(db) < 2:  # wait for at least two committed batches
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the scan never committed"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = committed_ok(db)
    assert 2 <= done < N_FILES, f"killed too late to test anything ({done} of {N_FILES} done)"

    summary = api.scan([music], api.settings())  # the writer lock died with the process
    assert summary.failed == 0
    assert summary.unchanged == done and summary.new == N_FILES - done and summary.embedded == N_FILES - done

    with Catalog.open(tiny_env / "library", readonly=True) as cat:
        c = cat.conn
        assert tuple(c.execute("SELECT COUNT(*), COUNT(DISTINCT path) FROM tracks").fetchone()) == (N_FILES, N_FILES)
        assert cat.counts()["ok"] == N_FILES
        assert c.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == N_FILES
        # every window row belongs to a live embedding and every track has the windows it claims
        assert c.execute("SELECT COUNT(*) FROM windows WHERE embedding_id NOT IN (SELECT id FROM embeddings)"
                         ).fetchone()[0] == 0
        assert c.execute("SELECT SUM(n_windows) FROM tracks").fetchone()[0] == c.execute(
            "SELECT COUNT(*) FROM windows").fetchone()[0]
        assert {os.path.basename(t.path) for t in cat.active_tracks()} == {p.name for p in music.iterdir()}
        assert index.health(cat).state == "ok"
        labels, track_ids = cat.index_entries()
        searcher = index.open_searcher(cat, exact_max=0)  # through the saved hnswlib file
        ids, mat = cat.embeddings()
        for tid, vec in zip(ids, mat):
            assert searcher.query(vec, 1)[0][0] == tid
        assert sorted(np.load(cat.library_dir / index.LABELS_FILE).tolist()) == sorted(labels.tolist())


def test_ctrl_c_exits_130_keeps_committed_work_and_frees_the_lock(tiny_env, tmp_path, monkeypatch):
    from livi_cli.library.lock import WriterLock

    music = tmp_path / "music"
    for i in range(N_FILES):
        write_track(music / f"{i:02d}.flac", seconds=4, seed=200 + i)
    monkeypatch.setenv("LIVI_VOCAL_DETECTOR", "none")
    monkeypatch.setenv("LIVI_SCAN_COMMIT_EVERY", "1")
    db = tiny_env / "library" / "catalog.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "livi_cli", "scan", str(music), "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while committed_ok(db) < 1:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    assert "Traceback" not in proc.stderr.read().decode()
    done = committed_ok(db)
    assert 1 <= done < N_FILES
    with WriterLock(tiny_env / "library", wait=0):  # released on the way out
        pass
    st = api.status(api.settings())
    assert st["last_scan"]["finished_at"] is None and st["counts"]["ok"] == done
    summary = api.scan([music], api.settings())
    assert (summary.unchanged, summary.new) == (done, N_FILES - done)
