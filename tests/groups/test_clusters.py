"""Average-linkage clustering on the kNN graph, on vectors with known similarities."""
from __future__ import annotations

import numpy as np
import pytest

from livi_cli.groups import clusters as C


def gram_vectors(blocks: list[np.ndarray], dim: int = 32) -> np.ndarray:
    """Unit vectors with the given Gram matrices, each block in its own coordinates (blocks are orthogonal)."""
    out, col = [], 0
    for gram in blocks:
        low = np.linalg.cholesky(np.asarray(gram, np.float64))
        v = np.zeros((len(gram), dim))
        v[:, col : col + len(gram)] = low
        out.append(v)
        col += len(gram)
    vecs = np.vstack(out).astype(np.float32)
    return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


def full(n: int, s: float) -> np.ndarray:
    return np.full((n, n), s) + (1 - s) * np.eye(n)


def test_chain_is_not_merged():
    # A~B 0.82, B~C 0.78 (both above 0.70) but A≁C 0.30: connected components would merge all three
    chain = [[1, 0.82, 0.30], [0.82, 1, 0.78], [0.30, 0.78, 1]]
    vecs = gram_vectors([chain])
    groups = [sorted(c.members) for c in C.cluster_vectors(vecs, 0.70)]
    assert groups == [[0, 1]]


def test_min_floor_blocks_a_bridge_even_when_average_passes():
    chain = [[1, 0.85, 0.47], [0.85, 1, 0.85], [0.47, 0.85, 1]]
    vecs = gram_vectors([chain])
    edges, sims = C.knn_edges(vecs, 15, 0.6)
    # average of {A,B} to C is 0.66 ≥ 0.6, but A–C 0.47 is below the 0.5 floor
    assert sorted(map(sorted, C.agglomerate(vecs, edges, sims, 0.6, chain_slack=0.1))) == [[0, 1]]
    assert sorted(map(sorted, C.agglomerate(vecs, edges, sims, 0.6, chain_slack=0.3))) == [[0, 1, 2]]


def test_groups_order_medoid_and_cohesion():
    vecs = gram_vectors([full(4, 0.9), full(2, 0.95), full(3, 0.8), np.eye(3)])
    clusters = C.cluster_vectors(vecs, 0.7)
    assert [sorted(c.members) for c in clusters] == [[0, 1, 2, 3], [6, 7, 8], [4, 5]]
    assert clusters[0].cohesion == pytest.approx(0.9, abs=1e-5)
    assert clusters[1].cohesion == pytest.approx(0.8, abs=1e-5)
    for c in clusters:
        assert c.similarity[0] == 1.0 and c.medoid == c.members[0]
        assert all(s <= 1.0 for s in c.similarity)
    # equal sizes order by cohesion
    vecs = gram_vectors([full(2, 0.75), full(2, 0.95)])
    assert [sorted(c.members) for c in C.cluster_vectors(vecs, 0.7)] == [[2, 3], [0, 1]]


def test_threshold_splits_weak_cluster():
    vecs = gram_vectors([full(3, 0.65)])
    assert C.cluster_vectors(vecs, 0.7) == []
    assert len(C.cluster_vectors(vecs, 0.6)) == 1


def test_medoid_is_most_central():
    # member 1 is close to everybody; 0 and 2 only to 1 and moderately to each other
    g = [[1, 0.9, 0.75], [0.9, 1, 0.9], [0.75, 0.9, 1]]
    (cl,) = C.cluster_vectors(gram_vectors([g]), 0.7)
    assert cl.medoid == 1 and cl.similarity == pytest.approx([1.0, 0.9, 0.9], abs=1e-5)


def test_inverted_file_path_matches_exact(monkeypatch):
    """Above EXACT_MAX_N the candidate pairs come from k-means cells; on clustered data the result
    equals the exact one."""
    from bench.bench_groups import clustered_vectors

    vecs = clustered_vectors(3000, dim=256, seed=1)  # > PROJ_DIM: the projected scoring runs too
    exact = {tuple(c.members) for c in C.cluster_vectors(vecs, 0.5)}
    monkeypatch.setattr(C, "EXACT_MAX_N", 100)
    approx = {tuple(c.members) for c in C.cluster_vectors(vecs, 0.5)}
    assert len(exact) > 300
    assert len(exact & approx) / len(exact) > 0.97


def test_empty_and_single():
    assert C.cluster_vectors(np.zeros((0, 8), np.float32)) == []
    assert C.cluster_vectors(np.ones((1, 8), np.float32) / np.sqrt(8)) == []
