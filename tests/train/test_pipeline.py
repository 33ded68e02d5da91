"""End to end on synthetic audio: teacher (tiny Whisper transcribes, tiny BERT embeds) → shards →
fit → export → the trained head embeds files through the inference Embedder → retrieval metrics."""
import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from livi_cli.cli.app import app

from ..conftest import synth_music

TRACKS = [("song-a-live", "a"), ("song-a-studio", "a"), ("song-b-1", "b"), ("song-b-2", "b"), ("song-c-1", "c"),
          ("song-c-2", "c")]


def _invoke(*args, expect_error=False):
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception and not expect_error and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture
def library(tmp_path):
    import soundfile as sf

    music = tmp_path / "music"
    music.mkdir()
    rows = []
    for seed, (name, clique) in enumerate(TRACKS):
        sf.write(music / f"{name}.wav", synth_music(34.0, seed=seed, sr=16000), 16000)
        rows.append({"id": name, "path": f"music/{name}.wav", "clique": clique})
    (music / "broken.wav").write_text("not audio")
    rows.append({"id": "broken", "path": "music/broken.wav", "clique": ""})
    with open(tmp_path / "tracks.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["id", "path", "clique"])
        writer.writeheader()
        writer.writerows(rows)
    return tmp_path


def _teacher(root, asr_whisper_dir, text_model_dir, out, *extra):
    return _invoke("train", "teacher", root / "tracks.csv", out, "--whisper", asr_whisper_dir, "--text-model", text_model_dir,
                   "--vocal-detector", "none", "--device", "cpu", "--precision", "fp32", "--min-words", "1",
                   "--max-new-tokens", "6", "--temperatures", "0,0.6", "--shard-size", "5", "--json", *extra)


def test_teacher_fit_export_and_embed(library, asr_whisper_dir, text_model_dir, tiny_env, monkeypatch):
    import torch

    from livi_cli.embed import Embedder
    from livi_cli.evaluate import retrieval_metrics
    from livi_cli.model.checkpoint import load_head
    from livi_cli.train.shards import ShardSet, iter_windows

    root = library
    result = _teacher(root, asr_whisper_dir, text_model_dir, root / "shards")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["ok"], summary["failed"], summary["skipped"], summary["windows"]) == (6, 1, 0, 12)
    assert summary["errors"][0].startswith(str(root / "music" / "broken.wav"))
    shards = ShardSet.open(root / "shards")
    m = shards.manifest
    assert (m["store"], m["dim_input"], m["frames"], m["dim_target"]) == ("states", 64, 1500, 32)
    assert m["text_pooling"] == "cls" and m["teacher"]["temperatures"] == [0.0, 0.6]
    assert len(shards.windows) == summary["kept"] > 0 and all(w.text for w in shards.windows)

    # The stored states are exactly what inference feeds the head for the same window.
    monkeypatch.setenv("LIVI_WHISPER", str(asr_whisper_dir))
    embedder = Embedder(vocal_detector="none")
    first = next(w for w in shards.windows if w.track == "song-b-1")
    prepared = embedder.prepare_path(root / "music" / "song-b-1.wav")
    states = embedder.encoder_states(prepared.features[:1]).numpy()
    stored = next(x for x, _, w in iter_windows(shards, [first], shuffle=False))
    assert np.allclose(stored.astype(np.float32), states[0], atol=2e-2 * np.abs(states).max())

    # Rerun: everything done is skipped, the unreadable file is tried again.
    again = json.loads(_teacher(root, asr_whisper_dir, text_model_dir, root / "shards").stdout)
    assert (again["skipped"], again["ok"], again["failed"]) == (6, 0, 1)

    fit = _invoke("train", "fit", root / "shards", root / "run", "--epochs", "2", "--batch-size", "4", "--hiddens", "16",
                  "--val-fraction", "0.34", "--device", "cpu", "--json")
    assert fit.exit_code == 0, fit.output
    out = json.loads(fit.stdout)
    assert [r["epoch"] for r in out["validation"]] == [0, 1, 2]
    assert all(np.isfinite(r["mean_cos"]) and r["n_queries"] == 2 for r in out["validation"])
    assert (root / "run" / "best.pt").is_file() and (root / "run" / "log.jsonl").is_file()

    exported = _invoke("train", "export", root / "run" / "best.pt", root / "run" / "livi.pth")
    assert exported.exit_code == 0, exported.output
    plain = torch.load(root / "run" / "livi.pth", weights_only=True)
    assert "format" not in plain and "audio_proj.net.0.weight" in plain
    best, official = load_head(root / "run" / "best.pt"), load_head(root / "run" / "livi.pth")
    assert all(torch.equal(a, b) for a, b in zip(best.state_dict().values(), official.state_dict().values()))
    refused = _invoke("train", "export", root / "run" / "best.pt", root / "run" / "livi.pth", expect_error=True)
    assert refused.exit_code != 0 and "--force" in str(refused.exception)

    # The exported head is a drop-in for inference; the metrics code scores its track vectors.
    monkeypatch.setenv("LIVI_HEAD", str(root / "run" / "livi.pth"))
    trained = Embedder(vocal_detector="none")
    vectors = [trained.embed_path(root / "music" / f"{name}.wav").vector for name, _ in TRACKS]
    assert all(v.shape == (32,) for v in vectors)
    metrics = retrieval_metrics(np.stack(vectors), [c for _, c in TRACKS])
    assert metrics["n_queries"] == 6 and 0.0 <= metrics["MAP10"] <= 1.0


def test_mel_shards_train_through_the_encoder(library, asr_whisper_dir, text_model_dir, tiny_env):
    from livi_cli.train.shards import ShardSet

    root = library
    result = _teacher(root, asr_whisper_dir, text_model_dir, root / "mel", "--store", "mel")
    assert result.exit_code == 0, result.output
    m = ShardSet.open(root / "mel").manifest
    assert (m["store"], m["dim_input"], m["frames"]) == ("mel", 128, 3000)
    fit = _invoke("train", "fit", root / "mel", root / "run", "--epochs", "1", "--batch-size", "4", "--hiddens", "16",
                  "--val-fraction", "0", "--device", "cpu", "--json")
    assert fit.exit_code == 0, fit.output
    from livi_cli.model.checkpoint import load_head

    assert load_head(root / "run" / "best.pt").config.dim_whisper == 64  # the encoder's width, not the mel bins


def test_remote_code_text_model_is_refused_before_any_work(library, asr_whisper_dir, text_model_dir, tmp_path, tiny_env):
    import shutil

    copy = tmp_path / "remote-model"
    shutil.copytree(text_model_dir, copy)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModel": "x/y--m.M"}}))
    result = _invoke("train", "teacher", library / "tracks.csv", tmp_path / "s", "--whisper", asr_whisper_dir,
                     "--text-model", copy, "--device", "cpu", expect_error=True)
    assert result.exit_code != 0 and "--trust-remote-code" in str(result.exception)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("betas", ["0.9", "0.9,0.98,0.999", "0.9,1.5"])
def test_betas_must_be_two_numbers_below_one(tmp_path, tiny_env, betas):
    result = _invoke("train", "fit", tmp_path / "shards", tmp_path / "run", "--betas", betas, expect_error=True)
    assert result.exit_code != 0 and "--betas" in str(result.exception)
    assert not (tmp_path / "run").exists()  # refused before any work


def test_interrupted_teacher_keeps_finished_tracks(library, asr_whisper_dir, text_model_dir, tiny_env):
    from livi_cli.config import load_settings
    from livi_cli.train.shards import ShardSet
    from livi_cli.train.teacher import TeacherOptions, load_teacher, read_tracks
    from livi_cli.train.text import TextEncoder

    settings = load_settings(whisper=str(asr_whisper_dir), device="cpu", precision="fp32", vocal_detector="none")
    options = TeacherOptions(temperatures=(0.0,), min_words=1, max_new_tokens=6, shard_size=256)
    teacher = load_teacher(settings, options, TextEncoder.load(str(text_model_dir)))
    specs = [s for s in read_tracks(library / "tracks.csv") if s.id != "broken"]
    done = []

    def on_track(spec, status):
        done.append(spec.id)
        if len(done) == 2:
            raise KeyboardInterrupt  # the user presses Ctrl-C during the third track's wait

    with pytest.raises(KeyboardInterrupt):
        teacher.run(specs, library / "shards", on_track=on_track)
    shards = ShardSet.open(library / "shards")  # the shard was committed although 256 windows never came
    assert set(shards.tracks) == set(done) and {w.track for w in shards.windows} == set(done)
    again = teacher.run(specs, library / "shards")
    assert again.skipped == 2 and again.ok == len(specs) - 2


def test_unknown_store_is_refused_before_loading_models(library, tmp_path, tiny_env):
    result = _invoke("train", "teacher", library / "tracks.csv", tmp_path / "s", "--store", "wav",
                     "--text-model", tmp_path / "no-such-model", "--device", "cpu", expect_error=True)
    assert result.exit_code != 0 and "--store: unknown value 'wav'" in str(result.exception)
    assert not (tmp_path / "s").exists()


def test_unknown_vocal_detector_is_refused_before_loading_models(library, tmp_path, tiny_env):
    result = _invoke("train", "teacher", library / "tracks.csv", tmp_path / "s", "--vocal-detector", "nope",
                     "--text-model", tmp_path / "no-such-model", "--device", "cpu", expect_error=True)
    assert result.exit_code != 0 and "unknown vocal detector 'nope'" in str(result.exception)
    assert not (tmp_path / "s").exists()
