"""Detector registry, output contract, Silero's chunked batching, the spectral detector on synthetic songs."""
from __future__ import annotations

import numpy as np
import pytest

from livi_cli import constants as C
from livi_cli.errors import ConfigError
from livi_cli.vocals import available_detectors, detect, get_detector
from livi_cli.vocals.detectors import DEFAULT_DETECTOR, HOP_SECONDS, sanitise, to_segments
from livi_cli.vocals.evalset import make_track

SR = C.SAMPLE_RATE


def test_registry_names():
    names = available_detectors()
    assert {"default", "none", "silero", "spectral"} <= set(names)
    assert get_detector("none") is None
    assert get_detector("default") is get_detector(DEFAULT_DETECTOR)
    assert get_detector(" Spectral ") is get_detector("spectral")
    with pytest.raises(ConfigError, match="unknown vocal detector 'whisperish'"):
        get_detector("whisperish")


def test_to_segments_last_segment_ends_at_duration():
    segs = to_segments(np.array([0.2, 1.4, -0.1]), 2.5)
    assert [(s.start, s.end) for s in segs] == [(0.0, 1.0), (1.0, 2.0), (2.0, 2.5)]
    assert [s.vocalness for s in segs] == [0.2, 1.0, 0.0]  # clipped to [0, 1]


def test_sanitise_removes_nan_dc_and_clips():
    wave = np.full(1000, 0.7, dtype=np.float32)
    wave[::2] += 3.0
    wave[5] = np.nan
    out = sanitise(wave)
    assert np.isfinite(out).all() and np.abs(out).max() <= 1.0
    assert abs(float(out.mean())) < 0.05


@pytest.mark.parametrize("name", ["silero", "spectral"])
def test_output_contract(name):
    wave = make_track(11, 7.5, "song").wave
    v = get_detector(name).vocalness(wave)
    assert v.shape == (8,)  # ceil(7.5 s / 1 s hop)
    assert np.all((v >= 0) & (v <= 1))
    segs = detect(wave, name)
    assert len(segs) == 8 and segs[-1].end == pytest.approx(7.5)


@pytest.mark.parametrize("name", ["silero", "spectral"])
def test_digital_silence_is_not_vocal(name):
    v = get_detector(name).vocalness(np.zeros(SR * 20, dtype=np.float32))
    assert v.shape == (20,) and v.max() < 0.1


def test_silero_chunked_batch_matches_a_plain_streaming_run():
    """The batched 8 s chunks (with warm-up context) must agree with running the model over the whole track."""
    import torch

    detector = get_detector("silero")
    rng = np.random.default_rng(0)
    wave = make_track(5, 12.0, "song").wave + rng.normal(0, 0.05, SR * 12).astype(np.float32)
    batched = detector.vocalness(wave)
    model = detector._load()
    model.reset_states()
    x = torch.from_numpy(sanitise(wave))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny per-frame ops: threading only adds overhead
    try:
        with torch.inference_mode():
            frames = [float(model(x[i:i + 512], SR)) for i in range(0, len(x) - 511, 512)]
    finally:
        torch.set_num_threads(threads)
    streamed = np.array([np.mean(frames[int(h * 31.25):int((h + 1) * 31.25)]) for h in range(12)])
    assert np.abs(batched - streamed).mean() < 0.05


def test_spectral_separates_synthetic_songs_from_instrumentals():
    songs = [make_track(s, 12.0, "song") for s in (101, 102, 103)]
    instrumentals = [make_track(s, 12.0, "instrumental") for s in (104, 105, 106)]
    det = get_detector("spectral")
    song_means = [det.vocalness(t.wave).mean() for t in songs]
    inst_means = [det.vocalness(t.wave).mean() for t in instrumentals]
    assert min(song_means) > max(inst_means)
    truth = np.concatenate([t.labels(HOP_SECONDS) for t in songs])
    pred = np.concatenate([det.vocalness(t.wave) for t in songs]) > 0.5
    assert (truth == pred).mean() > 0.7


def test_detectors_do_not_change_torch_threads():
    import torch

    before = torch.get_num_threads()
    get_detector("silero").vocalness(make_track(1, 3.0, "song").wave)
    assert torch.get_num_threads() == before


def test_silero_is_safe_from_several_threads():
    """The scan runs detection in worker threads: concurrent calls must give the same answers as serial ones."""
    from concurrent.futures import ThreadPoolExecutor

    detector = get_detector("silero")
    rng = np.random.default_rng(4)
    waves = [make_track(s, 6.0, "song").wave + rng.normal(0, 0.02, SR * 6).astype(np.float32) for s in (31, 32, 33)]
    serial = [detector.vocalness(w) for w in waves]
    with ThreadPoolExecutor(max_workers=3) as pool:
        parallel = list(pool.map(detector.vocalness, waves * 2))
    for got, want in zip(parallel, serial * 2):
        np.testing.assert_allclose(got, want, atol=1e-6)
