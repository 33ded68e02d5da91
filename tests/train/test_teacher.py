import numpy as np
import pytest

from livi_cli.train.teacher import TeacherOptions, Transcriber


@pytest.fixture(scope="module")
def features():
    rng = np.random.default_rng(0)
    return rng.standard_normal((2, 128, 3000)).astype(np.float32)


def _transcriber(asr_whisper_dir, **options):
    return Transcriber.load(asr_whisper_dir, TeacherOptions(max_new_tokens=8, **options))


def test_greedy_transcription_is_deterministic_and_batch_independent(asr_whisper_dir, features):
    t = _transcriber(asr_whisper_dir, temperatures=(0.0,), batch_size=2)
    texts = t.transcribe(features)
    assert len(texts) == 2 and all(texts) and all(w.startswith("w") for w in texts[0].split())
    assert t.transcribe(features) == texts
    assert _transcriber(asr_whisper_dir, temperatures=(0.0,), batch_size=1).transcribe(features) == texts


def test_temperature_fallback_replaces_rejected_greedy_output(asr_whisper_dir, features):
    import torch

    greedy = _transcriber(asr_whisper_dir, temperatures=(0.0,)).transcribe(features)
    # Nothing passes a log-prob threshold of 0: every window falls back to sampling at temperature 1.
    torch.manual_seed(0)
    fallback = _transcriber(asr_whisper_dir, temperatures=(0.0, 1.0), logprob_threshold=0.0,
                            compression_ratio_threshold=None).transcribe(features)
    assert fallback != greedy
    # A threshold every greedy output passes keeps the greedy transcripts.
    kept = _transcriber(asr_whisper_dir, temperatures=(0.0, 1.0), logprob_threshold=-1e9,
                        compression_ratio_threshold=1e9).transcribe(features)
    assert kept == greedy


def test_missing_tokenizer_is_a_clear_error(asr_whisper_dir, tmp_path):
    import shutil

    from livi_cli.errors import TrainingError

    bare = tmp_path / "no-tokenizer"
    shutil.copytree(asr_whisper_dir, bare)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "special_tokens_map.json"):
        (bare / name).unlink(missing_ok=True)
    with pytest.raises(TrainingError, match="tokenizer"):
        Transcriber.load(bare, TeacherOptions())


def test_encoder_states_cover_every_window_whatever_the_batch_size(asr_whisper_dir, features, tiny_env):
    from livi_cli.config import load_settings
    from livi_cli.train.teacher import Teacher

    t = _transcriber(asr_whisper_dir, temperatures=(0.0,))
    states = {}
    for bs in (0, 1, 5):  # 0 is clamped to 1, as transcribe() does
        teacher = Teacher(load_settings(), t, None, TeacherOptions(batch_size=bs))
        states[bs] = teacher._states(features)
    assert states[1].shape == (2, 1500, 64) and states[1].dtype == np.float16
    np.testing.assert_array_equal(states[0], states[1])
    np.testing.assert_allclose(states[5].astype(np.float32), states[1].astype(np.float32), atol=1e-2)


def test_float16_whisper_transcribes_on_cpu(asr_whisper_dir, features, tmp_path):
    """transformers 5 keeps a checkpoint's dtype (turbo ships float16); fp32 inputs on a CPU then fail."""
    import shutil

    import torch
    from transformers import WhisperForConditionalGeneration

    for item in asr_whisper_dir.iterdir():
        shutil.copy(item, tmp_path / item.name)
    WhisperForConditionalGeneration.from_pretrained(asr_whisper_dir).half().save_pretrained(tmp_path)
    t = _transcriber(tmp_path, temperatures=(0.0,))
    assert t.model.dtype == torch.float32
    texts = t.transcribe(features)
    assert len(texts) == 2 and all(texts)
