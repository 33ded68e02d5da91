"""The "spectral" detector: numpy only, a logistic model on cheap per-second spectral cues.

Cues (from a 64 ms / 32 ms-hop STFT, pooled over each 1 s hop):
- pitch fluctuation: on a log-frequency grid (1/8 semitone, 300-4000 Hz) the shift that best aligns each frame
  with the next one; a singing voice glides and wobbles (vibrato, portamento), chords and bass hold still.
  Mean |shift| and its spread, weighted by how well frames align (noise aligns badly);
- timbre variation: variance of the frame-to-frame change of a 20-band cepstrum ("vocal variance": vowels and
  consonants change the spectral envelope several times a second, a chord pad does not);
- voice-band tonality: spectral flatness in 300-4000 Hz (a voice is tonal there) and the share of energy there;
- loudness relative to the track's median (silence is never vocal).
The weights were fit by logistic regression on the *training* split of livi_cli.vocals.evalset (seeds 1, 11,
21 for the three voice families, disjoint from the evaluation split the bench reports: 0, 10, 20); they are
numbers in this file, nothing is downloaded.
Being fit on synthetic audio, this detector is a cheap fallback, not the default (see models/README.md).
"""
from __future__ import annotations

import numpy as np

from livi_cli import constants as C

N_FFT = 1024
HOP = 512  # 32 ms frames
_FMIN, _FMAX, _STEPS_PER_SEMITONE, _MAX_SHIFT = 300.0, 4000.0, 8, 6
FEATURES = ("fluct_mean", "fluct_std", "align", "timbre_var", "flatness", "band_share", "loudness")
# Fit by `bench/bench_vocals.py --fit-spectral --tracks 60 --voice synth,espeak-sung,espeak` on the training
# split (1800 one-second hops from 60 tracks, training accuracy 0.868).
_MEAN = np.array([0.52196, 0.54753, 0.80353, 2.72586, 0.05315, 0.56979, -0.75797])
_SCALE = np.array([0.59156, 0.46596, 0.13845, 0.60727, 0.09755, 0.22324, 4.31719])
_WEIGHTS = np.array([-1.01547, 1.63372, -3.42356, -1.57197, -2.96403, 0.65404, 1.52266])
_BIAS = -0.47221


def _logfreq_matrix(sr: int) -> np.ndarray:
    """(n_fft//2+1, n_log) linear-interpolation matrix from STFT bins to a log-frequency grid."""
    n_log = int(np.log2(_FMAX / _FMIN) * 12 * _STEPS_PER_SEMITONE)
    freqs = _FMIN * 2 ** (np.arange(n_log) / (12 * _STEPS_PER_SEMITONE))
    pos = freqs / (sr / N_FFT)
    lo = np.floor(pos).astype(int)
    frac = pos - lo
    m = np.zeros((N_FFT // 2 + 1, n_log), dtype=np.float32)
    m[lo, np.arange(n_log)] = 1 - frac
    m[lo + 1, np.arange(n_log)] = frac
    return m


def _band_matrix(sr: int, n_bands: int = 20) -> np.ndarray:
    """(n_fft//2+1, n_bands) triangular bands evenly spaced on a log axis, 100-7000 Hz (a cheap mel)."""
    edges = np.geomspace(100, 7000, n_bands + 2)
    freqs = np.arange(N_FFT // 2 + 1) * sr / N_FFT
    m = np.zeros((len(freqs), n_bands), dtype=np.float32)
    for b in range(n_bands):
        lo, mid, hi = edges[b:b + 3]
        m[:, b] = np.clip(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), 0, None)
    return m


def _stft_power(wave: np.ndarray) -> np.ndarray:
    """(frames, n_fft//2+1) power spectrum; frames start every HOP samples."""
    if len(wave) < N_FFT:
        wave = np.pad(wave, (0, N_FFT - len(wave)))
    n = 1 + (len(wave) - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n)[:, None]
    frames = wave[idx] * np.hanning(N_FFT).astype(np.float32)
    return (np.abs(np.fft.rfft(frames, axis=1)) ** 2).astype(np.float32)


def _fluctuation(logspec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: best aligning shift (in 1/8 semitones) to the next frame and the alignment score."""
    x = logspec - logspec.mean(axis=1, keepdims=True)
    x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-9
    a, b = x[:-1], x[1:]
    k = _MAX_SHIFT
    scores = np.stack([(a[:, k:-k] * b[:, k + s:b.shape[1] - k + s]).sum(axis=1) for s in range(-k, k + 1)], axis=1)
    best = scores.argmax(axis=1)
    shift = np.abs(best - k).astype(np.float32)
    align = scores.max(axis=1)
    return np.append(shift, 0.0), np.append(align, 0.0)


def frame_features(wave: np.ndarray, sr: int = C.SAMPLE_RATE) -> np.ndarray:
    """(frames, 6) raw per-frame cues (loudness is made relative per track in `hop_features`)."""
    power = _stft_power(wave) + 1e-10
    logspec = np.log(power @ _logfreq_matrix(sr) + 1e-8)
    shift, align = _fluctuation(logspec)
    bands = np.log(power @ _band_matrix(sr) + 1e-8)
    n_b = bands.shape[1]
    dct = np.cos(np.pi / n_b * (np.arange(n_b)[:, None] + 0.5) * np.arange(1, 13)[None, :])
    cep = bands @ dct
    timbre = np.r_[0.0, (np.diff(cep, axis=0) ** 2).mean(axis=1)]
    freqs = np.arange(power.shape[1]) * sr / N_FFT
    band = (freqs >= _FMIN) & (freqs <= _FMAX)
    p = power[:, band]
    flatness = np.exp(np.log(p).mean(axis=1)) / p.mean(axis=1)
    share = p.sum(axis=1) / power.sum(axis=1)
    loud = 10 * np.log10(power.sum(axis=1))
    return np.stack([shift, align, timbre, flatness, share, loud], axis=1)


def hop_features(frames: np.ndarray, hops: int, frames_per_hop: float) -> np.ndarray:
    """(hops, len(FEATURES)) cues pooled per hop."""
    idx = np.minimum((np.arange(len(frames)) / frames_per_hop).astype(int), hops - 1)
    counts = np.maximum(np.bincount(idx, minlength=hops), 1)

    def mean(v):
        return np.bincount(idx, weights=v, minlength=hops) / counts

    shift, align, timbre, flat, share, loud = frames.T
    w_shift = shift * np.clip(align, 0, None)
    f_mean = mean(w_shift)
    f_std = np.sqrt(np.clip(mean(w_shift ** 2) - f_mean ** 2, 0, None))
    loud_hop = mean(loud)
    rel = loud_hop - np.median(loud_hop)
    feats = [f_mean, f_std, mean(align), np.log(mean(timbre) + 1e-6), mean(flat), mean(share), rel]
    return np.stack(feats, axis=1)


def features(wave: np.ndarray, hop_seconds: float, sr: int = C.SAMPLE_RATE) -> tuple[np.ndarray, np.ndarray]:
    """(hops, len(FEATURES)) cues and (hops,) audibility, computed on sanitised 10-minute chunks (bounded memory)."""
    from livi_cli.vocals.detectors import _CHUNK_SECONDS, sanitise

    per = int(hop_seconds * sr)
    hops = int(np.ceil(len(wave) / per))
    if hops == 0:
        return np.zeros((0, len(FEATURES))), np.zeros(0)
    chunk = int(_CHUNK_SECONDS / hop_seconds) * per  # the chunks sanitise() uses, a whole number of hops
    parts, audible = [], []
    for a in range(0, len(wave), chunk):
        piece = sanitise(wave[a:a + chunk])
        n = int(np.ceil(len(piece) / per))
        parts.append(hop_features(frame_features(piece, sr), n, per / HOP))
        audible.append(_audible(piece, n, per))
    return np.concatenate(parts)[:hops], np.concatenate(audible)[:hops]  # loudness is relative per chunk


def _audible(piece: np.ndarray, hops: int, per: int) -> np.ndarray:
    """1.0 for hops louder than -60 dBFS RMS, else 0.0: digital silence and near-silence are never vocal."""
    padded = np.zeros(hops * per, dtype=np.float32)
    padded[: len(piece)] = piece
    rms = np.sqrt(np.mean(padded.reshape(hops, per).astype(np.float64) ** 2, axis=1))
    return (rms > 1e-3).astype(float)


def _smooth(x: np.ndarray, n: int = 3) -> np.ndarray:
    if len(x) < n:
        return x
    return np.convolve(np.pad(x, (n // 2, n // 2), mode="edge"), np.ones(n) / n, mode="valid")


class SpectralDetector:
    name = "spectral"

    def vocalness(self, wave: np.ndarray) -> np.ndarray:
        from livi_cli.vocals.detectors import HOP_SECONDS

        feats, audible = features(np.asarray(wave).reshape(-1), HOP_SECONDS)
        if len(feats) == 0:
            return np.zeros(0)
        z = ((feats - _MEAN) / _SCALE) @ _WEIGHTS + _BIAS
        return _smooth(1 / (1 + np.exp(-z))) * audible
