"""The LIVI training objective: align each window with its lyrics target and keep the batch geometry.

loss = α · mean_i(1 − cos(a_i, t_i)) + (1 − α) · mean_ij((A·Aᵀ − T·Tᵀ)²)

with A, T the L2-normalised audio and target embeddings of one batch. The first term pulls every
window onto its own target; the second makes audio–audio similarities mirror text–text ones, which
is what retrieval actually uses (covers are found through their mutual similarity).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

DEFAULT_ALPHA = 0.5  # the paper's balance between the two terms


@dataclass
class LossParts:
    total: torch.Tensor  # differentiable scalar
    cosine: float  # mean(1 − cos) of the batch, detached
    geometry: float  # MSE of the similarity matrices, detached


def livi_loss(audio: torch.Tensor, target: torch.Tensor, alpha: float = DEFAULT_ALPHA) -> LossParts:
    """audio, target: (B, E). Both are normalised here, so callers may pass raw vectors."""
    if audio.shape != target.shape or audio.dim() != 2:
        raise ValueError(f"audio {tuple(audio.shape)} and target {tuple(target.shape)} must both be (B, E)")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    # Computed in float32: under autocast the similarity matrix of a bf16 batch loses the small
    # differences the geometry term is about.
    a = F.normalize(audio.float(), dim=-1)
    t = F.normalize(target.float(), dim=-1)
    cos_term = (1.0 - (a * t).sum(dim=-1)).mean()
    geo_term = F.mse_loss(a @ a.T, t @ t.T)
    total = alpha * cos_term + (1.0 - alpha) * geo_term
    return LossParts(total=total, cosine=float(cos_term.detach()), geometry=float(geo_term.detach()))
