"""The audio fingerprint on arrays: copies of one recording match, other recordings do not."""
from __future__ import annotations

import numpy as np
import pytest
import soxr

from bench.bench_groups import render, song_versions, _melody
from livi_cli.groups import fingerprint as F

SR = 16_000


@pytest.fixture(scope="module")
def songs():
    """Two unrelated songs plus the cover and live take of the first, at 16 kHz."""
    a = song_versions(0, n_notes=20)
    b = song_versions(1, n_notes=20, kinds=("orig",))
    to16 = lambda w: soxr.resample(w, 44_100, SR).astype(np.float32)  # noqa: E731
    return {"a": to16(a["orig"]), "a_cover": to16(a["cover"]), "a_live": to16(a["live"]), "b": to16(b["orig"])}


def test_roundtrip_bytes_and_size(songs):
    fp = F.fingerprint(songs["a"])
    dec = F.decode(fp)
    assert dec.words.dtype == np.uint32 and len(dec.words) > 50
    assert F.encode(dec) == fp
    assert abs(dec.duration - len(F.trim_silence(songs["a"])) / SR) < 0.01
    # 4 bytes per 62.5 ms frame, at most 90 s: compact enough for the catalog
    assert len(fp) <= 16 + 4 * 16 * min(dec.duration, F.MAX_SECONDS)


def test_identical_wave_similarity_one(songs):
    fp = F.fingerprint(songs["a"])
    assert F.similarity(fp, fp) == 1.0


def test_gain_resample_noise_and_trim_still_match(songs):
    a = songs["a"]
    base = F.fingerprint(a)
    resampled = soxr.resample(soxr.resample(a, SR, 22_050), 22_050, SR).astype(np.float32)
    noisy = a + np.random.default_rng(0).normal(0, 0.003, len(a)).astype(np.float32)
    trimmed = F.trim_silence(a)[1234:]  # trimmed silence + 77 ms of audio: not a whole hop
    padded = np.concatenate([np.zeros(SR * 3, np.float32), 0.5 * a])
    for variant in (0.3 * a, resampled, noisy, trimmed, padded):
        m = F.match(base, F.fingerprint(variant))
        assert m.similarity > 0.75 and m.duration_ok, m


def test_other_recordings_do_not_match(songs):
    a = F.fingerprint(songs["a"])
    for other in ("a_cover", "a_live", "b"):
        m = F.match(a, F.fingerprint(songs[other]))
        assert m.similarity < F.DUPLICATE_SIMILARITY - 0.2, (other, m)
        assert not F.same_recording(a, F.fingerprint(songs[other]))


def test_duration_check_rejects_an_edit(songs):
    a = songs["a"]
    edit = a[: len(a) // 2]  # same audio, half the song: a radio edit is not the same file's copy
    m = F.match(F.fingerprint(a), F.fingerprint(edit))
    assert m.similarity > 0.9 and not m.duration_ok
    assert not F.same_recording(F.fingerprint(a), F.fingerprint(edit))


def test_silence_and_short_input():
    empty = F.decode(F.fingerprint(np.zeros(SR * 5, np.float32)))
    assert empty.duration == 0.0 and len(empty.words) == 0
    assert len(F.decode(F.fingerprint(np.ones(100, np.float32) * 0.1)).words) == 0
    assert F.similarity(F.fingerprint(np.zeros(10, np.float32)), F.fingerprint(np.zeros(10, np.float32))) == 0.0


def test_bad_bytes_raise_value_error():
    with pytest.raises(ValueError):
        F.decode(b"xx")
    with pytest.raises(ValueError):
        F.decode(b"NOPE" + bytes(20))
    good = F.fingerprint(render(_melody(np.random.default_rng(3), 8), seed=3, sr=SR))
    with pytest.raises(ValueError):
        F.decode(good[:-2])  # truncated blob
