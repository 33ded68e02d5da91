"""The head reproduces the reference implementation's golden outputs and the official key layout."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from livi_cli import constants as C
from livi_cli.model.checkpoint import load_head
from livi_cli.model.head import HeadConfig, LiviHead, expected_shapes, rotate_keys


@pytest.mark.parametrize("name", ["short", "whisper_len"])
def test_golden_outputs_within_1e5(golden, name):
    head = load_head(golden / "livi_head_small.pt")  # no config: dims inferred from shapes
    x = torch.from_numpy(np.load(golden / f"input_{name}.npy"))
    with torch.no_grad():
        pooled = head.pool(x).numpy()
        out = head(x).numpy()
    np.testing.assert_allclose(pooled, np.load(golden / f"pooled_{name}.npy"), atol=1e-5, rtol=0)
    np.testing.assert_allclose(out, np.load(golden / f"output_{name}.npy"), atol=1e-5, rtol=0)


def test_golden_config_matches_inferred(golden):
    head = load_head(golden / "livi_head_small.pt")
    cfg = json.loads((golden / "livi_head_small_config.json").read_text())
    assert head.config == HeadConfig(**cfg)
    assert not head.training


def test_full_size_layout_and_parameter_count(golden):
    ref = json.loads((golden / "livi_full_state_dict_shapes.json").read_text())
    shapes = expected_shapes(HeadConfig())
    assert shapes == {k: tuple(v) for k, v in ref["state_dict_shapes"].items()}
    assert sum(int(np.prod(s)) for s in shapes.values()) == ref["trainable_params"] == C.HEAD_PARAMS


def test_output_is_unit_norm_and_batch_independent():
    torch.manual_seed(0)
    head = LiviHead(HeadConfig(dim_whisper=32, dim_hiddens=(40,), dim_embed=16, num_heads=2)).eval()
    x = torch.randn(3, 50, 32)
    with torch.no_grad():
        y = head(x)
        y0 = head(x[:1])
    torch.testing.assert_close(y.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(y[:1], y0, atol=1e-6, rtol=0)


def test_rotary_keys_preserve_norm_and_depend_on_position():
    k = torch.randn(1, 1, 5, 8)
    r = rotate_keys(k)
    torch.testing.assert_close(r.norm(dim=-1), k.norm(dim=-1))
    torch.testing.assert_close(r[..., 0, :], k[..., 0, :])  # position 0 is not rotated
    same = k[..., :1, :].expand(1, 1, 5, 8)
    rs = rotate_keys(same)
    assert not torch.allclose(rs[..., 1, :], rs[..., 2, :])


def test_odd_head_dim_refused():
    with pytest.raises(ValueError):
        HeadConfig(dim_whisper=30, num_heads=2)
