"""The synthetic evaluation set: seeded, labelled where the voice sounds, kinds as asked."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from livi_cli import constants as C
from livi_cli.vocals.evalset import make_evalset, make_track


def test_seeded_and_labelled():
    a = make_track(3, 6.0, "song")
    b = make_track(3, 6.0, "song")
    assert np.array_equal(a.wave, b.wave) and a.wave.dtype == np.float32 and len(a.wave) == 6 * C.SAMPLE_RATE
    assert np.abs(a.wave).max() <= 1.0
    assert a.voiced.shape == (600,) and 0.2 < a.voiced.mean() < 1.0
    assert a.labels(1.0).shape == (6,)


def test_instrumental_has_no_voice_and_differs_from_the_song():
    inst = make_track(3, 6.0, "instrumental")
    assert not inst.voiced.any() and not inst.labels(1.0).any()
    assert np.sqrt(np.mean(inst.wave ** 2)) > 0.01  # accompaniment is audible


def test_voiced_frames_carry_the_voice():
    """Removing the accompaniment (a cappella), voiced frames are much louder than unvoiced ones."""
    t = make_track(12, 8.0, "acapella")
    frames = t.wave[: len(t.voiced) * 160].reshape(-1, 160)
    rms = np.sqrt(np.mean(frames ** 2, axis=1))
    assert rms[t.voiced].mean() > 10 * rms[~t.voiced].mean()


def test_make_evalset_mixes_kinds():
    kinds = {t.kind for t in make_evalset(12, seed=0, seconds=2.0)}
    assert {"song", "instrumental"} <= kinds


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs the espeak-ng program")
def test_espeak_voice_is_seeded_and_leaves_no_temp_files(tmp_path, monkeypatch):
    import tempfile

    from livi_cli.vocals.evalset import speak

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    a_voice, a_env = speak(np.random.default_rng(3), 4.0)
    b_voice, _ = speak(np.random.default_rng(3), 4.0)
    assert len(a_voice) == len(a_env) == 4 * 16000 and a_env.any()
    np.testing.assert_array_equal(a_voice, b_voice)
    assert list(tmp_path.iterdir()) == []  # the per-track temporary folder is removed
