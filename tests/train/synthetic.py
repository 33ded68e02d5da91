"""A synthetic learning task written as real shards: targets are a fixed function of the states.

Each clique has a signal vector living in the first `signal` input channels; every track adds a
large nuisance vector in the other channels (so an untrained head, which mixes all channels,
ranks by nuisance) and every frame adds noise. Targets = normalise(W · mean-pooled signal
channels): a head can only match them, and find covers, by learning to read the signal channels.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from livi_cli.train.shards import ShardWriter, TrackWindows

DIM, FRAMES, SIGNAL, TARGET = 32, 16, 8, 16
NUISANCE = 1.0


def make_task(directory: Path, *, cliques: int = 40, per_clique: int = 3, windows: int = 2, seed: int = 0,
              shard_size: int = 24, store: str = "states") -> Path:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((TARGET, SIGNAL))
    writer = ShardWriter(directory, {"store": store, "whisper": "synthetic", "text_model": "synthetic"}, shard_size)
    for c in range(cliques):
        signal = rng.standard_normal(SIGNAL)
        for k in range(per_clique):
            nuisance = NUISANCE * rng.standard_normal(DIM - SIGNAL)
            states = np.zeros((windows, FRAMES, DIM), np.float32)
            states[:, :, :SIGNAL] = signal + 0.3 * rng.standard_normal((windows, 1, SIGNAL))
            states[:, :, SIGNAL:] = nuisance
            states += 0.5 * rng.standard_normal(states.shape)
            pooled = states[:, :, :SIGNAL].mean(axis=1)
            targets = pooled @ w.T
            targets /= np.linalg.norm(targets, axis=1, keepdims=True)
            track = f"c{c:02d}-t{k}"
            writer.add(TrackWindows(track, f"clique{c:02d}", f"/synthetic/{track}.wav", states.astype(np.float16),
                                    targets.astype(np.float32), [(30.0 * i, 30.0 * i + 30) for i in range(windows)],
                                    [f"text {track} {i}" for i in range(windows)], windows))
    writer.close()
    return directory
