"""The frozen Whisper encoder and its feature extractor.

Only encoder tensors are read from the checkpoint (safetensors lets us skip the decoder), so a
turbo model costs ~0.64 B parameters' worth of memory instead of 0.81 B.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from livi_cli.errors import ModelMissingError

ENCODER_PREFIXES = ("model.encoder.", "encoder.")  # WhisperForConditionalGeneration / WhisperModel


def _encoder_state(directory: Path) -> dict[str, torch.Tensor]:
    index = directory / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    elif (directory / "model.safetensors").is_file():
        files = ["model.safetensors"]
    else:
        files = []
    state: dict[str, torch.Tensor] = {}
    if files:
        from safetensors import safe_open

        for name in files:
            with safe_open(str(directory / name), framework="pt") as f:
                for key in f.keys():
                    for prefix in ENCODER_PREFIXES:
                        if key.startswith(prefix):
                            state[key[len(prefix):]] = f.get_tensor(key)
        return state
    bin_path = directory / "pytorch_model.bin"
    if not bin_path.is_file():
        raise ModelMissingError("whisper", str(directory), "no model.safetensors or pytorch_model.bin found")
    full = torch.load(bin_path, map_location="cpu", weights_only=True)
    for key, value in full.items():
        for prefix in ENCODER_PREFIXES:
            if key.startswith(prefix):
                state[key[len(prefix):]] = value
    return state


def load_encoder(directory: str | Path):
    """WhisperEncoder in eval mode with frozen float32 weights, from a transformers model directory."""
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    directory = Path(directory)
    config = WhisperConfig.from_pretrained(directory)
    with torch.device("meta"):
        encoder = WhisperEncoder(config)
    state = _encoder_state(directory)
    missing = set(encoder.state_dict()) - set(state)
    if missing:
        raise ModelMissingError("whisper", str(directory), f"encoder weights incomplete (missing {sorted(missing)[0]})")
    encoder.load_state_dict(state, strict=False, assign=True)
    # assign=True keeps the file's dtype, and the published turbo weights are float16: weights stay
    # float32 (autocast picks the compute precision), else a CPU fp32 run fails on the first conv.
    encoder.float().requires_grad_(False)
    return encoder.eval()


def load_feature_extractor(directory: str | Path):
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor.from_pretrained(str(directory))


TURBO = dict(d_model=1280, encoder_layers=32, encoder_attention_heads=20, encoder_ffn_dim=5120, num_mel_bins=128,
             decoder_layers=4, decoder_attention_heads=20, decoder_ffn_dim=5120, vocab_size=51866)
TINY = dict(d_model=64, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=128, num_mel_bins=128,
            decoder_layers=2, decoder_attention_heads=2, decoder_ffn_dim=128, vocab_size=51866)


def random_encoder(size: str = "turbo", seed: int = 0):
    """(WhisperEncoder, WhisperFeatureExtractor) with random weights: for timing and tests only."""
    from transformers import WhisperConfig, WhisperFeatureExtractor
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    dims = {"turbo": TURBO, "tiny": TINY}[size]
    torch.manual_seed(seed)
    encoder = WhisperEncoder(WhisperConfig(**dims)).eval().requires_grad_(False)
    return encoder, WhisperFeatureExtractor(feature_size=dims["num_mel_bins"])
