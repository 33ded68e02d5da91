"""Embedder: audio → LIVI embeddings (per 30 s window and per track).

Work splits in two so a scan can overlap them: `prepare_*` (decode, vocal windows, log-mel: CPU,
thread-safe, runs in a worker pool) and `encode` (frozen Whisper encoder + head, batched across
tracks). Models load lazily on first use; `check_models()` fails fast before any work.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from livi_cli import constants as C
from livi_cli.config import Settings, load_settings
from livi_cli.vocals import Segment, Span, analyse, cut_windows

MEL_CHUNK = 8  # windows per feature-extractor call: bounds a prepare worker's transient memory


@dataclass(frozen=True)
class ModelIdentity:
    """What produced a vector. Two identities with different keys give incompatible spaces."""

    whisper: str
    whisper_revision: str
    head_sha256: str
    dim: int

    def key(self) -> str:
        return f"{self.whisper}@{self.whisper_revision}|head:{self.head_sha256[:16]}|d{self.dim}"


@dataclass
class Prepared:
    duration: float
    spans: list[Span]
    segments: list[Segment]
    mean_vocalness: float | None
    instrumental: bool
    features: np.ndarray  # (N, n_mels, 3000) log-mel, one row per span
    wave: np.ndarray | None = None  # 16 kHz mono, only with keep_wave=True


@dataclass
class TrackEmbedding:
    vector: np.ndarray | None  # (D,) unit-norm mean of the windows; None when nothing was embedded
    windows: np.ndarray  # (N, D) unit-norm
    spans: list[Span] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    mean_vocalness: float | None = None
    instrumental: bool = False
    duration: float = 0.0


def track_vector(windows: np.ndarray) -> np.ndarray | None:
    """Mean of window embeddings, re-normalised (the paper's track embedding)."""
    if len(windows) == 0:
        return None
    mean = windows.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return (mean / norm).astype(np.float32) if norm > 0 else None


def _size_mismatch(head_dim: int, d_model: int) -> str:
    return f"head expects {head_dim}-d encoder states but the Whisper model gives {d_model}-d"


def _check_dims(encoder, head) -> None:
    from livi_cli.errors import CheckpointError

    if head.config.dim_whisper != encoder.config.d_model:
        raise CheckpointError(_size_mismatch(head.config.dim_whisper, encoder.config.d_model))


class Embedder:
    def __init__(self, settings: Settings | None = None, *, whisper_model=None, feature_extractor=None,
                 head_model=None, **overrides):
        self.settings = settings or load_settings(**overrides)
        if settings is not None and overrides:
            from dataclasses import replace

            self.settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
        self._encoder = whisper_model
        self._features = feature_extractor
        self._head = head_model
        self._injected = whisper_model is not None and head_model is not None
        self._lock = threading.Lock()  # encoder/head loading and moving them to the device
        self._features_lock = threading.Lock()  # separate: prepare workers never wait for the encoder to load
        self._device = None
        self._precision = None
        self._identity: ModelIdentity | None = None

    # ------------------------------------------------------------ models
    def check_models(self) -> None:
        """Raise now (before any work) if a model cannot be found or a setting is unusable."""
        from livi_cli.model.device import check_names
        from livi_cli.vocals import get_detector

        check_names(self.settings.device, self.settings.precision)
        get_detector(self.settings.vocal_detector)  # ConfigError for an unknown name; loads no weights
        if not self._injected:
            import json

            from livi_cli.errors import CheckpointError
            from livi_cli.model.registry import head_input_dim, resolve_head, resolve_whisper

            loc = resolve_whisper(self.settings)
            head_dim = head_input_dim(resolve_head(self.settings), self.settings)
            try:  # both sizes come from small files (config.json, the head cache): no weights load
                d_model = json.loads((loc.directory / "config.json").read_text(encoding="utf-8"))["d_model"]
            except (OSError, ValueError, KeyError):
                return  # unusual config: the check at load time still applies
            if head_dim != d_model:
                raise CheckpointError(_size_mismatch(head_dim, d_model))

    @property
    def identity(self) -> ModelIdentity:
        """Computed from file locations and digests only: no weights are loaded."""
        if self._identity is None:
            if self._injected:
                dim = self._head.config.dim_embed
                self._identity = ModelIdentity("in-memory", "none", f"{id(self._head):016x}", dim)
            else:
                from livi_cli.model.registry import head_info, resolve_head, resolve_whisper

                loc = resolve_whisper(self.settings)
                digest, dim = head_info(resolve_head(self.settings), self.settings)
                self._identity = ModelIdentity(loc.source, loc.revision, digest, dim)
        return self._identity

    def _load(self) -> None:
        """Encoder and head (the feature extractor loads on its own: see `feature_extractor`)."""
        with self._lock:
            if self._encoder is not None and self._head is not None:
                return
            from livi_cli.model.checkpoint import load_head
            from livi_cli.model.registry import resolve_head, resolve_whisper
            from livi_cli.model.whisper import load_encoder

            encoder = load_encoder(resolve_whisper(self.settings).directory) if self._encoder is None else self._encoder
            head = load_head(resolve_head(self.settings)) if self._head is None else self._head
            _check_dims(encoder, head)
            # Kept only once they fit together: a mismatch must raise on every call, not just the first.
            self._encoder, self._head = encoder, head

    @property
    def feature_extractor(self):
        """Loaded alone (a few kB): the scan's prepare workers need it, and must neither wait for the
        multi-GB encoder to load nor fail because of a problem with the encoder or the head."""
        if self._features is None:
            with self._features_lock:
                if self._features is None:
                    from livi_cli.model.registry import resolve_whisper
                    from livi_cli.model.whisper import load_feature_extractor

                    self._features = load_feature_extractor(resolve_whisper(self.settings).directory)
        return self._features

    @property
    def device(self):
        if self._device is None:
            from livi_cli.model.device import resolve_device, resolve_precision

            device = resolve_device(self.settings.device)
            self._precision = resolve_precision(self.settings.precision, device)
            self._device = device  # last: a thread that sees the device also sees its precision
        return self._device

    @property
    def precision(self) -> str:
        _ = self.device
        return self._precision

    def _models_on_device(self):
        self._load()
        device = self.device
        with self._lock:
            if next(self._encoder.parameters()).device != device:
                self._encoder.to(device)
            if next(self._head.parameters()).device != device:
                self._head.to(device)
        return self._encoder, self._head

    # ------------------------------------------------------------ CPU side
    def log_mel(self, windows: np.ndarray) -> np.ndarray:
        """(N, 480000) audio windows → (N, n_mels, 3000) Whisper log-mel."""
        n_mels = self.feature_extractor.feature_size
        if len(windows) == 0:
            return np.zeros((0, n_mels, C.MEL_FRAMES), np.float32)
        out = self.feature_extractor(list(windows), sampling_rate=C.SAMPLE_RATE, return_tensors="np")
        return out["input_features"].astype(np.float32, copy=False)

    def span_features(self, wave: np.ndarray, spans: list[Span]) -> np.ndarray:
        """Log-mel of `spans` cut from `wave`, MEL_CHUNK windows at a time.

        The feature extractor holds several copies of its input (padding, STFT, power): in one call,
        64 windows peaked at 950 MB over the features themselves, in chunks of 8 at 30 MB. That is per
        prepare worker, and a track may have up to `max_windows` windows (or any number with 0).
        Each window's log-mel is computed independently, so chunking does not change the values.
        """
        out = np.empty((len(spans), self.feature_extractor.feature_size, C.MEL_FRAMES), np.float32)
        for i in range(0, len(spans), MEL_CHUNK):
            out[i : i + MEL_CHUNK] = self.log_mel(cut_windows(wave, spans[i : i + MEL_CHUNK]))
        return out

    def prepare_waveform(self, wave: np.ndarray, keep_wave: bool = False) -> Prepared:
        s = self.settings
        plan = analyse(
            wave, s.vocal_detector, threshold=s.vocal_threshold, instrumental_threshold=s.instrumental_threshold,
            max_windows=s.max_windows, include_instrumental=s.include_instrumental,
        )
        features = self.span_features(wave, plan.spans)
        return Prepared(
            duration=len(wave) / C.SAMPLE_RATE, spans=list(plan.spans), segments=list(plan.segments),
            mean_vocalness=plan.mean_vocalness, instrumental=plan.instrumental, features=features,
            wave=wave if keep_wave else None,
        )

    def prepare_path(self, path: str | os.PathLike, keep_wave: bool = False) -> Prepared:
        from livi_cli.audio.decode import load_audio

        return self.prepare_waveform(load_audio(Path(path)), keep_wave=keep_wave)

    # ------------------------------------------------------------ model side
    def encoder_states(self, features: np.ndarray):
        """Frozen encoder: (N, n_mels, 3000) → torch (N, 1500, d_model) float32 on the device."""
        import torch

        from livi_cli.model.device import autocast

        encoder, _ = self._models_on_device()
        x = torch.from_numpy(np.ascontiguousarray(features)).to(self.device)
        with torch.inference_mode(), autocast(self.device, self.precision):
            return encoder(x).last_hidden_state.float()

    def encode_windows(self, features: np.ndarray) -> np.ndarray:
        """(N, n_mels, 3000) → (N, D) unit-norm window embeddings, in batches of batch_size."""
        import torch

        _, head = self._models_on_device()
        dim = head.config.dim_embed
        out = np.zeros((len(features), dim), np.float32)
        bs = max(1, int(self.settings.batch_size))
        for i in range(0, len(features), bs):
            states = self.encoder_states(features[i : i + bs])
            with torch.inference_mode():  # the head is small: fp32 keeps it exact
                out[i : i + bs] = head(states).cpu().numpy()
        return out

    def encode(self, prepared: list[Prepared]) -> list[TrackEmbedding]:
        """Embed several prepared tracks, batching their windows together."""
        counts = [len(p.spans) for p in prepared]
        feats = [p.features for p in prepared if len(p.spans)]
        if feats:
            windows = self.encode_windows(np.concatenate(feats))
        else:
            windows = np.zeros((0, self.identity.dim), np.float32)
        results, at = [], 0
        for p, n in zip(prepared, counts):
            w = windows[at : at + n]
            at += n
            results.append(TrackEmbedding(
                vector=track_vector(w), windows=w, spans=p.spans, segments=p.segments,
                mean_vocalness=p.mean_vocalness, instrumental=p.instrumental, duration=p.duration,
            ))
        return results

    def embed_waveform(self, wave: np.ndarray) -> TrackEmbedding:
        return self.encode([self.prepare_waveform(wave)])[0]

    def embed_path(self, path: str | os.PathLike) -> TrackEmbedding:
        return self.encode([self.prepare_path(path)])[0]
