"""Measure vocal detectors on the synthetic labelled set (livi_cli.vocals.evalset) and print a table.

    python bench/bench_vocals.py                 # 60 tracks x 30 s, seed 0 (the evaluation split)
    python bench/bench_vocals.py --tracks 20     # quicker
    python bench/bench_vocals.py --voice synth,espeak-sung,espeak   # the table in models/README.md
    python bench/bench_vocals.py --fit-spectral  # refit the spectral detector on the training split (seed 1)
    python bench/bench_vocals.py --quick [--json PATH]   # run_all's rows (bench/README.md convention)

Columns: segment-level precision / recall / F1 of "vocalness > 0.5" against the ground truth per 1 s hop
(pooled over all tracks), track-level accuracy of "mean vocalness < 0.5 → instrumental", and seconds of
detector time per minute of audio, wall clock and CPU time of this process (the CPU column is the one to
trust on a shared, loaded machine). Rows "oracle" (the labels
themselves) and "none" (everything counts as sung) bound what the rules can do on this set.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _common, and livi_cli from a checkout
from _common import print_rows, row, write_json  # noqa: E402

from livi_cli import constants as C  # noqa: E402
from livi_cli.vocals.detectors import HOP_SECONDS, get_detector  # noqa: E402
from livi_cli.vocals.evalset import EvalTrack, make_evalset  # noqa: E402

ENCODER_S_PER_WINDOW = 8.5  # turbo encoder on this CPU, bf16, one (zero-padded) 30 s window


def budget_s_per_min(seconds: float) -> float:
    """A tenth of the encoder's time for tracks of this length, per minute of audio: the encoder always
    runs whole 30 s windows (a 10 s clip costs a full window), so short clips have a larger budget."""
    windows = np.ceil(seconds / C.WINDOW_SECONDS)
    return float(ENCODER_S_PER_WINDOW / 10 * windows / (seconds / 60))


def score(tracks: list[EvalTrack], preds: list[np.ndarray], lam=C.VOCAL_THRESHOLD, mu=C.INSTRUMENTAL_THRESHOLD):
    truth = np.concatenate([t.labels(HOP_SECONDS)[: len(p)] for t, p in zip(tracks, preds)])
    pred = np.concatenate([p[: len(t.labels(HOP_SECONDS))] for t, p in zip(tracks, preds)]) > lam
    tp = float((truth & pred).sum())
    precision = tp / max(pred.sum(), 1)
    recall = tp / max(truth.sum(), 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-9)
    acc = np.mean([(t.kind == "instrumental") == (float(np.mean(p)) < mu) for t, p in zip(tracks, preds)])
    return precision, recall, f1, float(acc)


def predict(tracks: list[EvalTrack], names: list[str]) -> dict[str, tuple[list[np.ndarray], float]]:
    """Per detector: per-track vocalness and seconds per minute of audio. Oracle/none rows cost nothing."""
    minutes = sum(t.duration for t in tracks) / 60
    out = {
        "oracle": ([t.labels(HOP_SECONDS).astype(float) for t in tracks], (0.0, 0.0)),
        "none": ([np.ones(len(t.labels(HOP_SECONDS))) for t in tracks], (0.0, 0.0)),
    }
    for name in names:
        detector = get_detector(name)
        detector.vocalness(tracks[0].wave[: C.SAMPLE_RATE * 5])  # load weights outside the timing
        start, cpu = time.perf_counter(), time.process_time()
        preds = [detector.vocalness(t.wave) for t in tracks]
        out[name] = (preds, ((time.perf_counter() - start) / minutes, (time.process_time() - cpu) / minutes))
    return out


def song_length_cost(tracks: list[EvalTrack], names: list[str], minutes: int = 4) -> dict[str, float]:
    """CPU seconds per minute on one `minutes`-long track (eval tracks back to back): batching differs."""
    wave = np.concatenate([t.wave for t in tracks])[: minutes * 60 * C.SAMPLE_RATE]
    out = {}
    for name in names:
        detector = get_detector(name)
        cpu = time.process_time()
        detector.vocalness(wave)
        out[name] = (time.process_time() - cpu) / (len(wave) / C.SAMPLE_RATE / 60)
    return out


def rows_for(tracks, preds, keep) -> list[tuple]:
    """Table rows for the tracks whose index is in `keep`."""
    sub = [tracks[i] for i in keep]
    return [(name, *score(sub, [p[i] for i in keep]), t) for name, (p, t) in preds.items()]


def print_table(rows, tracks: list[EvalTrack]) -> None:
    kinds = {k: sum(t.kind == k for t in tracks) for k in ("song", "instrumental", "acapella")}
    print(f"{len(tracks)} tracks x {tracks[0].duration:.0f} s ({kinds}), hop {HOP_SECONDS} s, λ=μ=0.5")
    print("| detector | precision | recall | F1 | track acc. | wall s / min audio | CPU s / min audio |")
    print("|---|---|---|---|---|---|---|")
    for name, p, r, f, a, (wall, cpu) in rows:
        print(f"| {name} | {p:.3f} | {r:.3f} | {f:.3f} | {a:.3f} | {wall:.3f} | {cpu:.3f} |")


def fit_spectral(n_tracks: int, seconds: float, voices: list[str]) -> None:
    """Logistic regression (numpy gradient descent) of hop labels on spectral cues; prints the constants."""
    from livi_cli.vocals import spectral

    tracks = load(voices, n_tracks, 1, seconds)
    feats = [spectral.features(t.wave, HOP_SECONDS)[0] for t in tracks]
    X = np.concatenate(feats)
    y = np.concatenate([t.labels(HOP_SECONDS)[: len(f)] for t, f in zip(tracks, feats)]).astype(float)
    mean, scale = X.mean(axis=0), X.std(axis=0) + 1e-9
    Z = (X - mean) / scale
    w, b = np.zeros(Z.shape[1]), 0.0
    for _ in range(3000):
        p = 1 / (1 + np.exp(-(Z @ w + b)))
        w -= 0.5 * (Z.T @ (p - y) / len(y) + 1e-3 * w)
        b -= 0.5 * float(np.mean(p - y))
    acc = np.mean(((Z @ w + b) > 0) == (y > 0.5))
    print(f"# fit on {len(y)} hops from {len(tracks)} training tracks ({voices}), training accuracy {acc:.3f}")
    np.set_printoptions(precision=5, suppress=True, linewidth=200)
    print(f"_MEAN = np.array({mean.round(5).tolist()})")
    print(f"_SCALE = np.array({scale.round(5).tolist()})")
    print(f"_WEIGHTS = np.array({w.round(5).tolist()})")
    print(f"_BIAS = {b:.5f}")


def run(quick: bool) -> list[dict]:
    """Rows for bench/run_all.py: F1, track accuracy and CPU cost per detector (espeak voices if installed)."""
    voices = ["synth"] + (["espeak-sung", "espeak"] if shutil.which("espeak-ng") and not quick else [])
    n, seconds = (8, 10.0) if quick else (30, 30.0)
    tracks = load(voices, n, 0, seconds)
    names = ["silero", "spectral"]
    preds = predict(tracks, names)
    note = f"{len(tracks)} synthetic tracks x {seconds:.0f} s, voices {'+'.join(voices)}"
    rows = []
    for name, _p, _r, f1, acc, (_wall, cpu) in rows_for(tracks, preds, range(len(tracks)))[1:]:
        rows.append(row(f"vocals {name} F1 (1 s hops)", f1, "ratio", note=note))
        rows.append(row(f"vocals {name} instrumental accuracy", acc, "ratio", note=note))
        if name in names:
            rows.append(row(f"vocals {name} CPU s/min audio", cpu, "s", limit=budget_s_per_min(seconds),
                            note=f"{seconds:.0f} s clips; limit = encoder/10 (whole 30 s windows)"))
    minutes = 1 if quick else 4
    for name, cost in song_length_cost(tracks, names, minutes=minutes).items():
        rows.append(row(f"vocals {name} CPU s/min, one long track", cost, "s", limit=budget_s_per_min(minutes * 60),
                        note=f"{minutes} min track; limit = encoder/10"))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracks", type=int, default=60)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--detectors", default="silero,spectral")
    ap.add_argument("--voice", default="synth", help="comma list of synth, espeak, espeak-sung (espeak needs espeak-ng)")
    ap.add_argument("--fit-spectral", action="store_true")
    ap.add_argument("--quick", action="store_true", help="run_all's rows, small sizes")
    ap.add_argument("--json", metavar="PATH", help="with --quick or alone: also write run_all's rows as JSON")
    args = ap.parse_args(argv)
    if args.quick or args.json:
        rows = run(args.quick)
        print_rows(rows, title="vocal detection")
        if args.json:
            write_json(rows, args.json)
        return 0
    voices = [v for v in args.voice.split(",") if v]
    if args.fit_spectral:
        fit_spectral(args.tracks, args.seconds, voices)
        return 0
    t0 = time.perf_counter()
    tracks = load(voices, args.tracks, args.seed, args.seconds)
    print(f"# generated in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    preds = predict(tracks, [n for n in args.detectors.split(",") if n])
    print(f"## all voices {voices}")
    print_table(rows_for(tracks, preds, range(len(tracks))), tracks)
    if len(voices) > 1:
        for v in voices:  # each family's songs with all instrumentals: the detectors differ a lot per family
            keep = [i for i, t in enumerate(tracks) if t.kind == "instrumental" or f"-{v}-" in t.name]
            print(f"\n## songs with voice {v!r} (and all instrumentals)")
            print_table(rows_for(tracks, preds, keep), [tracks[i] for i in keep])
    print("\n## CPU s / min of audio on one 4-minute track")
    for name, cost in song_length_cost(tracks, list(preds)[2:]).items():
        print(f"| {name} | {cost:.3f} |")
    return 0


def load(voices: list[str], n_tracks: int, seed: int, seconds: float) -> list[EvalTrack]:
    """n_tracks split over the voice families; family i uses seed + 10*i so no two families share a track."""
    per = max(1, n_tracks // len(voices))
    return [t for i, v in enumerate(voices) for t in make_evalset(per, seed + 10 * i, seconds, v)]


if __name__ == "__main__":
    sys.exit(main())
