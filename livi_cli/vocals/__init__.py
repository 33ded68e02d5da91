"""Vocal detection and windowing. `analyse` is the one entry point the embedding stack calls.

analyse = detector (detectors.py: waveform → per-second vocalness) + the paper's windowing (windows.py).
Heavy imports (torch, silero-vad) happen only when a detector first runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from livi_cli import constants as C
from livi_cli.vocals.detectors import available_detectors, detect, get_detector
from livi_cli.vocals.windows import Segment, Span, cut_windows, mean_vocalness, plain_windows, vocal_windows

__all__ = [
    "Segment", "Span", "WindowPlan", "analyse", "available_detectors", "cut_windows", "detect", "get_detector",
    "plain_windows",
]


@dataclass
class WindowPlan:
    spans: list[Span]
    segments: list[Segment] = field(default_factory=list)
    mean_vocalness: float | None = None  # None when no detector ran
    instrumental: bool = False


def analyse(
    wave: np.ndarray,
    detector: str = "default",
    *,
    threshold: float = C.VOCAL_THRESHOLD,
    instrumental_threshold: float = C.INSTRUMENTAL_THRESHOLD,
    max_windows: int = C.MAX_WINDOWS_PER_TRACK,
    include_instrumental: bool = False,
) -> WindowPlan:
    """Detect vocals in a 16 kHz mono wave and choose the 30 s windows to embed.

    - detector "none": plain 30 s windows, no segments, mean_vocalness None, never instrumental;
    - otherwise: mean vocalness (duration-weighted, over all segments) < instrumental_threshold → instrumental:
      no windows, or plain windows when include_instrumental (instrumental stays True so callers can record it);
    - else the paper's windows around segments with vocalness > threshold (windows.vocal_windows), at most
      max_windows of them (the most vocal ones).
    Any finite or non-finite float input gives a plan (silence and noise come out instrumental); an unknown
    detector name raises ConfigError.
    """
    wave = np.asarray(wave, dtype=np.float32).reshape(-1)
    duration = len(wave) / C.SAMPLE_RATE
    plain = plain_windows(duration, max_windows) if duration > 0 else []  # no audio, nothing to embed
    if get_detector(detector) is None:
        return WindowPlan(spans=plain)
    segments = detect(wave, detector)
    mean = mean_vocalness(segments)
    if mean < instrumental_threshold:
        spans = plain if include_instrumental else []
        return WindowPlan(spans=spans, segments=segments, mean_vocalness=mean, instrumental=True)
    spans = vocal_windows(segments, duration, threshold=threshold, max_windows=max_windows)
    return WindowPlan(spans=spans, segments=segments, mean_vocalness=mean, instrumental=False)
