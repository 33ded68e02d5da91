"""Decode any audio file to 16 kHz mono float32.

soundfile (libsndfile: wav, flac, ogg/vorbis/opus, mp3, aiff) reads first, streamed in blocks so an
hour-long file never sits in memory at its native rate; PyAV (FFmpeg, bundled in its wheel) is the
fallback for containers libsndfile lacks (m4a/aac/alac, wma, opus in odd containers). Both paths
mix down to mono and resample with soxr.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from livi_cli import constants as C
from livi_cli.errors import AudioReadError

BLOCK_FRAMES = 1 << 18  # ~6 s at 44.1 kHz per read: bounded memory for long files


class _Resampler:
    """Chunked mono resampling to the target rate with soxr (high quality)."""

    def __init__(self, sr_in: int, sr_out: int):
        self.passthrough = sr_in == sr_out
        if not self.passthrough:
            import soxr

            self.stream = soxr.ResampleStream(sr_in, sr_out, 1, dtype="float32", quality="HQ")
        self.parts: list[np.ndarray] = []

    def push(self, mono: np.ndarray, last: bool = False) -> None:
        mono = np.ascontiguousarray(mono, dtype=np.float32)
        self.parts.append(mono if self.passthrough else self.stream.resample_chunk(mono, last=last))

    def result(self) -> np.ndarray:
        if not self.passthrough:
            self.parts.append(self.stream.resample_chunk(np.zeros(0, np.float32), last=True))
        return np.concatenate(self.parts) if self.parts else np.zeros(0, np.float32)


def _to_mono(block: np.ndarray) -> np.ndarray:
    return block.mean(axis=1) if block.ndim == 2 else block


def _read_soundfile(path: Path, sr: int) -> np.ndarray:
    import soundfile as sf

    with sf.SoundFile(os.fsencode(path)) as f:  # bytes: names that are not valid UTF-8 open too
        if f.frames == 0:
            raise AudioReadError(path, "zero duration (no audio frames)")
        res = _Resampler(f.samplerate, sr)
        for block in f.blocks(blocksize=BLOCK_FRAMES, dtype="float32", always_2d=True):
            res.push(_to_mono(block))
        return res.result()


def _read_pyav(path: Path, sr: int) -> np.ndarray:
    import av

    try:
        container = av.open(str(path), metadata_errors="ignore")
    except Exception as exc:  # av raises many error types (InvalidDataError, ValueError, ...)
        raise AudioReadError(path, f"not a decodable audio file ({_short(exc, path)})") from exc
    with container:
        streams = container.streams.audio
        if not streams:
            raise AudioReadError(path, "no audio stream in file")
        stream = streams[0]
        # FFmpeg converts to planar float mono at the native rate; soxr does the rate change.
        fmt = av.AudioResampler(format="fltp", layout="mono", rate=stream.codec_context.sample_rate or None)
        res: _Resampler | None = None
        try:
            for frame in container.decode(stream):
                for out in fmt.resample(frame):
                    res = res or _Resampler(out.sample_rate, sr)
                    res.push(out.to_ndarray()[0])
        except Exception as exc:
            if res is None:
                raise AudioReadError(path, f"cannot decode audio ({_short(exc, path)})") from exc
            # A truncated tail: keep what decoded, like most players do.
    if res is None:
        raise AudioReadError(path, "zero duration (no audio decoded)")
    return res.result()


def _short(exc: BaseException, path: Path | None = None) -> str:
    """First line of an exception message, without the path (the error names it already)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if path is not None:
        text = text.replace(f": '{path}'", "").replace(str(path), "<file>")
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text)  # FFmpeg's error numbers mean nothing to a user
    return text[:200]


def load_audio(path: str | os.PathLike, sr: int = C.SAMPLE_RATE) -> np.ndarray:
    """Decode `path` to mono float32 at `sr`. Raises AudioReadError naming the file and the reason."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise AudioReadError(path, exc.strerror or "cannot stat file") from exc
    if not path.is_file():
        raise AudioReadError(path, "not a regular file")
    if size == 0:
        raise AudioReadError(path, "empty file (0 bytes)")
    try:
        wave = _read_soundfile(path, sr)
    except AudioReadError:
        raise
    except Exception:  # libsndfile cannot read it: let FFmpeg try
        wave = _read_pyav(path, sr)
    if wave.size == 0:
        raise AudioReadError(path, "zero duration (no audio decoded)")
    if not np.isfinite(wave).all():
        wave = np.nan_to_num(wave, nan=0.0, posinf=1.0, neginf=-1.0)
    return wave.astype(np.float32, copy=False)
