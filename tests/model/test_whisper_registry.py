"""Whisper loading (encoder only), model registry, devices, and the missing-model messages."""
from __future__ import annotations

import json

import pytest
import torch

from livi_cli.config import load_settings
from livi_cli.errors import ConfigError, ModelMissingError
from livi_cli.model import registry as reg
from livi_cli.model.device import resolve_device, resolve_precision
from livi_cli.model.whisper import load_encoder


def test_encoder_only_load_matches_full_model(tiny_whisper_dir):
    from transformers import WhisperForConditionalGeneration

    enc = load_encoder(tiny_whisper_dir)
    full = WhisperForConditionalGeneration.from_pretrained(tiny_whisper_dir).eval()
    x = torch.randn(1, 128, 3000)
    with torch.no_grad():
        torch.testing.assert_close(enc(x).last_hidden_state, full.model.encoder(x).last_hidden_state)
    assert not enc.training and not any(p.requires_grad for p in enc.parameters())
    assert not any(k.startswith("decoder") for k in enc.state_dict())


def test_manifests_shipped_with_package():
    m = reg.manifests()
    assert m[reg.WHISPER]["repo_id"] == "openai/whisper-large-v3-turbo"
    assert m[reg.WHISPER]["d_model"] == 1280 and m[reg.HEAD]["dim_embed"] == 768
    assert m[reg.HEAD]["url"].startswith("https://")
    for name, data in m.items():
        assert {"name", "kind", "licence", "description"} <= set(data), name


def test_missing_hub_whisper_says_how_to_get_it(tiny_env, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("LIVI_WHISPER", "openai/whisper-large-v3-turbo")
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelMissingError, match="livi models download"):
        reg.resolve_whisper(load_settings())


def test_missing_local_whisper_dir(tiny_env, tmp_path, monkeypatch):
    monkeypatch.setenv("LIVI_WHISPER", str(tmp_path / "nowhere"))
    with pytest.raises(ModelMissingError, match="nowhere"):
        reg.resolve_whisper(load_settings())


def test_missing_head_points_to_download_link(tiny_env, monkeypatch):
    monkeypatch.delenv("LIVI_HEAD")
    with pytest.raises(ModelMissingError) as info:
        reg.resolve_head(load_settings())
    assert "install-head" in str(info.value) and "drive.google.com" in str(info.value)


def test_install_head_records_sha_and_detects_corruption(tiny_env, monkeypatch, golden):
    monkeypatch.delenv("LIVI_HEAD")
    s = load_settings()
    meta = reg.install_head(s, golden / "livi_head_small.pt")
    dest = reg.installed_head_path(s)
    assert dest.is_file() and json.loads(dest.with_suffix(".json").read_text())["sha256"] == meta["sha256"]
    assert reg.resolve_head(s) == dest
    assert reg.verify_installed_head(s) is True
    with open(dest, "r+b") as f:
        f.seek(100)
        f.write(b"\x00corrupt")
    assert reg.verify_installed_head(s) is False


def test_local_whisper_identity_is_stable_and_content_based(tiny_env, tiny_whisper_dir):
    a = reg.resolve_whisper(load_settings())
    b = reg.resolve_whisper(load_settings())
    assert a.revision == b.revision and a.revision.startswith("local-")


def test_device_and_precision_rules():
    cpu = resolve_device("cpu")
    assert cpu.type == "cpu"
    assert resolve_precision("fp32", cpu) == "fp32"
    assert resolve_precision("auto", cpu) in ("fp32", "bf16")
    with pytest.raises(ConfigError):
        resolve_precision("fp16", cpu)
    with pytest.raises(ConfigError):
        resolve_precision("int3", cpu)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            resolve_device("cuda")
        assert resolve_device("auto").type in ("cpu", "mps")


def test_missing_cuda_ordinal_is_refused_up_front(monkeypatch):
    # No GPU here: pretend to have one, to check that cuda:N past the last device is a clear ConfigError
    # instead of torch's "invalid device ordinal" at the first tensor move.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    assert resolve_device("cuda") == torch.device("cuda")
    with pytest.raises(ConfigError, match="1 CUDA device .cuda:0 to cuda:0"):
        resolve_device("cuda:1")


def test_float16_checkpoint_loads_as_float32(tiny_whisper_dir, tmp_path):
    """The published turbo weights are float16: the encoder must still run fp32 inputs (CPU, fp32)."""
    import shutil

    from transformers import WhisperForConditionalGeneration

    half = WhisperForConditionalGeneration.from_pretrained(tiny_whisper_dir).half().eval()
    half.save_pretrained(tmp_path)
    shutil.copy(tiny_whisper_dir / "preprocessor_config.json", tmp_path)
    enc = load_encoder(tmp_path)
    assert {p.dtype for p in enc.parameters()} == {torch.float32}
    x = torch.randn(1, 128, 3000)
    with torch.no_grad():
        torch.testing.assert_close(enc(x).last_hidden_state, half.float().model.encoder(x).last_hidden_state)
