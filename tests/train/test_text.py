import json
import shutil

import numpy as np
import pytest

from livi_cli.errors import TrainingError
from livi_cli.train.text import TextEncoder, detect_pooling


def test_encoder_gives_unit_vectors_with_the_models_pooling(text_model_dir):
    enc = TextEncoder.load(str(text_model_dir))
    assert enc.pooling == "cls"  # read from 1_Pooling/config.json
    v = enc.encode(["w1 love heart night", "night heart", "w1 love heart night"])
    assert v.shape == (3, 32) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert np.allclose(v[0], v[2], atol=1e-5) and not np.allclose(v[0], v[1], atol=1e-3)
    mean = TextEncoder.load(str(text_model_dir), pooling="mean").encode(["w1 love heart night"])
    assert not np.allclose(mean[0], v[0], atol=1e-3)


def test_batching_does_not_change_embeddings(text_model_dir):
    enc = TextEncoder.load(str(text_model_dir))
    texts = ["love", "heart night w3 w4 w5 w6", "w9"]
    assert np.allclose(enc.encode(texts, batch_size=1), enc.encode(texts, batch_size=3), atol=1e-5)


def test_pooling_defaults_to_mean_without_a_pooling_file(text_model_dir, tmp_path):
    copy = tmp_path / "m"
    shutil.copytree(text_model_dir, copy)
    shutil.rmtree(copy / "1_Pooling")
    assert detect_pooling(str(copy)) == "mean"


def test_hub_code_needs_the_explicit_flag(text_model_dir, tmp_path):
    copy = tmp_path / "remote"
    shutil.copytree(text_model_dir, copy)
    config = json.loads((copy / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "someone/impl--modeling.NewModel"}
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(TrainingError, match="--trust-remote-code"):
        TextEncoder.load(str(copy))


def test_bad_pooling_and_missing_model_are_clear_errors(text_model_dir, tmp_path):
    with pytest.raises(TrainingError, match="--pooling"):
        TextEncoder.load(str(text_model_dir), pooling="max")
    with pytest.raises(TrainingError, match="no config.json"):
        TextEncoder.load(str(tmp_path / "nothing-here"))


def test_float16_text_model_runs_in_float32(text_model_dir, tmp_path):
    import torch
    from transformers import AutoModel

    copy = tmp_path / "half"
    shutil.copytree(text_model_dir, copy)
    AutoModel.from_pretrained(str(text_model_dir)).half().save_pretrained(copy)
    enc = TextEncoder.load(str(copy))
    assert enc.model.dtype == torch.float32  # transformers 5 would otherwise keep the file's float16
    ref = TextEncoder.load(str(text_model_dir)).encode(["w1 love heart night"])
    assert np.allclose(enc.encode(["w1 love heart night"]), ref, atol=1e-2)
