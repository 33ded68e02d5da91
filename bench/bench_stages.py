"""Every stage of embedding a track, per 4-minute track and per 30 s window, plus end-to-end and scan memory.

Stages: decode (FLAC and MP3, native rate), resample (soxr HQ 44.1 kHz → 16 kHz), load_audio (both),
vocal detection (the default detector), log-mel (WhisperFeatureExtractor, 128 bins), encoder and head (turbo
size, random weights; shared with bench_embed so the encoder runs once per precision), index add and query
(hnswlib with the library's parameters, and exact numpy search). End-to-end = the sum of the stages for one
4-minute track with 8 windows (every 30 s of it: an upper bound, vocal windowing usually keeps fewer),
compared with the paper's GPU reference (0.22 s inference + 1.67 s preprocessing per track).
Peak resident memory: ru_maxrss of a subprocess running `livi scan` with a tiny model over a small
synthetic library, against the same subprocess only importing livi's stack.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, main, row, timeit  # noqa: E402

TRACK_SECONDS = 240.0
NATIVE_SR = 44_100
WINDOWS_PER_TRACK = 8  # 240 s / 30 s
REF_INFERENCE = 0.22  # s per track on a GPU (paper)
REF_PREPROCESS = 1.67


def synth_track(seconds: float, sr: int = NATIVE_SR, seed: int = 0):
    """Stereo harmonic melody with a little noise: a stand-in for a song (content does not change costs)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    f0 = 110.0 * 2 ** (rng.integers(0, 24, size=int(seconds * 4) + 1) / 12)
    f = f0[(t * 4).astype(int)]
    phase = 2 * np.pi * np.cumsum(f) / sr
    mono = sum(np.sin(h * phase) / h for h in range(1, 6)) * 0.2 + 0.01 * rng.standard_normal(n)
    mono = mono.astype(np.float32)
    return np.stack([mono, 0.8 * mono], axis=1)


def audio_rows(tmp: Path, quick: bool) -> tuple[list[dict], dict]:
    import numpy as np
    import soundfile as sf
    import soxr

    from livi_cli.audio.decode import load_audio

    seconds = 60.0 if quick else TRACK_SECONDS
    scale = TRACK_SECONDS / seconds  # quick mode times a 1-minute clip and scales to 4 minutes
    stereo = synth_track(seconds)
    paths = {"flac": tmp / "track.flac", "mp3": tmp / "track.mp3"}
    sf.write(paths["flac"], stereo, NATIVE_SR)
    sf.write(paths["mp3"], stereo, NATIVE_SR, format="MP3")
    rep = 1 if quick else 3
    rows, per_track = [], {}
    for fmt, path in paths.items():
        secs = timeit(lambda: sf.read(path, dtype="float32"), repeat=rep) * scale
        rows.append(_pair(f"decode {fmt} (native 44.1 kHz stereo)", secs, "soundfile, no resampling"))
    mono = stereo.mean(axis=1)
    secs = timeit(lambda: soxr.resample(mono, NATIVE_SR, 16_000, quality="HQ"), repeat=rep) * scale
    rows.append(_pair("resample 44.1k→16k mono", secs, "soxr HQ"))
    for fmt, path in paths.items():
        secs = timeit(lambda: load_audio(path), repeat=rep) * scale
        per_track[f"load_{fmt}"] = secs
        rows.append(_pair(f"load_audio {fmt} (decode+mix+resample)", secs, "livi_cli.audio.decode"))
    wave = load_audio(paths["flac"])
    if quick:  # later stages want the full 4 minutes: repeat the clip
        wave = np.tile(wave, int(scale))
    return rows, {"wave": wave, **per_track}


def _pair(name: str, secs_per_track: float, note: str) -> dict:
    return row(name, secs_per_track, "s/track", note=f"{note}; /window = {secs_per_track / WINDOWS_PER_TRACK:.4f} s")


def vocal_rows(wave, quick: bool) -> tuple[list[dict], float, int]:
    from livi_cli.vocals import analyse

    plan = analyse(wave, "default")
    secs = timeit(lambda: analyse(wave, "default"), repeat=1 if quick else 2)
    note = f"analyse(detector='default'): {len(plan.spans)} windows, instrumental={plan.instrumental}"
    return [_pair("vocal detection", secs, note)], secs, len(plan.spans)


def logmel_rows(wave, quick: bool) -> tuple[list[dict], float]:
    from transformers import WhisperFeatureExtractor

    from livi_cli.vocals import cut_windows, plain_windows

    fe = WhisperFeatureExtractor(feature_size=128)
    windows = cut_windows(wave, plain_windows(len(wave) / 16_000))
    secs = timeit(lambda: fe(list(windows), sampling_rate=16_000, return_tensors="np"), repeat=1 if quick else 3)
    per_window = secs / len(windows)
    return [row("log-mel", per_window, "s/window", note=f"WhisperFeatureExtractor 128 bins, {len(windows)} windows"),
            row("log-mel", per_window * WINDOWS_PER_TRACK, "s/track", note="8 windows")], per_window * WINDOWS_PER_TRACK


def index_rows(quick: bool) -> list[dict]:
    import time

    import hnswlib
    import numpy as np

    from livi_cli.library import index as lib_index

    n, dim, k = (5_000 if quick else 20_000), 768, 100
    rng = np.random.default_rng(0)
    data = rng.standard_normal((n, dim)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    queries = data[rng.choice(n, 200, replace=False)]
    index = hnswlib.Index(space="cosine", dim=dim)
    index.init_index(max_elements=n, M=lib_index.HNSW_M, ef_construction=lib_index.HNSW_EF_CONSTRUCTION)
    start = time.perf_counter()
    index.add_items(data, np.arange(n))
    add = (time.perf_counter() - start) / n
    index.set_ef(lib_index.HNSW_EF_SEARCH)
    q = timeit(lambda: [index.knn_query(v, k=k) for v in queries], repeat=2) / len(queries)
    exact = timeit(lambda: [np.argpartition(-(data @ v), k)[:k] for v in queries], repeat=2) / len(queries)
    params = f"M={lib_index.HNSW_M}, ef_c={lib_index.HNSW_EF_CONSTRUCTION}, ef={lib_index.HNSW_EF_SEARCH}"
    threads = f"{os.cpu_count()} threads"
    return [
        row("index add (hnswlib)", add * 1000, "ms/track", note=f"{n} x {dim}, {params}, {threads}"),
        row("index query (hnswlib)", q * 1000, "ms/query", note=f"k={k}, one query at a time, {n} tracks"),
        row("index query (exact numpy)", exact * 1000, "ms/query", note=f"k={k}, {n} tracks (used up to "
            f"{lib_index.EXACT_SEARCH_MAX})"),
    ]


def model_rows(quick: bool, pre_track: float) -> list[dict]:
    import bench_embed as be

    head = be.head_seconds("cpu", 1, quick)
    rows = [row("head cpu", head, "s/window", note="full-size head, fp32, batch 1")]
    rows.append(row("preprocessing total", pre_track, "s/track", limit=REF_PREPROCESS,
                    note="load_audio + vocal detection + log-mel (8 windows); limit = paper GPU reference"))
    for device, precisions in be.devices():
        if device != "cpu":
            head = be.head_seconds(device, 8, quick) / 8
        for precision in precisions:
            res = be.encoder_result(device, precision, quick)
            enc = res["secs"]
            tag = f"{device} {precision}" + (" (estimated)" if res["estimated"] else "")
            infer = (enc + head) * WINDOWS_PER_TRACK
            rows += [
                row(f"encoder {tag}", enc, "s/window", note="turbo size, random weights (bench_embed)"),
                row(f"inference {tag}", infer, "s/track", limit=REF_INFERENCE,
                    note="8 windows x (encoder + head); limit = paper 0.22 s on a GPU"),
                row(f"end-to-end {tag}", infer + pre_track, "s/track", limit=REF_INFERENCE + REF_PREPROCESS,
                    note="4-minute track, sum of stages, no overlap of CPU and model work"),
            ]
            if device == "cpu":
                import torch

                idle = (res["cpu"] / torch.get_num_threads() + head) * WINDOWS_PER_TRACK + pre_track
                rows.append(row(f"end-to-end {tag}, idle-machine estimate", idle, "s/track",
                                limit=REF_INFERENCE + REF_PREPROCESS,
                                note="encoder from process CPU time / torch threads (see bench_embed)"))
    return rows


# ----------------------------------------------------------------- peak memory of a scan
RSS_SCRIPT = """
import resource, sys
sys.argv = ["livi"] + sys.argv[1:]
if sys.argv[1:] == ["--imports"]:
    import torch, transformers, livi_cli.embed  # noqa: F401  the stack a scan loads
else:
    from livi_cli.cli.app import main
    try:
        main()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
hwm = 0
try:
    with open("/proc/self/status") as fh:
        hwm = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    pass
usage = resource.getrusage
print("MAXRSS", hwm, usage(resource.RUSAGE_SELF).ru_maxrss, usage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def make_tiny_models(folder: Path) -> tuple[Path, Path]:
    """A tiny random Whisper saved like a hub snapshot and a tiny head in livi's format."""
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    from livi_cli.model.checkpoint import save_head
    from livi_cli.model.head import HeadConfig, LiviHead
    from livi_cli.model.whisper import TINY

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    whisper = folder / "tiny-whisper"
    torch.manual_seed(0)
    WhisperForConditionalGeneration(WhisperConfig(**TINY, max_source_positions=1500)).save_pretrained(whisper)
    WhisperFeatureExtractor(feature_size=TINY["num_mel_bins"]).save_pretrained(whisper)
    head = folder / "tiny_head.pt"
    save_head(head, LiviHead(HeadConfig(dim_whisper=TINY["d_model"], dim_hiddens=(48,), dim_embed=32, num_heads=2)))
    return whisper, head


def _maxrss_mib(args: list[str], env: dict) -> float:
    """Peak resident memory of `livi ARGS` in a subprocess, MiB.

    Linux carries ru_maxrss across exec: a child started from this (large, model-holding) process reports
    our high-water mark, not its own. VmHWM belongs to the new address space, so it is used when present;
    the scan's prepare workers are threads, so the process's own peak is the scan's peak."""
    proc = subprocess.run([sys.executable, "-c", RSS_SCRIPT, *args], env=env, capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("MAXRSS")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"`livi {' '.join(args)}` failed: {(proc.stderr or proc.stdout).strip()[-300:]}")
    _, hwm_kib, self_kib, children_kib = line.split()
    own = int(hwm_kib) or int(self_kib)  # KiB on Linux
    return own / 1024


def scan_rss_rows(quick: bool) -> list[dict]:
    import soundfile as sf

    if not (ROOT / "livi_cli" / "cli" / "scan_cmd.py").is_file():
        return [row("peak RSS of a scan", float("nan"), "MiB", note="skipped: livi scan not available yet")]
    tmp = Path(tempfile.mkdtemp(prefix="livi-bench-rss-"))
    try:
        whisper, head = make_tiny_models(tmp)
        music = tmp / "music"
        music.mkdir()
        n_files, seconds = (4, 20.0) if quick else (12, 60.0)
        for i in range(n_files):
            sf.write(music / f"track{i:02d}.flac", synth_track(seconds, seed=i), NATIVE_SR)
        env = dict(os.environ, LIVI_HOME=str(tmp / "home"), LIVI_CONFIG=str(tmp / "none.toml"),
                   LIVI_WHISPER=str(whisper), LIVI_HEAD=str(head), LIVI_DEVICE="cpu", LIVI_PRECISION="fp32",
                   HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", NO_COLOR="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        base = _maxrss_mib(["--imports"], env)
        scan = _maxrss_mib(["scan", str(music)], env)
        note = f"{n_files} x {seconds:.0f} s FLAC 44.1 kHz stereo, tiny model; VmHWM of the subprocess"
        return [row("peak RSS of a scan", scan, "MiB", note=note),
                row("RSS of importing the stack", base, "MiB", note="python + torch + transformers + livi_cli"),
                row("scan RSS above imports", scan - base, "MiB", note="what the scan itself adds")]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(quick: bool) -> list[dict]:
    tmp = Path(tempfile.mkdtemp(prefix="livi-bench-stages-"))
    try:
        rows, audio = audio_rows(tmp, quick)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    vrows, vocal_secs, _ = vocal_rows(audio["wave"], quick)
    lrows, logmel_secs = logmel_rows(audio["wave"], quick)
    rows += vrows + lrows + index_rows(quick)
    rows += model_rows(quick, audio["load_flac"] + vocal_secs + logmel_secs)
    rows += scan_rss_rows(quick)
    return rows


if __name__ == "__main__":
    main(run, title="stages of embedding a 4-minute track")
