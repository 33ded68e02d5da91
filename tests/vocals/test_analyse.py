"""analyse(): detector → plan, instrumental handling, and bad input that must give a plan, never an exception."""
from __future__ import annotations

import functools

import numpy as np
import pytest

from livi_cli import constants as C
from livi_cli.errors import ConfigError
from livi_cli.vocals import WindowPlan, analyse
from livi_cli.vocals import evalset

SR = C.SAMPLE_RATE
make_track = functools.lru_cache(evalset.make_track)  # deterministic: share generated audio between tests


def check_plan(plan: WindowPlan, duration: float) -> None:
    """Invariants every plan keeps, whatever the input."""
    assert isinstance(plan, WindowPlan)
    for a, b in plan.spans:
        assert 0 <= a < b <= duration + 1e-6 and b - a <= C.WINDOW_SECONDS + 1e-6
    if plan.mean_vocalness is not None:
        assert 0.0 <= plan.mean_vocalness <= 1.0
        assert all(0.0 <= s.vocalness <= 1.0 for s in plan.segments)
    if plan.instrumental:
        assert plan.spans == [] or plan.spans[0][0] == 0.0


def test_none_detector_gives_plain_windows():
    plan = analyse(np.zeros(SR * 70, dtype=np.float32), "none")
    assert plan.spans == [(0.0, 30.0), (30.0, 60.0), (60.0, 70.0)]
    assert plan.segments == [] and plan.mean_vocalness is None and plan.instrumental is False


def test_unknown_detector_is_a_config_error():
    with pytest.raises(ConfigError):
        analyse(np.zeros(SR, dtype=np.float32), "nope")


def test_silence_is_instrumental_unless_asked():
    wave = np.zeros(SR * 45, dtype=np.float32)
    plan = analyse(wave)
    assert plan.instrumental and plan.spans == [] and plan.mean_vocalness < 0.1
    assert len(plan.segments) == 45
    plan = analyse(wave, include_instrumental=True)
    assert plan.instrumental and plan.spans == [(0.0, 30.0), (30.0, 45.0)]


def test_thresholds_are_applied(monkeypatch):
    wave = make_track(3, 20.0, "song").wave
    everything = analyse(wave, "spectral", threshold=-1.0, instrumental_threshold=-1.0)
    assert not everything.instrumental and everything.spans == [(0.0, 20.0)]
    nothing = analyse(wave, "spectral", instrumental_threshold=1.01)
    assert nothing.instrumental and nothing.spans == []


def test_synthetic_song_gets_windows_around_the_voice_with_spectral():
    track = make_track(21, 30.0, "song")
    plan = analyse(track.wave, "spectral")
    check_plan(plan, 30.0)
    assert not plan.instrumental and plan.spans
    assert len(plan.segments) == 30
    covered = np.zeros(30, bool)
    for a, b in plan.spans:
        covered[int(a):int(np.ceil(b))] = True
    labels = track.labels(1.0)
    assert covered[labels].mean() > 0.8  # most sung seconds end up inside a window


def test_max_windows_caps_the_plan():
    wave = np.random.default_rng(1).normal(0, 0.1, SR * 100).astype(np.float32)
    plan = analyse(wave, "spectral", threshold=-1.0, instrumental_threshold=-1.0, max_windows=2)
    assert len(plan.spans) == 2 and plan.spans == sorted(plan.spans)
    assert set(plan.spans) <= {(0.0, 30.0), (30.0, 60.0), (60.0, 90.0), (90.0, 100.0)}
    assert len(analyse(wave, "spectral", threshold=-1.0, instrumental_threshold=-1.0, max_windows=0).spans) == 4


BAD_INPUTS = {
    "empty": lambda rng: np.zeros(0, dtype=np.float32),
    "one-sample": lambda rng: np.ones(1, dtype=np.float32),
    "two-seconds": lambda rng: make_track(7, 2.0, "song").wave,
    "pure-noise": lambda rng: rng.normal(0, 0.3, SR * 20).astype(np.float32),
    "dc-offset": lambda rng: make_track(8, 10.0, "song").wave + 0.8,
    "clipped": lambda rng: np.clip(make_track(8, 10.0, "song").wave * 30, -1, 1),
    "over-full-scale": lambda rng: make_track(8, 10.0, "song").wave * 30,
    "nan-and-inf": lambda rng: np.where(rng.random(SR * 5) < 0.01, np.nan, rng.normal(0, 0.1, SR * 5)),
    "float64-int-range": lambda rng: rng.normal(0, 8000, SR * 5),
}


@pytest.mark.parametrize("detector", ["default", "spectral", "none"])
@pytest.mark.parametrize("kind", sorted(BAD_INPUTS))
def test_bad_input_gives_a_defined_plan(kind, detector):
    wave = BAD_INPUTS[kind](np.random.default_rng(0))
    plan = analyse(wave, detector)
    check_plan(plan, len(wave) / SR)
    if detector != "none" and kind in ("empty", "one-sample"):
        assert plan.instrumental and plan.spans == []


def test_two_second_vocal_file_gets_one_short_window():
    wave = make_track(7, 2.0, "song").wave
    plan = analyse(wave, "spectral", threshold=-1.0, instrumental_threshold=-1.0)
    assert plan.spans == [(0.0, 2.0)]


def test_three_hour_silent_file_is_cheap_and_instrumental():
    wave = np.zeros(SR * 3 * 3600, dtype=np.float32)  # 691 MB: the detector must not copy it whole
    plan = analyse(wave)
    assert plan.instrumental and plan.spans == [] and len(plan.segments) == 3 * 3600


def test_long_low_noise_file_with_spectral_detector():
    rng = np.random.default_rng(0)
    wave = (rng.normal(0, 1e-4, SR * 720)).astype(np.float32)  # 12 min: crosses the 10-minute chunk boundary
    plan = analyse(wave, "spectral")
    assert plan.instrumental and len(plan.segments) == 720
