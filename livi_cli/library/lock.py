"""One writer per library: an advisory fcntl.flock on <library>/lock.

Readers never take it: SQLite's WAL mode lets them read while a scan writes. The lock dies with
its process (the kernel drops flocks on exit, SIGKILL included), so there is no stale-lock cleanup.
"""
from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from livi_cli.errors import LibraryError, LibraryLockedError

LOCK_FILE = "lock"
DEFAULT_WAIT_SECONDS = 3.0  # a second writer waits this long (LIVI_LOCK_WAIT overrides) then gives up


def default_wait() -> float:
    try:
        return float(os.environ.get("LIVI_LOCK_WAIT", DEFAULT_WAIT_SECONDS))
    except ValueError:
        return DEFAULT_WAIT_SECONDS


class WriterLock:
    """`with WriterLock(library_dir):` — exclusive writer access or LibraryLockedError."""

    def __init__(self, library_dir: Path, wait: float | None = None):
        self.path = Path(library_dir) / LOCK_FILE
        self.wait = default_wait() if wait is None else wait
        self._fd: int | None = None

    def acquire(self) -> "WriterLock":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise LibraryError(f"{self.path.parent}: cannot use as library folder: {exc.strerror or exc}") from exc
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise LibraryLockedError(
                        f"library {self.path.parent} is busy: another livi process{holder} is writing to it "
                        f"(waited {self.wait:g} s); try again when it has finished") from None
                time.sleep(0.05)
        # Record who holds it, for the message a waiting process prints.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> "WriterLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


def try_lock(library_dir: Path) -> WriterLock | None:
    """The lock if it is free right now, else None (readers use it to save a rebuilt index opportunistically).

    Also None when the lock file cannot be opened (a read-only library folder): a reader then simply
    does not save, where a writer's acquire() raises."""
    try:
        return WriterLock(library_dir, wait=0).acquire()
    except LibraryError:  # LibraryLockedError included
        return None
