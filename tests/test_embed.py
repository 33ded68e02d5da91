"""The Embedder end to end on the tiny models, through the same loading code users hit."""
from __future__ import annotations

import numpy as np
import pytest

from livi_cli import constants as C
from livi_cli.embed import Embedder, track_vector


def test_embed_paths_in_several_formats(embedder, make_audio):
    a = embedder.embed_path(make_audio("a.flac", seconds=40, seed=1))
    b = embedder.embed_path(make_audio("b.mp3", seconds=5, seed=2))
    assert a.windows.shape == (2, 32) and b.windows.shape == (1, 32)  # 40 s → 2 windows, 5 s → 1
    assert a.spans == [(0.0, 30.0), (30.0, pytest.approx(40.0, abs=0.01))]
    for emb in (a, b):
        np.testing.assert_allclose(np.linalg.norm(emb.windows, axis=1), 1.0, atol=1e-5)
        assert abs(np.linalg.norm(emb.vector) - 1.0) < 1e-5
    assert float(a.vector @ b.vector) < 0.9999  # different audio, different embeddings


def test_deterministic_across_embedders(tiny_env, make_audio):
    path = make_audio("c.wav", seconds=6, seed=3)
    v1 = Embedder().embed_path(path).vector
    v2 = Embedder().embed_path(path).vector
    np.testing.assert_array_equal(v1, v2)


def test_batching_across_tracks_equals_one_by_one(tiny_env, make_audio):
    paths = [make_audio(f"t{i}.flac", seconds=s, seed=i) for i, s in enumerate([35, 4, 12])]
    emb = Embedder(batch_size=2)
    together = emb.encode([emb.prepare_path(p) for p in paths])
    alone = [emb.embed_path(p) for p in paths]
    for t, a in zip(together, alone):
        np.testing.assert_allclose(t.windows, a.windows, atol=1e-5)


def test_features_are_whisper_log_mel(embedder):
    wave = np.zeros(C.SAMPLE_RATE * 3, np.float32)
    prep = embedder.prepare_waveform(wave)
    assert prep.features.shape == (1, 128, C.MEL_FRAMES)


def test_track_vector_is_renormalised_mean():
    w = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    np.testing.assert_allclose(track_vector(w), np.array([1, 1, 0]) / np.sqrt(2), atol=1e-6)
    assert track_vector(np.zeros((0, 3), np.float32)) is None


def test_identity_ties_vectors_to_models(tiny_env, tiny_head_path, tmp_path, monkeypatch):
    import shutil

    key = Embedder().identity.key()
    assert Embedder().identity.key() == key
    other = tmp_path / "other_head.pt"
    shutil.copy(tiny_head_path, other)
    with open(other, "ab") as f:  # different bytes, different sha256
        f.write(b"\0")
    monkeypatch.setenv("LIVI_HEAD", str(other))
    assert Embedder().identity.key() != key


def test_head_whisper_dimension_mismatch_is_clear(tiny_env, golden, monkeypatch, make_audio):
    from livi_cli.errors import CheckpointError

    monkeypatch.setenv("LIVI_HEAD", str(golden / "livi_head_small.pt"))  # expects 64-d: matches tiny whisper
    Embedder().embed_path(make_audio("ok.wav", seconds=2))
    from livi_cli.model.checkpoint import save_head
    from livi_cli.model.head import HeadConfig, LiviHead

    wrong = tmp = make_audio("x.wav").parent / "wrong.pt"
    save_head(tmp, LiviHead(HeadConfig(dim_whisper=32, dim_hiddens=(16,), dim_embed=8)))
    monkeypatch.setenv("LIVI_HEAD", str(wrong))
    with pytest.raises(CheckpointError, match="32-d"):
        Embedder().embed_path(make_audio("ok2.wav", seconds=2))


def test_bad_settings_fail_before_any_work(tiny_env, monkeypatch):
    from livi_cli.errors import ConfigError

    with pytest.raises(ConfigError, match="vocal detector 'nope'"):
        Embedder(vocal_detector="nope").check_models()
    with pytest.raises(ConfigError, match="--precision"):
        Embedder(precision="int8").check_models()
    with pytest.raises(ConfigError, match="--device"):
        Embedder(device="tpu").check_models()


def test_head_identity_cached_without_torch(tiny_env, tiny_head_path):
    import subprocess
    import sys

    Embedder().identity  # fills the cache under LIVI_HOME
    code = ("import sys; from livi_cli.embed import Embedder; k = Embedder().identity.key(); "
            "print(k); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    key, torch_loaded = out.stdout.split()
    assert key == Embedder().identity.key()
    assert torch_loaded == "False"


def test_head_mismatch_raises_every_time_and_spares_the_cpu_side(tiny_env, monkeypatch, make_audio):
    from livi_cli.errors import CheckpointError
    from livi_cli.model.checkpoint import save_head
    from livi_cli.model.head import HeadConfig, LiviHead

    path = make_audio("song.wav", seconds=2)
    wrong = path.parent / "wrong.pt"
    save_head(wrong, LiviHead(HeadConfig(dim_whisper=32, dim_hiddens=(16,), dim_embed=8)))
    monkeypatch.setenv("LIVI_HEAD", str(wrong))
    emb = Embedder()
    prepared = emb.prepare_path(path)  # decode + windows + log-mel need neither encoder nor head
    assert prepared.features.shape == (1, 128, C.MEL_FRAMES)
    for _ in range(2):  # the scan retries track by track after a failed batch: same clear error each time
        with pytest.raises(CheckpointError, match="32-d"):
            emb.encode([prepared])


def test_log_mel_in_chunks_equals_one_call(embedder):
    from livi_cli.embed import MEL_CHUNK
    from livi_cli.vocals import cut_windows

    rng = np.random.default_rng(0)
    wave = (0.1 * rng.standard_normal(C.SAMPLE_RATE * 10)).astype(np.float32)
    spans = [(i * 0.5, i * 0.5 + 3.0) for i in range(MEL_CHUNK + 3)]  # more windows than one chunk
    np.testing.assert_array_equal(embedder.span_features(wave, spans), embedder.log_mel(cut_windows(wave, spans)))
    assert embedder.span_features(wave, []).shape == (0, 128, C.MEL_FRAMES)


def test_check_models_catches_a_head_for_another_whisper_without_torch(tiny_env, monkeypatch, tmp_path):
    import subprocess
    import sys

    from livi_cli.errors import CheckpointError
    from livi_cli.model.checkpoint import save_head
    from livi_cli.model.head import HeadConfig, LiviHead

    Embedder().check_models()  # the matching tiny head passes
    wrong = tmp_path / "wrong.pt"
    save_head(wrong, LiviHead(HeadConfig(dim_whisper=32, dim_hiddens=(16,), dim_embed=8)))
    monkeypatch.setenv("LIVI_HEAD", str(wrong))
    with pytest.raises(CheckpointError, match="head expects 32-d encoder states .* gives 64-d"):
        Embedder().check_models()  # before a scan starts, not once per track
    code = ("import sys; from livi_cli.embed import Embedder\n"
            "try:\n    Embedder().check_models()\nexcept Exception as exc:\n    print(type(exc).__name__)\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["CheckpointError", "False"]  # the head cache answers: no torch import
