import math

import pytest
import torch
import torch.nn.functional as F

from livi_cli.train.loss import livi_loss
from livi_cli.train.schedule import Schedule, apply, default_warmup


def test_loss_matches_the_formula_by_hand():
    torch.manual_seed(0)
    a, t = torch.randn(6, 5), torch.randn(6, 5)
    an, tn = F.normalize(a, dim=-1), F.normalize(t, dim=-1)
    cos = sum(1 - float(an[i] @ tn[i]) for i in range(6)) / 6
    sa, st = an @ an.T, tn @ tn.T
    mse = sum(float(sa[i, j] - st[i, j]) ** 2 for i in range(6) for j in range(6)) / 36
    parts = livi_loss(a, t, alpha=0.3)
    assert parts.cosine == pytest.approx(cos, abs=1e-6)
    assert parts.geometry == pytest.approx(mse, abs=1e-6)
    assert float(parts.total) == pytest.approx(0.3 * cos + 0.7 * mse, abs=1e-6)


def test_loss_is_zero_on_targets_and_scale_invariant():
    t = torch.randn(4, 8)
    assert float(livi_loss(3.0 * t, t).total) == pytest.approx(0.0, abs=1e-6)
    flipped = livi_loss(-t, t)  # opposite directions: worst cosine, yet the same batch geometry
    assert flipped.cosine == pytest.approx(2.0) and flipped.geometry == pytest.approx(0.0, abs=1e-6)
    assert float(flipped.total) == pytest.approx(1.0)


def test_loss_gradient_flows_and_rejects_bad_input():
    a = torch.randn(4, 8, requires_grad=True)
    livi_loss(a, torch.randn(4, 8)).total.backward()
    assert a.grad is not None and a.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        livi_loss(torch.randn(4, 8), torch.randn(4, 7))
    with pytest.raises(ValueError):
        livi_loss(torch.randn(4, 8), torch.randn(4, 8), alpha=1.5)


def test_schedule_warms_up_linearly_then_decays_to_final():
    s = Schedule(base_lr=1e-4, peak_lr=5e-4, final_lr=1e-6, warmup_steps=10, total_steps=110)
    assert s.lr(0) == pytest.approx(1e-4)
    assert s.lr(5) == pytest.approx(3e-4)
    assert s.lr(10) == pytest.approx(5e-4)
    assert s.lr(60) == pytest.approx((5e-4 + 1e-6) / 2)
    assert s.lr(110) == pytest.approx(1e-6)
    lrs = [s.lr(i) for i in range(10, 111)]
    assert all(x >= y for x, y in zip(lrs, lrs[1:]))  # monotone decay after warm-up


def test_default_warmup_is_capped_and_apply_sets_groups():
    assert default_warmup(1_000_000) == 10_000
    assert default_warmup(300) == 30
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=1.0)
    apply(opt, 2.5e-4)
    assert opt.param_groups[0]["lr"] == 2.5e-4
    assert not math.isnan(Schedule(warmup_steps=0, total_steps=1).lr(0))
