"""The diff stage of a scan: what is on disk vs. what the catalog holds, decided without decoding audio.

For each discovered file:
  unchanged  same size and mtime_ns as stored, and (for embedded tracks) made by the current model;
             a file that failed before and has not changed since is not retried (still_failed; --force does)
  touched    size/mtime differ but the content hash is the same (e.g. `touch`): only the stat is updated
  moved      a path the catalog does not know whose content hash equals a track whose old path is gone:
             the row is re-pointed and keeps its id and vectors
  copied     same, but the other file still exists: a new row gets a copy of its vectors (same bytes,
             same embedding) — counted as new
  restored   a path marked removed whose file came back with the same bytes: reactivated — counted as new
  embed      everything else (new, changed, failed before and changed since, other model, --force)
Catalog paths under a scanned root that were not discovered are `removed`.

Content hash: blake2b-128 of the whole file, streamed in 1 MiB blocks (hashlib releases the GIL, so a
thread pool overlaps the I/O). It is computed only for paths whose stat changed or that are new, so an
unchanged rescan reads no audio bytes at all.
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from livi_cli.library.catalog import ScanEntry

HASH_BLOCK = 1 << 20


def content_hash(path: str | os.PathLike) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while block := fh.read(HASH_BLOCK):
            h.update(block)
    return h.hexdigest()


@dataclass
class FileStat:
    path: str  # absolute path as discovered
    key: bytes  # catalog path key (os.fsencode)
    size: int
    mtime_ns: int
    hash: str | None = None


@dataclass
class Plan:
    unchanged: list[FileStat] = field(default_factory=list)
    still_failed: list[FileStat] = field(default_factory=list)  # failed before, unchanged since: not retried
    touched: list[tuple[int, FileStat]] = field(default_factory=list)  # (track id, new stat)
    moved: list[tuple[int, str, FileStat]] = field(default_factory=list)  # (track id, old path, new stat)
    copied: list[tuple[int, FileStat]] = field(default_factory=list)  # (donor track id, new file)
    restored: list[tuple[int, FileStat]] = field(default_factory=list)  # (track id, file)
    embed: list[tuple[str, FileStat, int | None]] = field(default_factory=list)  # (new|updated, file, track id)
    removed: list[tuple[int, str]] = field(default_factory=list)  # (track id, old path)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, reason): stat/hash failed
    model_changed: bool = False


def _under(key: bytes, roots: list[bytes]) -> bool:
    return any(key == r or key.startswith(r.rstrip(b"/") + b"/") for r in roots)


def hash_files(files: list[FileStat], workers: int) -> list[tuple[FileStat, str | None, str | None]]:
    """(file, hash, error) for each file, hashed in parallel."""
    def one(f: FileStat):
        try:
            return f, content_hash(f.path), None
        except OSError as exc:
            return f, None, f"cannot read: {exc.strerror or exc}"

    if not files:
        return []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(one, files))


def make_plan(files: list[FileStat], entries: dict[bytes, ScanEntry], roots: list[bytes], model_key: str | None,
              *, force: bool = False, workers: int = 4) -> Plan:
    plan = Plan()
    seen = {f.key for f in files}
    reusable = lambda e: e.embed_key is not None and e.embed_key == model_key and not force  # noqa: E731
    to_hash: list[tuple[FileStat, ScanEntry | None]] = []
    for f in files:
        e = entries.get(f.key)
        if e is None or e.status == "removed":
            to_hash.append((f, e))
        elif not force and e.size == f.size and e.mtime_ns == f.mtime_ns and e.status == "failed":
            plan.still_failed.append(f)
        elif not force and e.size == f.size and e.mtime_ns == f.mtime_ns and reusable(e):
            f.hash = e.content_hash
            plan.unchanged.append(f)
        else:
            to_hash.append((f, e))
    if model_key is not None:
        plan.model_changed = any(e.embed_key not in (None, model_key) and e.status != "removed"
                                 for e in entries.values())

    by_hash: dict[str, list[ScanEntry]] = {}
    for e in entries.values():
        if e.content_hash:
            by_hash.setdefault(e.content_hash, []).append(e)
    used_donors: set[int] = set()
    hashed = hash_files([f for f, _ in to_hash], workers)
    known = dict((id(f), e) for f, e in to_hash)
    for f, digest, error in hashed:
        e = known[id(f)]
        if error is not None:
            plan.unreadable.append((f.path, error))
            continue
        f.hash = digest
        if e is not None and e.status != "removed":  # a known path whose stat changed (or --force)
            if e.content_hash == digest and e.status != "failed" and reusable(e):
                plan.touched.append((e.id, f))
            else:
                plan.embed.append(("updated", f, e.id))
            continue
        if e is not None and e.content_hash == digest and reusable(e):  # came back unchanged
            plan.restored.append((e.id, f))
            used_donors.add(e.id)
            continue
        donors = [d for d in by_hash.get(digest, []) if d.id not in used_donors and d.path != f.key
                  and (d.status in ("ok", "instrumental", "removed")) and (reusable(d) or force)]
        gone = [d for d in donors if d.path not in seen and not os.path.exists(os.fsdecode(d.path))]
        if gone and not (e is not None):  # a path the catalog never had: moved here from a vanished path
            d = gone[0]
            used_donors.add(d.id)
            if force:
                plan.embed.append(("moved", f, d.id))
            else:
                plan.moved.append((d.id, os.fsdecode(d.path), f))
            continue
        live = [d for d in donors if d.status != "removed" and reusable(d)]
        if live:
            plan.copied.append((live[0].id, f))
            continue
        plan.embed.append(("new" if e is None else "updated", f, None if e is None else e.id))

    for e in entries.values():
        if e.status != "removed" and e.path not in seen and e.id not in used_donors and _under(e.path, roots):
            plan.removed.append((e.id, os.fsdecode(e.path)))
    return plan
