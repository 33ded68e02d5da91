"""A seeded, labelled evaluation set for vocal detectors, synthesised with numpy alone (no downloads).

Every track is 16 kHz mono float32 with a ground-truth voice-activity mask (10 ms frames). Three kinds:
- "song": a synthetic singing voice over accompaniment, voice-to-accompaniment ratio drawn in [-6, +12] dB;
- "instrumental": accompaniment alone; in half of them a vibrato "lead instrument" plays a melody (the hard
  negative: pitched, vibrato, but no vowel formants, no consonants);
- "acapella": the voice over a faint noise floor.

The voice (`sing`) is additive synthesis of a glottal source: harmonics of a melody f0 (notes on a major
pentatonic scale, portamento, 4.5-6.5 Hz vibrato of 20-80 cents, slow jitter) with a -12 dB/octave tilt,
shaped by time-varying vowel formants (F1-F3 of /a e i o u/, one vowel per note), plus aspiration noise and
consonant noise bursts at note onsets. Phrases of 1.5-6 s alternate with 0.3-2.5 s rests.
The accompaniment (`accompaniment`) is a tempo in 80-140 BPM, one of three chord timbres (organ-like,
3 harmonics; decaying piano-like, 6; bright pad, 12) on a I-V-vi-IV progression, an eighth-note bass line,
kick/snare/hi-hat drums and a noise floor (white plus a little brown noise) at -45..-30 dB.
With `voice="espeak"` or `"espeak-sung"` (bench only; needs Debian's `espeak-ng` on PATH) the voice is instead
espeak-ng speaking random lyric-like words (voices en/en-us/fr/de/es with male/female variants, pitch 20-90,
speed 110-190 wpm), phrase by phrase, resampled to 16 kHz: real phonemes, spoken or "rapped" rather than sung. "espeak-sung"
synthesises word by word at 80-110 wpm (long vowels) with a stepwise pitch melody and adds vibrato.
Labels: a 10 ms frame is "voiced" when the voice envelope is on (the synthesiser knows exactly where it sang;
for espeak, each phrase from its first to its last sample above -40 dB of its peak).
Limits (say them whenever numbers from this set are quoted): it is synthetic; real singing, real mixes and
real instruments (guitars, reverb, backing vocals, distorted leads) are harder. Numbers rank detectors; they are
not an estimate of accuracy on a real library.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from livi_cli import constants as C

SR = C.SAMPLE_RATE
LABEL_HOP = 0.01  # seconds per ground-truth frame
_VOWELS = {  # F1, F2, F3 in Hz (averaged adult values)
    "a": (800, 1200, 2500), "e": (450, 1900, 2600), "i": (300, 2300, 3000),
    "o": (500, 900, 2450), "u": (330, 800, 2300),
}
_PENTATONIC = np.array([0, 2, 4, 7, 9])  # semitones of a major pentatonic scale


@dataclass
class EvalTrack:
    name: str
    kind: str  # "song" | "instrumental" | "acapella"
    wave: np.ndarray  # float32, 16 kHz mono
    voiced: np.ndarray  # bool, one value per 10 ms frame

    @property
    def duration(self) -> float:
        return len(self.wave) / SR

    def labels(self, hop: float) -> np.ndarray:
        """Per `hop`-second frame: True when at least half of it is voiced."""
        per = int(round(hop / LABEL_HOP))
        n = int(np.ceil(len(self.voiced) / per))
        padded = np.zeros(n * per, dtype=np.float32)
        padded[: len(self.voiced)] = self.voiced
        return padded.reshape(n, per).mean(axis=1) >= 0.5


def _smooth(x: np.ndarray, n: int) -> np.ndarray:
    """Moving average over n samples (portamento, envelopes)."""
    if n <= 1:
        return x
    kernel = np.ones(n) / n
    return np.convolve(np.pad(x, (n // 2, n - 1 - n // 2), mode="edge"), kernel, mode="valid")


def _melody(rng: np.random.Generator, n: int, base_hz: float, note_range: tuple[float, float]):
    """Step-wise f0 on a pentatonic scale; returns (f0 per sample, list of note onset samples)."""
    f0 = np.empty(n)
    onsets = []
    i = 0
    degree = int(rng.integers(0, 8))
    while i < n:
        length = int(rng.uniform(*note_range) * SR)
        degree = int(np.clip(degree + rng.integers(-2, 3), 0, 10))
        semis = _PENTATONIC[degree % 5] + 12 * (degree // 5)
        f0[i:i + length] = base_hz * 2 ** (semis / 12)
        onsets.append(i)
        i += length
    return f0, onsets


def _harmonic_tone(f0: np.ndarray, amp_of_freq, max_hz: float = 7000.0) -> np.ndarray:
    """Additive synthesis: sum_k amp(k*f0) sin(k*phase); amp_of_freq(freq_array, k) gives each harmonic's gain."""
    phase = 2 * np.pi * np.cumsum(f0) / SR
    out = np.zeros(len(f0))
    for k in range(1, int(max_hz / max(f0.min(), 40.0)) + 1):
        freq = k * f0
        gain = amp_of_freq(freq, k) * (freq < max_hz)
        out += gain * np.sin(k * phase)
    return out


def _formant_gain(freq: np.ndarray, formants: np.ndarray) -> np.ndarray:
    """Spectral envelope of a vowel: sum of three resonances (formants per sample, shape (n, 3))."""
    gain = np.zeros_like(freq)
    for j, bandwidth in enumerate((90.0, 110.0, 170.0)):
        gain += (0.9 ** j) / (1 + ((freq - formants[:, j]) / bandwidth) ** 2)
    return gain


def sing(rng: np.random.Generator, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic singing voice and its on/off envelope (per sample, 0..1)."""
    n = int(seconds * SR)
    base = rng.choice([110.0, 146.8, 196.0, 261.6])  # bass/tenor/alto/soprano tonic
    f0, onsets = _melody(rng, n, base, (0.25, 1.0))
    log_f0 = _smooth(np.log(f0), int(0.05 * SR))  # portamento between notes
    t = np.arange(n) / SR
    vib = rng.uniform(20, 80) / 1200 * np.sin(2 * np.pi * rng.uniform(4.5, 6.5) * t + rng.uniform(0, 6.3))
    jitter = _smooth(rng.normal(0, 1, n // 160 + 1), 8).repeat(160)[:n] * 0.004
    f0 = np.exp(log_f0 + np.log(2) * vib + jitter)
    vowels = np.array(list(_VOWELS.values()), dtype=float)
    formants = np.zeros((n, 3))
    bounds = onsets + [n]
    for a, b in zip(bounds[:-1], bounds[1:]):
        formants[a:b] = vowels[rng.integers(0, len(vowels))]
    formants = np.stack([_smooth(formants[:, j], int(0.06 * SR)) for j in range(3)], axis=1)
    voice = _harmonic_tone(f0, lambda freq, k: _formant_gain(freq, formants) / k ** 1.0)
    voice += 0.02 * rng.normal(0, 1, n) * np.abs(voice).mean() * 10  # aspiration noise
    envelope = _phrases(rng, n)
    note_env = np.ones(n)
    for a in onsets:  # consonant: a short noise burst at some note onsets, and a small dip in voicing
        if rng.random() < 0.6:
            m = min(n - a, int(rng.uniform(0.03, 0.09) * SR))
            burst = np.diff(rng.normal(0, 1, m + 1)) * 0.3 * np.abs(voice[a:a + m]).mean()
            voice[a:a + m] = voice[a:a + m] * 0.2 + burst
            note_env[a:a + m] *= np.linspace(0.3, 1, m)
    voice *= envelope * note_env
    return voice / (np.abs(voice).max() + 1e-9), envelope


def _phrases(rng: np.random.Generator, n: int) -> np.ndarray:
    """Sung phrases (1.5-6 s) separated by rests (0.3-2.5 s); 20 ms attack/release ramps."""
    env = np.zeros(n)
    i = int(rng.uniform(0, 3) * SR)
    while i < n:
        length = int(rng.uniform(1.5, 6.0) * SR)
        env[i:i + length] = 1.0
        i += length + int(rng.uniform(0.3, 2.5) * SR)
    return np.clip(_smooth(env, int(0.02 * SR)), 0, 1)


def _drums(rng: np.random.Generator, n: int, beat: int) -> np.ndarray:
    out = np.zeros(n)
    k_len, s_len, h_len = int(0.25 * SR), int(0.18 * SR), int(0.05 * SR)
    tk = np.arange(k_len) / SR
    kick = np.sin(2 * np.pi * (50 * tk + 60 * (1 - np.exp(-tk * 30)) / 30)) * np.exp(-tk * 18)
    snare_t = np.arange(s_len) / SR
    for i, start in enumerate(range(0, n, beat // 2)):
        if i % 4 == 0:
            seg = kick
        elif i % 4 == 2:
            seg = (rng.normal(0, 0.6, s_len) + np.sin(2 * np.pi * 190 * snare_t)) * np.exp(-snare_t * 25)
        else:
            seg = np.diff(rng.normal(0, 0.4, h_len + 1)) * np.exp(-np.arange(h_len) / SR * 80)
        m = min(len(seg), n - start)
        out[start:start + m] += seg[:m]
    return out


def accompaniment(rng: np.random.Generator, seconds: float, lead: bool) -> np.ndarray:
    """Chords + bass + drums + noise floor, optionally a vibrato lead instrument (hard negative)."""
    n = int(seconds * SR)
    beat = int(SR * 60 / rng.uniform(80, 140))
    bar = 4 * beat
    key = 110.0 * 2 ** (rng.integers(0, 12) / 12)
    progression = [0, 7, 9, 5]  # I V vi IV as semitone roots
    timbre = rng.integers(0, 3)
    chords = np.zeros(n)
    bass = np.zeros(n)
    for b, start in enumerate(range(0, n, bar)):
        m = min(bar, n - start)
        t = np.arange(m) / SR
        root = key * 2 ** (progression[b % 4] / 12)
        decay = np.exp(-t * 2.5) if timbre == 1 else np.ones(m)
        for semis in (0, 4 if progression[b % 4] != 9 else 3, 7):
            f = 2 * root * 2 ** (semis / 12)
            n_harm = (3, 6, 12)[timbre]
            for k in range(1, n_harm + 1):
                chords[start:start + m] += decay * np.sin(2 * np.pi * k * f * t) / k ** (1.5 if timbre else 2.5)
        for e in range(0, m, beat // 2):  # eighth-note bass
            te = t[e:min(m, e + beat // 2)] - t[e]
            bass[start + e:start + e + len(te)] += np.sin(2 * np.pi * root / 2 * te) * np.exp(-te * 4)
    parts = [chords / (np.abs(chords).max() + 1e-9), 0.7 * bass, 0.5 * _drums(rng, n, beat) * rng.uniform(0.3, 1.2)]
    if lead:
        f0, _ = _melody(rng, n, key * 2, (0.2, 0.8))
        t = np.arange(n) / SR
        f0 = np.exp(_smooth(np.log(f0), int(0.03 * SR))) * 2 ** (0.4 / 12 * np.sin(2 * np.pi * 5.5 * t))
        odd_only = rng.random() < 0.5  # clarinet-like or string-like lead
        tone = _harmonic_tone(f0, lambda freq, k: (1.0 / k) * (k % 2 if odd_only else 1))
        parts.append(0.6 * tone / (np.abs(tone).max() + 1e-9) * _phrases(rng, n))
    mix = sum(parts)
    noise = np.cumsum(rng.normal(0, 1, n)) * 0.002 + rng.normal(0, 1, n)
    noise /= np.sqrt(np.mean(noise ** 2)) + 1e-9
    mix += noise * np.sqrt(np.mean(mix ** 2)) * 10 ** (rng.uniform(-45, -30) / 20)
    return mix


_WORDS = ("love heart night baby dance fire rain home light dream tonight forever never again yeah oh world "
          "money road river shine cold blue sky down running away together alone tears smile hold").split()


def _espeak(text: str, lang: str, pitch: int, speed: int, path: str) -> np.ndarray:
    """One utterance from the espeak-ng program at 16 kHz, leading/trailing silence trimmed."""
    import subprocess

    import soundfile as sf
    import soxr

    subprocess.run(["espeak-ng", "-w", path, "-v", lang, "-p", str(pitch), "-s", str(speed), text],
                   capture_output=True, check=True)
    data, sr = sf.read(path)
    audio = soxr.resample(data, sr, SR)
    on = np.flatnonzero(np.abs(audio) > np.abs(audio).max() * 0.01) if len(audio) else []
    return audio[on[0]:on[-1] + 1] if len(on) else np.zeros(0)


def _vibrato(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Time-varying resampling: a 4.5-6.5 Hz, 20-80 cent pitch wobble (formants wobble with it)."""
    t = np.arange(len(x)) / SR
    rate = 2 ** (rng.uniform(20, 80) / 1200 * np.sin(2 * np.pi * rng.uniform(4.5, 6.5) * t))
    pos = np.cumsum(rate)
    pos = pos[pos < len(x) - 1]
    return np.interp(pos, np.arange(len(x)), x)


def speak(rng: np.random.Generator, seconds: float, sung: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """espeak-ng phrases placed like sung phrases; (voice, envelope). Needs the `espeak-ng` program.

    sung=True: each word is synthesised on its own at a slow speed (80-110 wpm, stretching the vowels) on a
    pitch from a stepwise "melody" of espeak pitch values, and the phrase gets vibrato."""
    import os
    import tempfile

    with tempfile.TemporaryDirectory(prefix="livi-espeak-") as tmp:  # removed afterwards, one per track
        return _speak(rng, seconds, sung, os.path.join(tmp, "phrase.wav"))


def _speak(rng: np.random.Generator, seconds: float, sung: bool, path: str) -> tuple[np.ndarray, np.ndarray]:
    n = int(seconds * SR)
    voice, env = np.zeros(n), np.zeros(n)
    lang = str(rng.choice(["en", "en-us", "fr", "de", "es"])) + str(rng.choice(["", "+f3", "+m3", "+f2"]))
    i = int(rng.uniform(0, 3) * SR)
    while i < n:
        words = list(rng.choice(_WORDS, size=int(rng.integers(3, 10))))
        if sung:
            level = int(rng.integers(20, 80))
            parts = []
            for w in words:
                level = int(np.clip(level + rng.choice([-15, -8, 0, 8, 15]), 0, 99))
                parts += [_espeak(w, lang, level, int(rng.integers(80, 111)), path), np.zeros(int(0.03 * SR))]
            phrase = _vibrato(np.concatenate(parts), rng)
        else:
            phrase = _espeak(" ".join(words), lang, int(rng.integers(20, 91)), int(rng.integers(110, 191)), path)
        m = min(len(phrase), n - i)
        if m <= 0:
            break
        voice[i:i + m] = phrase[:m]
        env[i:i + m] = 1.0
        i += m + int(rng.uniform(0.3, 2.5) * SR)
    return voice / (np.abs(voice).max() + 1e-9), env


def make_track(seed: int, seconds: float = 30.0, kind: str | None = None, voice: str = "synth") -> EvalTrack:
    """One labelled track; `kind` is drawn (50% song, 40% instrumental, 10% a cappella) when not given.

    `voice`: "synth" (numpy singing synthesiser, always available), "espeak" or "espeak-sung" (need espeak-ng)."""
    rng = np.random.default_rng(seed)
    if kind is None:
        kind = str(rng.choice(["song", "instrumental", "acapella"], p=[0.5, 0.4, 0.1]))
    n = int(seconds * SR)
    if kind == "instrumental":
        wave = accompaniment(rng, seconds, lead=bool(rng.random() < 0.5))
        envelope = np.zeros(n)
    else:
        voice_name = voice
        if voice_name.startswith("espeak"):
            voice, envelope = speak(rng, seconds, sung=voice_name == "espeak-sung")
        else:
            voice, envelope = sing(rng, seconds)
        if kind == "acapella":
            wave = voice + rng.normal(0, 1, n) * 10 ** (rng.uniform(-60, -40) / 20)
        else:
            acc = accompaniment(rng, seconds, lead=bool(rng.random() < 0.3))
            on = envelope > 0.5
            ratio_db = rng.uniform(-6, 12)
            v_rms = np.sqrt(np.mean(voice[on] ** 2)) if on.any() else 1.0
            a_rms = np.sqrt(np.mean(acc ** 2)) + 1e-9
            wave = acc / a_rms * v_rms * 10 ** (-ratio_db / 20) + voice
    wave = wave / (np.abs(wave).max() + 1e-9) * rng.uniform(0.2, 0.95)
    per = int(LABEL_HOP * SR)
    frames = len(envelope) // per
    voiced = envelope[: frames * per].reshape(frames, per).mean(axis=1) > 0.5
    name = f"{kind}-{seed}" if kind == "instrumental" else f"{kind}-{voice_name}-{seed}"
    return EvalTrack(name, kind, wave.astype(np.float32), voiced)


def make_evalset(n_tracks: int, seed: int = 0, seconds: float = 30.0, voice: str = "synth") -> list[EvalTrack]:
    """`n_tracks` tracks from seeds seed*100003 + i (disjoint for different `seed`s at any practical size)."""
    return [make_track(seed * 100_003 + i, seconds, voice=voice) for i in range(n_tracks)]
