"""Find the audio files under the folders a user points livi at.

Which files are yielded (the scan decodes them and records failures):
- every regular file whose first bytes are audio (see formats.sniff_bytes), whatever its name:
  a FLAC named ".mp3" or an MP3 without extension is found;
- every regular file with an audio extension (formats.AUDIO_EXTENSIONS) unless its bytes are positively
  something else (a video in an .mp4/.ogg/.asf container, a macOS "._song.mp3" AppleDouble sidecar):
  an empty, truncated or corrupt "song.mp3", or a text file named ".mp3", is yielded so the scan reports
  it as failed instead of silently ignoring it;
- nothing else: "notes.txt", "cover.jpg" are not yielded.
Files with an audio extension (other than the ambiguous .mp4/.ogg/.asf and "._" names) are not opened
here, which keeps a rescan of a large unchanged library cheap; any other file costs one read of 4 KB.

Traversal rules:
- Order is deterministic: roots in the order given; in each folder its files sorted by name, then its
  subfolders sorted by name (depth first); entries reached only through a symbolic link come after all
  real entries (so a file is reported under its real location when both a real and a symlinked path lead
  to it).
- Names starting with "." (files and folders) are skipped unless include_hidden; a root given explicitly
  is always walked.
- Symbolic links are followed. A directory is walked once ((st_dev, st_ino) of visited directories), which
  also breaks symlink loops; a file reached through several paths is yielded once (by resolved path).
- Problems (unreadable folder, missing root, broken link named like audio or looping) go to
  on_error(path, reason) and the walk continues; without on_error they are logged as warnings. An
  unreadable file is yielded when its name is audio (the scan reports it) and skipped otherwise.
- FIFOs, sockets and devices are never opened (reading a FIFO would block the scan).
"""
from __future__ import annotations

import errno
import logging
import os
import stat
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from livi_cli.audio import formats

log = logging.getLogger(__name__)

OnError = Callable[[Path, str], None]

__all__ = ["discover", "sniff_format", "is_audio_file"]

sniff_format = formats.sniff_format


def discover(
    paths: Iterable[Path | str],
    *,
    include_hidden: bool = False,
    on_error: OnError | None = None,
) -> Iterator[Path]:
    """Yield absolute paths (not symlink-resolved) of the audio files under `paths`, each once."""
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]  # one folder given bare: don't iterate over its characters
    walk = _Walk(include_hidden, on_error or _log_error)
    for root in paths:
        yield from walk.root(os.path.abspath(os.fsdecode(root)))
    yield from walk.drain_links()


def is_audio_file(path: Path | str) -> bool:
    """The rule discover applies to one file (see the module docstring); False for non-regular files."""
    path = os.fsdecode(path)
    return os.path.isfile(path) and _keep_file(path, os.path.basename(path))


def _log_error(path: Path, reason: str) -> None:
    log.warning("%s: %s", path, reason)


def _reason(exc: OSError) -> str:
    return exc.strerror.lower() if exc.strerror else type(exc).__name__


def _keep_file(path: str, name: str) -> bool:
    """Whether discover yields this regular file."""
    ext = os.path.splitext(name)[1].lower()
    ext_audio = ext in formats.AUDIO_EXTENSIONS
    if ext_audio and ext not in formats.AMBIGUOUS_EXTENSIONS and not name.startswith("._"):
        return True  # cheap path: the scan will tell whether the content really is audio
    try:
        fmt = formats.sniff_bytes(formats.read_header(path))
    except OSError as exc:
        # An unreadable "song.mp3" goes to the scan, which reports it; an unreadable "cover.jpg" is not
        # worth a failure (and a non-zero exit) of the whole scan.
        log.debug("%s: cannot read: %s", path, _reason(exc))
        return ext_audio
    if fmt == formats.NOT_AUDIO:
        return False
    return fmt is not None or ext_audio


class _Walk:
    """State of one discover() call: what was visited, yielded, and the symlinks left for later."""

    def __init__(self, include_hidden: bool, on_error: OnError):
        self.include_hidden = include_hidden
        self.on_error = on_error
        self.visited_dirs: set[tuple[int, int]] = set()
        self.yielded: set[str] = set()  # resolved paths of files already yielded
        self.links: deque[tuple[str, str]] = deque()  # (path, name) of symlinks met in walked dirs

    def error(self, path: str, reason: str) -> None:
        self.on_error(Path(path), reason)

    def root(self, path: str) -> Iterator[Path]:
        try:
            st = os.stat(path)
        except OSError as exc:
            self.error(path, _reason(exc))
            return
        if stat.S_ISDIR(st.st_mode):
            yield from self.directory(path, os.path.realpath(path), st)
        elif stat.S_ISREG(st.st_mode):
            if _keep_file(path, os.path.basename(path)):
                yield from self.emit(path, os.path.realpath(path))
            else:
                self.error(path, "not an audio file")
        else:
            self.error(path, "not a regular file or directory")

    def directory(self, path: str, real: str, st: os.stat_result) -> Iterator[Path]:
        """Walk one directory tree iteratively (deep trees must not hit the recursion limit)."""
        key = (st.st_dev, st.st_ino)
        if key in self.visited_dirs:
            return
        self.visited_dirs.add(key)
        stack = [(path, real)]
        while stack:
            dir_path, dir_real = stack.pop()
            subdirs = []
            for entry in self.entries(dir_path):
                if entry.is_symlink():
                    self.links.append((entry.path, entry.name))
                    continue
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                    is_file = not is_dir and entry.is_file(follow_symlinks=False)
                except OSError as exc:
                    self.error(entry.path, _reason(exc))
                    continue
                real_child = os.path.join(dir_real, entry.name)
                if is_file:
                    yield from self.file(entry.path, entry.name, real_child)
                elif is_dir:
                    try:
                        child_st = entry.stat(follow_symlinks=False)
                    except OSError as exc:
                        self.error(entry.path, _reason(exc))
                        continue
                    child_key = (child_st.st_dev, child_st.st_ino)
                    if child_key not in self.visited_dirs:
                        self.visited_dirs.add(child_key)
                        subdirs.append((entry.path, real_child))
                    continue
                # sockets, FIFOs, devices: silently ignored
            if subdirs:
                # Depth-first in sorted order: files of a folder, then its subfolders. Files and folders are
                # not interleaved by name, which is still deterministic and keeps one folder's files together.
                stack.extend(reversed(subdirs))

    def entries(self, dir_path: str) -> list[os.DirEntry]:
        try:
            with os.scandir(dir_path) as it:
                found = [e for e in it if self.include_hidden or not e.name.startswith(".")]
        except OSError as exc:
            self.error(dir_path, f"cannot list folder: {_reason(exc)}")
            return []
        found.sort(key=lambda e: e.name)
        return found

    def file(self, path: str, name: str, real: str) -> Iterator[Path]:
        if real in self.yielded:
            return
        if _keep_file(path, name):
            yield from self.emit(path, real)

    def emit(self, path: str, real: str) -> Iterator[Path]:
        if real not in self.yielded:
            self.yielded.add(real)
            yield Path(path)

    def drain_links(self) -> Iterator[Path]:
        """Follow the symlinks met so far (and those found behind them), after all real entries."""
        while self.links:
            path, name = self.links.popleft()
            try:
                st = os.stat(path)
            except OSError as exc:
                if formats.extension_is_audio(name) or exc.errno == errno.ELOOP:  # a link loop
                    self.error(path, f"broken symbolic link: {_reason(exc)}")
                continue
            if stat.S_ISDIR(st.st_mode):
                yield from self.directory(path, os.path.realpath(path), st)
            elif stat.S_ISREG(st.st_mode):
                yield from self.file(path, name, os.path.realpath(path))
