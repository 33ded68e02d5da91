"""From vocal segments to 30 s windows (the paper's rules) and cutting windows out of audio.

The rules, in order (`vocal_windows`):
1. keep segments whose vocalness is > threshold (λ, default 0.5); merge kept segments that touch;
2. pad each merged run symmetrically toward 30 s, adding at most MAX_PADDING_SECONDS (10 s) in total; padding
   that would go before 0 or past the end is given to the other side instead (so a run at the very start of a
   track still gets its full context after it), and the result is clamped to [0, duration];
3. merge padded windows that overlap or touch;
4. slice each merged span into consecutive 30 s windows; a shorter leftover is kept (`cut_windows` zero-pads it);
5. cap the number of windows (`max_windows`): keep the windows with the highest mean vocalness (ties: earlier
   first) and return them in time order.
Track-level vocalness (`mean_vocalness`) is the duration-weighted mean over all segments.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from livi_cli import constants as C

_EPS = 1e-6  # seconds: float slack when deciding whether two intervals touch


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


def mean_vocalness(segments: Sequence[Segment]) -> float:
    """Duration-weighted mean vocalness over all segments (0.0 when there are none)."""
    weights = np.array([max(s.end - s.start, 0.0) for s in segments], dtype=np.float64)
    if weights.sum() <= 0:
        return 0.0
    values = np.array([s.vocalness for s in segments], dtype=np.float64)
    return float((weights * values).sum() / weights.sum())


def merge_spans(spans: Sequence[Span]) -> list[Span]:
    """Union of intervals: spans that overlap or touch become one (sorted by start)."""
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] + _EPS:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def vocal_runs(segments: Sequence[Segment], threshold: float = C.VOCAL_THRESHOLD) -> list[Span]:
    """Step 1: segments with vocalness > threshold, touching ones merged."""
    return merge_spans([(s.start, s.end) for s in segments if s.vocalness > threshold and s.end > s.start])


def pad_span(span: Span, duration: float, max_padding: float = C.MAX_PADDING_SECONDS) -> Span:
    """Step 2: grow a run toward 30 s by at most `max_padding` seconds, half on each side, within [0, duration]."""
    start, end = span
    total = min(max_padding, max(0.0, C.WINDOW_SECONDS - (end - start)))
    before = after = total / 2
    if start - before < 0:  # clamped at the start: the rest of the padding goes after the run
        after += before - start
        before = start
    if end + after > duration:  # clamped at the end: the rest goes before the run
        before += end + after - duration
        after = duration - end
    return max(0.0, start - before), min(duration, end + after)


def slice_span(span: Span, window: float = C.WINDOW_SECONDS) -> list[Span]:
    """Step 4: consecutive `window`-second pieces of a span; the last one may be shorter."""
    start, end = span
    pieces: list[Span] = []
    while end - start > _EPS:
        pieces.append((start, min(start + window, end)))
        start += window
    return pieces


def span_vocalness(span: Span, segments: Sequence[Segment]) -> float:
    """Overlap-weighted mean vocalness of the segments under a span (0.0 when none overlap)."""
    total = weighted = 0.0
    for s in segments:
        overlap = min(span[1], s.end) - max(span[0], s.start)
        if overlap > 0:
            total += overlap
            weighted += overlap * s.vocalness
    return weighted / total if total > 0 else 0.0


def cap_windows(spans: Sequence[Span], segments: Sequence[Segment], max_windows: int | None) -> list[Span]:
    """Step 5: keep the `max_windows` most vocal windows (ties: earlier first), in time order.

    Why by vocalness: Whisper embeddings of weakly sung windows drift toward noise, so when an hour-long mix
    has to be cut down, the windows most likely to carry lyrics are the ones worth the encoder's time.
    `None` or 0 means no cap.
    """
    if not max_windows or len(spans) <= max_windows:
        return list(spans)
    order = sorted(range(len(spans)), key=lambda i: (-span_vocalness(spans[i], segments), spans[i][0]))
    return sorted(spans[i] for i in order[:max_windows])


def vocal_windows(
    segments: Sequence[Segment],
    duration: float,
    *,
    threshold: float = C.VOCAL_THRESHOLD,
    max_windows: int | None = C.MAX_WINDOWS_PER_TRACK,
    max_padding: float = C.MAX_PADDING_SECONDS,
) -> list[Span]:
    """The paper's windowing (steps 1-5 in the module docstring). [] when no segment is vocal."""
    runs = vocal_runs(segments, threshold)
    padded = merge_spans([pad_span(r, duration, max_padding) for r in runs])
    windows = [w for span in padded for w in slice_span(span)]
    return cap_windows(windows, segments, max_windows)
