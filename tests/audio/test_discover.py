"""discover() and sniff_format() on real trees: content sniffing, hidden files, symlinks, Unicode, errors."""
from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from livi_cli.audio import formats
from livi_cli.audio.discover import discover, is_audio_file, sniff_format
from livi_cli.audio.tags import read_tags
from tests.synth import FORMATS, melody, write_audio, write_track

WAVE = melody(0.3, seed=5)


def run(paths, **kw):
    errors: list[tuple[Path, str]] = []
    found = list(discover(paths, on_error=lambda p, why: errors.append((p, why)), **kw))
    return found, errors


def rel(found, root):
    return [str(p.relative_to(root)) for p in found]


def touch(path: Path, data: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------------------------------- sniffing
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_is_found_by_content_without_extension(tmp_path, fmt):
    path = write_audio(tmp_path / "track", WAVE, fmt=fmt)
    assert sniff_format(path) == fmt
    assert run([tmp_path])[0] == [path]


def test_wrong_and_missing_extensions(tmp_path):
    flac_as_mp3 = write_audio(tmp_path / "really_flac.mp3", WAVE, fmt="flac")
    mp3_no_ext = write_audio(tmp_path / "mp3_without_extension", WAVE, fmt="mp3")
    ogg_as_dat = write_audio(tmp_path / "vorbis.dat", WAVE, fmt="ogg")
    text_as_mp3 = touch(tmp_path / "text.mp3", b"not audio\n" * 50)
    touch(tmp_path / "notes.txt", b"liner notes\n")
    touch(tmp_path / "cover.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(500))
    touch(tmp_path / "blob.bin", np.random.default_rng(0).bytes(8192))
    found, errors = run([tmp_path])
    # content wins over the name; a text file named .mp3 is yielded so the scan reports it as failed
    assert sorted(found) == sorted([flac_as_mp3, mp3_no_ext, ogg_as_dat, text_as_mp3])
    assert errors == []
    assert sniff_format(flac_as_mp3) == "flac"
    assert sniff_format(text_as_mp3) is None
    assert read_tags(flac_as_mp3).codec == "flac"


def test_empty_files(tmp_path):
    empty_mp3 = touch(tmp_path / "empty.mp3")
    touch(tmp_path / "empty")
    touch(tmp_path / "empty.txt")
    assert run([tmp_path]) == ([empty_mp3], [])
    assert sniff_format(empty_mp3) is None


def test_mp3_frame_sync_without_id3_and_big_id3_before_frames(tmp_path):
    data = write_audio(tmp_path / "src.mp3", WAVE).read_bytes()
    frames = data[formats._id3_size(data):]
    assert frames[0] == 0xFF
    raw = touch(tmp_path / "raw", frames)
    assert sniff_format(raw) == "mp3"
    # 20 KB of ID3 (cover art) in front of the first frame: the sniffer jumps over the tag
    big_tag = _id3v2(20_000)
    assert sniff_format(touch(tmp_path / "art", big_tag + frames)) == "mp3"
    flac = write_audio(tmp_path / "f.flac", WAVE).read_bytes()
    assert sniff_format(touch(tmp_path / "id3flac", big_tag + flac)) == "flac"
    # a lone frame-sync byte pair followed by junk is not enough
    assert formats.sniff_bytes(b"\xff\xfb\x90\x00" + b"junk" * 500) is None


def _id3v2(body_size: int) -> bytes:
    size = bytes([(body_size >> s) & 0x7F for s in (21, 14, 7, 0)])
    return b"ID3\x04\x00\x00" + size + bytes(body_size)


def test_video_containers_are_skipped_even_with_audio_extensions(tmp_path):
    touch(tmp_path / "clip.mp4", b"\x00\x00\x00\x18ftypM4V \x00\x00\x00\x00M4V isom" + bytes(200))
    touch(tmp_path / "faststart.mp4",
          b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isommp41" + b"\x00\x00\x00\x21hdlr" + bytes(8) + b"vide" + bytes(64))
    touch(tmp_path / "movie.ogg", _ogg_page(b"\x80theora" + bytes(34)))
    asf_head = bytes.fromhex("3026B2758E66CF11A6D900AA0062CE6C") + bytes(30)
    touch(tmp_path / "video.asf", asf_head + bytes.fromhex("C0EF19BC4D5BCF11A8FD00805F5C442B") + bytes(50))
    speech = touch(tmp_path / "speech.ogg", _ogg_page(b"Speex   " + bytes(72)))
    m4a = write_audio(tmp_path / "song.mp4", WAVE, fmt="mp4")  # generic brand, audio only: kept
    found, _ = run([tmp_path])
    assert sorted(found) == sorted([speech, m4a])


def _ogg_page(packet: bytes) -> bytes:
    return b"OggS\x00\x02" + bytes(20) + bytes([1, len(packet)]) + packet


def test_is_audio_file_matches_discover(tmp_path):
    assert is_audio_file(write_audio(tmp_path / "x", WAVE, fmt="wav"))
    assert is_audio_file(touch(tmp_path / "broken.flac", b"junk"))
    assert not is_audio_file(touch(tmp_path / "readme.md", b"# hi"))


# ------------------------------------------------------------------------------------------ traversal
def test_order_is_sorted_and_deterministic(tmp_path):
    for name in ("b.mp3", "A.mp3", "a.flac", "sub/z.wav", "sub/a.ogg", "sub/deeper/c.mp3", "a_dir/x.mp3", "notes.txt"):
        touch(tmp_path / name, b"x")
    first, errors = run([tmp_path])
    expected = ["A.mp3", "a.flac", "b.mp3", "a_dir/x.mp3", "sub/a.ogg", "sub/z.wav", "sub/deeper/c.mp3"]
    assert rel(first, tmp_path) == expected
    assert run([tmp_path])[0] == first and errors == []
    assert all(p.is_absolute() for p in first)


def test_relative_roots_give_absolute_paths(tmp_path, monkeypatch):
    touch(tmp_path / "lib" / "a.mp3", b"x")
    monkeypatch.chdir(tmp_path)
    assert run(["lib"])[0] == [tmp_path / "lib" / "a.mp3"]


def test_hidden_files_and_folders(tmp_path):
    for name in ("song.mp3", ".hidden.mp3", ".cache/x.flac", "dir/.secret/y.wav"):
        touch(tmp_path / name, b"x")
    touch(tmp_path / "._song.mp3", b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(100))
    assert rel(run([tmp_path])[0], tmp_path) == ["song.mp3"]
    with_hidden = rel(run([tmp_path], include_hidden=True)[0], tmp_path)
    # AppleDouble sidecars are never audio, whatever their name says
    assert with_hidden == [".hidden.mp3", "song.mp3", ".cache/x.flac", "dir/.secret/y.wav"]
    # a hidden folder passed explicitly is walked
    assert rel(run([tmp_path / ".cache"])[0], tmp_path) == [".cache/x.flac"]


def test_symlink_loops_terminate_and_files_yield_once(tmp_path):
    lib = tmp_path / "lib"
    touch(lib / "real" / "x.mp3", b"x")
    touch(lib / "real" / "sub" / "y.mp3", b"y")
    (lib / "real" / "sub" / "up").symlink_to(lib)  # loop back to the top
    (lib / "a_link").symlink_to(lib / "real")  # sorts before "real": the real path must still win
    (lib / "real" / "alias.mp3").symlink_to(lib / "real" / "x.mp3")
    (lib / "self").symlink_to(lib / "self")  # a link to itself
    found, errors = run([lib])
    assert rel(found, lib) == ["real/x.mp3", "real/sub/y.mp3"]
    assert [(p.name, why.split(":")[0]) for p, why in errors] == [("self", "broken symbolic link")]


def test_symlinks_to_outside_are_followed_under_the_link_path(tmp_path):
    outside = tmp_path / "elsewhere"
    touch(outside / "album" / "t1.flac", b"x")
    touch(outside / "solo.mp3", b"x")
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "linked_album").symlink_to(outside / "album")
    (lib / "linked_solo.mp3").symlink_to(outside / "solo.mp3")
    (lib / "dead.mp3").symlink_to(tmp_path / "nowhere.mp3")
    (lib / "dead.txt").symlink_to(tmp_path / "nowhere.txt")  # not audio-named: ignored quietly
    found, errors = run([lib])
    assert rel(found, lib) == ["linked_album/t1.flac", "linked_solo.mp3"]
    assert [p.name for p, _ in errors] == ["dead.mp3"]
    # the same tree reached through a symlinked root and again directly: once, under the first root
    (tmp_path / "lib_link").symlink_to(lib)
    again, _ = run([tmp_path / "lib_link", lib])
    assert rel(again, tmp_path / "lib_link") == ["linked_album/t1.flac", "linked_solo.mp3"]
    # overlapping roots: an explicit root is walked before links met earlier are followed
    overlap, _ = run([lib, lib / "linked_album"])
    assert rel(overlap, lib) == ["linked_album/t1.flac", "linked_solo.mp3"]


def test_roots_that_are_files_or_missing(tmp_path):
    song = write_audio(tmp_path / "a song", WAVE, fmt="flac")
    text = touch(tmp_path / "t.txt", b"hello")
    found, errors = run([song, text, tmp_path / "missing"])
    assert found == [song]
    assert [(p.name, why) for p, why in errors] == [("t.txt", "not an audio file"),
                                                   ("missing", "no such file or directory")]


def test_fifos_are_not_opened(tmp_path):
    os.mkfifo(tmp_path / "pipe.mp3")
    os.mkfifo(tmp_path / "pipe")
    touch(tmp_path / "ok.mp3", b"x")
    assert rel(run([tmp_path])[0], tmp_path) == ["ok.mp3"]


def test_deep_tree(tmp_path):
    deep = tmp_path
    for _ in range(300):  # created one level at a time: pathlib's mkdir(parents=True) recurses
        deep = deep / "d"
        deep.mkdir()
    touch(deep / "bottom.mp3", b"x")
    assert run([tmp_path])[0] == [deep / "bottom.mp3"]


# ------------------------------------------------------------------------------------------- unicode
def test_unicode_names(tmp_path):
    names = [
        unicodedata.normalize("NFC", "Café.flac"), unicodedata.normalize("NFD", "Café.flac"),
        "🎸 Guitar 🎵.mp3", "שיר אהבה.ogg", "日本語/歌.wav", "Ünïcödé dir/Ωmega.opus",
        "it's \"quoted\" [live] (1999).m4a", "line\nbreak.flac", "Ελληνικά – ünd.wma",
    ]
    written = [write_track(tmp_path / n, seconds=0.2, fmt=formats_for(n), title=Path(n).stem) for n in names]
    bad = os.path.join(os.fsencode(tmp_path), b"latin1-\xe9t\xe9.flac")  # not valid UTF-8
    write_audio(os.fsdecode(bad), WAVE, fmt="flac")
    found, errors = run([tmp_path])
    assert errors == []
    assert sorted(found) == sorted(written + [Path(os.fsdecode(bad))])
    assert len({str(p) for p in found}) == len(names) + 1  # NFC and NFD spellings are two files on Linux
    for path in found:
        tags = read_tags(path)
        assert tags.error is None and tags.duration > 0
        if path in written:
            assert tags.title == path.stem


def formats_for(name: str) -> str:
    return {".flac": "flac", ".mp3": "mp3", ".ogg": "ogg", ".wav": "wav", ".opus": "opus", ".m4a": "m4a",
            ".wma": "wma"}[Path(name).suffix]


# ----------------------------------------------------------------------------------- unreadable folder
def test_unreadable_folder_is_reported_and_skipped():
    """chmod 000 does not stop root, so as root the walk runs in a forked child that drops to `nobody`."""
    base = Path(tempfile.mkdtemp(prefix="livi-perm-"))  # outside pytest's 0700 tmp root: nobody must enter
    try:
        base.chmod(0o755)
        touch(base / "ok.mp3", b"x").chmod(0o644)
        touch(base / "locked" / "inside.mp3", b"x").chmod(0o644)
        (base / "locked").chmod(0)
        touch(base / "unreadable.flac", b"fLaC").chmod(0)  # audio name: yielded, the scan reports it
        touch(base / "unreadable_blob", b"fLaC").chmod(0)  # cannot be sniffed, no audio name: skipped
        result = _discover_as_nobody(base) if os.geteuid() == 0 else _discover_here(base)
    finally:
        (base / "locked").chmod(stat.S_IRWXU)
        shutil.rmtree(base)
    assert "crash" not in result, result
    assert result["found"] == [str(base / "ok.mp3"), str(base / "unreadable.flac")]
    assert result["errors"] == [[str(base / "locked"), "cannot list folder: permission denied"]]


def _discover_here(root: Path) -> dict:
    found, errors = run([root])
    return {"found": [str(p) for p in found], "errors": [[str(p), why] for p, why in errors]}


def _discover_as_nobody(root: Path) -> dict:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop root, walk, report through the pipe, exit without running pytest teardown
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            payload = _discover_here(root)
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            payload = {"crash": repr(exc)}
        os.write(write_end, json.dumps(payload).encode())
        os._exit(0)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks))


def test_single_root_given_bare_and_fifo_helpers(tmp_path):
    touch(tmp_path / "a.mp3", b"x")
    os.mkfifo(tmp_path / "p.flac")
    assert list(discover(str(tmp_path))) == [tmp_path / "a.mp3"]
    assert list(discover(tmp_path)) == [tmp_path / "a.mp3"]
    assert not is_audio_file(tmp_path / "p.flac") and sniff_format(tmp_path / "p.flac") is None
