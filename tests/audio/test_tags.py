"""read_tags on real files of every container, written by tests/synth.py and tagged with mutagen."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from mutagen import id3
from tests.synth import FORMATS, TAGGABLE, melody, tag_file, write_audio, write_track

from livi_cli.audio.tags import TrackTags, read_tags

REC = "9e9f1bb5-1f1d-4a4e-8d1a-7b1c1e3f0a01"
WORK = "1f0e3d6c-2b6a-4c53-9f43-4a7c1f6f2b02"
REL = "6b4c5a83-9a5e-4ef7-a1e2-0d6d3a5c7e03"
RELTRACK = "0c3b2a19-8d7e-4f6a-b5c4-d3e2f1a0b904"
FULL = dict(
    title="Hallelujah [Live]", artist="Jeff Buckley", album="Grace", album_artist="Jeff Buckley",
    track_number="6/10", date="1994-08-23", mb_recording_id=REC, mb_work_id=WORK, mb_release_id=REL,
    isrc="US-SM1-94-00464",
)
# container -> (codec, sample rate read back): lossy encoders may resample (Opus always decodes at 48 kHz)
EXPECTED_STREAM = {
    "wav": ("pcm", 16000), "flac": ("flac", 16000), "ogg": ("vorbis", 16000), "mp3": ("mp3", 16000),
    "aiff": ("pcm", 16000), "opus": ("opus", 48000), "m4a": ("aac", 16000), "mp4": ("aac", 16000),
    "wma": ("wma", 16000), "aac": ("aac", 16000),
}


@pytest.mark.parametrize("fmt", TAGGABLE)
def test_every_field_round_trips(tmp_path, fmt):
    path = write_track(tmp_path / f"song{FORMATS[fmt]}", seconds=1.0, seed=3, **FULL)
    tags = read_tags(path)
    assert tags.error is None
    assert (tags.title, tags.artist, tags.album, tags.album_artist) == (
        "Hallelujah [Live]", "Jeff Buckley", "Grace", "Jeff Buckley")
    assert tags.track_number == 6
    assert tags.date == "1994-08-23"
    assert (tags.mb_recording_id, tags.mb_work_id, tags.mb_release_id) == (REC, WORK, REL)
    assert tags.isrc == "USSM19400464"
    assert not tags.title_is_filename
    codec, rate = EXPECTED_STREAM[fmt]
    assert tags.codec == codec
    assert tags.sample_rate == rate
    assert tags.channels == 1
    assert tags.duration == pytest.approx(1.0, abs=0.12)  # encoder priming/padding
    assert isinstance(tags.bitrate, int) and tags.bitrate > 8000


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_untagged_file_falls_back_to_stem_and_still_has_stream_info(tmp_path, fmt):
    path = write_audio(tmp_path / f"04 - Some Song{FORMATS[fmt]}", melody(0.5, seed=1), fmt=fmt)
    tags = read_tags(path)
    assert tags.error is None
    assert tags.title == "04 - Some Song" and tags.title_is_filename
    assert tags.artist is tags.album is tags.track_number is tags.mb_recording_id is tags.isrc is None
    assert tags.codec == EXPECTED_STREAM[fmt][0]
    assert tags.duration == pytest.approx(0.5, abs=0.12)
    assert tags.sample_rate and tags.channels == 1


def test_stereo_and_other_sample_rate(tmp_path):
    wave = melody(0.5, sr=44100, seed=2)
    path = write_audio(tmp_path / "s.flac", np.stack([wave, wave * 0.5], axis=1), sr=44100)
    tags = read_tags(path)
    assert (tags.sample_rate, tags.channels) == (44100, 2)


def test_id3_release_track_id_is_not_the_recording_id(tmp_path):
    only_release_track = write_track(tmp_path / "a.mp3", seconds=0.3, mb_release_track_id=RELTRACK)
    assert read_tags(only_release_track).mb_recording_id is None
    both = write_track(tmp_path / "b.mp3", seconds=0.3, mb_release_track_id=RELTRACK, mb_recording_id=REC)
    assert read_tags(both).mb_recording_id == REC


def test_id3_txxx_track_id_fallback_and_v23_year(tmp_path):
    path = write_audio(tmp_path / "old.mp3", melody(0.3))
    tag_file(path, id3_version=3, extra={
        "year": id3.TYER(encoding=1, text="1971"),
        "trk": id3.TXXX(encoding=1, desc="MUSICBRAINZ_TRACKID", text=REC),
        "work": id3.TXXX(encoding=1, desc="musicbrainz work id", text=WORK),  # case differs from Picard's
    })
    tags = read_tags(path)
    assert tags.date == "1971"
    assert tags.mb_recording_id == REC
    assert tags.mb_work_id == WORK


def test_id3_in_wav_and_aiff_chunks(tmp_path):
    for name in ("a.wav", "a.aiff"):
        path = write_track(tmp_path / name, seconds=0.3, title="Chunk", mb_recording_id=REC)
        tags = read_tags(path)
        assert (tags.title, tags.mb_recording_id, tags.codec) == ("Chunk", REC, "pcm")


def test_wav_riff_info_chunk_without_id3(tmp_path):
    path = tmp_path / "info.wav"
    with sf.SoundFile(str(path), "w", samplerate=16000, channels=1, format="WAV", subtype="PCM_16") as f:
        f.title, f.artist, f.album = "Info Title", "Info Artist", "Info Album"
        f.write(melody(0.3))
    tags = read_tags(path)
    assert (tags.title, tags.artist, tags.album) == ("Info Title", "Info Artist", "Info Album")
    assert not tags.title_is_filename


@pytest.mark.parametrize("fmt", ["mp3", "flac", "m4a", "wma"])
def test_odd_text_is_kept_verbatim_except_nul(tmp_path, fmt):
    odd = {
        "title": 'Song (Live) [Remastered], "quoted" \'single\'',
        "artist": "Crosby, Stills, Nash & Young",
        "album": "line one\nline two",
        "album_artist": "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627",  # Hebrew + Arabic (RTL)
    }
    path = write_track(tmp_path / f"odd{FORMATS[fmt]}", seconds=0.3, date="2001", **odd)
    tags = read_tags(path)
    for field, value in odd.items():
        assert getattr(tags, field) == value, field


@pytest.mark.parametrize("fmt", ["mp3", "flac", "ogg"])
def test_nul_bytes_are_stripped_and_long_strings_kept(tmp_path, fmt):
    long_title = "x" * 20_000
    path = write_track(tmp_path / f"nul{FORMATS[fmt]}", seconds=0.3, title=long_title, artist="Ab\x00ba\x00")
    tags = read_tags(path)
    # ID3v2.4 uses NUL as its value separator, so there the NUL splits two values; elsewhere it is dropped
    assert tags.artist == ("Ab; ba" if fmt == "mp3" else "Abba")
    assert tags.title == long_title


def test_multiple_values_are_joined(tmp_path):
    path = write_track(tmp_path / "m.flac", seconds=0.3, artist=["Simon", "Garfunkel", "Simon"])
    assert read_tags(path).artist == "Simon; Garfunkel"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("3/12", 3), ("03", 3), (" 7 ", 7), ("A1", None), ("0", None), ("12 of 14", 12), ("", None)],
)
def test_track_number_parsing(tmp_path, raw, expected):
    path = write_audio(tmp_path / "t.ogg", melody(0.3))
    tag_file(path, extra={"TRACKNUMBER": raw})
    assert read_tags(path).track_number == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("2004", "2004"), ("2004-01", "2004-01"), ("2004-01-05T08:00:00Z", "2004-01-05"), ("ca. 1960", "ca. 1960")],
)
def test_date_keeps_precision(tmp_path, raw, expected):
    path = write_track(tmp_path / "d.m4a", seconds=0.3, date=raw)
    assert read_tags(path).date == expected


def test_mp4_freeform_names_are_case_insensitive(tmp_path):
    from mutagen.mp4 import MP4FreeForm

    path = write_audio(tmp_path / "lower.m4a", melody(0.3))
    tag_file(path, extra={"----:com.apple.iTunes:MUSICBRAINZ TRACK ID": MP4FreeForm(REC.encode())})
    assert read_tags(path).mb_recording_id == REC


def test_asf_zero_based_wm_track_fallback(tmp_path):
    from mutagen.asf import ASFDWordAttribute

    path = write_audio(tmp_path / "t.wma", melody(0.3))
    tag_file(path, extra={"WM/Track": ASFDWordAttribute(4)})
    assert read_tags(path).track_number == 5


@pytest.mark.parametrize(
    ("name", "content"),
    [("text.mp3", b"this is not audio at all\n" * 20), ("empty.flac", b""), ("garbage.m4a", bytes(range(256)) * 8)],
)
def test_unreadable_files_never_raise(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    tags = read_tags(path)
    assert isinstance(tags, TrackTags)
    assert tags.error and tags.error.startswith("cannot read tags")
    assert tags.title == path.stem and tags.title_is_filename
    assert tags.artist is None and tags.duration is None


def test_truncated_flac_reports_error(tmp_path):
    good = write_track(tmp_path / "full.flac", seconds=0.5, title="x")
    cut = tmp_path / "cut.flac"
    cut.write_bytes(good.read_bytes()[:20])
    tags = read_tags(cut)
    assert tags.error and tags.title == "cut"


def test_missing_file_sets_error(tmp_path):
    tags = read_tags(tmp_path / "gone.mp3")
    assert tags.error == f"cannot read tags: no such file: {tmp_path / 'gone.mp3'}"
    assert tags.title == "gone"


def test_unicode_path(tmp_path):
    name = "Sigur Rós – Hoppípolla 🎵 (日本).flac"
    path = write_track(tmp_path / name, seconds=0.3, artist="Sigur Rós")
    tags = read_tags(path)
    assert tags.artist == "Sigur Rós" and tags.title == name[:-5]


def test_as_dict_has_catalog_fields():
    d = TrackTags(title="a").as_dict()
    for field in ("title", "artist", "album", "album_artist", "track_number", "date", "duration", "codec",
                  "bitrate", "sample_rate", "channels", "mb_recording_id", "mb_work_id", "mb_release_id",
                  "isrc", "error"):
        assert field in d


def test_apev2_in_wavpack(tmp_path):
    """APEv2 tags (WavPack, Monkey's Audio, Musepack) use Vorbis-like keys, case-insensitively."""
    import struct

    from mutagen.apev2 import APEv2

    flags = (9 << 23) | 4  # 44.1 kHz, mono
    header = b"wvpk" + struct.pack("<IHBBIIIII", 24, 0x410, 0, 0, 44100, 0, 44100, flags, 0)
    path = touch_bytes(tmp_path / "t.wv", header + bytes(64))
    ape = APEv2()
    ape["Title"], ape["Artist"], ape["Track"] = "Wave Pack", "Ape\x00Two", "2/9"
    ape["MUSICBRAINZ_WORKID"], ape["Year"] = WORK, "1987"
    ape.save(str(path))
    tags = read_tags(path)
    assert tags.error is None
    assert (tags.title, tags.artist, tags.track_number, tags.mb_work_id, tags.date) == (
        "Wave Pack", "Ape; Two", 2, WORK, "1987")
    assert (tags.codec, tags.sample_rate, tags.channels, tags.duration) == ("wavpack", 44100, 1, 1.0)


def test_fifo_is_not_opened(tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe.mp3")
    tags = read_tags(tmp_path / "pipe.mp3")
    assert tags.error == f"cannot read tags: not a regular file: {tmp_path / 'pipe.mp3'}"


def touch_bytes(path, data):
    path.write_bytes(data)
    return path


def test_undecodable_file_name_gives_a_printable_title(tmp_path):
    import os

    raw = os.path.join(os.fsencode(tmp_path), b"caf\xe9 latin-1.flac")
    write_audio(os.fsdecode(raw), melody(0.3), fmt="flac")
    tags = read_tags(os.fsdecode(raw))
    assert tags.error is None and tags.codec == "flac"
    assert tags.title == "caf\ufffd latin-1"
    tags.title.encode("utf-8")  # no lone surrogates left
