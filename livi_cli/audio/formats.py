"""Recognise audio files by their first bytes (magic numbers), without decoding anything.

`sniff_bytes(header)` looks at the first few KB of a file and answers with a short format name
("mp3", "flac", "m4a", "mp4", "aac", "ogg", "opus", "wav", "aiff", "wma", ...), with NOT_AUDIO for
containers we positively recognise as video or as something else (so an extension cannot talk us into
scanning them), or with None when the bytes say nothing (empty, text, corrupt, unknown).
"""
from __future__ import annotations

import os
from pathlib import Path

SNIFF_BYTES = 4096  # enough for every magic below and for two or three MPEG frames
NOT_AUDIO = "not-audio"  # sentinel: recognised, and not audio (video container, macOS AppleDouble, ...)

# Extensions that mark a file as meant to be audio. A file with one of these is handed to the scan even
# when its bytes are unrecognisable, so a corrupt song is reported as a failure rather than silently lost.
AUDIO_EXTENSIONS = frozenset({
    ".mp3", ".mp2", ".mp1", ".mpga", ".flac", ".m4a", ".m4b", ".m4p", ".mp4", ".aac", ".adts",
    ".ogg", ".oga", ".opus", ".spx", ".wav", ".wave", ".aif", ".aiff", ".aifc", ".wma", ".asf",
    ".ape", ".wv", ".mpc", ".caf", ".au", ".snd", ".dsf", ".alac",
})
# Extensions of containers that may hold video; for these the bytes decide (a video is skipped).
AMBIGUOUS_EXTENSIONS = frozenset({".mp4", ".ogg", ".asf"})

_ASF_HEADER = bytes.fromhex("3026B2758E66CF11A6D900AA0062CE6C")
_ASF_VIDEO_MEDIA = bytes.fromhex("C0EF19BC4D5BCF11A8FD00805F5C442B")  # ASF_Video_Media stream type GUID
_APPLEDOUBLE = b"\x00\x05\x16\x07"  # macOS resource-fork sidecar ("._song.mp3"): never audio
_MP4_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
_MP4_VIDEO_BRANDS = {b"M4V ", b"M4VH", b"M4VP", b"qt  ", b"F4V ", b"F4P "}

# MPEG audio: bitrates (kbps) indexed by [version is MPEG-1][layer][index]; sample rates by version.
_BITRATES = {
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_SAMPLE_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def extension_is_audio(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS


def read_header(path: str | Path, size: int = SNIFF_BYTES) -> bytes:
    """First `size` bytes of a file, plus the bytes right after a leading ID3v2 tag (which can hold
    megabytes of cover art in front of the first audio frame). Raises OSError."""
    with open(path, "rb") as fh:
        head = fh.read(size)
        skip = _id3_size(head)
        if skip:
            fh.seek(skip)
            head = head[:10] + fh.read(size)  # keep the "ID3" marker, then the bytes behind the tag
    return head


def sniff_format(path: str | Path) -> str | None:
    """The audio format of a file judged by its content, or None (not audio, unknown, unreadable)."""
    if not os.path.isfile(path):  # never open a FIFO or device: reading it could block forever
        return None
    try:
        fmt = sniff_bytes(read_header(path))
    except OSError:
        return None
    return None if fmt == NOT_AUDIO else fmt


def sniff_bytes(head: bytes) -> str | None:
    """Format name, NOT_AUDIO, or None; `head` is what read_header returned."""
    if head.startswith(b"ID3"):
        inner = sniff_bytes(head[10:]) if len(head) > 10 else None
        # An ID3v2 tag in front of something we don't recognise is still almost surely an mp3.
        return inner if inner not in (None, NOT_AUDIO) else "mp3"
    if head.startswith(_APPLEDOUBLE):
        return NOT_AUDIO
    for sniffer in (_sniff_riff_like, _sniff_simple_magic, _sniff_ogg, _sniff_mp4, _sniff_asf):
        fmt = sniffer(head)
        if fmt is not None:
            return fmt
    return _sniff_frames(head)


def _id3_size(head: bytes) -> int:
    """Total bytes of a leading ID3v2 tag (header + body + footer), 0 when there is none."""
    if len(head) < 10 or not head.startswith(b"ID3") or head[3] == 0xFF or head[4] == 0xFF:
        return 0
    size_bytes = head[6:10]
    if any(b & 0x80 for b in size_bytes):  # sizes are "synchsafe": 7 bits per byte
        return 0
    size = (size_bytes[0] << 21) | (size_bytes[1] << 14) | (size_bytes[2] << 7) | size_bytes[3]
    footer = 10 if head[5] & 0x10 else 0
    return 10 + size + footer


def _sniff_riff_like(head: bytes) -> str | None:
    kind, form = head[:4], head[8:12]
    if kind in (b"RIFF", b"RF64", b"BW64") and form == b"WAVE":
        return "wav"
    if kind == b"RIFF" and form in (b"AVI ", b"WEBP", b"CDXA"):
        return NOT_AUDIO
    if kind == b"FORM" and form in (b"AIFF", b"AIFC"):
        return "aiff"
    return None


def _sniff_simple_magic(head: bytes) -> str | None:
    magics = (
        (b"fLaC", "flac"), (b"MAC ", "ape"), (b"wvpk", "wavpack"), (b"MPCK", "musepack"),
        (b"MP+", "musepack"), (b"caff", "caf"), (b".snd", "au"), (b"DSD ", "dsf"),
    )
    for magic, fmt in magics:
        if head.startswith(magic):
            return fmt
    return None


def _sniff_ogg(head: bytes) -> str | None:
    if not head.startswith(b"OggS") or len(head) < 28:
        return None
    n_segments = head[26]
    packet = head[27 + n_segments: 27 + n_segments + 16]  # first packet of the first logical stream
    if packet.startswith(b"OpusHead"):
        return "opus"
    if packet.startswith(b"\x7fFLAC"):
        return "flac"
    if packet.startswith((b"\x80theora", b"\x80kate", b"fishead", b"\x01video")):
        return NOT_AUDIO
    return "ogg"  # vorbis ("\x01vorbis"), speex and anything else in Ogg


def _sniff_mp4(head: bytes) -> str | None:
    if head[4:8] != b"ftyp":
        return None
    box_end = int.from_bytes(head[:4], "big")
    brands = [head[8:12]] + [head[i:i + 4] for i in range(16, min(box_end, len(head), 64), 4)]
    if brands[0] in _MP4_AUDIO_BRANDS:
        return "m4a"
    if brands[0] in _MP4_VIDEO_BRANDS or b"hdlr\x00\x00\x00\x00\x00\x00\x00\x00vide" in head:
        return NOT_AUDIO  # a video track is visible in the header (only when the index comes first)
    if any(b in _MP4_AUDIO_BRANDS for b in brands):
        return "m4a"
    return "mp4"  # generic ISO brand (isom, mp42, ...): audio unless proven otherwise


def _sniff_asf(head: bytes) -> str | None:
    if not head.startswith(_ASF_HEADER):
        return None
    return NOT_AUDIO if _ASF_VIDEO_MEDIA in head else "wma"


def _sniff_frames(head: bytes) -> str | None:
    """Raw MPEG audio or ADTS AAC: a frame header at the start (after zero padding) and a second one
    exactly one frame later, so a random binary file rarely passes."""
    start = 0
    while start < len(head) and head[start] == 0:
        start += 1
    first = _frame(head, start)
    if first is None:
        return None
    fmt, length = first
    nxt = start + length
    if nxt + 4 > len(head):
        # Too short to confirm with a second header: accept only a complete tiny file.
        return fmt if nxt == len(head) else None
    second = _frame(head, nxt)
    return fmt if second is not None and second[0] == fmt else None


def _frame(buf: bytes, i: int) -> tuple[str, int] | None:
    """(format, frame length) of an MPEG audio or ADTS header at buf[i], or None."""
    if i + 7 > len(buf) or buf[i] != 0xFF or buf[i + 1] & 0xE0 != 0xE0:
        return None
    b1, b2 = buf[i + 1], buf[i + 2]
    version, layer_bits = (b1 >> 3) & 3, (b1 >> 1) & 3
    if layer_bits == 0:  # layer "00" marks ADTS (AAC)
        if b1 & 0xF6 != 0xF0 or (b2 >> 2) & 0xF > 12:
            return None
        length = ((buf[i + 3] & 3) << 11) | (buf[i + 4] << 3) | (buf[i + 5] >> 5)
        return ("aac", length) if length >= 7 else None
    if version == 1:  # reserved
        return None
    bitrate_idx, rate_idx, padding = b2 >> 4, (b2 >> 2) & 3, (b2 >> 1) & 1
    if bitrate_idx in (0, 15) or rate_idx == 3:  # free-format or invalid: cannot confirm
        return None
    layer = 4 - layer_bits
    kbps = _BITRATES[(version == 3, layer)][bitrate_idx]
    rate = _SAMPLE_RATES[version][rate_idx]
    if layer == 1:
        length = (12 * kbps * 1000 // rate + padding) * 4
    else:
        per_frame = 144 if (layer == 3 and version == 3) or layer == 2 else 72
        length = per_frame * kbps * 1000 // rate + padding
    return ("mp3", length) if length > 4 else None
