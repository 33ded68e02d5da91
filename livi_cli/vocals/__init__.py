"""Vocal detection and windowing. `analyse` is the one entry point the embedding stack calls.

TEMPORARY (lead): plain 30 s windows only; the vocals work replaces the body, keeping the signature.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from livi_cli import constants as C
from livi_cli.vocals.windows import Segment, Span, cut_windows, plain_windows

__all__ = ["Segment", "Span", "WindowPlan", "analyse", "cut_windows", "plain_windows"]


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
    duration = len(wave) / C.SAMPLE_RATE
    return WindowPlan(spans=plain_windows(duration, max_windows))
