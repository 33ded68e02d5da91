"""Sentence embeddings of transcribed lyrics: the teacher's target space.

Any transformers encoder works (AutoModel + AutoTokenizer). Pooling follows the model's own
convention: the sentence-transformers ``1_Pooling/config.json`` when the model ships one (CLS for
gte-multilingual-base, mean for most others), else mean pooling; ``pooling="cls"|"mean"`` overrides.
Models whose config points at code on the hub (``auto_map``) run only with trust_remote_code=True,
which the CLI sets from an explicit ``--trust-remote-code`` flag.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from livi_cli.errors import TrainingError

DEFAULT_TEXT_MODEL = "Alibaba-NLP/gte-multilingual-base"  # the paper's 768-d multilingual target space
NO_CODE_ALTERNATIVE = "sentence-transformers/paraphrase-multilingual-mpnet-base-v2"  # 768-d, stock XLM-R code
KNOWN_POOLING = {DEFAULT_TEXT_MODEL: "cls"}  # used when the pooling file cannot be fetched
POOLINGS = ("auto", "cls", "mean")


def _model_file(source: str, name: str) -> dict | None:
    """A JSON file of a local model folder or a hub repo (cache first; None when absent)."""
    path = Path(source).expanduser()
    if path.is_dir():
        file = path / name
    else:
        from huggingface_hub import hf_hub_download

        try:  # the cache first: no network round trip (and no retries) for a model already downloaded
            file = Path(hf_hub_download(source, name, local_files_only=True))
        except Exception:
            try:
                file = Path(hf_hub_download(source, name))
            except Exception:  # missing file, offline without cache, bad repo id: caller decides
                return None
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def model_config(source: str) -> dict:
    """config.json of a text model; TrainingError when it is nowhere to be found."""
    config = _model_file(source, "config.json")
    if config is None:
        raise TrainingError(
            f"text model '{source}': no config.json in a local folder, the Hugging Face cache or the hub "
            "(offline? fetch it once with network access, or give a local model folder to --text-model)"
        )
    return config


def needs_remote_code(source: str) -> bool:
    return bool(model_config(source).get("auto_map"))


def detect_pooling(source: str) -> str:
    pooling = _model_file(source, "1_Pooling/config.json")
    if pooling:
        if pooling.get("pooling_mode_cls_token"):
            return "cls"
        if pooling.get("pooling_mode_mean_tokens"):
            return "mean"
    return KNOWN_POOLING.get(source, "mean")


def pool(hidden, mask, how: str):
    """(B, L, H) hidden states + (B, L) attention mask → (B, H)."""
    if how == "cls":
        return hidden[:, 0]
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)


class TextEncoder:
    """texts → (N, E) float32 unit-norm sentence embeddings."""

    def __init__(self, model, tokenizer, *, pooling: str = "mean", name: str = "in-memory",
                 device: str = "cpu", max_length: int = 512):
        if pooling not in ("cls", "mean"):
            raise TrainingError(f"--pooling: unknown value '{pooling}' (use {', '.join(POOLINGS)})")
        self.model = model.eval().to(device)
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.name = name
        self.device = device
        self.max_length = max_length

    @classmethod
    def load(cls, source: str = DEFAULT_TEXT_MODEL, *, trust_remote_code: bool = False, pooling: str = "auto",
             device: str = "cpu", max_length: int = 512) -> "TextEncoder":
        if pooling not in POOLINGS:
            raise TrainingError(f"--pooling: unknown value '{pooling}' (use {', '.join(POOLINGS)})")
        if not trust_remote_code and needs_remote_code(source):
            raise TrainingError(
                f"text model '{source}' runs its own code from the Hugging Face hub; livi never runs hub code "
                f"unless asked: pass --trust-remote-code if you trust it, or pick a model with stock code via "
                f"--text-model (e.g. {NO_CODE_ALTERNATIVE})"
            )
        import torch
        from transformers import AutoModel, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
            # float32 whatever the file holds: transformers 5 would keep a float16 checkpoint's dtype,
            # slow and imprecise on a CPU, and the targets are computed once and stored.
            model = AutoModel.from_pretrained(source, trust_remote_code=trust_remote_code, dtype=torch.float32)
        except (OSError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise TrainingError(f"text model '{source}' could not be loaded: {first}") from exc
        how = detect_pooling(source) if pooling == "auto" else pooling
        local = Path(source).expanduser()
        name = str(local.resolve()) if local.is_dir() else source  # recorded in the shards: one spelling per model
        return cls(model, tokenizer, pooling=how, name=name, device=device, max_length=max_length)

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        out = np.zeros((len(texts), self.dim), np.float32)
        for i in range(0, len(texts), batch_size):
            batch = self.tokenizer(list(texts[i:i + batch_size]), padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="pt").to(self.device)
            with torch.inference_mode():
                hidden = self.model(**batch).last_hidden_state
                vec = F.normalize(pool(hidden.float(), batch["attention_mask"], self.pooling), dim=-1)
            out[i:i + len(vec)] = vec.cpu().numpy()
        return out
