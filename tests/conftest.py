"""Shared fixtures: tiny random models saved to disk and loaded through the real loading code,
synthetic audio, and an isolated environment (no network, data dirs under tmp_path)."""
from __future__ import annotations

import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO.parent / "shared" / "golden"
TINY_HEAD = dict(dim_whisper=64, dim_hiddens=(48,), dim_embed=32, num_heads=2, mlp_ratio=2.0)


@pytest.fixture(scope="session")
def golden() -> Path:
    assert GOLDEN.is_dir(), f"golden data not found at {GOLDEN}"
    return GOLDEN


@pytest.fixture(scope="session")
def tiny_whisper_dir(tmp_path_factory) -> Path:
    """A random tiny Whisper (d_model 64, 128 mel bins) saved like a hub snapshot.

    init_std 0.2 (not 0.02) so the audio, not the sinusoidal positions, dominates the states and
    different clips get clearly different embeddings."""
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    from livi_cli.model.whisper import TINY

    path = tmp_path_factory.mktemp("tiny-whisper")
    torch.manual_seed(1234)
    model = WhisperForConditionalGeneration(WhisperConfig(**TINY, max_source_positions=1500, init_std=0.2)).eval()
    model.save_pretrained(path)
    WhisperFeatureExtractor(feature_size=TINY["num_mel_bins"]).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_head_path(tmp_path_factory) -> Path:
    """A random tiny head (64 → 32) in livi's self-describing format."""
    import torch

    from livi_cli.model.checkpoint import save_head
    from livi_cli.model.head import HeadConfig, LiviHead

    torch.manual_seed(99)
    head = LiviHead(HeadConfig(**TINY_HEAD))
    # Layer-scale starts at 1e-4 and weights at std 0.02, which make every pooled vector nearly
    # the CLS token; a trained head has grown them, so give the random one trained-like magnitudes.
    with torch.no_grad():
        head.pooling.attn.gamma_1.fill_(1.0)
        head.pooling.attn.gamma_2.fill_(1.0)
        for module in head.modules():
            if isinstance(module, torch.nn.Linear):
                torch.nn.init.normal_(module.weight, std=0.2)
    path = tmp_path_factory.mktemp("tiny-head") / "tiny_head.pt"
    save_head(path, head)
    return path


@pytest.fixture
def tiny_env(monkeypatch, tmp_path, tiny_whisper_dir, tiny_head_path) -> Path:
    """Environment as a user with the tiny models installed would have it. Returns LIVI_HOME."""
    home = tmp_path / "livi-home"
    monkeypatch.setenv("LIVI_HOME", str(home))
    monkeypatch.setenv("LIVI_CONFIG", str(tmp_path / "no-config.toml"))
    monkeypatch.setenv("LIVI_WHISPER", str(tiny_whisper_dir))
    monkeypatch.setenv("LIVI_HEAD", str(tiny_head_path))
    monkeypatch.setenv("LIVI_DEVICE", "cpu")
    monkeypatch.setenv("LIVI_PRECISION", "fp32")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    # Synthetic tones have no voice: the default detector would (rightly) call them instrumental.
    # Tests of the detector itself select it explicitly.
    monkeypatch.setenv("LIVI_VOCAL_DETECTOR", "none")
    for var in ("LIVI_LIBRARY", "LIVI_BATCH_SIZE", "LIVI_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def embedder(tiny_env):
    from livi_cli.embed import Embedder

    return Embedder()


def synth_music(seconds: float, seed: int = 0, sr: int = 44100, stereo: bool = False) -> np.ndarray:
    """A short harmonic melody with envelopes: different seeds give audibly different clips."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    out = np.zeros(n, np.float64)
    note_len = 0.25 + 0.25 * rng.random()
    for start in np.arange(0.0, seconds, note_len):
        f0 = 110.0 * 2 ** (rng.integers(0, 36) / 12)
        a, b = int(start * sr), min(n, int((start + note_len) * sr))
        tt = t[a:b] - start
        env = np.exp(-3.0 * tt / note_len)
        for h in range(1, 6):
            out[a:b] += env * np.sin(2 * np.pi * f0 * h * tt) / h
    out += 0.01 * rng.standard_normal(n)
    out = 0.5 * out / max(1e-9, np.abs(out).max())
    wave = out.astype(np.float32)
    return np.stack([wave, 0.8 * wave], axis=1) if stereo else wave


@pytest.fixture
def make_audio(tmp_path):
    """make_audio(name, seconds=4, seed=0, sr=44100, stereo=False) → path written with soundfile."""
    import soundfile as sf

    def _make(name: str, seconds: float = 4.0, seed: int = 0, sr: int = 44100, stereo: bool = False) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), synth_music(seconds, seed, sr, stereo), sr)
        return path

    return _make
