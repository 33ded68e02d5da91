"""Library: unchanged rescan of 10,000 files, index build/query/recall, end-to-end scan throughput (tiny model).

Rows
- rescan of an unchanged library of 10,000 tiny files (goal ≤ 5 s): discover + stat + diff + index check,
  catalog rows inserted directly (a real scan of 10k files would embed for hours);
- index at N random unit vectors (768-d): hnswlib build from the catalog, ms/query (1 thread), recall@10
  against exact search, and exact numpy search ms/query for comparison (goal ≤ 50 ms/query at 100k);
  both for i.i.d. Gaussian vectors (the hardest case for any graph index: no structure) and for clustered
  vectors (groups of near neighbours in a 64-d subspace plus noise, closer to real embeddings);
- end-to-end `scan` with the tiny random Whisper (injected): s/track, and how much of it is pipeline
  overhead beyond the encoder.

Sizes: default N = 10,000 for the graph (about 3 minutes on 2 cores) and 100,000 for exact single-query
search; LIVI_BENCH_INDEX_SIZES=10000,100000 adds the 100k hnswlib graphs (each build ≈ 20+ minutes on
2 cores at M=32, ef_construction=200).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import main, row, timeit  # noqa: E402

DIM = 768
KEY = "bench-model"


def _tiny_wav_bytes(i: int) -> bytes:
    import io

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(i.to_bytes(4, "little") * 40)  # 0.01 s, distinct per file
    return buf.getvalue()


def _vectors(n: int, clustered: bool, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    if clustered:  # groups of 8 "versions" around a centre in a 64-d subspace, plus isotropic noise
        basis = rng.standard_normal((64, DIM)).astype(np.float32)
        centres = rng.standard_normal((n // 8 + 1, 64)).astype(np.float32)
        x = centres[np.arange(n) // 8] @ basis + 0.6 * rng.standard_normal((n, 64)).astype(np.float32) @ basis
        x += 2.0 * rng.standard_normal((n, DIM)).astype(np.float32)
    else:
        x = rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _tiny_models(tmp: Path) -> dict:
    """Tiny random Whisper + head saved on disk (as a user's installed models would be); returns an env."""
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    from livi_cli.model.checkpoint import save_head
    from livi_cli.model.head import HeadConfig, LiviHead
    from livi_cli.model.whisper import TINY

    torch.manual_seed(0)
    WhisperForConditionalGeneration(WhisperConfig(**TINY, max_source_positions=1500)).save_pretrained(tmp / "w")
    WhisperFeatureExtractor(feature_size=TINY["num_mel_bins"]).save_pretrained(tmp / "w")
    save_head(tmp / "head.pt", LiviHead(HeadConfig(dim_whisper=TINY["d_model"], dim_hiddens=(48,), dim_embed=DIM,
                                                   num_heads=2)))
    return {**os.environ, "LIVI_HOME": str(tmp / "home"), "LIVI_CONFIG": str(tmp / "none.toml"),
            "LIVI_WHISPER": str(tmp / "w"), "LIVI_HEAD": str(tmp / "head.pt"), "LIVI_DEVICE": "cpu",
            "HF_HUB_OFFLINE": "1"}


def _model_key(env: dict) -> str:
    from livi_cli.config import load_settings
    from livi_cli.embed import Embedder

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return Embedder(load_settings()).identity.key()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _fill_catalog(library: Path, files: list[Path] | None, vectors, key: str = KEY) -> None:
    from livi_cli.library.catalog import Catalog

    with Catalog.open(library) as cat:
        with cat.transaction():
            cat.set_model_key(key)
            for i, v in enumerate(vectors):
                path = files[i] if files else Path(f"/bench/{i:07d}.flac")
                st = path.stat() if files else None
                tid = cat.upsert_track(path, size=st.st_size if st else 1, mtime_ns=st.st_mtime_ns if st else 1,
                                       content_hash=f"{i:032x}", tags={"title": path.stem}, status="ok")
                cat.set_embedding(tid, key, v, v[:0].reshape(0, DIM), [], DIM)  # no window rows: not needed here


def bench_rescan(n: int = 10_000) -> list[dict]:
    from livi_cli.library import index
    from livi_cli.library.catalog import Catalog
    from livi_cli.library.scan import run_scan

    tmp = Path(tempfile.mkdtemp(prefix="livi-bench-"))
    try:
        music = tmp / "music"
        files = []
        for i in range(n):
            p = music / f"artist{i // 100:03d}" / f"{i:05d} track.wav"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(_tiny_wav_bytes(i))
            files.append(p)
        env = _tiny_models(tmp)
        key = _model_key(env)
        _fill_catalog(tmp / "lib", files, _vectors(n, clustered=True), key)
        t0 = time.perf_counter()
        with Catalog.open(tmp / "lib") as cat:
            index.sync(cat)
        build = time.perf_counter() - t0
        summaries = []
        secs = timeit(lambda: summaries.append(run_scan([music], tmp / "lib", None, model_key=key)), repeat=3)
        s = summaries[-1]
        assert s.unchanged == n and s.embedded == 0, s
        cmd = [sys.executable, "-m", "livi_cli", "scan", str(music), "--library", str(tmp / "lib"), "--json"]
        outputs = []
        cli = timeit(lambda: outputs.append(subprocess.run(cmd, env=env, capture_output=True, text=True)), repeat=2)
        assert outputs[-1].returncode == 0 and json.loads(outputs[-1].stdout)["unchanged"] == n, outputs[-1].stderr
        return [row("rescan unchanged library", secs, "s", limit=5.0,
                    note=f"{n} files: discover+stat+diff+index check (api), best of 3"),
                row("rescan unchanged library, CLI", cli, "s", limit=5.0,
                    note="`livi scan` subprocess: + interpreter start, imports, model identity (tiny models)"),
                row("index build from catalog", build, "s", note=f"{n} × {DIM}-d, clustered, hnswlib M=32 efC=200")]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_index(n: int, clustered: bool, n_queries: int = 200) -> list[dict]:
    import numpy as np

    from livi_cli.library import index
    from livi_cli.library.catalog import Catalog

    kind = "clustered" if clustered else "gaussian"
    x = _vectors(n + n_queries, clustered, seed=1)
    base, queries = x[:n], x[n:]
    tmp = Path(tempfile.mkdtemp(prefix="livi-bench-"))
    try:
        _fill_catalog(tmp / "lib", None, base)
        with Catalog.open(tmp / "lib") as cat:
            t0 = time.perf_counter()
            index.sync(cat)
            build = time.perf_counter() - t0
            t0 = time.perf_counter()
            hnsw = index.open_searcher(cat, exact_max=0)
            load = time.perf_counter() - t0
            t0 = time.perf_counter()
            exact = index.open_searcher(cat, exact_max=n)  # memory-maps index.vectors.npy
            load_exact = time.perf_counter() - t0
        t0 = time.perf_counter()
        truth = [[t for t, _ in exact.query(q, 10)] for q in queries]
        exact_ms = (time.perf_counter() - t0) / n_queries * 1000
        t0 = time.perf_counter()
        got = [[t for t, _ in hnsw.query(q, 10)] for q in queries]
        hnsw_ms = (time.perf_counter() - t0) / n_queries * 1000
        recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, truth)]))
        note = f"{n:,} × {DIM}-d {kind}, M={index.HNSW_M} efC={index.HNSW_EF_CONSTRUCTION} ef={index.HNSW_EF_SEARCH}"
        return [
            row(f"index build {n // 1000}k {kind}", build, "s", note=note + ", from SQLite, 2 threads"),
            row(f"index open {n // 1000}k {kind}", load, "s", note="checksum + load of the saved hnswlib file"),
            row(f"hnsw query {n // 1000}k {kind}", hnsw_ms, "ms", limit=50.0, note="k=10, one thread, per query"),
            row(f"hnsw recall@10 {n // 1000}k {kind}", recall, "ratio", limit=0.99, note="vs exact search (≥ limit)"),
            row(f"exact query {n // 1000}k {kind}", exact_ms, "ms", limit=50.0,
                note=f"one matrix-vector product per query; opening the memory-mapped matrix took {load_exact:.2f} s"),
        ]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_exact(n: int, n_queries: int = 100) -> list[dict]:
    """Exact search as find-covers runs it (one query at a time over the memory-mapped matrix), no graph."""
    import numpy as np

    from livi_cli.library.index import Searcher

    x = _vectors(n + n_queries, clustered=False, seed=2)
    tmp = Path(tempfile.mkdtemp(prefix="livi-bench-"))
    try:
        np.save(tmp / "m.npy", x[:n])
        searcher = Searcher(np.arange(n), matrix=np.load(tmp / "m.npy", mmap_mode="r"), mode="exact")
        searcher.query(x[n], 10)  # first touch pages the file in
        t0 = time.perf_counter()
        for q in x[n:]:
            searcher.query(q, 10)
        ms = (time.perf_counter() - t0) / n_queries * 1000
        return [row(f"exact query {n // 1000}k (single query)", ms, "ms", limit=50.0,
                    note=f"{n:,} × {DIM}-d float32, memory-mapped, k=10; recall 1 by definition")]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_scan(n_tracks: int) -> list[dict]:
    import numpy as np
    import soundfile as sf
    import torch

    from livi_cli.config import load_settings
    from livi_cli.embed import Embedder
    from livi_cli.library.scan import run_scan
    from livi_cli.model.head import HeadConfig, LiviHead
    from livi_cli.model.whisper import random_encoder

    tmp = Path(tempfile.mkdtemp(prefix="livi-bench-"))
    try:
        rng = np.random.default_rng(0)
        paths = []
        for i in range(n_tracks):
            p = tmp / "music" / f"{i:03d}.flac"
            p.parent.mkdir(parents=True, exist_ok=True)
            t = np.arange(10 * 16000) / 16000
            sf.write(p, (0.3 * np.sin(2 * np.pi * (200 + 7 * i) * t) + 0.01 * rng.standard_normal(t.size)), 16000)
            paths.append(p)
        encoder, features = random_encoder("tiny", seed=0)
        torch.manual_seed(0)
        head = LiviHead(HeadConfig(dim_whisper=encoder.config.d_model, dim_hiddens=(48,), dim_embed=32,
                                   num_heads=2)).eval()
        settings = load_settings(library=str(tmp / "lib"), device="cpu", precision="fp32", vocal_detector="none",
                                 batch_size=8)
        emb = Embedder(settings, whisper_model=encoder, feature_extractor=features, head_model=head)
        emb.encode([emb.prepare_path(paths[0])])  # warm up (lazy loads, first-call allocations)
        t0 = time.perf_counter()
        s = run_scan([tmp / "music"], tmp / "lib", emb, model_key=emb.identity.key())
        wall = time.perf_counter() - t0
        assert s.embedded == n_tracks, s
        t0 = time.perf_counter()
        prepared = [emb.prepare_path(p) for p in paths]
        prep = time.perf_counter() - t0
        t0 = time.perf_counter()
        embedded = emb.encode(prepared)
        enc = time.perf_counter() - t0
        book = _bookkeeping(tmp / "lib2", paths, embedded)
        note = f"{n_tracks} × 10 s FLAC, tiny random Whisper, detector none, {os.cpu_count()} cores"
        return [
            row("scan s/track (tiny model)", wall / n_tracks, "s", note=note),
            row("  prepare s/track (sequential)", prep / n_tracks, "s", note="decode + windows + log-mel"),
            row("  encode s/track (batched)", enc / n_tracks, "s", note="encoder + head alone"),
            row("  pipeline speed-up", (prep + enc) / wall, "ratio",
                note="(prepare + encode, one after the other) / scan wall: overlap of the worker pool"),
            row("  bookkeeping s/track", book / n_tracks, "s",
                note="pipeline overhead: content hash + tags + catalog transaction per track"),
        ]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _bookkeeping(library: Path, paths: list[Path], embedded) -> float:
    """Seconds for what a scan adds around prepare/encode: hashing, tags, one transaction per track."""
    from livi_cli.audio.tags import read_tags
    from livi_cli.library.catalog import TAG_FIELDS, Catalog
    from livi_cli.library.plan import content_hash

    t0 = time.perf_counter()
    with Catalog.open(library) as cat:
        for p, te in zip(paths, embedded):
            st = p.stat()
            digest = content_hash(p)
            tags = read_tags(p).as_dict()
            with cat.transaction():
                tid = cat.upsert_track(p, size=st.st_size, mtime_ns=st.st_mtime_ns, content_hash=digest,
                                       tags={k: tags.get(k) for k in TAG_FIELDS}, status="ok")
                cat.set_embedding(tid, KEY, te.vector, te.windows, te.spans, len(te.vector))
    return time.perf_counter() - t0


def run(quick: bool) -> list[dict]:
    rows = bench_rescan(2_000 if quick else 10_000)
    sizes = [int(s) for s in os.environ.get("LIVI_BENCH_INDEX_SIZES", "10000").split(",") if s]
    for n in ([2_000] if quick else sizes):
        for clustered in (False, True):
            rows += bench_index(n, clustered)
    rows += bench_exact(10_000 if quick else 100_000)
    rows += bench_scan(8 if quick else 32)
    return rows


if __name__ == "__main__":
    main(run, title="library: rescan, index, scan throughput")
