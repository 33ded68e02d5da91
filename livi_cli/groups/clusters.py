"""Cover clusters: average-linkage agglomeration restricted to the k-nearest-neighbour graph.

Why not connected components at a threshold: one ambiguous track (a medley, a generic chorus) that is
close to two different songs would join them (single-link chaining). Here two clusters merge only when

* they are joined by at least one kNN edge (keeps the work O(N·k), not O(N²)),
* their *average* pairwise similarity over all member pairs is ≥ ``min_similarity``, and
* no member pair across them is below ``min_similarity - CHAIN_SLACK``.

Merges happen best-first (a heap with lazy re-evaluation: a merged cluster's linkage to a neighbour
is a weighted mean of the old linkages, so a stale entry is re-checked before it is used; the order
is that of greedy average-linkage except where the kNN cap pruned the stronger of two old linkages).
With A~B, B~C but A≁C the pair {A,B} and C has a low average and a too-low minimum, so A and C stay
apart.

Candidate edges: every pair up to ``EXACT_MAX_N`` vectors (blocked matrix products); above, an
inverted file (√N spherical k-means cells, each vector in its ``PROBES`` nearest) and every pair
inside a cell, in the full space. Edges below ``min_similarity`` are dropped and each vector keeps
its ``k`` strongest (the kNN graph).
"""
from __future__ import annotations

import heapq
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

# Default --min-similarity. LIVI vectors live in the text-embedding space of the lyrics
# (gte-multilingual-base): versions of one song sing (nearly) the same words and land close
# together, while unrelated lyrics in one language still share a baseline cosine from common
# words and themes. 0.70 sits between the two; see README "livi clusters" for the calibration.
DEFAULT_MIN_SIMILARITY = 0.70
CHAIN_SLACK = 0.15  # one weaker pair is tolerated in a clear cluster, a bridge between two songs is not
KNN = 15  # neighbours per track in the graph (cover sets larger than this still merge via edges)
EXACT_MAX_N = 8000  # up to here every pair is compared (one cell)
PROBES = 3  # inverted-file cells per vector above EXACT_MAX_N
PARTITIONS = 2  # independent k-means partitions (bench: pair recall ≈ 0.99 at 100k)
KMEANS_ROUNDS = 5
CELL_FACTOR = 1.0  # √N·factor cells: fewer, larger cells find more pairs, cost grows as 1/factor
PROJ_DIM = 192  # in-cell scoring dimension above EXACT_MAX_N
PROJ_MARGIN = 0.2  # ≈ 2.5 std of the projection error: pairs at the threshold survive ~99 %
BLOCK = 2048
COPY_GATE = 0.85  # vector similarity above which two cluster members are checked for being copies
PAIR_STRIP = 256  # rows per upper-triangle strip inside a cell


@dataclass
class Cluster:
    members: list[int]  # row indices into the clustered vectors, medoid first, then by similarity
    similarity: list[float]  # cosine similarity of each member to the medoid
    cohesion: float  # mean pairwise similarity of the members

    @property
    def medoid(self) -> int:
        return self.members[0]


def _spherical_kmeans(vecs: np.ndarray, n_cells: int, rng: np.random.Generator) -> np.ndarray:
    """Cell centres: a few spherical k-means rounds on a sample (cells only need to be coarse)."""
    sample = vecs[rng.choice(len(vecs), size=min(len(vecs), 40 * n_cells), replace=False)]
    centres = sample[rng.choice(len(sample), size=n_cells, replace=False)].copy()
    for _ in range(KMEANS_ROUNDS):
        owner = np.argmax(sample @ centres.T, axis=1)
        order = np.argsort(owner, kind="stable")
        used, starts = np.unique(owner[order], return_index=True)
        sums = np.zeros_like(centres)
        sums[used] = np.add.reduceat(sample[order], starts, axis=0)  # np.add.at is ~50× slower
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        centres = np.where(norms > 0, sums / np.maximum(norms, 1e-12), centres)
    return centres


def _cells(vecs: np.ndarray) -> list[np.ndarray]:
    """Row-index lists whose pairs get compared: one cell (exact) for small N, else PARTITIONS
    independent inverted files where every vector joins its PROBES nearest cells (a pair is found
    if it shares any cell in any partition: the misses of two partitions rarely coincide)."""
    n = len(vecs)
    if n <= EXACT_MAX_N:
        return [np.arange(n)]
    n_cells = max(2, int(CELL_FACTOR * np.sqrt(n)))
    out = []
    for seed in range(PARTITIONS):
        centres = _spherical_kmeans(vecs, n_cells, np.random.default_rng(seed))
        cells = np.zeros((n, PROBES), np.int64)
        for start in range(0, n, BLOCK):
            scores = vecs[start : start + BLOCK] @ centres.T
            cells[start : start + BLOCK] = np.argpartition(-scores, PROBES - 1, axis=1)[:, :PROBES]
        flat = cells.reshape(-1)
        rows = np.repeat(np.arange(n), PROBES)
        order = np.argsort(flat, kind="stable")
        flat, rows = flat[order], rows[order]
        bounds = np.flatnonzero(np.r_[True, flat[1:] != flat[:-1], True])
        out += [rows[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    return out


def _pairs_in(vecs: np.ndarray, members: np.ndarray, min_similarity: float):
    """All pairs (i < j) of `members` (ascending row indices) with similarity ≥ min_similarity.
    Row strips against the remaining columns only: the upper triangle, half the work of a square."""
    out_a, out_b, out_s = [], [], []
    sub = vecs[members]
    for start in range(0, len(members), PAIR_STRIP):
        sims = sub[start : start + PAIR_STRIP] @ sub[start:].T
        i, j = np.nonzero(sims >= min_similarity)
        keep = j > i  # column j is member start + j, row i is member start + i
        i, j = i[keep], j[keep]
        out_a.append(members[start + i])
        out_b.append(members[start + j])
        out_s.append(sims[i, j])
    return out_a, out_b, out_s


def _cap_degree(pairs: np.ndarray, sims: np.ndarray, k: int) -> np.ndarray:
    """Mask of edges among the k strongest of at least one endpoint (the kNN graph)."""
    n_e = len(pairs)
    node = np.concatenate([pairs[:, 0], pairs[:, 1]])
    edge = np.concatenate([np.arange(n_e), np.arange(n_e)])
    order = np.lexsort((-np.concatenate([sims, sims]), node))
    node, edge = node[order], edge[order]
    first = np.r_[0, np.flatnonzero(node[1:] != node[:-1]) + 1]
    rank = np.arange(len(node)) - np.repeat(first, np.diff(np.r_[first, len(node)]))
    keep = np.zeros(n_e, bool)
    keep[edge[rank < k]] = True
    return keep


def _project(vecs: np.ndarray) -> np.ndarray:
    """Random orthogonal projection to PROJ_DIM dims, scaled so inner products stay unbiased
    (their error has std ≈ 1/√PROJ_DIM ≈ 0.07): cheap scoring of the many in-cell pairs."""
    d = vecs.shape[1]
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((d, PROJ_DIM)))
    return (vecs @ (q * np.sqrt(d / PROJ_DIM)).astype(np.float32)).astype(np.float32)


def _rowwise_dot(vecs: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    out = np.empty(len(pairs), np.float32)
    for start in range(0, len(pairs), 65_536):
        p = pairs[start : start + 65_536]
        out[start : start + 65_536] = np.einsum("ij,ij->i", vecs[p[:, 0]], vecs[p[:, 1]])
    return out


def knn_edges(vecs: np.ndarray, k: int, min_similarity: float) -> tuple[np.ndarray, np.ndarray]:
    """Unique undirected edges (E, 2), i < j, with similarity ≥ min_similarity, each among the k
    strongest edges of one of its endpoints; and their similarities.

    Large N: in-cell pairs are scored on a projection with a PROJ_MARGIN lower bar, then every
    surviving pair is re-scored exactly in the full space."""
    exact = len(vecs) <= EXACT_MAX_N or vecs.shape[1] <= PROJ_DIM
    space = vecs if exact else _project(vecs)
    bar = min_similarity if exact else min_similarity - PROJ_MARGIN
    a, b, s = [], [], []
    for members in _cells(space):  # cells on the projection too: they only need to be coarse
        if len(members) > 1:
            pa, pb, ps = _pairs_in(space, members, bar)
            a += pa
            b += pb
            s += ps
    if not a or not sum(len(x) for x in a):
        return np.zeros((0, 2), np.int64), np.zeros(0, np.float32)
    n = len(vecs)
    keys = np.concatenate(a).astype(np.int64) * n + np.concatenate(b)
    sims = np.concatenate(s).astype(np.float32)
    keys, first = np.unique(keys, return_index=True)  # a pair may share several cells
    pairs = np.stack([keys // n, keys % n], axis=1)
    sims = sims[first] if exact else _rowwise_dot(vecs, pairs)
    ok = sims >= min_similarity
    pairs, sims = pairs[ok], sims[ok]
    keep = _cap_degree(pairs, sims, k) if len(pairs) else np.zeros(0, bool)
    return pairs[keep], sims[keep]


def agglomerate(vecs: np.ndarray, edges: np.ndarray, sims: np.ndarray, min_similarity: float,
                chain_slack: float = CHAIN_SLACK) -> list[list[int]]:
    """Best-first average-linkage merges along `edges`; returns groups with ≥ 2 members."""
    parent: dict[int, int] = {}
    members: dict[int, list[int]] = {}
    version: dict[int, int] = {}

    def find(i: int) -> int:
        while parent.get(i, i) != i:
            i = parent[i]
        return i

    floor = min_similarity - chain_slack
    heap = [(-float(s), int(a), int(b), 0, 0) for (a, b), s in zip(edges, sims)]
    heapq.heapify(heap)
    while heap:
        neg, a0, b0, va, vb = heapq.heappop(heap)
        a, b = find(a0), find(b0)
        if a == b:
            continue
        if (a, b) != (a0, b0) or version.get(a, 0) != va or version.get(b, 0) != vb:
            ma, mb = members.get(a, [a]), members.get(b, [b])
            cross = vecs[ma] @ vecs[mb].T
            link = float(cross.sum()) / cross.size
            if link >= min_similarity and float(cross.min()) >= floor:
                heapq.heappush(heap, (-link, a, b, version.get(a, 0), version.get(b, 0)))
            continue
        keep, gone = min(a, b), max(a, b)
        members[keep] = members.pop(keep, [keep]) + members.pop(gone, [gone])
        parent[gone] = keep
        version[keep] = version.get(keep, 0) + 1
    return [sorted(m) for m in members.values() if len(m) > 1]


def describe(vecs: np.ndarray, group: list[int]) -> Cluster:
    """Medoid (max summed similarity), members ordered by similarity to it, and cohesion."""
    sub = vecs[group] @ vecs[group].T
    n = len(group)
    medoid = int(np.argmax(np.round(sub.sum(axis=1), 5)))  # rounding: ties go to the first member
    order = sorted(range(n), key=lambda i: (i != medoid, -float(sub[medoid, i]), group[i]))
    cohesion = float((sub.sum() - np.trace(sub)) / (n * (n - 1))) if n > 1 else 1.0
    return Cluster([group[i] for i in order], [float(sub[medoid, i]) if i != medoid else 1.0 for i in order],
                   cohesion)


@contextmanager
def _blas_single_thread():
    """The work here is many small matrix products: OpenBLAS worker threads spin-wait between them,
    and on a busy 2-core machine that made 100k tracks take 65 s instead of 17 s. One thread is as
    fast unloaded and much faster loaded. (threadpoolctl comes with scikit-learn via librosa; without
    it nothing changes.)"""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def cluster_vectors(vecs: np.ndarray, min_similarity: float = DEFAULT_MIN_SIMILARITY, k: int = KNN) -> list[Cluster]:
    """Clusters (≥ 2 members) of unit-norm vectors, largest first, then most cohesive."""
    vecs = np.ascontiguousarray(vecs, dtype=np.float32)
    with _blas_single_thread():
        edges, sims = knn_edges(vecs, k, min_similarity)
        groups = agglomerate(vecs, edges, sims, min_similarity)
        clusters = [describe(vecs, g) for g in groups]
    clusters.sort(key=lambda c: (-len(c.members), -c.cohesion, c.members[0]))
    return clusters


# ---------------------------------------------------------------- report rows for the CLI / API
@dataclass
class ClusterRow:
    track: object  # TrackRow
    similarity: float  # to the cluster's medoid
    duplicate_of: int | None = None  # track id of the kept copy when this row is another copy
    copies: list[int] | None = None  # other copies of this recording (track ids), for the kept row


@dataclass
class ClusterReport:
    cluster_id: int
    size: int  # distinct recordings (copies of one recording count once)
    cohesion: float
    rows: list[ClusterRow]


def _recordings(ids: list[int], member_vecs: np.ndarray, tracks: dict, prefer) -> dict[int, list[int]]:
    """kept track id → its other copies, within one cluster: same content hash, or same audio by
    fingerprint for pairs whose LIVI vectors are nearly identical (≥ COPY_GATE; a transcode barely
    moves a vector, and the gate keeps fingerprint comparisons to a handful per cluster)."""
    from livi_cli.groups.duplicates import Candidate, find_duplicate_groups, keep_rank

    sims = member_vecs @ member_vecs.T
    a, b = np.nonzero(np.triu(sims >= COPY_GATE, 1))
    hashes = [tracks[i].content_hash for i in ids if tracks[i].content_hash]
    out = {i: [] for i in ids}
    if not len(a) and len(set(hashes)) == len(hashes):
        return out  # no candidate copy at all: skip decoding fingerprints
    cands = [Candidate(i, tracks[i].content_hash, tracks[i].fingerprint) for i in ids]
    for group in find_duplicate_groups(cands, pairs=np.stack([a, b], axis=1)):
        ranked = sorted(group, key=lambda i: keep_rank(tracks[i], prefer))
        out[ranked[0]] = ranked[1:]
        for other in ranked[1:]:
            out.pop(other, None)
    return out


def _matches(track, needle: str) -> bool:
    return any(needle in (v or "").casefold() for v in (track.title, track.artist))


def _report(cl: Cluster, ids, vecs, row_of, tracks, min_size, include_duplicates, prefer) -> ClusterReport | None:
    """One cluster as rows: copies folded into their kept recording, medoid over recordings."""
    member_ids = [ids[r] for r in cl.members]
    kept = _recordings(member_ids, vecs[cl.members], tracks, prefer)
    if len(kept) < max(2, min_size):
        return None
    rep = cl if len(kept) == len(member_ids) else describe(vecs, [row_of[t] for t in kept])
    rows = []
    for r, sim in zip(rep.members, rep.similarity):
        tid = ids[r]
        rows.append(ClusterRow(tracks[tid], sim, None, kept[tid]))
        if include_duplicates:
            medoid = vecs[rep.medoid]
            rows += [ClusterRow(tracks[c], float(vecs[row_of[c]] @ medoid), tid, None) for c in kept[tid]]
    return ClusterReport(0, len(kept), rep.cohesion, rows)


def build_reports(ids: list[int], vecs: np.ndarray, tracks: dict, *, min_similarity: float = DEFAULT_MIN_SIMILARITY,
                  min_size: int = 2, limit: int | None = None, query: str | None = None,
                  include_duplicates: bool = False, prefer=()) -> list[ClusterReport]:
    """Clusters of catalog tracks as printable rows. Cluster ids follow the global order (size, then
    cohesion), so `--query`/`--limit` never renumber them."""
    vecs = np.ascontiguousarray(vecs, dtype=np.float32)
    row_of = {tid: r for r, tid in enumerate(ids)}
    reports = []
    clusters = cluster_vectors(vecs, min_similarity)
    with _blas_single_thread():
        for cl in clusters:
            rep = _report(cl, ids, vecs, row_of, tracks, min_size, include_duplicates, prefer)
            if rep is not None:
                reports.append(rep)
    reports.sort(key=lambda c: (-c.size, -c.cohesion, c.rows[0].track.id))
    for n, rep in enumerate(reports, start=1):
        rep.cluster_id = n
    if query:
        needle = query.casefold()
        reports = [c for c in reports if any(_matches(r.track, needle) for r in c.rows)
                   or any(_matches(tracks[x], needle) for r in c.rows for x in (r.copies or []))]
    return reports[:limit] if limit else reports
