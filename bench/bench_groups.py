"""Duplicates and clusters: fingerprint precision/recall on a generated set, and 100k clustering time.

Generated set: synthetic "songs" (melody + chords + bass + drums, each with its own instrument, tempo
and key). Every song is written as flac, mp3 at 320 and ~64 kbps, ogg/vorbis, resampled wav at
22.05 kHz and a silence-trimmed, gain-changed flac: those copies are the true duplicate pairs. Each
song also gets a *cover* (same melody, other instrument, tempo ×1.08, +2 semitones) and a *live*
take (same melody and instrument, tempo ×1.03, timing jitter, room noise): neither may be flagged.

    python bench/bench_groups.py [--quick]
"""
from __future__ import annotations

import itertools
import os
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SR = 44_100
SCALE = np.array([0, 2, 4, 5, 7, 9, 11])  # major scale, semitones


def _instrument(rng: np.random.Generator) -> np.ndarray:
    """Harmonic amplitudes of a random timbre."""
    n = 8
    return rng.uniform(0.2, 1.0, n) * (1.0 / np.arange(1, n + 1)) ** rng.uniform(0.5, 1.5)


def _tone(freq: float, seconds: float, timbre: np.ndarray, sr: int, attack: float = 0.01) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    wave = sum(a * np.sin(2 * np.pi * freq * (k + 1) * t) for k, a in enumerate(timbre) if freq * (k + 1) < sr / 2)
    env = np.minimum(1.0, t / attack) * np.exp(-t * 2.5)
    return (wave * env).astype(np.float32)


def _melody(rng: np.random.Generator, n_notes: int) -> list[tuple[int, float]]:
    """(scale degree, beats) pairs."""
    return [(int(rng.integers(-3, 10)), float(rng.choice([0.5, 1.0, 1.0, 1.5, 2.0]))) for _ in range(n_notes)]


def _midi_freq(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


def _degree_midi(key: int, degree: int, octave: int = 5) -> int:
    return 12 * octave + key + 12 * (degree // 7) + int(SCALE[degree % 7])


def render(
    melody: list[tuple[int, float]],
    *,
    seed: int,
    tempo: float = 110.0,
    key: int = 0,
    jitter: float = 0.0,
    noise: float = 0.0,
    lead: float = 1.0,
    tail: float = 1.5,
    sr: int = SR,
) -> np.ndarray:
    """A mono song: melody + bass + chords + drums, with `lead`/`tail` seconds of silence around it."""
    rng = np.random.default_rng(seed)
    lead_timbre, bass_timbre, pad_timbre = _instrument(rng), _instrument(rng), _instrument(rng)
    beat = 60.0 / tempo
    total_beats = sum(b for _, b in melody)
    n = int((total_beats * beat + 1.0) * sr)
    out = np.zeros(n, np.float32)

    def add(sig: np.ndarray, start: float, gain: float) -> None:
        i = max(0, int(start * sr))
        j = min(n, i + len(sig))
        if j <= i:
            return
        out[i:j] += gain * sig[: j - i]

    pos = 0.0
    for degree, beats in melody:
        start = pos * beat + (rng.normal(0, jitter) if jitter else 0.0)
        add(_tone(_midi_freq(_degree_midi(key, degree)), beats * beat * 1.1, lead_timbre, sr), start, 0.5)
        pos += beats
    chords = rng.integers(0, 7, size=int(total_beats // 4) + 1)
    drum_rng = np.random.default_rng(seed + 7)
    snare = drum_rng.normal(0, 1, int(0.12 * sr)).astype(np.float32) * np.exp(-np.arange(int(0.12 * sr)) / (0.03 * sr))
    for bar, root in enumerate(chords):
        t0 = bar * 4 * beat
        add(_tone(_midi_freq(_degree_midi(key, int(root), 3)), 4 * beat, bass_timbre, sr), t0, 0.4)
        for third in (0, 2, 4):
            add(_tone(_midi_freq(_degree_midi(key, int(root) + third, 4)), 4 * beat, pad_timbre, sr, 0.2), t0, 0.12)
        for b in range(4):
            kick = _tone(55.0, 0.2, np.array([1.0]), sr, 0.002)
            add(kick, t0 + b * beat, 0.6)
            if b % 2:
                add(snare, t0 + b * beat, 0.25)
    if noise:
        out += rng.normal(0, noise, n).astype(np.float32)
    out /= max(1e-6, float(np.abs(out).max())) / 0.8
    return np.concatenate([np.zeros(int(lead * sr), np.float32), out, np.zeros(int(tail * sr), np.float32)])


def song_versions(index: int, n_notes: int = 48, kinds=("orig", "cover", "live")) -> dict[str, np.ndarray]:
    """The original, a cover and a live take of song `index` (44.1 kHz mono)."""
    rng = np.random.default_rng(1000 + index)
    melody = _melody(rng, n_notes)
    tempo, key = float(rng.uniform(90, 140)), int(rng.integers(0, 12))
    makers = {
        "orig": lambda: render(melody, seed=index * 3, tempo=tempo, key=key),
        "cover": lambda: render(melody, seed=index * 3 + 1, tempo=tempo * 1.08, key=(key + 2) % 12),
        "live": lambda: render(melody, seed=index * 3, tempo=tempo * 1.03, key=key, jitter=0.02, noise=0.01),
    }
    return {k: makers[k]() for k in kinds}


def write_copies(wave: np.ndarray, stem: Path) -> list[Path]:
    """The transcoded/resampled/trimmed copies of one recording (the original as flac first)."""
    import soundfile as sf
    import soxr

    from livi_cli.groups.fingerprint import trim_silence

    paths = [stem.with_name(stem.name + ".flac")]
    sf.write(paths[0], wave, SR, format="FLAC")
    for name, level in (("mp3hi", 0.0), ("mp3lo", 0.8)):  # ≈ 320 and ≈ 64 kbps CBR
        p = stem.with_name(f"{stem.name}.{name}.mp3")
        sf.write(p, wave, SR, format="MP3", compression_level=level, bitrate_mode="CONSTANT")
        paths.append(p)
    p = stem.with_name(stem.name + ".ogg")
    sf.write(p, wave, SR, format="OGG", subtype="VORBIS")
    paths.append(p)
    p = stem.with_name(stem.name + ".22k.wav")
    sf.write(p, soxr.resample(wave, SR, 22_050), 22_050, subtype="PCM_16")
    paths.append(p)
    p = stem.with_name(stem.name + ".trim.flac")
    sf.write(p, 0.7 * trim_silence(wave, SR), SR, format="FLAC")
    paths.append(p)
    return paths


def make_set(root: Path, n_songs: int, n_notes: int = 48) -> tuple[list[Path], list[str]]:
    """Files and their recording label: copies of one recording share a label; covers/live get their own."""
    import soundfile as sf

    paths, labels = [], []
    for i in range(n_songs):
        versions = song_versions(i, n_notes)
        for p in write_copies(versions["orig"], root / f"song{i:03d}"):
            paths.append(p)
            labels.append(f"s{i}")
        for kind in ("cover", "live"):
            p = root / f"song{i:03d}.{kind}.flac"
            sf.write(p, versions[kind], SR, format="FLAC")
            paths.append(p)
            labels.append(f"s{i}-{kind}")
    return paths, labels


def pair_scores(paths: list[Path]) -> tuple[list[bytes], float]:
    from livi_cli.audio.decode import load_audio
    from livi_cli.groups.fingerprint import fingerprint

    fps, spent = [], 0.0
    for p in paths:
        wave = load_audio(p)
        t = time.perf_counter()
        fps.append(fingerprint(wave))
        spent += time.perf_counter() - t
    return fps, spent / max(1, len(paths))


def duplicate_pr(paths: list[Path], labels: list[str], fps: list[bytes]) -> dict:
    """Pairwise precision/recall of `find_duplicate_groups` against the recording labels."""
    from livi_cli.groups.duplicates import Candidate, find_duplicate_groups

    cands = [Candidate(i, f"h{i}", fp) for i, fp in enumerate(fps)]
    groups = find_duplicate_groups(cands)
    predicted = {tuple(sorted(p)) for g in groups for p in itertools.combinations(g, 2)}
    truth = {(i, j) for i, j in itertools.combinations(range(len(paths)), 2) if labels[i] == labels[j]}
    tp = len(predicted & truth)
    return {
        "precision": tp / max(1, len(predicted)),
        "recall": tp / max(1, len(truth)),
        "pairs_true": len(truth),
        "pairs_predicted": len(predicted),
        "false_pairs": sorted(predicted - truth),
        "missed_pairs": sorted(truth - predicted),
    }


def clustered_vectors(n: int, dim: int = 768, seed: int = 0, labels: bool = False):
    """Random-but-clustered unit vectors: groups of 1–6 'versions' around random song centres."""
    rng = np.random.default_rng(seed)
    sizes = rng.choice([1, 1, 1, 2, 2, 3, 4, 6], size=n)
    owner = np.repeat(np.arange(n), sizes)[:n]
    centres = rng.standard_normal((owner.max() + 1, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    noise = rng.standard_normal((n, dim), dtype=np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    vecs = centres[owner] + 0.6 * noise  # cos to centre ≈ 0.86, within a song ≈ 0.74, across ≈ 0
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return (vecs, owner) if labels else vecs


def golden_pairwise(thresholds=(0.3, 0.4, 0.5, 0.6, 0.7)) -> list[tuple[float, float, float, int]]:
    """(threshold, pairwise precision, recall, clusters) of cluster_vectors on the golden metrics items."""
    import csv

    from livi_cli.groups.clusters import cluster_vectors

    path = Path(__file__).resolve().parents[1] / ".." / "shared" / "golden" / "metrics_items.csv"
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))[1:]
    cliques = [r[1] for r in rows]
    vecs = np.array([[float(x) for x in r[2:]] for r in rows], np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    truth = {(i, j) for i, j in itertools.combinations(range(len(rows)), 2) if cliques[i] == cliques[j]}
    out = []
    for t in thresholds:
        clusters = cluster_vectors(vecs, t)
        pred = {tuple(sorted(p)) for c in clusters for p in itertools.combinations(c.members, 2)}
        tp = len(pred & truth)
        out.append((t, tp / max(1, len(pred)), tp / len(truth), len(clusters)))
    return out


def fingerprint_index_time(n: int, words: int = 400, copies: int = 1000, seed: int = 0) -> tuple[float, int]:
    """Seconds for find_duplicate_groups on n random fingerprints (+ noisy copies of some), groups found."""
    from livi_cli.groups import fingerprint as F
    from livi_cli.groups.duplicates import Candidate, find_duplicate_groups

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2**32, size=(n, words), dtype=np.uint64).astype(np.uint32)
    flips = rng.random((copies, words, 32)) < 0.08  # 8 % bit errors: a low-bitrate transcode
    noise = (flips * (np.uint64(1) << np.arange(32, dtype=np.uint64))).sum(axis=2).astype(np.uint32)
    cands = [Candidate(i, None, F.encode(F.Fingerprint(200.0, base[i]))) for i in range(n)]
    cands += [Candidate(n + i, None, F.encode(F.Fingerprint(200.0, base[i] ^ noise[i]))) for i in range(copies)]
    t = time.perf_counter()
    groups = find_duplicate_groups(cands)
    return time.perf_counter() - t, len(groups)


def run(quick: bool) -> list[dict]:
    from _common import row  # type: ignore[import-not-found]

    from livi_cli.groups.clusters import build_reports, cluster_vectors

    rows = []
    n_songs = 6 if quick else 20
    with tempfile.TemporaryDirectory() as tmp:
        paths, labels = make_set(Path(tmp), n_songs)
        fps, per_track = pair_scores(paths)
        pr = duplicate_pr(paths, labels, fps)
    note = f"{len(paths)} files, {pr['pairs_true']} true pairs"
    rows.append(row("duplicates pair precision", pr["precision"], "ratio", note=note, limit=0.99))
    rows.append(row("duplicates pair recall", pr["recall"], "ratio", note=note, limit=0.95))
    rows.append(row("fingerprint per track", per_track * 1000, "ms", note="~25 s clips, 16 kHz wave given"))
    spent, found = fingerprint_index_time(n := 20_000 if quick else 100_000)
    rows.append(row(f"duplicates on {n} fingerprints", spent, "s", note=f"{found}/1000 planted copies found"))
    for t, p, r, k in golden_pairwise():
        rows.append(row(f"golden clusters pairwise P/R @ {t}", p, "ratio", note=f"recall {r:.3f}, {k} clusters"))
    vecs, owner = clustered_vectors(n, labels=True)
    load = os.getloadavg()[0]
    t, cpu = time.perf_counter(), time.process_time()
    clusters = cluster_vectors(vecs, min_similarity=0.5)
    spent, cpu = time.perf_counter() - t, time.process_time() - cpu
    rows.append(row(f"clusters {n} × 768", spent, "s", limit=30.0,
                    note=f"{len(clusters)} clusters; CPU {cpu:.1f} s, load avg {load:.1f} on {os.cpu_count()} CPUs"))
    tracks = {i: SimpleNamespace(id=i, content_hash=f"h{i}", fingerprint=None, title=f"t{i}", artist=None,
                                 codec="flac", bitrate=900_000, sample_rate=44_100, duration=200.0, path=f"/m/{i}")
              for i in range(n)}
    t = time.perf_counter()
    reports = build_reports(list(range(n)), vecs, tracks, min_similarity=0.5)
    rows.append(row(f"clusters {n} report (command minus catalog read)", time.perf_counter() - t, "s", limit=30.0,
                    note=f"{len(reports)} clusters, copy check per cluster"))
    pred = {p for c in clusters for p in itertools.combinations(sorted(c.members), 2)}
    tp = sum(owner[i] == owner[j] for i, j in pred)
    _, sizes = np.unique(owner, return_counts=True)
    truth = int((sizes * (sizes - 1) // 2).sum())
    rows.append(row(f"clusters {n} pairwise precision", tp / max(1, len(pred)), "ratio",
                    note=f"recall {tp / truth:.3f} of {truth} same-song pairs, --min-similarity 0.5"))
    return rows


if __name__ == "__main__":
    from _common import main  # type: ignore[import-not-found]

    main(run, "duplicates and clusters")
