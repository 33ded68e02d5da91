"""The model registry: manifests in models/*.toml (installed as livi_cli.registry), the local
cache of installed models, and locating each model for the current settings.

A head is installed as ``<home>/models/heads/livi.pth`` plus ``livi.json`` (sha256, config, source).
Whisper lives in the Hugging Face cache (huggingface_hub), or in a local directory given with
``--whisper``/``LIVI_WHISPER``.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from livi_cli.config import Settings
from livi_cli.errors import ChecksumError, ModelMissingError

WHISPER = "whisper-large-v3-turbo"
HEAD = "livi-head"


@lru_cache(maxsize=None)
def manifests() -> dict[str, dict]:
    """Every model manifest shipped with livi, by name."""
    out = {}
    for entry in resources.files("livi_cli.registry").iterdir():
        if entry.name.endswith(".toml"):
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
            out[data["name"]] = data
    return out


def manifest(name: str) -> dict:
    return manifests()[name]


# ---------------------------------------------------------------- head
def head_dir(settings: Settings) -> Path:
    return settings.models_dir / "heads"


def installed_head_path(settings: Settings) -> Path:
    return head_dir(settings) / manifest(HEAD)["filename"]


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def head_info(path: Path, settings: Settings) -> tuple[str, int]:
    """(sha256, embedding dim) of a head file (cached: see `_head_entry`)."""
    entry = _head_entry(path, settings)
    return entry["sha256"], int(entry["dim"])


def head_input_dim(path: Path, settings: Settings) -> int:
    """Width of the encoder states the head reads (cached: see `_head_entry`)."""
    return int(_head_entry(path, settings)["dim_whisper"])


def _head_entry(path: Path, settings: Settings) -> dict:
    """sha256 and dimensions of a head file.

    Cached in ``<models>/head-cache.json`` by (path, size, mtime) so a rescan of an unchanged library
    neither re-hashes 128 MB nor imports torch to read the head's dimensions.
    """
    st = path.stat()
    key = str(path.resolve())
    cache_file = settings.models_dir / "head-cache.json"
    try:
        cache = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cache = {}
    entry = cache.get(key)
    if entry and entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns and "dim_whisper" in entry:
        return entry
    from livi_cli.model.checkpoint import sha256_file, validate_head_file  # imports torch: cache misses only

    config = validate_head_file(path)
    digest = sha256_file(path)
    entry = cache[key] = {"sha256": digest, "dim": config.dim_embed, "dim_whisper": config.dim_whisper,
                          "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="head-cache.", dir=cache_file.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(cache, f, indent=1)
        os.replace(tmp, cache_file)
    except OSError:
        pass  # a read-only data dir only costs a re-hash next time
    return entry


def resolve_head(settings: Settings) -> Path:
    """The head file to use: --head/LIVI_HEAD, else the installed one. ModelMissingError if absent."""
    if settings.head:
        path = Path(settings.head).expanduser()
        if not path.is_file():
            raise ModelMissingError(HEAD, str(path), "check the --head / LIVI_HEAD path")
        return path
    path = installed_head_path(settings)
    if not path.is_file():
        m = manifest(HEAD)
        raise ModelMissingError(HEAD, str(path), f"download {m['filename']} from {m['url']} then run: livi models install-head PATH/TO/{m['filename']}")
    return path


def install_head(settings: Settings, source: Path) -> dict:
    """Validate a downloaded checkpoint and copy it into the models dir atomically."""
    from livi_cli.model.checkpoint import sha256_file, validate_head_file

    config = validate_head_file(source)
    digest = sha256_file(source)
    expected = manifest(HEAD).get("sha256")
    if expected and expected != digest:
        raise ChecksumError(f"{source}: sha256 {digest} does not match the published {expected}")
    dest = installed_head_path(settings)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        if sha256_file(tmp) != digest:
            raise ChecksumError(f"{source}: copy verification failed (file changed while copying?)")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    st = dest.stat()
    meta = {
        "sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "source": str(source),
        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "config": config.to_dict(),
    }
    _sidecar(dest).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return meta


def verify_installed_head(settings: Settings) -> bool | None:
    """True/False when the installed head matches the sha256 recorded at install; None if not installed."""
    from livi_cli.model.checkpoint import sha256_file

    path = installed_head_path(settings)
    if not path.is_file():
        return None
    try:
        recorded = json.loads(_sidecar(path).read_text(encoding="utf-8"))["sha256"]
    except (OSError, ValueError, KeyError):
        return False
    return sha256_file(path) == recorded


# ---------------------------------------------------------------- whisper
@dataclass(frozen=True)
class WhisperLocation:
    source: str  # what the user asked for: hub id or directory
    directory: Path  # where config.json and the weights are
    revision: str  # hub commit hash, or a content digest for a local directory


def _local_digest(directory: Path) -> str:
    """Cheap content digest of a local model dir: config + size and head/tail bytes of each weight file."""
    import hashlib

    h = hashlib.sha256()
    for name in sorted(os.listdir(directory)):
        p = directory / name
        if not p.is_file() or not (name.endswith((".json", ".safetensors", ".bin"))):
            continue
        h.update(name.encode())
        size = p.stat().st_size
        h.update(str(size).encode())
        with open(p, "rb") as f:
            h.update(f.read(1 << 20))
            if size > 2 << 20:
                f.seek(-(1 << 20), os.SEEK_END)
                h.update(f.read())
    return "local-" + h.hexdigest()[:16]


def resolve_whisper(settings: Settings) -> WhisperLocation:
    """Find the Whisper model for `settings.whisper` without loading it. ModelMissingError if absent."""
    source = settings.whisper
    path = Path(source).expanduser()
    if path.exists() or source.startswith((".", "/", "~")):  # a hub id never starts like a path
        if not (path / "config.json").is_file():
            raise ModelMissingError(source, str(path), "the directory must hold a transformers Whisper model (config.json + weights)")
        return WhisperLocation(source, path, _local_digest(path))
    m = manifest(WHISPER)
    revision = m["revision"] if source == m["repo_id"] else "main"
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        directory = Path(snapshot_download(source, revision=revision, local_files_only=True, allow_patterns=["config.json"]))
    except (LocalEntryNotFoundError, OSError, ValueError) as exc:
        from huggingface_hub.constants import HF_HUB_CACHE

        raise ModelMissingError(source, f"the Hugging Face cache {HF_HUB_CACHE}", f"run: livi models download{'' if source == m['repo_id'] else ' --whisper ' + source}") from exc
    has_weights = any((directory / n).exists() for n in ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"))
    if not has_weights:
        raise ModelMissingError(source, str(directory), "weights are missing from the cache; run: livi models download")
    return WhisperLocation(source, directory, directory.name)


def download_whisper(settings: Settings) -> Path:
    """Fetch Whisper through huggingface_hub (its cache, resume and progress bars)."""
    from huggingface_hub import snapshot_download

    m = manifest(WHISPER)
    source = settings.whisper
    revision = m["revision"] if source == m["repo_id"] else "main"
    return Path(snapshot_download(source, revision=revision, allow_patterns=m["allow_patterns"]))
