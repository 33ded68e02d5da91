"""Training shards on disk: the teacher writes them, training streams them.

Layout of a shard folder::

    manifest.json                 format, models, dimensions, what the inputs are (see ShardWriter)
    shard-000000.inputs.npy       float16 (N, frames, dim) frozen encoder states ("states")
                                  or (N, mel bins, frames) log-mel ("mel"); manifest dim_input = dim / mel bins
    shard-000000.targets.npy      (N, dim_target) float32 unit-norm text embeddings
    shard-000000.jsonl            one line per row: window id, track, clique, span, text
    tracks.jsonl                  one line per finished track: status, shard, windows kept (the resume log)

A track's windows always land in one shard. A shard is committed by renaming its files into place
(index last), and only then are its tracks appended to tracks.jsonl; a crash in between leaves an
orphan shard that readers ignore (they take each track's rows from the shard its record names) and
the track is simply redone. Plain .npy files are memory-mapped so training never loads a whole
shard, let alone the data set.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from livi_cli.errors import TrainingError

FORMAT = "livi-shards"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
TRACKS = "tracks.jsonl"
_SHARD_RE = re.compile(r"shard-(\d{6})\.jsonl")
# Keys of the manifest that must agree when a teacher run resumes into an existing folder.
# The Whisper is compared by revision (hub commit or content digest), so a path spelled differently matches.
COMPATIBLE_KEYS = ("store", "dim_input", "dim_target", "whisper_revision", "text_model", "frames")


def shard_stem(number: int) -> str:
    return f"shard-{number:06d}"


def _write_atomic(path: Path, writer) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        writer(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _append_lines(path: Path, rows: Sequence[dict]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    if not path.is_file():
        return rows
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                # A torn last line after a crash is expected; anything earlier is corruption.
                if f.readline():
                    raise TrainingError(f"{path}: line {n} is not valid JSON") from None
    return rows


def read_manifest(directory: Path) -> dict:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise TrainingError(f"{directory}: not a shard folder (no {MANIFEST}); build one with `livi train teacher`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise TrainingError(f"{path}: unreadable manifest ({exc})") from exc
    if manifest.get("format") != FORMAT:
        raise TrainingError(f"{path}: not a livi shard manifest")
    if int(manifest.get("version", 0)) > FORMAT_VERSION:
        raise TrainingError(f"{path}: written by a newer livi (version {manifest['version']})")
    return manifest


@dataclass
class TrackWindows:
    """Everything the teacher produced for one track's kept windows."""

    track: str
    clique: str | None
    path: str
    inputs: np.ndarray  # (k, frames, dim_input)
    targets: np.ndarray  # (k, dim_target)
    spans: list[tuple[float, float]]
    texts: list[str]
    n_windows: int  # windows before the text filter


class ShardWriter:
    """Buffers whole tracks and commits a shard every `shard_size` windows (resumable)."""

    def __init__(self, directory: str | os.PathLike, manifest: dict, shard_size: int = 256):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.shard_size = max(1, int(shard_size))
        self._pending: list[TrackWindows] = []
        self.manifest = self._open_manifest(dict(manifest))
        records = {r["track"]: r for r in _read_jsonl(self.directory / TRACKS)}  # last record wins
        # Unreadable files are retried on the next run (the user may have fixed them); the rest is final.
        self.done: set[str] = {t for t, r in records.items() if r.get("status") != "failed"}
        numbers = [int(m.group(1)) for p in self.directory.iterdir() if (m := re.fullmatch(r"shard-(\d{6})\..*", p.name))]
        self._next = max(numbers, default=-1) + 1  # never reuse a number, orphans included

    def _open_manifest(self, manifest: dict) -> dict:
        manifest.update(format=FORMAT, version=FORMAT_VERSION)
        path = self.directory / MANIFEST
        if path.is_file():
            old = read_manifest(self.directory)
            for key in COMPATIBLE_KEYS:
                if key in manifest and key in old and manifest[key] != old[key]:
                    raise TrainingError(
                        f"{path}: existing shards have {key}={old[key]!r}, this run has {manifest[key]!r}; "
                        "use a new output folder"
                    )
            return old
        _write_atomic(path, lambda f: f.write(json.dumps(manifest, indent=2).encode()))
        return manifest

    def set_dims(self, dim_input: int, frames: int, dim_target: int) -> None:
        """Record the data dimensions once the first track is known (checked on every later track)."""
        dims = {"dim_input": dim_input, "frames": frames, "dim_target": dim_target}
        changed = False
        for key, value in dims.items():
            if self.manifest.get(key) is None:
                self.manifest[key] = value
                changed = True
            elif self.manifest[key] != value:
                raise TrainingError(f"{self.directory}: {key} is {value}, the shards hold {self.manifest[key]}")
        if changed:
            _write_atomic(self.directory / MANIFEST, lambda f: f.write(json.dumps(self.manifest, indent=2).encode()))

    def add(self, item: TrackWindows) -> None:
        k = len(item.texts)
        if item.inputs.shape[0] != k or item.targets.shape[0] != k or len(item.spans) != k or k == 0:
            raise ValueError("inputs, targets, spans and texts must have the same non-zero length")
        _, a, b = item.inputs.shape  # states: (frames, dim); log-mel: (mel bins, frames)
        channels, frames = (a, b) if self.manifest.get("store") == "mel" else (b, a)
        self.set_dims(int(channels), int(frames), int(item.targets.shape[1]))
        self._pending.append(item)
        if sum(len(t.texts) for t in self._pending) >= self.shard_size:
            self.flush()

    def skip(self, track: str, clique: str | None, path: str, status: str, n_windows: int = 0, error: str | None = None) -> None:
        """Record a track that yields no windows (unreadable, instrumental, no usable lyrics)."""
        _append_lines(self.directory / TRACKS, [dict(track=track, clique=clique, path=path, status=status,
                                                       shard=None, windows=n_windows, kept=0, error=error)])
        self.done.add(track)

    def flush(self) -> None:
        if not self._pending:
            return
        stem = shard_stem(self._next)
        inputs = np.concatenate([t.inputs for t in self._pending]).astype(np.float16, copy=False)
        targets = np.concatenate([t.targets for t in self._pending]).astype(np.float32, copy=False)
        index, records, row = [], [], 0
        for t in self._pending:
            for i, ((start, end), text) in enumerate(zip(t.spans, t.texts)):
                index.append(dict(window=f"{t.track}#{i}", track=t.track, clique=t.clique, row=row,
                                  start=round(float(start), 3), end=round(float(end), 3), text=text))
                row += 1
            records.append(dict(track=t.track, clique=t.clique, path=t.path, status="ok", shard=self._next,
                                windows=t.n_windows, kept=len(t.texts), error=None))
        d = self.directory
        _write_atomic(d / f"{stem}.inputs.npy", lambda f: np.save(f, inputs))
        _write_atomic(d / f"{stem}.targets.npy", lambda f: np.save(f, targets))
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in index).encode()
        _write_atomic(d / f"{stem}.jsonl", lambda f: f.write(lines))  # the shard's commit point
        _append_lines(d / TRACKS, records)
        self.done.update(t.track for t in self._pending)
        self._pending.clear()
        self._next += 1

    def close(self) -> None:
        self.flush()


@dataclass
class Window:
    shard: int
    row: int
    track: str
    clique: str | None
    text: str = ""


@dataclass
class ShardSet:
    """Read-only view of a shard folder: which windows exist and where (no array data loaded)."""

    directory: Path
    manifest: dict
    tracks: dict[str, dict]  # track id → its tracks.jsonl record (last one wins)
    windows: list[Window] = field(default_factory=list)

    @classmethod
    def open(cls, directory: str | os.PathLike) -> "ShardSet":
        directory = Path(directory)
        manifest = read_manifest(directory)
        tracks = {r["track"]: r for r in _read_jsonl(directory / TRACKS)}
        owner = {t: r["shard"] for t, r in tracks.items() if r.get("status") == "ok"}
        windows: list[Window] = []
        for number in sorted(set(owner.values())):
            path = directory / f"{shard_stem(number)}.jsonl"
            if not path.is_file():
                raise TrainingError(f"{path}: missing shard index (tracks.jsonl refers to it)")
            for row in _read_jsonl(path):
                if owner.get(row["track"]) == number:  # skip orphan copies of redone tracks
                    windows.append(Window(number, int(row["row"]), row["track"], row.get("clique"), row.get("text", "")))
        return cls(directory, manifest, tracks, windows)

    def track_cliques(self) -> dict[str, str | None]:
        """Tracks that have windows, with their clique (None when unknown)."""
        return {w.track: w.clique for w in self.windows}

    def arrays(self, shard: int) -> tuple[np.ndarray, np.ndarray]:
        """Memory-mapped (inputs, targets) of one shard."""
        stem = self.directory / shard_stem(shard)
        try:
            return (np.load(f"{stem}.inputs.npy", mmap_mode="r"), np.load(f"{stem}.targets.npy", mmap_mode="r"))
        except (OSError, ValueError) as exc:
            raise TrainingError(f"{stem}: unreadable shard arrays ({exc})") from exc

    def select(self, tracks: set[str] | None) -> list[Window]:
        return [w for w in self.windows if tracks is None or w.track in tracks]


def iter_windows(shards: ShardSet, windows: Sequence[Window], *, shuffle: bool, seed: int = 0,
                 mix: int = 8, worker: int = 0, num_workers: int = 1) -> Iterator[tuple[np.ndarray, np.ndarray, Window]]:
    """Yield (input, target, window) one window at a time.

    Shuffling is two-level so memory stays at one window: the shard order is permuted, then the
    rows of `mix` consecutive shards are interleaved in random order (read through mmap). Worker
    `worker` of `num_workers` takes every num_workers-th block.
    """
    by_shard: dict[int, list[Window]] = {}
    for w in windows:
        by_shard.setdefault(w.shard, []).append(w)
    order = sorted(by_shard)
    rng = np.random.default_rng(seed)
    if shuffle:
        rng.shuffle(order)
    mix = max(1, int(mix)) if shuffle else 1
    blocks = [order[i:i + mix] for i in range(0, len(order), mix)]
    for b, block in enumerate(blocks):
        if b % num_workers != worker:
            continue
        maps = {s: shards.arrays(s) for s in block}
        items = [w for s in block for w in by_shard[s]]
        if shuffle:
            items = [items[i] for i in rng.permutation(len(items))]
        for w in items:
            inputs, targets = maps[w.shard]
            yield np.array(inputs[w.row]), np.array(targets[w.row]), w  # copies out of the mmap


class ShardStream(IterableDataset):
    """A torch IterableDataset over `windows`; call set_epoch(n) before each epoch to reshuffle.

    Yields (input float16 tensor, target float32 tensor, track id). Module-level so DataLoader
    workers can pickle it on spawn-based platforms.
    """

    def __init__(self, shards: ShardSet, windows: Sequence[Window], *, shuffle: bool, seed: int = 0, mix: int = 8):
        self.shards, self.windows = shards, list(windows)
        self.shuffle, self.seed, self.mix = shuffle, seed, mix
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.windows)

    def __iter__(self):
        info = get_worker_info()
        worker, n = (info.id, info.num_workers) if info else (0, 1)
        for x, t, w in iter_windows(self.shards, self.windows, shuffle=self.shuffle,
                                    seed=self.seed * 100_003 + self.epoch, mix=self.mix, worker=worker, num_workers=n):
            yield torch.from_numpy(x), torch.from_numpy(t), w.track
