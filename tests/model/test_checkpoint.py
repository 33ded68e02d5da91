"""Checkpoint formats: official plain state dict (± logit_scale), livi's own format, refusals."""
from __future__ import annotations

import pytest
import torch

from livi_cli.errors import CheckpointError
from livi_cli.model.checkpoint import export_official, load_head, save_head, validate_head_file
from livi_cli.model.head import HeadConfig, LiviHead


@pytest.fixture
def official(golden):
    return torch.load(golden / "livi_head_small.pt", weights_only=True)


def _save(tmp_path, obj, name="x.pth"):
    path = tmp_path / name
    torch.save(obj, path)
    return path


def test_official_with_and_without_logit_scale(tmp_path, official):
    assert "logit_scale" in official
    with_scale = load_head(_save(tmp_path, official, "a.pth"))
    without = dict(official)
    del without["logit_scale"]
    plain = load_head(_save(tmp_path, without, "b.pth"))
    x = torch.randn(2, 10, 64)
    with torch.no_grad():
        torch.testing.assert_close(with_scale(x), plain(x))


@pytest.mark.parametrize("mutate, key", [
    (lambda sd: sd.pop("pooling.attn.attn.kl.weight"), "pooling.attn.attn.kl.weight"),
    (lambda sd: sd.__setitem__("pooling.extra.weight", torch.zeros(2)), "pooling.extra.weight"),
    (lambda sd: sd.__setitem__("pooling.attn.gamma_2", torch.zeros(7)), "pooling.attn.gamma_2"),
    (lambda sd: sd.__setitem__("audio_proj.net.1.weight", torch.zeros(95)), "audio_proj.net.1.weight"),
])
def test_bad_keys_refused_with_the_key_named(tmp_path, official, mutate, key):
    sd = dict(official)
    mutate(sd)
    with pytest.raises(CheckpointError, match=key.replace(".", r"\.")):
        load_head(_save(tmp_path, sd))


def test_arbitrary_pickle_never_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = _save(tmp_path, {"pooling.cls_token": Evil()})
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        load_head(path)
    assert not marker.exists()


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "livi.pth"
    path.write_text("<html>Google Drive: virus scan warning</html>")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        load_head(path)
    with pytest.raises(CheckpointError, match="not found"):
        load_head(tmp_path / "missing.pth")


def test_own_format_roundtrip_any_size(tmp_path):
    torch.manual_seed(3)
    cfg = HeadConfig(dim_whisper=24, dim_hiddens=(20, 18, 12), dim_embed=10, num_heads=3, mlp_ratio=1.5)
    head = LiviHead(cfg).eval()
    save_head(tmp_path / "own.pt", head)
    again = load_head(tmp_path / "own.pt")
    assert again.config == cfg  # num_heads=3 survives: the official layout could not tell it
    x = torch.randn(2, 7, 24)
    with torch.no_grad():
        torch.testing.assert_close(head(x), again(x))


def test_export_official_reloads_identically(tmp_path, golden):
    head = load_head(golden / "livi_head_small.pt")
    export_official(head, tmp_path / "official.pth")
    sd = torch.load(tmp_path / "official.pth", weights_only=True)
    assert set(sd) == set(head.state_dict())
    assert validate_head_file(tmp_path / "official.pth") == head.config
