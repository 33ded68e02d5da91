"""Decoding to 16 kHz mono float32 and clear errors for unreadable files."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from livi_cli.audio.decode import load_audio
from livi_cli.errors import AudioReadError
from tests.conftest import synth_music


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3", "aiff"])
def test_soundfile_formats_decode_to_16k_mono(make_audio, ext):
    path = make_audio(f"clip.{ext}", seconds=2.0, sr=44100, stereo=True)
    wave = load_audio(path)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - 32000) <= 2000  # mp3/ogg encoders add a little priming
    assert 0.1 < np.abs(wave).max() <= 1.0


def _write_pyav(path, codec, fmt, rate):
    import av

    wave = synth_music(2.0, seed=4, sr=rate)
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        samples = (wave * 32767).astype(np.int16) if stream.format.name.startswith("s16") else wave
        frame_size = stream.codec_context.frame_size or 1024
        for i in range(0, len(samples), frame_size):
            chunk = samples[i : i + frame_size]
            frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format=stream.format.name, layout="mono")
            frame.sample_rate = rate
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


@pytest.mark.parametrize("ext, codec, fmt, rate", [("m4a", "aac", "mp4", 44100), ("opus", "libopus", "ogg", 48000)])
def test_ffmpeg_fallback_formats(tmp_path, ext, codec, fmt, rate):
    path = tmp_path / f"clip.{ext}"
    _write_pyav(path, codec, fmt, rate)
    wave = load_audio(path)
    assert abs(len(wave) - 32000) <= 3000
    assert np.abs(wave).max() > 0.05


def test_resampling_keeps_pitch(tmp_path):
    sr = 44100
    t = np.arange(sr) / sr
    sf.write(str(tmp_path / "a440.flac"), (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr)
    wave = load_audio(tmp_path / "a440.flac")
    spectrum = np.abs(np.fft.rfft(wave))
    peak_hz = np.argmax(spectrum) * 16000 / len(wave)
    assert abs(peak_hz - 440) < 2


@pytest.mark.parametrize("content, reason", [
    (b"", "empty file"),
    (b"this is a text file, not audio\n" * 50, "not a decodable audio file"),
])
def test_unreadable_files_name_file_and_reason(tmp_path, content, reason):
    path = tmp_path / "song [Live].mp3"
    path.write_bytes(content)
    with pytest.raises(AudioReadError) as info:
        load_audio(path)
    assert str(path) in str(info.value) and reason in str(info.value)
    assert "\n" not in str(info.value)


def test_truncated_and_missing(tmp_path, make_audio):
    good = make_audio("good.flac", seconds=2.0)
    (tmp_path / "cut.flac").write_bytes(good.read_bytes()[:100])
    with pytest.raises(AudioReadError, match="cut.flac"):
        load_audio(tmp_path / "cut.flac")
    with pytest.raises(AudioReadError, match="missing.wav"):
        load_audio(tmp_path / "missing.wav")


def test_zero_length_wav(tmp_path):
    path = tmp_path / "zero.wav"
    sf.write(str(path), np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioReadError, match="zero duration"):
        load_audio(path)
