import json
import math

import numpy as np
import pytest
import torch

from livi_cli.errors import TrainingError
from livi_cli.train.shards import ShardSet
from livi_cli.train.trainer import FitConfig, Trainer, fit, split_by_clique

from .synthetic import make_task


def _chance_map10(n_items: int) -> float:
    """Expected AP@10 of a random ranking with one relevant item among n_items - 1."""
    return sum(1.0 / r for r in range(1, 11)) / (n_items - 1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    make_task(root / "shards", cliques=100, per_clique=2, windows=1, shard_size=16)
    cfg = FitConfig(epochs=6, batch_size=8, hiddens=(64,), base_lr=2e-3, peak_lr=1e-2, warmup_steps=5,
                    val_fraction=0.25, device="cpu", precision="fp32", seed=0)
    return root, fit(root / "shards", root / "out", cfg)


def test_training_lowers_the_loss_and_finds_covers_far_above_chance(trained):
    _, result = trained
    before, after = result.history[0], max(result.history[1:], key=lambda r: r["MAP10"])
    chance = _chance_map10(before["n_queries"])
    assert before["epoch"] == 0 and before["n_queries"] == 50  # 25 held-out cliques of 2 tracks
    # Loss: the training loss falls by more than half, and so does the held-out loss.
    assert result.last_loss < 0.5 * result.first_loss
    assert after["loss"] < 0.5 * before["loss"]
    assert after["mean_cos"] > before["mean_cos"] + 0.4
    # Retrieval on cliques never seen in training: the untrained head is near chance, the trained far above.
    assert before["MAP10"] < 2.5 * chance
    assert after["MAP10"] > 5 * chance and after["MAP10"] > before["MAP10"] + 0.2
    assert result.best["MAP10"] == pytest.approx(after["MAP10"])


def test_outputs_checkpoints_log_and_split(trained):
    from livi_cli.model.checkpoint import load_head

    root, result = trained
    out = root / "out"
    head = load_head(result.best_path)
    assert head.config.dim_whisper == 32 and head.config.dim_embed == 16 and head.config.dim_hiddens == (64,)
    saved = torch.load(result.best_path, weights_only=True)
    assert saved["extra"]["validation"]["MAP10"] == pytest.approx(result.best["MAP10"])
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert records[0]["kind"] == "start" and records[0]["total_steps"] == len(train) == 6 * (150 // 8)
    assert all(math.isfinite(r["loss"]) and r["lr"] > 0 and r["windows_per_s"] > 0 for r in train)
    assert train[4]["lr"] < train[6]["lr"]  # still warming up at step 5, peak at step 6
    assert sum(r["kind"] == "val" for r in records) == 7
    split = json.loads((out / "split.json").read_text())
    cliques = ShardSet.open(root / "shards").track_cliques()
    assert not {cliques[t] for t in split["train"]} & {cliques[t] for t in split["validation"]}
    assert len(split["validation"]) == 50 and len(split["train"]) == 150


def test_best_checkpoint_reproduces_its_validation_score(trained):
    from livi_cli.evaluate import retrieval_metrics
    from livi_cli.model.checkpoint import load_head

    root, result = trained
    shards = ShardSet.open(root / "shards")
    val = set(json.loads((root / "out" / "split.json").read_text())["validation"])
    head = load_head(result.best_path)
    windows = shards.select(val)
    tracks, vectors = [], []
    for w in windows:
        inputs, _ = shards.arrays(w.shard)
        with torch.no_grad():
            vectors.append(head(torch.from_numpy(np.array(inputs[w.row : w.row + 1])).float())[0].numpy())
        tracks.append(w.track)
    metrics = retrieval_metrics(np.stack(vectors), [shards.track_cliques()[t] for t in tracks])  # 1 window per track
    assert metrics["MAP10"] == pytest.approx(result.best["MAP10"], abs=1e-6)


def test_split_by_clique_is_seeded_and_keeps_cliques_whole():
    cliques = {f"t{i}": f"c{i // 3}" for i in range(60)} | {f"solo{i}": None for i in range(20)}
    train, val = split_by_clique(cliques, 0.2, seed=1)
    assert train | val == set(cliques) and not train & val
    assert {cliques[t] for t in val if cliques[t]}.isdisjoint({cliques[t] for t in train if cliques[t]})
    assert sum(1 for t in val if cliques[t]) == 12 and sum(1 for t in val if not cliques[t]) == 4
    assert split_by_clique(cliques, 0.2, seed=1) == (train, val)
    assert split_by_clique(cliques, 0.2, seed=2) != (train, val)
    assert split_by_clique(cliques, 0.0) == (set(cliques), set())
    with pytest.raises(TrainingError):
        split_by_clique(cliques, 1.0)


def test_without_validation_the_last_epoch_is_kept(tmp_path):
    make_task(tmp_path / "s", cliques=6, per_clique=2, windows=1)
    result = fit(tmp_path / "s", tmp_path / "o", FitConfig(epochs=2, batch_size=4, hiddens=(8,), val_fraction=0.0,
                                                           device="cpu"))
    assert result.best_path.is_file() and result.last_path.is_file()
    assert [r["epoch"] for r in result.history] == [1, 2] and "MAP10" not in result.history[-1]


def test_bad_options_are_clear_errors(tmp_path):
    make_task(tmp_path / "s", cliques=4, per_clique=2, windows=1)
    shards = ShardSet.open(tmp_path / "s")
    with pytest.raises(TrainingError, match="--precision"):
        Trainer(shards, tmp_path / "o", FitConfig(device="cpu", precision="fp16"))
    with pytest.raises(TrainingError, match="head configuration"):
        Trainer(shards, tmp_path / "o", FitConfig(device="cpu", num_heads=3))
    with pytest.raises(TrainingError, match="log-mel"):
        shards.manifest["store"] = "mel"
        Trainer(shards, tmp_path / "o", FitConfig(device="cpu"))


def test_bf16_autocast_and_fine_tuning_from_a_checkpoint(tmp_path):
    from livi_cli.model.checkpoint import load_head

    make_task(tmp_path / "s", cliques=6, per_clique=2, windows=1)
    first = fit(tmp_path / "s", tmp_path / "a", FitConfig(epochs=1, batch_size=4, hiddens=(8,), val_fraction=0.0,
                                                         device="cpu", precision="bf16"))
    assert math.isfinite(first.last_loss)
    start = load_head(first.best_path).state_dict()
    tuned = fit(tmp_path / "s", tmp_path / "b", FitConfig(epochs=1, batch_size=4, init=str(first.best_path),
                                                          val_fraction=0.0, device="cpu"))
    after = load_head(tuned.best_path)
    assert after.config.dim_hiddens == (8,)  # the architecture comes from the checkpoint
    assert any(not torch.equal(start[k], v) for k, v in after.state_dict().items())
    make_task(tmp_path / "wide", cliques=4, per_clique=2, windows=1)
    shards = ShardSet.open(tmp_path / "wide")
    shards.manifest["dim_target"] = 99
    with pytest.raises(TrainingError, match="--init"):
        Trainer(shards, tmp_path / "c", FitConfig(init=str(first.best_path), device="cpu"))


def test_mel_shards_refuse_an_encoder_with_other_mel_bins(tmp_path):
    from livi_cli.model.whisper import random_encoder

    make_task(tmp_path / "s", cliques=4, per_clique=2, windows=1, store="mel")
    shards = ShardSet.open(tmp_path / "s")
    encoder, _ = random_encoder("tiny")  # 128 mel bins; these shards hold 16
    with pytest.raises(TrainingError, match="16-bin log-mel.*reads 128 bins"):
        Trainer(shards, tmp_path / "o", FitConfig(device="cpu"), encoder=encoder)


def test_shards_without_windows_are_a_clear_error(tmp_path):
    from livi_cli.train.shards import ShardWriter

    writer = ShardWriter(tmp_path / "s", {"store": "states", "whisper": "w", "text_model": "t"})
    writer.skip("t1", None, "/music/t1.wav", "failed", error="unreadable")  # every track failed
    writer.close()
    with pytest.raises(TrainingError, match="hold no windows"):
        Trainer(ShardSet.open(tmp_path / "s"), tmp_path / "o", FitConfig(device="cpu"))
    assert not (tmp_path / "o").exists()  # refused before anything is written
