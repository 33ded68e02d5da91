"""The paper's windowing rules on hand-built segment lists."""
from __future__ import annotations

import numpy as np
import pytest

from livi_cli.vocals.windows import (
    Segment, cap_windows, cut_windows, mean_vocalness, pad_span, plain_windows, vocal_windows,
)


def track(duration: float, vocal: list[tuple[float, float]], low: float = 0.1, high: float = 0.9):
    """1 s segments over `duration`; those inside a vocal interval get `high`, the rest `low`."""
    segs = []
    for start in range(int(np.ceil(duration))):
        end = min(start + 1.0, duration)
        inside = any(a <= start and end <= b for a, b in vocal)
        segs.append(Segment(float(start), end, high if inside else low))
    return segs


def test_single_short_segment_padded_by_ten_seconds():
    assert vocal_windows(track(200, [(50, 55)]), 200) == [(45.0, 60.0)]


def test_long_segment_gets_only_the_padding_it_needs():
    # 24 s of vocals: 6 s of padding reach 30 s, 3 s each side
    assert vocal_windows(track(200, [(50, 74)]), 200) == [(47.0, 77.0)]


def test_touching_segments_merge_before_padding():
    segs = [Segment(50, 52, 0.8), Segment(52, 54, 0.9), Segment(54, 100, 0.0)]
    assert vocal_windows(segs, 100) == [(45.0, 59.0)]


def test_overlaps_after_padding_merge_then_slice():
    # (20,25) → (15,30); (34,50) → (29,55): they overlap, merge to (15,55), sliced 30 s + 10 s leftover
    assert vocal_windows(track(200, [(20, 25), (34, 50)]), 200) == [(15.0, 45.0), (45.0, 55.0)]


def test_separate_runs_stay_separate():
    assert vocal_windows(track(200, [(20, 25), (100, 105)]), 200) == [(15.0, 30.0), (95.0, 110.0)]


def test_span_longer_than_sixty_seconds_is_sliced_with_short_leftover():
    assert vocal_windows(track(200, [(10, 85)]), 200) == [(10.0, 40.0), (40.0, 70.0), (70.0, 85.0)]


def test_segment_at_the_very_start_gives_its_padding_to_the_end():
    assert vocal_windows(track(100, [(0, 4)]), 100) == [(0.0, 14.0)]


def test_segment_at_the_very_end_gives_its_padding_to_the_start():
    assert vocal_windows(track(100, [(96, 100)]), 100) == [(86.0, 100.0)]


def test_track_shorter_than_the_padding_is_clamped_to_its_duration():
    assert pad_span((1.0, 2.0), 3.0) == (0.0, 3.0)
    assert vocal_windows([Segment(0, 1, 0.2), Segment(1, 2, 0.9), Segment(2, 2.5, 0.1)], 2.5) == [(0.0, 2.5)]


def test_no_vocal_segment_gives_no_window():
    segs = track(120, [])
    assert vocal_windows(segs, 120) == []
    assert mean_vocalness(segs) == pytest.approx(0.1)


def test_threshold_is_strictly_greater_than():
    segs = [Segment(0, 10, 0.5), Segment(10, 20, 0.2)]
    assert vocal_windows(segs, 20, threshold=0.5) == []
    assert vocal_windows(segs, 20, threshold=0.49) == [(0.0, 20.0)]


def test_mean_vocalness_is_duration_weighted():
    assert mean_vocalness([Segment(0, 3, 1.0), Segment(3, 4, 0.0)]) == pytest.approx(0.75)
    assert mean_vocalness([]) == 0.0


def test_cap_keeps_the_most_vocal_windows_in_time_order():
    segs = track(400, [(0, 400)], high=0.6)
    segs = [Segment(s.start, s.end, 0.95 if 200 <= s.start < 230 else 0.9 if 60 <= s.start < 90 else 0.6)
            for s in segs]
    windows = vocal_windows(segs, 400, max_windows=2)
    assert windows == [(60.0, 90.0), (210.0, 240.0)]  # means 0.9 and 0.83 beat 0.78 (180-210) and 0.6
    assert len(vocal_windows(segs, 400, max_windows=None)) == 14


def test_cap_ties_prefer_earlier_windows():
    spans = [(0.0, 30.0), (30.0, 60.0), (60.0, 90.0)]
    segs = [Segment(0, 90, 0.8)]
    assert cap_windows(spans, segs, 2) == [(0.0, 30.0), (30.0, 60.0)]


def test_windows_never_leave_the_track_and_never_exceed_thirty_seconds():
    rng = np.random.default_rng(3)
    for _ in range(50):
        duration = float(rng.uniform(1, 600))
        segs = [Segment(float(i), min(i + 1.0, duration), float(rng.random())) for i in range(int(np.ceil(duration)))]
        windows = vocal_windows(segs, duration, max_windows=None)
        for a, b in windows:
            assert 0 <= a < b <= duration + 1e-9 and b - a <= 30 + 1e-9
        assert all(w1[1] <= w2[0] + 1e-9 for w1, w2 in zip(windows, windows[1:]))
        for s in segs:  # every vocal second is inside a window
            if s.vocalness > 0.5:
                assert any(a <= s.start and s.end <= b + 1e-9 for a, b in windows)


def test_cut_windows_zero_pads_the_leftover():
    wave = np.ones(16000 * 40, dtype=np.float32)
    out = cut_windows(wave, [(0.0, 30.0), (30.0, 40.0)])
    assert out.shape == (2, 480000)
    assert out[0].sum() == 480000 and out[1, :160000].sum() == 160000 and not out[1, 160000:].any()


def test_plain_windows_unchanged():
    assert plain_windows(65.0) == [(0.0, 30.0), (30.0, 60.0), (60.0, 65.0)]
    assert plain_windows(65.0, 2) == [(0.0, 30.0), (30.0, 60.0)]
