"""Head checkpoints: the official plain state dict (``livi.pth``) and livi's self-describing format.

Our format is a dict ``{"format": "livi-head", "version": 1, "config": {...}, "state_dict": {...}}``
so a head of any size loads with no separate config. An official file carries only tensors; its
dimensions are inferred from the shapes (``num_heads`` cannot be seen in shapes: it defaults to the
published head's 1 unless a config says otherwise). Loading never unpickles arbitrary objects.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

import torch

from livi_cli import constants as C
from livi_cli.errors import CheckpointError
from livi_cli.model.head import HeadConfig, LiviHead, expected_shapes

FORMAT = "livi-head"
FORMAT_VERSION = 1
IGNORED_KEYS = {"logit_scale"}  # training-time temperature some official files carry


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _read(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(f"{path}: head checkpoint not found")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:2] != b"PK" and magic[:1] != b"\x80":  # torch.save writes a zip; legacy files are raw pickles
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (unrecognised file format)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling refused, truncated zip, not a torch file ...
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({first})") from exc
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a state dict, found {type(obj).__name__}")
    return obj


def infer_config(state: dict, num_heads: int = C.HEAD_NUM_HEADS) -> HeadConfig:
    """Dimensions of an official-layout state dict, read off its tensor shapes."""
    try:
        dim_whisper = int(state["pooling.cls_token"].shape[-1])
        mlp_ratio = state["pooling.attn.mlp.fc1.weight"].shape[0] / dim_whisper
        linear = sorted(
            (int(m.group(1)), state[k])
            for k in state
            if (m := re.fullmatch(r"audio_proj\.net\.(\d+)\.weight", k)) and state[k].ndim == 2
        )
    except (KeyError, AttributeError, IndexError) as exc:
        raise CheckpointError(f"missing key {exc} needed to infer the head's dimensions") from exc
    if not linear:
        raise CheckpointError("missing key 'audio_proj.net.0.weight': no projection layers found")
    dims = [int(w.shape[0]) for _, w in linear]
    return HeadConfig(dim_whisper, tuple(dims[:-1]), dims[-1], num_heads, float(mlp_ratio))


def check_state_dict(state: dict, config: HeadConfig, source: str = "checkpoint") -> dict:
    """Exact key/shape match against a head of `config`; the error names the first bad key."""
    want = expected_shapes(config)
    have = {k: v for k, v in state.items() if k not in IGNORED_KEYS}
    for key in want:
        if key not in have:
            raise CheckpointError(f"{source}: missing key '{key}'")
    for key, value in have.items():
        if key not in want:
            raise CheckpointError(f"{source}: unexpected key '{key}'")
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{source}: key '{key}' is not a tensor")
        if tuple(value.shape) != want[key]:
            raise CheckpointError(
                f"{source}: key '{key}' has shape {tuple(value.shape)}, expected {want[key]}"
            )
    return have


def parse_head(obj: dict, source: str = "checkpoint", config: HeadConfig | None = None) -> tuple[HeadConfig, dict]:
    """(config, state dict) from our format or an official plain state dict."""
    if obj.get("format") == FORMAT:
        if int(obj.get("version", 0)) > FORMAT_VERSION:
            raise CheckpointError(f"{source}: written by a newer livi (format version {obj['version']})")
        try:
            config = HeadConfig(**obj["config"])
            state = obj["state_dict"]
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{source}: malformed livi-head file ({exc})") from exc
    else:
        state = obj.get("state_dict", obj) if isinstance(obj.get("state_dict"), dict) else obj
        state = {k.removeprefix("module."): v for k, v in state.items()}  # DataParallel saves
        config = config or infer_config(state)
    return config, check_state_dict(state, config, source)


def load_head(path: str | os.PathLike, config: HeadConfig | None = None) -> LiviHead:
    """Load a head in eval mode from our format or an official ``livi.pth``."""
    path = Path(path)
    config, state = parse_head(_read(path), str(path), config)
    head = LiviHead(config)
    head.load_state_dict(state, strict=True)
    return head.eval()


def validate_head_file(path: str | os.PathLike) -> HeadConfig:
    """Check a checkpoint without building the model; returns its config."""
    path = Path(path)
    config, _ = parse_head(_read(path), str(path))
    return config


def _atomic_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_head(path: str | os.PathLike, head: LiviHead, extra: dict | None = None) -> None:
    """Write our self-describing format (config beside the weights), atomically."""
    obj = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "config": head.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in head.state_dict().items()},
    }
    if extra:
        obj["extra"] = extra
    _atomic_save(obj, Path(path))


def export_official(head: LiviHead, path: str | os.PathLike) -> None:
    """Write the official plain state-dict layout (what the published ``livi.pth`` looks like)."""
    _atomic_save({k: v.detach().cpu() for k, v in head.state_dict().items()}, Path(path))
