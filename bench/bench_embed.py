"""Turbo-size Whisper encoder (random weights) and the LIVI head: speed per 30 s window, precision effects.

Rows: matmul ceiling (GFLOP/s, fp32 and bf16), encoder s/window + windows/s + achieved GFLOP/s per precision
(CPU fp32 and bf16 autocast; CUDA fp32/bf16/fp16 when available) as a ratio to the matmul ceiling of the
same dtype, the head alone, and the cosine between fp32 and low-precision track embeddings.
The encoder on a 2-core CPU takes ~17 s per window in fp32: default mode runs 2 windows, --quick 1.
"""
from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import main, row, timeit  # noqa: E402

FLOPS = 2.27e12  # constants.ENCODER_FLOPS_PER_WINDOW (kept importable without livi_cli on the path)


def devices() -> list[tuple[str, list[str]]]:
    """(device, precisions) to time: CPU fp32 + bf16 always; CUDA fp32, bf16, fp16 when present."""
    import torch

    out = [("cpu", ["fp32", "bf16"])]
    if torch.cuda.is_available():
        out.append(("cuda", ["fp32", "bf16", "fp16"]))
    return out


PROXY_LAYERS = 2  # emulated-bf16 CPUs: time this many turbo layers in both precisions and scale fp32's full time
PROXY_LAYERS_QUICK = 1


def native_bf16(device: str) -> bool:
    if device != "cpu":
        return True
    from livi_cli.model.device import cpu_has_native_bf16

    return cpu_has_native_bf16() or os.environ.get("LIVI_BENCH_FULL_BF16") == "1"


@lru_cache(maxsize=None)
def models(layers: int | None = None):
    """Turbo encoder (random weights, seed 0; `layers` truncates it) + feature extractor + full-size head."""
    import torch

    from livi_cli.model.head import HeadConfig, LiviHead
    from livi_cli.model.whisper import random_encoder

    encoder, features = random_encoder("turbo", seed=0) if layers is None else _truncated(layers)
    torch.manual_seed(0)
    return encoder, features, _trained_like(LiviHead(HeadConfig()).eval())


def _trained_like(head):
    """A fresh head's layer-scale (1e-4) and small weights make every output nearly its CLS token, whatever
    the input, so a precision comparison through it would read ~1.0 regardless. Give it trained-like
    magnitudes: layer-scale 1 and variance-preserving weights (std 1/sqrt(fan_in))."""
    import torch

    with torch.no_grad():
        for name, param in head.named_parameters():
            if "gamma" in name:
                param.fill_(1.0)
        for module in head.modules():
            if isinstance(module, torch.nn.Linear):
                torch.nn.init.normal_(module.weight, std=module.in_features ** -0.5)
    return head


def _truncated(layers: int):
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    from livi_cli.model.whisper import TURBO

    torch.manual_seed(0)
    encoder = WhisperEncoder(WhisperConfig(**{**TURBO, "encoder_layers": layers})).eval().requires_grad_(False)
    return encoder, WhisperFeatureExtractor(feature_size=TURBO["num_mel_bins"])


@lru_cache(maxsize=None)
def features(n_windows: int):
    """Log-mel of n synthetic 30 s windows (noise + tones: content does not change the encoder's cost)."""
    import numpy as np

    from livi_cli import constants as C

    rng = np.random.default_rng(0)
    t = np.arange(C.WINDOW_SAMPLES) / C.SAMPLE_RATE
    waves = [0.1 * rng.standard_normal(C.WINDOW_SAMPLES) + 0.3 * np.sin(2 * np.pi * (220 + 50 * i) * t)
             for i in range(n_windows)]
    from transformers import WhisperFeatureExtractor

    fe = WhisperFeatureExtractor(feature_size=C.N_MELS_TURBO)
    return fe([w.astype(np.float32) for w in waves], sampling_rate=C.SAMPLE_RATE, return_tensors="np")["input_features"]


def embedder(device: str, precision: str, layers: int | None = None):
    from livi_cli.config import load_settings
    from livi_cli.embed import Embedder

    encoder, fe, head = models(layers)
    settings = load_settings(device=device, precision=precision, batch_size=1)
    return Embedder(settings, whisper_model=encoder, feature_extractor=fe, head_model=head)


@lru_cache(maxsize=None)
def encoder_timing(device: str, precision: str, n_windows: int, layers: int | None = None) -> dict:
    """The encoder alone (batch 1 on CPU, all n windows at once on GPU): best wall seconds per window,
    process CPU seconds per window (CPU only), the (n, 768) window embeddings through the head, and the
    encoder states of the first window (for a precision comparison before the head). Cached: bench_stages
    reuses it instead of running the 17+ s/window encoder again."""
    import time

    import numpy as np
    import torch

    emb = embedder(device, precision, layers)
    head = models(layers)[2].to(device)
    feats = features(n_windows)
    batch = 1 if device == "cpu" else n_windows  # a GPU needs a batch to be busy
    if device != "cpu":  # GPU: warm-up for kernel selection; not worth 17 s on CPU
        emb.encoder_states(feats[:batch])
    outs, best, cpu, first = [], float("inf"), float("inf"), None
    for i in range(0, n_windows, batch):
        _sync(device)
        start, start_cpu = time.perf_counter(), time.process_time()
        states = emb.encoder_states(feats[i:i + batch])
        _sync(device)
        best = min(best, (time.perf_counter() - start) / len(states))
        cpu = min(cpu, (time.process_time() - start_cpu) / len(states))
        if first is None:
            first = states[0].double().cpu().numpy()
        with torch.inference_mode():  # the head runs in fp32, as in the Embedder
            outs.append(head(states).cpu().numpy())
    if device != "cpu":  # a second timed pass: best of two
        _sync(device)
        start = time.perf_counter()
        emb.encoder_states(feats[:batch])
        _sync(device)
        best = min(best, (time.perf_counter() - start) / batch)
    return {"secs": best, "cpu": cpu, "out": np.concatenate(outs), "states": first}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


@lru_cache(maxsize=None)
def matmul_gflops(device: str, dtype: str, quick: bool) -> float:
    """Achieved GFLOP/s of the encoder's own largest GEMM (states x fc1: 1500·b x 1280 x 5120) in this dtype,
    a practical ceiling for the encoder on this device (torch.mm of square bf16 matrices takes a far slower
    path on AVX2 CPUs than nn.Linear does, so the ceiling uses F.linear like the model)."""
    import torch
    import torch.nn.functional as F

    rows = 1500 * (1 if device == "cpu" else 16)
    dt = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    x = torch.randn(rows, 1280, device=device).to(dt)
    w = torch.randn(5120, 1280, device=device).to(dt)

    def go():
        F.linear(x, w)
        _sync(device)

    secs = timeit(go, repeat=2 if quick or device == "cpu" else 20, warmup=1)
    return 2 * rows * 1280 * 5120 / secs / 1e9


@lru_cache(maxsize=None)
def encoder_result(device: str, precision: str, quick: bool) -> dict:
    """encoder_timing of the full turbo encoder, keys secs, cpu, out, states, estimated, n.

    On a CPU without native bf16, bf16 autocast is emulated and ~15-20x slower than fp32 (over 5 minutes
    per window on 2 cores), so the full bf16 run is replaced by an estimate: fp32's full time times the
    bf16/fp32 ratio of a PROXY_LAYERS-layer turbo encoder, whose fp32 outputs (`ref`, `ref_states`) are
    the reference for the precision comparison. LIVI_BENCH_FULL_BF16=1 runs the full model anyway."""
    n = (1 if quick else 2) if device == "cpu" else 8
    if precision == "fp32" or native_bf16(device):
        return {**encoder_timing(device, precision, n), "estimated": False, "n": n}
    full = encoder_result(device, "fp32", quick)
    layers = PROXY_LAYERS_QUICK if quick else PROXY_LAYERS
    ref = encoder_timing(device, "fp32", 1, layers)
    low = encoder_timing(device, precision, 1, layers)
    ratio = low["secs"] / ref["secs"]
    return {**low, "secs": full["secs"] * ratio, "cpu": full["cpu"] * low["cpu"] / ref["cpu"], "estimated": True,
            "n": 1, "ratio": ratio, "layers": layers, "ref": ref["out"], "ref_states": ref["states"]}


@lru_cache(maxsize=None)
def head_seconds(device: str, batch: int, quick: bool) -> float:
    """Head alone (fp32, as the Embedder runs it) on random (batch, 1500, 1280) encoder states, seconds per
    batch. Cached so bench_stages reports the same measurement."""
    import torch

    head = models()[2].to(device)
    states = torch.randn(batch, 1500, head.config.dim_whisper, device=device)

    def go():
        with torch.inference_mode():
            head(states)
        _sync(device)

    return timeit(go, repeat=2 if quick else 5, warmup=1)


def cosine(a, b) -> float:
    import numpy as np

    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def run(quick: bool) -> list[dict]:
    rows = []
    for device, precisions in devices():
        base = None
        for precision in precisions:
            res = encoder_result(device, precision, quick)
            secs = res["secs"]
            ceiling = matmul_gflops(device, precision, quick)
            tag = f"{device} {precision}{'' if precision == 'fp32' else ' autocast'}"
            how = (f"ESTIMATED: emulated bf16 is {res['ratio']:.1f}x fp32 on a {res['layers']}-layer proxy"
                   if res["estimated"] else (f"batch 1, best of {res['n']} windows" if device == "cpu"
                                             else f"batch {res['n']}"))
            rows += [
                row(f"encoder turbo {tag}", secs, "s/window", note=how),
                row(f"encoder turbo {tag}", 1 / secs, "windows/s", note="30 s windows"),
                row(f"encoder turbo {tag} achieved", FLOPS / secs / 1e9, "GFLOP/s", limit=ceiling,
                    note=f"2.27 TFLOP/window; limit = {precision} GEMM 1500x1280x5120 measured now"),
            ]
            if device == "cpu":
                import torch

                threads = torch.get_num_threads()
                rows += [row(f"encoder turbo {tag} CPU time", res["cpu"], "CPU s/window",
                             note="process CPU time (all threads): less sensitive to other load than wall"),
                         row(f"encoder turbo {tag} CPU time / threads", res["cpu"] / threads, "s/window",
                             note=f"{threads} torch threads: the wall time to expect on an idle machine")]
            if precision == "fp32":
                base = res
                continue
            ref, ref_states = (res["ref"], res["ref_states"]) if res["estimated"] else (base["out"], base["states"])
            where = f"{res['layers']}-layer proxy encoder" if res["estimated"] else "turbo encoder"
            cos_track = cosine(ref.mean(axis=0), res["out"].mean(axis=0))
            rows += [
                row(f"cosine fp32 vs {precision} track embedding ({device})", cos_track, "cosine", limit=1.0,
                    note=f"{where} + head, mean of {len(ref)} window(s), random weights"),
                row(f"1 - cosine fp32 vs {precision} track embedding ({device})", 1.0 - cos_track, "",
                    note="the same as a distance"),
                row(f"1 - cosine fp32 vs {precision} encoder states ({device})",
                    1.0 - cosine(ref_states, res["states"]), "", note=f"{where}, one window, 1500 x 1280 states"),
            ]
        for dt in precisions:
            rows.append(row(f"GEMM ceiling {device} {dt}", matmul_gflops(device, dt, quick), "GFLOP/s",
                            note="F.linear 1500x1280 @ 1280x5120 (the encoder's fc1)"))
        batch = 1 if device == "cpu" else 8
        hs = head_seconds(device, batch, quick)
        rows.append(row(f"head alone {device} fp32", hs / batch, "s/window", note=f"batch {batch}, 1500x1280 states"))
    return rows


if __name__ == "__main__":
    main(run, title="embedding: Whisper turbo encoder (random weights) + LIVI head")
