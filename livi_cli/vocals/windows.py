"""From vocal segments to 30 s windows (the paper's rules) and cutting windows out of audio."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from livi_cli import constants as C


@dataclass(frozen=True)
class Segment:
    start: float  # seconds
    end: float  # seconds
    vocalness: float  # in [0, 1]


Span = tuple[float, float]  # (start, end) seconds of one window in the track


def plain_windows(duration: float, max_windows: int | None = None) -> list[Span]:
    """Non-overlapping 30 s windows covering the track; the last one may be short."""
    spans: list[Span] = []
    start = 0.0
    while start < duration or not spans:
        spans.append((start, min(start + C.WINDOW_SECONDS, duration)))
        start += C.WINDOW_SECONDS
        if duration <= 0:
            break
    return spans[:max_windows] if max_windows else spans


def cut_windows(wave: np.ndarray, spans: list[Span], sr: int = C.SAMPLE_RATE) -> np.ndarray:
    """(N, 480000) float32: each span cut from `wave`, zero-padded to 30 s."""
    out = np.zeros((len(spans), C.WINDOW_SAMPLES), dtype=np.float32)
    for i, (start, end) in enumerate(spans):
        a = int(round(start * sr))
        b = min(int(round(end * sr)), a + C.WINDOW_SAMPLES, len(wave))
        if b > a:
            out[i, : b - a] = wave[a:b]
    return out
