"""Cover-retrieval metrics with the paper's protocol (MR1, HR@1/10/100, MAP@10) plus per-query reports.

Protocol (reproduces ../shared/golden/metrics_expected.json to 1e-9):
- all-vs-all: the corpus is every item; every item whose clique has at least one other member is a query
  (singletons stay in the corpus as distractors but are not queries);
- the query itself is excluded from its own ranking; relevant = the other items of the same clique;
- cosine similarity (inputs are L2-normalised here, so unnormalised vectors are fine);
- MR1 = mean over queries of the 1-based rank of the first relevant item in the *full* ranking (not capped at
  k: the golden numbers need the uncapped rank);
- HR@n = fraction of queries whose first relevant item ranks <= n (HR1, HR10, HR100 always; HR{k} too);
- MAP@10 = mean over queries of AP@10 = sum_{r<=10, rel(r)} precision@r / min(10, #relevant);
- ties are pessimistic: a non-relevant item with exactly the same similarity as a relevant one ranks ahead of
  it, so a collapsed model (all vectors equal) scores badly regardless of item order.

Similarities are computed in row blocks (float64) so 100k x 100k never materialises: memory is
O(block x N). Only the top 10 per query is kept (argpartition); the first relevant rank is a count.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from livi_cli.errors import EvalError

HR_CUTS = (1, 10, 100)
MAP_CUT = 10
BLOCK_ELEMENTS = 1 << 24  # ~128 MiB of float64 similarities per block

SimilarityFn = Callable[[np.ndarray], np.ndarray]  # query row indices (B,) -> (B, N) similarities


@dataclass
class QueryResult:
    """One query's outcome; indices refer to the input order."""

    index: int
    n_relevant: int
    first_rank: int  # 1-based rank of the first relevant item in the full ranking
    first_index: int  # the relevant item found first
    first_similarity: float
    ap10: float
    top_fp_index: int | None  # the most similar item of another clique (None if every item is relevant)
    top_fp_similarity: float | None


@dataclass
class RetrievalReport:
    metrics: dict
    queries: list[QueryResult]


def normalise(embeddings: np.ndarray) -> np.ndarray:
    """Rows to unit L2 norm in float64; refuses non-finite values and zero vectors (cosine undefined)."""
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2:
        raise EvalError(f"embeddings must be a 2-D array (items x dims), got shape {x.shape}")
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise EvalError(f"embedding row {int(np.argmax(bad))} contains NaN or infinite values")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms == 0).any():
        raise EvalError(f"embedding row {int(np.argmax(norms[:, 0] == 0))} is all zeros: cosine is undefined")
    return x / norms


def clique_codes(cliques: Sequence) -> np.ndarray:
    """Integer code per item; equal labels share a code (labels compared as strings, so 7 == '7')."""
    mapping: dict[str, int] = {}
    return np.fromiter((mapping.setdefault(str(c), len(mapping)) for c in cliques), dtype=np.int64,
                       count=len(cliques))


def retrieval_metrics(embeddings: np.ndarray, cliques: Sequence, k: int = 100) -> dict:
    """MR1, HR1, HR10, HR100 (and HR{k}), MAP10, n_queries, n_items for track embeddings (N, D)."""
    return evaluate_retrieval(embeddings, cliques, k=k).metrics


def evaluate_retrieval(embeddings: np.ndarray, cliques: Sequence, k: int = 100,
                       block_size: int | None = None) -> RetrievalReport:
    """Metrics plus per-query details for one vector per item (cosine similarity)."""
    x = normalise(embeddings)
    _check_lengths(len(x), cliques)
    return rank_report(lambda rows: x[rows] @ x.T, clique_codes(cliques), k=k, block_size=block_size)


def evaluate_windows(windows: Sequence[np.ndarray], cliques: Sequence, k: int = 100) -> RetrievalReport:
    """Max aggregation: track-to-track similarity = the highest cosine over all pairs of their windows."""
    _check_lengths(len(windows), cliques)
    if not len(windows):  # like evaluate_retrieval on (0, D): no query, NaN metrics
        return rank_report(lambda rows: np.zeros((len(rows), 0)), clique_codes([]), k=k)
    if any(len(w) == 0 for w in windows):
        raise EvalError("max aggregation needs at least one window per track")
    flat = normalise(np.concatenate([np.asarray(w).reshape(len(w), -1) for w in windows]))
    sizes = np.array([len(w) for w in windows])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])

    def block(rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), len(windows)))
        for j, r in enumerate(rows):
            pair = flat[starts[r]:starts[r] + sizes[r]] @ flat.T  # (w_r, M)
            out[j] = np.maximum.reduceat(pair.max(axis=0), starts)
        return out

    return rank_report(block, clique_codes(cliques), k=k, block_size=max(1, 4096 // int(sizes.max())))


def _check_lengths(n: int, cliques: Sequence) -> None:
    if n != len(cliques):
        raise EvalError(f"{n} embeddings but {len(cliques)} clique labels")


def rank_report(similarity: SimilarityFn, codes: np.ndarray, k: int = 100,
                block_size: int | None = None) -> RetrievalReport:
    """Rank all items for every query using `similarity(rows)`, in blocks of query rows."""
    if k < 1:
        raise EvalError(f"k must be at least 1, got {k}")
    n = len(codes)
    sizes = np.bincount(codes) if n else np.zeros(0, dtype=np.int64)
    n_rel = sizes[codes] - 1 if n else np.zeros(0, dtype=np.int64)
    query_rows = np.flatnonzero(n_rel > 0)
    block = block_size or max(1, BLOCK_ELEMENTS // max(n, 1))
    results: list[QueryResult] = []
    for start in range(0, len(query_rows), block):
        rows = query_rows[start:start + block]
        sims = np.asarray(similarity(rows), dtype=np.float64)
        results.extend(_block_results(rows, sims, codes, n_rel))
    return RetrievalReport(metrics=summarise(results, n_items=n, k=k), queries=results)


def _block_results(rows: np.ndarray, sims: np.ndarray, codes: np.ndarray, n_rel: np.ndarray) -> list[QueryResult]:
    """Per-query outcomes for one block of query rows: sims is (B, N)."""
    b = len(rows)
    ar = np.arange(b)
    relevant = codes[None, :] == codes[rows, None]
    relevant[ar, rows] = False
    sims[ar, rows] = -np.inf  # the query never ranks itself
    rel_sims = np.where(relevant, sims, -np.inf)
    first_index = rel_sims.argmax(axis=1)
    best_rel = rel_sims[ar, first_index]
    others = ~relevant
    others[ar, rows] = False
    # pessimistic ties: every non-relevant item at least as similar as the best relevant one ranks ahead
    first_rank = 1 + np.count_nonzero(others & (sims >= best_rel[:, None]), axis=1)
    fp_sims = np.where(others, sims, -np.inf)
    fp_index = fp_sims.argmax(axis=1)
    has_fp = others.any(axis=1)
    ap = _average_precision(sims, relevant, n_rel[rows])
    return [
        QueryResult(
            index=int(rows[i]), n_relevant=int(n_rel[rows[i]]), first_rank=int(first_rank[i]),
            first_index=int(first_index[i]), first_similarity=float(best_rel[i]), ap10=float(ap[i]),
            top_fp_index=int(fp_index[i]) if has_fp[i] else None,
            top_fp_similarity=float(fp_sims[i, fp_index[i]]) if has_fp[i] else None,
        )
        for i in range(b)
    ]


def _average_precision(sims: np.ndarray, relevant: np.ndarray, n_rel: np.ndarray) -> np.ndarray:
    """AP@10 per row, with the top 10 ordered by similarity, non-relevant first among exact ties."""
    b, n = sims.shape
    m = min(MAP_CUT, n - 1)
    if m <= 0:
        return np.zeros(b)
    top = np.argpartition(-sims, m - 1, axis=1)[:, :m]
    top_sims = np.take_along_axis(sims, top, axis=1)
    top_rel = np.take_along_axis(relevant, top, axis=1)
    order = np.lexsort((top_rel, -top_sims), axis=1)  # last key is primary: similarity desc, then non-rel
    hits = np.take_along_axis(top_rel, order, axis=1)
    # a tie at the cut may leave a non-relevant item outside the partition that should displace a relevant one
    threshold = np.take_along_axis(top_sims, order, axis=1)[:, -1]
    crowded = np.count_nonzero(sims >= threshold[:, None], axis=1) > m
    for i in np.flatnonzero(crowded):
        cand = np.flatnonzero(sims[i] >= threshold[i])
        cand = cand[np.lexsort((relevant[i, cand], -sims[i, cand]))][:m]
        hits[i] = relevant[i, cand]
    positions = np.arange(1, m + 1)
    precision = np.cumsum(hits, axis=1) / positions
    return (precision * hits).sum(axis=1) / np.minimum(MAP_CUT, n_rel)


def summarise(results: list[QueryResult], n_items: int, k: int = 100) -> dict:
    """Aggregate per-query outcomes into the metrics dict (NaN metrics when there is no query)."""
    ranks = np.array([r.first_rank for r in results], dtype=np.float64)
    nq = len(results)
    nan = float("nan")
    metrics = {"MR1": float(ranks.mean()) if nq else nan}
    cuts = sorted(set(HR_CUTS) | {k})
    for cut in cuts:
        metrics[f"HR{cut}"] = float((ranks <= cut).mean()) if nq else nan
    metrics["MAP10"] = float(np.mean([r.ap10 for r in results])) if nq else nan
    metrics["n_queries"] = nq
    metrics["n_items"] = n_items
    return metrics
