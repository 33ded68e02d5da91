"""Copies of the same recording: byte-identical files and the same audio re-encoded, resampled or trimmed.

Evidence, strongest first:
1. the same content hash (byte-identical files) → same group, no audio needed;
2. the audio fingerprint (groups/fingerprint.py): best-offset similarity ≥ ``DUPLICATE_SIMILARITY``
   and content durations within tolerance.

Tags are *only* supporting evidence: they never create or split a group (a re-tagged copy is still a
copy; two different live takes both tagged "Song" are not). Each group says whether its members'
titles agree so a user can spot a surprising group.

Scaling: comparing every pair is O(N²). Candidate pairs come from an inverted index on the 32-bit
words of each fingerprint's first ``LSH_FRAMES`` frames (a value-sampled half of them): copies
share many exact words at (almost) the same frame position (measured ≥ 10 % of words even for
64 kbps mp3 vs ogg), unrelated tracks practically none. A pair needs ``MIN_VOTES`` such hits before the full comparison runs, so 100k tracks
cost one sort of a few million words plus a few comparisons per track.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from livi_cli.groups import fingerprint as F

LSH_FRAMES = 480  # words of the first 30 s of content are candidates for the inverted index
SAMPLE_BITS = 1  # ... of which 1 in 2**SAMPLE_BITS (by value) are indexed: ≥ 20 shared words per copy
STOP_WORD_TRACKS = 48  # a word shared by more entries than this (silence, drones) carries no evidence
MIN_VOTES = 2  # shared words at a consistent position needed before the full comparison
LOSSLESS_CODECS = frozenset({"flac", "pcm", "alac", "ape", "wavpack", "tta", "optimfrog", "dsd", "wav", "aiff"})


@dataclass
class Candidate:
    """What grouping needs of a track."""

    id: int
    content_hash: str | None
    fingerprint: bytes | None


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _decode_all(cands: Sequence[Candidate]) -> list[F.Fingerprint | None]:
    out: list[F.Fingerprint | None] = []
    for c in cands:
        try:
            out.append(F.decode(c.fingerprint) if c.fingerprint else None)
        except ValueError:
            out.append(None)  # an old or damaged fingerprint: only the content hash can match it
    return out


def _sampled(words: np.ndarray) -> np.ndarray:
    """Mask of the words kept for the index: chosen by *value* (a multiplicative hash), so a word
    kept in one copy is kept wherever the same word occurs in another copy."""
    mixed = (words.astype(np.uint64) * np.uint64(0x9E3779B1)) & np.uint64(0xFFFFFFFF)
    return (mixed >> np.uint64(32 - SAMPLE_BITS)) == 0


def candidate_pairs(fps: Sequence[F.Fingerprint | None]) -> np.ndarray:
    """(P, 2) index pairs i < j sharing ≥ MIN_VOTES fingerprint words at offsets within the search range."""
    heads = [(i, fp.words[:LSH_FRAMES]) for i, fp in enumerate(fps) if fp is not None and len(fp.words)]
    if not heads:
        return np.zeros((0, 2), np.int64)
    lengths = np.array([len(w) for _, w in heads])
    key = np.concatenate([w for _, w in heads])
    owner = np.repeat(np.array([i for i, _ in heads], np.int32), lengths)
    frame = (np.arange(len(key)) - np.repeat(np.cumsum(lengths) - lengths, lengths)).astype(np.int32)
    keep = _sampled(key)
    key, owner, frame = key[keep], owner[keep], frame[keep]
    # sort (key, entry) packed in one uint64: much faster than an argsort of the keys
    packed = (key.astype(np.uint64) << np.uint64(32)) | np.arange(len(key), dtype=np.uint64)
    packed.sort()
    order = (packed & np.uint64(0xFFFFFFFF)).astype(np.int64)
    key, owner, frame = key[order], owner[order], frame[order]
    # keep words shared by 2..STOP_WORD_TRACKS entries: unique words cannot pair, frequent ones
    # (silence, drones) carry no evidence
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    run = np.diff(np.r_[starts, len(key)])
    keep = np.repeat((run >= 2) & (run <= STOP_WORD_TRACKS), run)
    key, owner, frame = key[keep], owner[keep], frame[keep]
    longest = int(run[(run >= 2) & (run <= STOP_WORD_TRACKS)].max()) if keep.any() else 1
    found = []
    for shift in range(1, longest):
        same = (key[shift:] == key[:-shift]) & (owner[shift:] != owner[:-shift])
        same &= np.abs(frame[shift:] - frame[:-shift]) <= F.MAX_OFFSET_FRAMES
        idx = np.flatnonzero(same)
        if idx.size:
            a, b = owner[idx].astype(np.int64), owner[idx + shift].astype(np.int64)
            found.append(np.minimum(a, b) * len(fps) + np.maximum(a, b))
    if not found:
        return np.zeros((0, 2), np.int64)
    pairs, votes = np.unique(np.concatenate(found), return_counts=True)
    pairs = pairs[votes >= MIN_VOTES]
    return np.stack([pairs // len(fps), pairs % len(fps)], axis=1)


def find_duplicate_groups(cands: Sequence[Candidate], threshold: float = F.DUPLICATE_SIMILARITY,
                          *, pairs: np.ndarray | None = None) -> list[list[int]]:
    """Groups (≥ 2 members, lists of Candidate.id) of copies of one recording, largest first.

    `pairs` (index pairs into cands) replaces the inverted-index candidates, e.g. every pair of a
    small set (a cover cluster)."""
    n = len(cands)
    uf = _UnionFind(n)
    first_with_hash: dict[str, int] = {}
    for i, c in enumerate(cands):
        if c.content_hash:
            j = first_with_hash.setdefault(c.content_hash, i)
            uf.union(i, j)
    fps = _decode_all(cands)
    pairs = candidate_pairs(fps) if pairs is None else pairs
    for i, j in np.asarray(pairs, dtype=np.int64).reshape(-1, 2):
        fi, fj = fps[i], fps[j]
        if fi is None or fj is None or uf.find(int(i)) == uf.find(int(j)):
            continue
        if F.same_recording(fi, fj, threshold):
            uf.union(int(i), int(j))
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(uf.find(i), []).append(cands[i].id)
    out = [g for g in groups.values() if len(g) > 1]
    out.sort(key=lambda g: (-len(g), g[0]))
    return out


# ---------------------------------------------------------------- which copy to keep
def is_lossless(codec: str | None, path: str | None = None) -> bool:
    if codec:
        return codec.lower() in LOSSLESS_CODECS
    ext = Path(path or "").suffix.lower().lstrip(".")
    return ext in ("flac", "wav", "aif", "aiff", "ape", "wv", "tta")


def _under(path: str, prefixes: Sequence[Path]) -> bool:
    """Is `path` inside one of the --prefer folders (relative or ~ folders as the user typed them)?"""
    p = os.path.abspath(path)
    for pre in prefixes:
        pre = os.path.abspath(os.path.expanduser(pre))
        if p == pre or p.startswith(pre.rstrip(os.sep) + os.sep):
            return True
    return False


def keep_rank(track, prefer: Sequence[Path] = ()) -> tuple:
    """Sort key (smaller = better): lossless, bitrate, sample rate, duration, --prefer path, then path."""
    return (
        0 if is_lossless(track.codec, track.path) else 1,
        -(track.bitrate or 0),
        -(track.sample_rate or 0),
        -(track.duration or 0.0),
        0 if prefer and _under(track.path, prefer) else 1,
        track.path,
    )


def keep_reason(best, other, prefer: Sequence[Path] = ()) -> str:
    """Why `best` beats `other`: the first criterion of keep_rank that differs."""
    names = ("lossless", "higher bitrate", "higher sample rate", "longer", "preferred path", "path order")
    for name, a, b in zip(names, keep_rank(best, prefer), keep_rank(other, prefer)):
        if a != b:
            return name
    return "identical"


@dataclass
class DuplicateMember:
    track: object  # TrackRow
    keep: bool
    match: str  # "keep" | "identical file" | "audio 0.93"
    similarity: float | None  # fingerprint similarity to the kept copy (1.0 for identical bytes)


@dataclass
class DuplicateGroup:
    group_id: int
    members: list[DuplicateMember] = field(default_factory=list)
    reason: str = ""  # why the kept copy was chosen
    tags_agree: bool = True  # titles (case/space-insensitive) are equal across members

    @property
    def keeper(self):
        return self.members[0].track


def _norm_title(t: str | None) -> str:
    return " ".join((t or "").casefold().split())


def describe_groups(groups: Iterable[Sequence[int]], tracks: dict, prefer: Sequence[Path] = ()) -> list[DuplicateGroup]:
    """Attach rows, order members best copy first and say how each copy matches the kept one."""
    out = []
    for gid, ids in enumerate(groups, start=1):
        rows = sorted((tracks[i] for i in ids), key=lambda t: keep_rank(t, prefer))
        best = rows[0]
        group = DuplicateGroup(gid, reason=keep_reason(best, rows[1], prefer) if len(rows) > 1 else "")
        group.tags_agree = len({_norm_title(t.title) for t in rows}) == 1
        for t in rows:
            if t is best:
                group.members.append(DuplicateMember(t, True, "keep", 1.0))
            elif t.content_hash and t.content_hash == best.content_hash:
                group.members.append(DuplicateMember(t, False, "identical file", 1.0))
            else:
                sim = None
                if t.fingerprint and best.fingerprint:
                    try:
                        sim = F.similarity(t.fingerprint, best.fingerprint)
                    except ValueError:
                        sim = None
                group.members.append(DuplicateMember(t, False, "audio" if sim is None else f"audio {sim:.2f}", sim))
        out.append(group)
    return out


def find_duplicates(tracks: Sequence, prefer: Sequence[Path] = (),
                    threshold: float = F.DUPLICATE_SIMILARITY) -> list[DuplicateGroup]:
    """Duplicate groups among catalog rows (TrackRow-like: id, content_hash, fingerprint, tags)."""
    cands = [Candidate(t.id, t.content_hash, t.fingerprint) for t in tracks]
    groups = find_duplicate_groups(cands, threshold)
    return describe_groups(groups, {t.id: t for t in tracks}, prefer)
