"""One error family: the CLI prints `error: <message>` and exits 1 for any LiviError."""
from __future__ import annotations

from pathlib import Path


class LiviError(Exception):
    """Base of every error livi reports to the user (no traceback unless LIVI_DEBUG=1)."""

    exit_code = 1


class AudioReadError(LiviError):
    """A file could not be decoded into audio; names the file and the reason."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ModelMissingError(LiviError):
    """A model a command needs is not installed; says where we looked and how to get it."""

    def __init__(self, name: str, looked_in: str, hint: str):
        self.name = name
        self.looked_in = looked_in
        self.hint = hint
        super().__init__(f"model '{name}' not found (looked in {looked_in}); {hint}")


class CheckpointError(LiviError):
    """A head checkpoint is malformed: missing, unexpected or wrong-shaped keys, bad format."""


class ChecksumError(LiviError):
    """A downloaded or installed file does not match its recorded sha256."""


class LibraryError(LiviError):
    """The catalog or index is unusable (corrupt, wrong schema, empty when data is needed)."""


class LibraryLockedError(LibraryError):
    """Another livi process holds the library's writer lock."""


class ModelMismatchError(LibraryError):
    """Stored embeddings were made by another model than the one loaded now."""


class ConfigError(LiviError):
    """A setting (config file, env var or option) has an invalid value."""


class EvalError(LiviError):
    """Evaluation input is unusable: bad metadata CSV, missing embeddings, mismatched labels."""


class TrainingError(LiviError):
    """Training data or options are unusable (bad metadata, shard folder, text model, split)."""
