"""Read a track's tags and stream properties with mutagen, never raising.

read_tags(path) returns a TrackTags for any file:
- text fields are plain strings: NUL characters removed, surrounding whitespace stripped, unpaired
  surrogates replaced, several values of one field joined with "; " (commas, quotes, brackets, newlines,
  right-to-left text and long strings are kept as they are); an absent or empty field is None;
- title falls back to the file name without its extension (title_is_filename tells when it did;
  bytes of the name that are not UTF-8 become U+FFFD);
- track_number is the leading integer of "3", "03", "3/12" (None for 0 or "A1");
- date keeps the tag's own precision: "1994", "1994-05" or "1994-05-03" (an ISO timestamp such as iTunes'
  "1994-05-03T07:00:00Z" is cut to its date; anything else is kept verbatim);
- MusicBrainz ids and ISRC take the first value; ISRC is upper-cased without hyphens or spaces;
- the recording id is the UFID "http://musicbrainz.org" frame in ID3 (TXXX "MusicBrainz Release Track Id"
  is the id of the track on one release, not of the recording, and is not used), MUSICBRAINZ_TRACKID in
  Vorbis comments/APEv2, "MusicBrainz Track Id" in MP4 and ASF;
- stream properties (duration s, codec, bitrate bps, sample rate Hz, channels) are filled even without tags;
  bitrate is the file's average (size × 8 / duration) where the container states none; Opus always
  decodes at 48 kHz, which is what sample_rate says for it;
- when mutagen cannot read the file, `error` holds the reason and whatever could be learnt otherwise
  (libsndfile's view of the stream) is filled in. The scan decides what an error means: tags unreadable
  does not imply undecodable audio.
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

__all__ = ["TrackTags", "read_tags"]


@dataclass
class TrackTags:
    title: str | None = None
    artist: str | None = None
    album: str | None = None
    album_artist: str | None = None
    track_number: int | None = None
    date: str | None = None
    duration: float | None = None
    codec: str | None = None
    bitrate: int | None = None
    sample_rate: int | None = None
    channels: int | None = None
    mb_recording_id: str | None = None
    mb_work_id: str | None = None
    mb_release_id: str | None = None
    isrc: str | None = None
    title_is_filename: bool = False
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


TEXT_FIELDS = ("title", "artist", "album", "album_artist")
ID_FIELDS = ("mb_recording_id", "mb_work_id", "mb_release_id", "isrc")

# Keys per tag family, in order of preference. ID3 keys "TXXX:<desc>" and "UFID:<owner>" are resolved by
# _id3_values; every family's lookup is case-insensitive where the format allows differing spellings.
_ID3_KEYS = {
    "title": ("TIT2",), "artist": ("TPE1",), "album": ("TALB",), "album_artist": ("TPE2",),
    "track_number": ("TRCK",), "date": ("TDRC", "TDOR", "TYER"),
    "mb_recording_id": ("UFID:http://musicbrainz.org", "TXXX:MusicBrainz Track Id", "TXXX:MUSICBRAINZ_TRACKID"),
    "mb_work_id": ("TXXX:MusicBrainz Work Id", "TXXX:MUSICBRAINZ_WORKID"),
    "mb_release_id": ("TXXX:MusicBrainz Album Id", "TXXX:MUSICBRAINZ_ALBUMID"),
    "isrc": ("TSRC", "TXXX:ISRC"),
}
_VORBIS_KEYS = {  # Vorbis comments (FLAC, Ogg) and APEv2 (Monkey's Audio, WavPack, Musepack)
    "title": ("title",), "artist": ("artist",), "album": ("album",),
    "album_artist": ("albumartist", "album artist", "album_artist"),
    "track_number": ("tracknumber", "track"), "date": ("date", "year", "originaldate"),
    "mb_recording_id": ("musicbrainz_trackid",), "mb_work_id": ("musicbrainz_workid",),
    "mb_release_id": ("musicbrainz_albumid",), "isrc": ("isrc",),
}
_MP4_KEYS = {
    "title": ("©nam",), "artist": ("©ART",), "album": ("©alb",), "album_artist": ("aART",),
    "track_number": ("trkn",), "date": ("©day",),
    "mb_recording_id": ("----:com.apple.iTunes:MusicBrainz Track Id",),
    "mb_work_id": ("----:com.apple.iTunes:MusicBrainz Work Id",),
    "mb_release_id": ("----:com.apple.iTunes:MusicBrainz Album Id",),
    "isrc": ("----:com.apple.iTunes:ISRC",),
}
_ASF_KEYS = {
    "title": ("Title",), "artist": ("Author",), "album": ("WM/AlbumTitle",), "album_artist": ("WM/AlbumArtist",),
    "track_number": ("WM/TrackNumber",), "date": ("WM/Year", "WM/OriginalReleaseYear"),
    "mb_recording_id": ("MusicBrainz/Track Id",), "mb_work_id": ("MusicBrainz/Work Id",),
    "mb_release_id": ("MusicBrainz/Album Id",), "isrc": ("WM/ISRC",),
}

_CODECS = {  # mutagen FileType class name -> codec
    "MP3": "mp3", "EasyMP3": "mp3", "FLAC": "flac", "OggFLAC": "flac", "OggVorbis": "vorbis",
    "OggOpus": "opus", "OggSpeex": "speex", "OggTheora": "theora", "WAVE": "pcm", "AIFF": "pcm",
    "ASF": "wma", "AAC": "aac", "AC3": "ac3", "MonkeysAudio": "ape", "WavPack": "wavpack",
    "Musepack": "musepack", "DSF": "dsd", "DSDIFF": "dsd", "TrueAudio": "tta", "OptimFROG": "optimfrog",
}
_SF_CODECS = {"PCM": "pcm", "FLOAT": "pcm", "DOUBLE": "pcm", "ULAW": "pcm", "ALAW": "pcm", "VORBIS": "vorbis",
              "OPUS": "opus", "FLAC": "flac", "MPEG": "mp3"}


def read_tags(path: str | Path) -> TrackTags:
    """Tags and stream properties of one file; never raises (see the module docstring)."""
    tags = TrackTags()
    if not os.path.isfile(path):  # never open a FIFO or device: the read could block forever
        why = "not a regular file" if os.path.exists(path) else "no such file"
        tags.error = f"cannot read tags: {why}: {os.fsdecode(path)}"
        return _title_from_name(tags, path)
    try:
        audio = _open(path)
        if audio is None:
            tags.error = "cannot read tags: unrecognised file format"
    except Exception as exc:  # mutagen raises many types on hostile input; a scan must go on
        audio = None
        tags.error = f"cannot read tags: {_one_line(exc)}"
    if audio is not None:
        try:
            _fill_info(tags, audio, path)
            _fill_tags(tags, audio)
        except Exception as exc:
            tags.error = f"cannot read tags: {_one_line(exc)}"
    if audio is None or type(audio).__name__ in ("WAVE", "AIFF"):
        _fill_from_soundfile(tags, path)  # RIFF INFO / AIFF text chunks, and stream info mutagen lacked
    return _title_from_name(tags, path)


def _title_from_name(tags: TrackTags, path: str | Path) -> TrackTags:
    if not tags.title:
        name = Path(os.fsdecode(path))
        # Undecodable bytes in a file name arrive as lone surrogates, which SQLite and terminals refuse.
        tags.title = os.fsencode(name.stem or name.name).decode("utf-8", "replace")
        tags.title_is_filename = True
    return tags


# sniffed format -> mutagen classes (module, class). mutagen.File alone trusts the extension too much:
# it picks the MP3 reader for a FLAC named ".mp3" and then fails.
_READERS = {
    "mp3": (("mp3", "MP3"),), "flac": (("flac", "FLAC"), ("oggflac", "OggFLAC")), "m4a": (("mp4", "MP4"),),
    "mp4": (("mp4", "MP4"),), "aac": (("aac", "AAC"),),
    "ogg": (("oggvorbis", "OggVorbis"), ("oggspeex", "OggSpeex")),
    "opus": (("oggopus", "OggOpus"),), "wav": (("wave", "WAVE"),), "aiff": (("aiff", "AIFF"),),
    "wma": (("asf", "ASF"),), "ape": (("monkeysaudio", "MonkeysAudio"),), "wavpack": (("wavpack", "WavPack"),),
    "musepack": (("musepack", "Musepack"),), "dsf": (("dsf", "DSF"),),
}


def _open(path: str | Path) -> Any:
    """The mutagen object for a file: the reader its content calls for, else mutagen's own guess."""
    import importlib

    import mutagen

    from livi_cli.audio.formats import sniff_format

    first_error: Exception | None = None
    for module, cls in _READERS.get(sniff_format(path) or "", ()):
        try:
            return getattr(importlib.import_module(f"mutagen.{module}"), cls)(os.fspath(path))
        except Exception as exc:  # try the next reader, then mutagen's guess
            first_error = first_error or exc
    audio = mutagen.File(os.fspath(path))
    if audio is None and first_error is not None:
        raise first_error
    return audio


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def _fill_info(tags: TrackTags, audio: Any, path: str | Path) -> None:
    info = getattr(audio, "info", None)
    if info is None:
        return
    length = getattr(info, "length", None)
    tags.duration = float(length) if length is not None and length >= 0 else None
    kind = type(audio).__name__
    tags.codec = _CODECS.get(kind) or _mp4_codec(info) or kind.lower()
    if kind == "MP3" and getattr(info, "layer", 3) != 3:
        tags.codec = f"mp{info.layer}"
    rate = getattr(info, "sample_rate", None)
    tags.sample_rate = int(rate) if rate else (48000 if kind == "OggOpus" else None)
    channels = getattr(info, "channels", None)
    tags.channels = int(channels) if channels else None
    bitrate = getattr(info, "bitrate", None)
    if not bitrate and tags.duration:
        bitrate = os.path.getsize(path) * 8 / tags.duration
    tags.bitrate = int(round(bitrate)) if bitrate else None


def _mp4_codec(info: Any) -> str | None:
    codec = getattr(info, "codec", None)
    if not codec:
        return None
    codec = str(codec)
    return "aac" if codec.startswith("mp4a.40") else codec.lower()


def _fill_tags(tags: TrackTags, audio: Any) -> None:
    raw = audio.tags
    if raw is None:
        return
    from mutagen.asf import ASFTags
    from mutagen.id3 import ID3
    from mutagen.mp4 import MP4Tags

    if isinstance(raw, ID3):  # MP3, and the ID3 chunk of WAV and AIFF
        keys, values = _ID3_KEYS, _id3_values(raw)
    elif isinstance(raw, MP4Tags):
        keys, values = _MP4_KEYS, _mp4_values(raw)
    elif isinstance(raw, ASFTags):
        keys, values = _ASF_KEYS, _asf_values(raw)
    elif hasattr(raw, "keys"):  # VComment / VCommentDict / APEv2: case-insensitive dicts
        keys, values = _VORBIS_KEYS, _dict_values(raw)
    else:
        return
    _apply(tags, keys, values)


def _apply(tags: TrackTags, keys: dict[str, tuple[str, ...]], values: Callable[[str], list]) -> None:
    for field, candidates in keys.items():
        for key in candidates:
            found = [v for v in values(key) if v is not None]
            value = _normalise(field, found)
            if value is not None:
                setattr(tags, field, value)
                break


def _normalise(field: str, found: list) -> Any:
    if not found:
        return None
    if field == "track_number":
        return next((n for n in map(_track, found) if n is not None), None)
    texts = [t for t in map(_text, found) if t]
    if not texts:
        return None
    if field in TEXT_FIELDS:
        return "; ".join(dict.fromkeys(texts))  # keep order, drop repeats
    if field == "date":
        return _date(texts[0])
    if field == "isrc":
        return re.sub(r"[\s-]", "", texts[0]).upper() or None
    return texts[0]  # MusicBrainz ids


def _text(value: Any) -> str | None:
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "replace")
    elif isinstance(value, (tuple, list)):
        return None
    text = str(value).replace("\x00", "")
    text = text.encode("utf-8", "replace").decode("utf-8")  # unpaired surrogates would break SQLite/UTF-8 output
    return text.strip() or None


def _track(value: Any) -> int | None:
    if isinstance(value, (tuple, list)):  # MP4 trkn: (number, total)
        value = value[0] if value else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        number = value
    else:
        match = re.match(r"\s*(\d{1,9})(?!\d)", _text(value) or "")
        if not match:
            return None
        number = int(match.group(1))
    return number if number > 0 else None


_ISO_DATE = re.compile(r"(\d{4}(?:-\d{2}(?:-\d{2})?)?)(?:[T ]\d{2}:\d{2}(?::\d{2})?(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)?")


def _date(text: str) -> str:
    match = _ISO_DATE.fullmatch(text)
    return match.group(1) if match else text


def _id3_values(id3: Any) -> Callable[[str], list]:
    def values(key: str) -> list:
        kind, _, qualifier = key.partition(":")
        if kind == "UFID":
            return [f.data for f in id3.getall("UFID") if f.owner.lower() == qualifier.lower()]
        frames = id3.getall(kind)
        if kind == "TXXX":
            frames = [f for f in frames if f.desc.lower() == qualifier.lower()]
        return [text for f in frames for text in getattr(f, "text", [])]

    return values


def _mp4_values(mp4: Any) -> Callable[[str], list]:
    by_lower = {k.lower(): k for k in mp4.keys()}  # freeform names are spelt differently by taggers

    def values(key: str) -> list:
        real = key if key in mp4 else by_lower.get(key.lower())
        return list(mp4[real]) if real is not None else []

    return values


def _asf_values(asf: Any) -> Callable[[str], list]:
    def values(key: str) -> list:
        found = [a.value for a in asf.get(key, [])]
        if not found and key == "WM/TrackNumber":  # WM/Track is zero-based
            found = [a.value + 1 for a in asf.get("WM/Track", []) if isinstance(a.value, int)]
        return found

    return values


def _dict_values(mapping: Any) -> Callable[[str], list]:
    def values(key: str) -> list:
        try:
            value = mapping[key]
        except (KeyError, ValueError):
            return []
        if isinstance(value, (str, bytes)):
            return [value]
        if type(value).__name__ in ("APEBinaryValue", "APEExtValue"):
            return []  # cover art and links are not text
        return list(value)  # Vorbis: list of values; APETextValue iterates over its NUL-separated values

    return values


def _fill_from_soundfile(tags: TrackTags, path: str | Path) -> None:
    """libsndfile reads RIFF INFO (WAV) and text chunks (AIFF) that mutagen ignores, and describes the
    stream of some files mutagen rejects."""
    try:
        import soundfile

        with soundfile.SoundFile(os.fsencode(path)) as sf:  # bytes: str paths with undecodable bytes fail
            meta = {name: getattr(sf, name, None) for name in ("title", "artist", "album", "tracknumber", "date")}
            frames, rate, channels, subtype = sf.frames, sf.samplerate, sf.channels, sf.subtype
    except Exception:
        return
    for field, key in (("title", "title"), ("artist", "artist"), ("album", "album"), ("date", "date")):
        if getattr(tags, field) is None and meta.get(key):
            setattr(tags, field, _normalise(field, [meta[key]]))
    if tags.track_number is None and meta.get("tracknumber"):
        tags.track_number = _track(meta["tracknumber"])
    if tags.duration is None and rate:
        tags.duration = frames / rate
    tags.sample_rate = tags.sample_rate or rate or None
    tags.channels = tags.channels or channels or None
    if tags.codec is None:
        tags.codec = next((c for p, c in _SF_CODECS.items() if subtype.startswith(p)), subtype.lower())
