"""Audio-content fingerprint: tells copies of one recording apart from covers and live versions.

Design (our own, in the spirit of Haitsma & Kalker's "highly robust audio fingerprinting"):

1. Leading/trailing silence is cut (blocks quieter than ``SILENCE_DB`` below the loudest block) so a
   trimmed copy starts at the same audio as the original (to the sample); what remains is the
   stored duration.
2. The first ``MAX_SECONDS`` of content are framed (``FRAME`` = 256 ms Hann, ``HOP`` = 62.5 ms →
   16 frames/s) and their power is summed in ``N_BANDS`` log-spaced bands between 200 Hz and 4 kHz,
   the range every lossy codec and every sample rate ≥ 8 kHz keeps.
3. Each frame gives one 32-bit word: bit m is set when the energy difference of bands m and m+1
   grows from the previous frame to this one (a second-order sign, so gain, EQ tilt and codec noise
   floor cancel out).
4. Two fingerprints are compared by their bit-error rate (BER) at the best frame offset within
   ±``MAX_OFFSET_FRAMES`` (residual trimming or encoder delay; one vectorised coarse pass over all
   shifts picks the few worth a full comparison); ``similarity = 1 - 2·BER`` clipped to
   [0, 1]: identical audio ≈ 1, unrelated audio ≈ 0. A cover has a different spectrum frame by
   frame, so its BER stays near 0.5 even when the melody is the same.

Stored format (little endian): b"LF", version (u8), reserved (u8), content duration in ms (u32),
n_frames (u32), then n_frames u32 words. At most 4 bytes × 16 frames/s × 90 s ≈ 5.8 kB per track.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from livi_cli import constants as C

MAGIC = b"LF"
VERSION = 1
_HEADER = struct.Struct("<2sBBII")

FRAME = 4096  # 256 ms at 16 kHz: long frames average out codec pre-echo and smearing
HOP = 1000  # 62.5 ms → 16 words/s; half a hop of misalignment still leaves BER ≈ 0.1
N_BANDS = 33  # 33 bands → 32 adjacent-band differences → one 32-bit word per frame
F_LOW, F_HIGH = 200.0, 4000.0  # Hz; above 4 kHz low-bitrate codecs cut or smear content
MAX_SECONDS = 90.0  # fingerprint the first 90 s of content (enough to decide, bounded size)
SILENCE_DB = 45.0  # a 20 ms block this far below the loudest block counts as silence
SILENCE_FLOOR = 1e-4  # absolute RMS floor (-80 dBFS): digital silence / dither
MAX_OFFSET_FRAMES = 48  # ±3 s of alignment search after silence trimming
MIN_OVERLAP_FRAMES = 32  # 2 s: shorter overlaps are not evidence of anything
COARSE_PROBE = 256  # 16 s of words locate the offset before the full comparison
COARSE_KEEP = 3  # offsets checked in full

# Same recording: measured on bench/bench_groups.py's generated set (see README, `livi duplicates`).
DUPLICATE_SIMILARITY = 0.5  # BER ≤ 0.25; transcodes measure ≥ 0.75, covers/unrelated ≤ 0.2
DURATION_TOLERANCE_S = 4.0  # content durations may differ by max(4 s, 3 %): fades, encoder padding
DURATION_TOLERANCE_FRAC = 0.03


@dataclass(frozen=True)
class Fingerprint:
    duration: float  # seconds of non-silent content
    words: np.ndarray  # (n,) uint32


@dataclass(frozen=True)
class Match:
    similarity: float  # 1 - 2·BER at the best offset, in [0, 1]
    offset: int  # frames b is shifted against a at the best alignment
    duration_ok: bool  # content durations agree within tolerance


def trim_silence(wave: np.ndarray, sr: int = C.SAMPLE_RATE) -> np.ndarray:
    """The wave without leading/trailing blocks that are silent relative to the loudest block."""
    block = max(1, sr // 50)
    n = len(wave) // block
    if n == 0:
        return wave[:0]
    rms = np.sqrt(np.mean(np.square(wave[: n * block].reshape(n, block), dtype=np.float64), axis=1))
    threshold = max(SILENCE_FLOOR, float(rms.max()) * 10 ** (-SILENCE_DB / 20))
    loud = np.flatnonzero(rms > threshold)
    if loud.size == 0:
        return wave[:0]
    # Sample-precise edges inside the first/last loud block: copies then start on the same sample
    # (within a few), whatever the block grid, encoder delay or padding was.
    first = wave[loud[0] * block : (loud[0] + 1) * block]
    last = wave[loud[-1] * block : (loud[-1] + 1) * block]
    start = loud[0] * block + int(np.argmax(np.abs(first) > threshold))
    end = loud[-1] * block + len(last) - int(np.argmax(np.abs(last[::-1]) > threshold))
    return wave[start:end]


@lru_cache(maxsize=4)
def _band_matrix(sr: int) -> np.ndarray:
    """(FRAME//2+1, N_BANDS) 0/1 matrix summing rfft power bins into log-spaced bands."""
    freqs = np.fft.rfftfreq(FRAME, 1.0 / sr)
    edges = np.geomspace(F_LOW, min(F_HIGH, sr / 2 - 1), N_BANDS + 1)
    idx = np.searchsorted(edges, freqs, side="right") - 1
    mat = np.zeros((len(freqs), N_BANDS), np.float32)
    ok = (idx >= 0) & (idx < N_BANDS)
    mat[np.flatnonzero(ok), idx[ok]] = 1.0
    return mat


def _band_energies(wave: np.ndarray, sr: int) -> np.ndarray:
    n_frames = 1 + (len(wave) - FRAME) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(wave, FRAME)[::HOP][:n_frames]
    spec = np.fft.rfft(frames * np.hanning(FRAME).astype(np.float32), axis=1)
    power = (spec.real**2 + spec.imag**2).astype(np.float32)
    return power @ _band_matrix(sr)


def compute(wave16k: np.ndarray, sr: int = C.SAMPLE_RATE) -> Fingerprint:
    """Fingerprint of a mono wave (16 kHz as decoded for the embedder)."""
    wave = np.asarray(wave16k, dtype=np.float32).reshape(-1)
    content = trim_silence(wave, sr)
    duration = len(content) / sr
    content = content[: int(MAX_SECONDS * sr)]
    if len(content) < FRAME + HOP:
        return Fingerprint(duration, np.zeros(0, np.uint32))
    energy = _band_energies(content, sr)
    diff = energy[:, :-1] - energy[:, 1:]  # (n, 32) adjacent-band differences
    bits = (diff[1:] - diff[:-1]) > 0  # (n-1, 32) did the difference grow since the last frame
    weights = (np.uint64(1) << np.arange(32, dtype=np.uint64)).astype(np.uint64)
    words = (bits.astype(np.uint64) * weights).sum(axis=1).astype(np.uint32)
    return Fingerprint(duration, words)


def encode(fp: Fingerprint) -> bytes:
    header = _HEADER.pack(MAGIC, VERSION, 0, int(round(fp.duration * 1000)), len(fp.words))
    return header + fp.words.astype("<u4").tobytes()


def decode(data: bytes) -> Fingerprint:
    """Parse stored bytes; ValueError on anything that is not a version-1 fingerprint."""
    if len(data) < _HEADER.size:
        raise ValueError("fingerprint too short")
    magic, version, _, dur_ms, n = _HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION or len(data) != _HEADER.size + 4 * n:
        raise ValueError("not a livi fingerprint (bad magic, version or length)")
    words = np.frombuffer(data, dtype="<u4", offset=_HEADER.size, count=n)
    if words.dtype != np.uint32:  # big-endian host: convert; little-endian: a zero-copy read-only view
        words = words.astype(np.uint32)
    return Fingerprint(dur_ms / 1000.0, words)


def fingerprint(wave16k: np.ndarray) -> bytes:
    """The catalog's stored fingerprint of a 16 kHz mono wave (contract with the scan)."""
    return encode(compute(wave16k))


def duration_ok(da: float, db: float) -> bool:
    return abs(da - db) <= max(DURATION_TOLERANCE_S, DURATION_TOLERANCE_FRAC * max(da, db))


def _ber_at(wa: np.ndarray, wb: np.ndarray, off: int, min_overlap: int) -> float | None:
    """Bit-error rate of wa[i] against wb[i + off] over their overlap (None when too short)."""
    lo_a, lo_b = max(0, -off), max(0, off)
    n = min(len(wa) - lo_a, len(wb) - lo_b)
    if n < min_overlap:
        return None
    return int(np.bitwise_count(wa[lo_a : lo_a + n] ^ wb[lo_b : lo_b + n]).sum()) / (32.0 * n)


def _likely_offsets(wa: np.ndarray, wb: np.ndarray, max_offset: int) -> list[int] | None:
    """Coarse pass: one probe stretch of `wa` against every shift of `wb` in a single vectorised
    operation; the few best shifts get the full comparison. None when the inputs are too short."""
    start = max_offset
    length = min(COARSE_PROBE, len(wa) - start, len(wb) - start - max_offset)
    if length < MIN_OVERLAP_FRAMES:
        return None
    probe = wa[start : start + length]
    shifted = np.lib.stride_tricks.sliding_window_view(wb[: start + max_offset + length], length)
    errors = np.bitwise_count(shifted ^ probe).sum(axis=1)  # row r ↔ offset r - max_offset
    best = np.argsort(errors, kind="stable")[:COARSE_KEEP]
    return [int(r) - max_offset for r in best]


def _as_fingerprint(x: Fingerprint | bytes) -> Fingerprint:
    return decode(x) if isinstance(x, (bytes, bytearray, memoryview)) else x


def match(a: Fingerprint | bytes, b: Fingerprint | bytes, max_offset: int = MAX_OFFSET_FRAMES) -> Match:
    """Best-offset comparison of two fingerprints (bytes are decoded first)."""
    fa, fb = _as_fingerprint(a), _as_fingerprint(b)
    wa, wb = fa.words, fb.words
    best_ber, best_off = 0.5, 0
    min_overlap = max(MIN_OVERLAP_FRAMES, min(len(wa), len(wb)) // 2)
    offsets = _likely_offsets(wa, wb, max_offset)
    for off in range(-max_offset, max_offset + 1) if offsets is None else offsets:
        ber = _ber_at(wa, wb, off, min_overlap)
        if ber is not None and ber < best_ber:
            best_ber, best_off = ber, off
    sim = float(min(1.0, max(0.0, 1.0 - 2.0 * best_ber)))
    return Match(sim, best_off, duration_ok(fa.duration, fb.duration))


def similarity(a: bytes, b: bytes) -> float:
    """Audio similarity in [0, 1] with offset search (contract with the catalog/scan)."""
    return match(a, b).similarity


def same_recording(a: Fingerprint | bytes, b: Fingerprint | bytes, threshold: float = DUPLICATE_SIMILARITY) -> bool:
    """Copies of one recording: durations agree (checked first, it is free) and the audio matches."""
    fa, fb = _as_fingerprint(a), _as_fingerprint(b)
    return duration_ok(fa.duration, fb.duration) and match(fa, fb).similarity >= threshold
