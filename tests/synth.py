"""Synthetic audio for tests: signals, writers for every container livi reads, and mutagen tagging.

    from tests.synth import melody, write_audio, tag_file, write_track
    write_track(tmp_path / "a.flac", seconds=2, seed=1, title="Song", artist="Band", mb_work_id="...")

Writers: wav, flac, ogg (Vorbis), mp3, aiff through soundfile (libsndfile ≥ 1.1 writes MP3 and Ogg);
opus, m4a / mp4 (AAC), aac (raw ADTS) and wma (WMAv2 in ASF) through PyAV's bundled ffmpeg encoders.
Everything is short and mono by default so a test can write dozens of files in well under a second.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

SR = 16_000

# format -> default extension; write_audio infers the format from the extension when fmt is None
FORMATS = {
    "wav": ".wav", "flac": ".flac", "ogg": ".ogg", "mp3": ".mp3", "aiff": ".aiff",
    "opus": ".opus", "m4a": ".m4a", "mp4": ".mp4", "aac": ".aac", "wma": ".wma",
}
_EXT_TO_FORMAT = {ext: fmt for fmt, ext in FORMATS.items()} | {".aif": "aiff", ".oga": "ogg", ".wave": "wav"}
TAGGABLE = ("wav", "flac", "ogg", "mp3", "aiff", "opus", "m4a", "mp4", "wma")  # raw ADTS has no tag container

_SOUNDFILE = {  # format -> (libsndfile major format, subtype)
    "wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS"),
    "mp3": ("MP3", "MPEG_LAYER_III"), "aiff": ("AIFF", "PCM_16"),
}
_PYAV = {  # format -> (ffmpeg muxer, encoder, sample rates the encoder accepts or None for any)
    "opus": ("opus", "libopus", (48000, 24000, 16000, 12000, 8000)),
    "m4a": ("ipod", "aac", None),  # the "ipod" muxer writes the M4A brand
    "mp4": ("mp4", "aac", None),  # generic "isom" brand
    "aac": ("adts", "aac", None),
    "wma": ("asf", "wmav2", None),
}


# ----------------------------------------------------------------------------------------------- signals
def tone(seconds: float, freq: float = 440.0, sr: int = SR, seed: int = 0, amplitude: float = 0.3) -> np.ndarray:
    """A sine with a little seeded noise (so two tones of the same pitch are not bit-identical)."""
    t = np.arange(int(round(seconds * sr))) / sr
    noise = np.random.default_rng(seed).standard_normal(t.size) * amplitude * 0.01
    return (amplitude * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32)


def melody(
    seconds: float,
    sr: int = SR,
    seed: int = 0,
    *,
    bpm: float | None = None,
    harmonics: int = 5,
    amplitude: float = 0.3,
) -> np.ndarray:
    """A music-like signal: a seeded random tune of harmonic notes with attack/decay envelopes and
    vibrato, so different seeds give clearly different spectra (and embeddings) while staying tonal."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    bpm = bpm or float(rng.uniform(80, 160))
    note_len = max(int(sr * 60 / bpm / 2), 1)  # eighth notes
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12])
    root = rng.uniform(45, 60)  # MIDI note of the key
    timbre = rng.uniform(0.2, 1.0, harmonics) / np.arange(1, harmonics + 1)
    out = np.zeros(n, dtype=np.float64)
    for start in range(0, n, note_len):
        length = min(note_len, n - start)
        freq = 440.0 * 2 ** ((root + rng.choice(scale) - 69) / 12)
        t = np.arange(length) / sr
        vibrato = 1 + 0.004 * np.sin(2 * np.pi * 5.5 * t)
        phase = 2 * np.pi * freq * np.cumsum(vibrato) / sr
        note = sum(a * np.sin((k + 1) * phase) for k, a in enumerate(timbre))
        attack = np.minimum(t / 0.01, 1.0)
        note *= attack * np.exp(-t * rng.uniform(2, 6))
        out[start:start + length] += note
    peak = np.abs(out).max() or 1.0
    out = out / peak * amplitude + rng.standard_normal(n) * amplitude * 0.003
    return out.astype(np.float32)


# ----------------------------------------------------------------------------------------------- writers
def format_of(path: str | Path) -> str:
    ext = Path(path).suffix.lower()
    if ext not in _EXT_TO_FORMAT:
        raise ValueError(f"no synthetic writer for extension {ext!r}; pass fmt= one of {sorted(FORMATS)}")
    return _EXT_TO_FORMAT[ext]


def write_audio(path: str | Path, wave: np.ndarray, sr: int = SR, fmt: str | None = None) -> Path:
    """Write `wave` (samples,) or (samples, channels) float in [-1, 1] to `path` as `fmt` (default: from the
    extension, so a FLAC can be written under any name with fmt="flac")."""
    path = Path(path)
    fmt = fmt or format_of(path)
    wave = np.asarray(wave, dtype=np.float32)
    if fmt in _SOUNDFILE:
        import soundfile

        major, subtype = _SOUNDFILE[fmt]
        # bytes path: soundfile cannot encode str paths holding undecodable (surrogate-escaped) bytes
        soundfile.write(os.fsencode(path), wave, sr, format=major, subtype=subtype)
    elif fmt in _PYAV:
        _write_pyav(path, wave, sr, *_PYAV[fmt])
    else:
        raise ValueError(f"unknown synthetic format {fmt!r}; one of {sorted(FORMATS)}")
    return path


def _write_pyav(path: Path, wave: np.ndarray, sr: int, muxer: str, codec: str, rates: tuple | None) -> None:
    import av

    planar = wave[None, :] if wave.ndim == 1 else np.ascontiguousarray(wave.T)
    layout = "mono" if planar.shape[0] == 1 else "stereo"
    out_rate = sr if rates is None or sr in rates else rates[0]
    with av.open(str(path), "w", format=muxer) as container:
        stream = container.add_stream(codec, rate=out_rate, layout=layout)
        stream.bit_rate = 64_000  # wmav2 refuses to open without one
        ctx = stream.codec_context
        resampler = av.AudioResampler(format=ctx.format.name, layout=layout, rate=out_rate,
                                      frame_size=ctx.frame_size or None)
        frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout=layout)
        frame.sample_rate = sr
        for chunk in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(chunk):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


# ----------------------------------------------------------------------------------------------- tagging
TAG_FIELDS = ("title", "artist", "album", "album_artist", "track_number", "date",
              "mb_recording_id", "mb_work_id", "mb_release_id", "mb_release_track_id", "isrc")

_VORBIS = {"title": "TITLE", "artist": "ARTIST", "album": "ALBUM", "album_artist": "ALBUMARTIST",
           "track_number": "TRACKNUMBER", "date": "DATE", "mb_recording_id": "MUSICBRAINZ_TRACKID",
           "mb_work_id": "MUSICBRAINZ_WORKID", "mb_release_id": "MUSICBRAINZ_ALBUMID",
           "mb_release_track_id": "MUSICBRAINZ_RELEASETRACKID", "isrc": "ISRC"}
_FREEFORM = "----:com.apple.iTunes:"
_MP4 = {"title": "©nam", "artist": "©ART", "album": "©alb", "album_artist": "aART", "track_number": "trkn",
        "date": "©day", "mb_recording_id": _FREEFORM + "MusicBrainz Track Id",
        "mb_work_id": _FREEFORM + "MusicBrainz Work Id", "mb_release_id": _FREEFORM + "MusicBrainz Album Id",
        "mb_release_track_id": _FREEFORM + "MusicBrainz Release Track Id", "isrc": _FREEFORM + "ISRC"}
_ASF = {"title": "Title", "artist": "Author", "album": "WM/AlbumTitle", "album_artist": "WM/AlbumArtist",
        "track_number": "WM/TrackNumber", "date": "WM/Year", "mb_recording_id": "MusicBrainz/Track Id",
        "mb_work_id": "MusicBrainz/Work Id", "mb_release_id": "MusicBrainz/Album Id",
        "mb_release_track_id": "MusicBrainz/Release Track Id", "isrc": "WM/ISRC"}
_ID3_TEXT = {"title": "TIT2", "artist": "TPE1", "album": "TALB", "album_artist": "TPE2",
             "track_number": "TRCK", "date": "TDRC", "isrc": "TSRC"}
_ID3_TXXX = {"mb_work_id": "MusicBrainz Work Id", "mb_release_id": "MusicBrainz Album Id",
             "mb_release_track_id": "MusicBrainz Release Track Id"}


def _values(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]


def tag_file(path: str | Path, *, id3_version: int = 4, extra: dict | None = None, **fields: Any) -> None:
    """Tag a file the way common taggers (Picard, iTunes, WMP) do, for its container.

    fields: any of TAG_FIELDS; a list value writes several values. mb_recording_id goes to the ID3 UFID
    frame (Picard's place for it) and mb_release_track_id to TXXX "MusicBrainz Release Track Id".
    extra: container-specific entries written verbatim (Vorbis/MP4/ASF keys -> value(s), or ID3 frames).
    """
    import mutagen

    unknown = set(fields) - set(TAG_FIELDS)
    if unknown:
        raise ValueError(f"unknown tag fields {sorted(unknown)}")
    audio = mutagen.File(str(path))
    if audio is None:
        raise ValueError(f"{path}: mutagen does not recognise this file")
    if audio.tags is None:
        audio.add_tags()
    kind = type(audio.tags).__name__
    from mutagen.asf import ASFTags
    from mutagen.id3 import ID3
    from mutagen.mp4 import MP4Tags

    if isinstance(audio.tags, ID3):
        _tag_id3(audio.tags, fields, extra)
        if type(audio).__name__ == "MP3":
            audio.save(v2_version=id3_version)
        else:
            audio.save()
        return
    if isinstance(audio.tags, MP4Tags):
        _tag_mp4(audio.tags, fields, extra)
    elif isinstance(audio.tags, ASFTags):
        for field, value in fields.items():
            audio.tags[_ASF[field]] = _values(value)
        for key, value in (extra or {}).items():
            audio.tags[key] = value if isinstance(value, list) else [value]
    elif hasattr(audio.tags, "keys"):  # Vorbis comments
        for field, value in fields.items():
            audio.tags[_VORBIS[field]] = _values(value)
        for key, value in (extra or {}).items():
            audio.tags[key] = _values(value)
    else:
        raise ValueError(f"{path}: no tagging support for {kind}")
    audio.save()


def _tag_id3(tags: Any, fields: dict, extra: dict | None) -> None:
    from mutagen import id3

    for field, value in fields.items():
        if field in _ID3_TEXT:
            frame_id = _ID3_TEXT[field]
            tags.add(getattr(id3, frame_id)(encoding=3, text=_values(value)))
        elif field == "mb_recording_id":
            tags.add(id3.UFID(owner="http://musicbrainz.org", data=str(value).encode("ascii")))
        else:
            tags.add(id3.TXXX(encoding=3, desc=_ID3_TXXX[field], text=_values(value)))
    for frame in (extra or {}).values():
        tags.add(frame)


def _tag_mp4(tags: Any, fields: dict, extra: dict | None) -> None:
    from mutagen.mp4 import MP4FreeForm

    for field, value in fields.items():
        key = _MP4[field]
        if field == "track_number":
            tags[key] = [(int(str(value).split("/")[0]), 0)]
        elif key.startswith(_FREEFORM):
            tags[key] = [MP4FreeForm(v.encode("utf-8")) for v in _values(value)]
        else:
            tags[key] = _values(value)
    for key, value in (extra or {}).items():
        tags[key] = value if isinstance(value, list) else [value]


def write_track(
    path: str | Path,
    *,
    seconds: float = 1.0,
    sr: int = SR,
    seed: int = 0,
    fmt: str | None = None,
    wave: np.ndarray | None = None,
    **tags: Any,
) -> Path:
    """melody(seconds, sr, seed) (or `wave`) written as `fmt` and tagged with `tags` (if any)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_audio(path, melody(seconds, sr, seed) if wave is None else wave, sr, fmt)
    if tags:
        tag_file(path, **tags)
    return path
