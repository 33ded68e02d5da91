"""The LIVI head: attention pooling over Whisper encoder frames, then a projection MLP.

Parameter names follow the published checkpoint exactly (``pooling.attn.attn.ql.weight``,
``audio_proj.net.0.weight`` ...) so an official ``livi.pth`` loads without renaming.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from livi_cli import constants as C


@dataclass(frozen=True)
class HeadConfig:
    dim_whisper: int = C.WHISPER_DIM
    dim_hiddens: tuple[int, ...] = field(default=C.HEAD_HIDDENS)
    dim_embed: int = C.EMBED_DIM
    num_heads: int = C.HEAD_NUM_HEADS
    mlp_ratio: float = C.HEAD_MLP_RATIO

    def __post_init__(self):
        object.__setattr__(self, "dim_hiddens", tuple(int(d) for d in self.dim_hiddens))
        head_dim, rest = divmod(self.dim_whisper, self.num_heads)
        if rest or head_dim % 2:
            raise ValueError("dim_whisper / num_heads must be an even integer (rotary embedding)")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["dim_hiddens"] = list(self.dim_hiddens)
        return d


def rotate_keys(k: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding on keys of shape (B, H, T, E), positions 0..T-1.

    Half-split convention: the first E/2 channels pair with the last E/2, channel i turns at
    angle ``pos / 10000 ** (2i / E)``.
    """
    e = k.shape[-1]
    half = e // 2
    inv_timescale = 10000.0 ** (-(2.0 * torch.arange(half, device=k.device, dtype=torch.float32)) / e)
    pos = torch.arange(k.shape[-2], device=k.device, dtype=torch.float32)
    angle = pos[:, None] * inv_timescale[None, :]  # (T, E/2)
    sin, cos = angle.sin(), angle.cos()
    k32 = k.float()
    a, b = k32[..., :half], k32[..., half:]
    return torch.cat((a * cos - b * sin, b * cos + a * sin), dim=-1).to(k.dtype)


class ClassAttention(nn.Module):
    """Only the CLS token (position 0) queries; every token, CLS included, is a key/value."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.ql = nn.Linear(dim, dim, bias=False)
        self.kl = nn.Linear(dim, dim, bias=False)
        self.vl = nn.Linear(dim, dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        b, t, d = u.shape
        h, e = self.num_heads, d // self.num_heads
        q = self.ql(u[:, :1]).view(b, 1, h, e).transpose(1, 2)
        k = rotate_keys(self.kl(u).view(b, t, h, e).transpose(1, 2))
        v = self.vl(u).view(b, t, h, e).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, H, 1, E), scale 1/sqrt(E)
        return self.proj(out.transpose(1, 2).reshape(b, 1, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class ClassTokenBlock(nn.Module):
    """Layer-scale block that updates the CLS token only (CaiT / PatchConvNet style)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, init_values: float = 1e-4):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.attn = ClassAttention(dim, num_heads)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.gamma_1 = nn.Parameter(torch.full((dim,), init_values))
        self.gamma_2 = nn.Parameter(torch.full((dim,), init_values))

    def forward(self, x: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
        cls = cls + self.gamma_1 * self.attn(self.norm1(torch.cat((cls, x), dim=1)))
        return cls + self.gamma_2 * self.mlp(self.norm2(cls))


class AttentionPooling(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.attn = ClassTokenBlock(dim, num_heads, mlp_ratio)
        self.norm_layer = nn.LayerNorm(dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.apply(_init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cls = self.attn(x, self.cls_token.expand(x.shape[0], -1, -1))
        # LayerNorm is per token, so normalising the CLS token alone equals normalising [CLS]+x.
        return self.norm_layer(cls[:, 0])


class Projection(nn.Module):
    """Linear→LayerNorm→ReLU per hidden size, then a final Linear (indices match ``net.N``)."""

    def __init__(self, dim_in: int, hiddens: tuple[int, ...], dim_out: int):
        super().__init__()
        layers: list[nn.Module] = []
        for h in hiddens:
            layers += [nn.Linear(dim_in, h), nn.LayerNorm(h), nn.ReLU()]
            dim_in = h
        layers.append(nn.Linear(dim_in, dim_out))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


class LiviHead(nn.Module):
    """Encoder states (B, T, dim_whisper) → unit-norm embeddings (B, dim_embed)."""

    def __init__(self, config: HeadConfig | None = None):
        super().__init__()
        self.config = config or HeadConfig()
        c = self.config
        self.pooling = AttentionPooling(c.dim_whisper, c.num_heads, c.mlp_ratio)
        self.audio_proj = Projection(c.dim_whisper, c.dim_hiddens, c.dim_embed)

    def pool(self, states: torch.Tensor) -> torch.Tensor:
        return self.pooling(states)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.audio_proj(self.pool(states)), dim=-1)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def expected_shapes(config: HeadConfig) -> dict[str, tuple[int, ...]]:
    """Every state-dict key and its shape for a head of this config (no weights allocated)."""
    with torch.device("meta"):
        head = LiviHead(config)
    return {k: tuple(v.shape) for k, v in head.state_dict().items()}


