"""Retrieval metrics: the golden numbers, the protocol's edge cases, and a brute-force cross-check."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from livi_cli.errors import EvalError
from livi_cli.evaluate import evaluate_retrieval, evaluate_windows, retrieval_metrics

GOLDEN = Path(__file__).resolve().parents[1] / ".." / "shared" / "golden"


def load_golden():
    with open(GOLDEN / "metrics_items.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    dims = sum(1 for c in rows[0] if c.startswith("e") and c[1:].isdigit())
    emb = np.array([[float(r[f"e{i}"]) for i in range(dims)] for r in rows])
    expected = json.loads((GOLDEN / "metrics_expected.json").read_text())["metrics"]
    return emb, [r["clique"] for r in rows], expected


def brute_force(emb, cliques, cut=100):
    """Reference: full sort of every query's list, similarity descending, non-relevant first on exact ties."""
    x = np.asarray(emb, float)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = x @ x.T
    labels = np.array([str(c) for c in cliques])
    ranks, aps = [], []
    for i in range(len(x)):
        rel = labels == labels[i]
        rel[i] = False
        if not rel.any():
            continue
        others = np.array([j for j in range(len(x)) if j != i])
        order = others[np.lexsort((rel[others], -sims[i, others]))]
        hits = rel[order]
        ranks.append(int(np.argmax(hits)) + 1)
        top = hits[:10]
        prec = np.cumsum(top) / np.arange(1, len(top) + 1)
        aps.append(float((prec * top).sum() / min(10, rel.sum())))
    ranks = np.array(ranks)
    return {"MR1": ranks.mean(), "HR1": (ranks <= 1).mean(), "HR10": (ranks <= 10).mean(),
            "HR100": (ranks <= cut).mean(), "MAP10": float(np.mean(aps)), "n_queries": len(ranks)}


def assert_metrics(got, want, tol=1e-9):
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=tol, rel=0), key


def test_reproduces_golden_metrics():
    emb, cliques, expected = load_golden()
    got = retrieval_metrics(emb, cliques, k=100)
    assert_metrics(got, expected)
    assert got["n_queries"] == len(cliques) == got["n_items"]


def test_golden_is_independent_of_block_size_and_matches_single_window_max():
    emb, cliques, expected = load_golden()
    assert_metrics(evaluate_retrieval(emb, cliques, block_size=7).metrics, expected)
    # with one window per track, max over window pairs is the plain cosine
    assert_metrics(evaluate_windows([e[None, :] for e in emb], cliques).metrics, expected)


def test_mr1_uses_the_full_ranking_not_capped_at_k():
    emb, cliques, expected = load_golden()
    report = evaluate_retrieval(emb, cliques, k=100)
    ranks = np.array([q.first_rank for q in report.queries])
    assert (ranks > 100).any()  # the golden set has queries whose first version lies beyond the cut
    assert ranks.mean() == pytest.approx(expected["MR1"], abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force_with_singletons_and_quantised_ties(seed):
    rng = np.random.default_rng(seed)
    n = 60
    emb = np.round(rng.normal(size=(n, 4)), 0)  # coarse values: many exactly tied similarities
    emb[np.all(emb == 0, axis=1)] = 1.0
    cliques = rng.integers(0, 25, size=n)  # some cliques are singletons
    got = retrieval_metrics(emb, cliques)
    assert_metrics(got, brute_force(emb, cliques), tol=1e-12)
    assert got["n_queries"] == sum(1 for c in cliques if (cliques == c).sum() > 1)


def test_singletons_are_distractors_not_queries():
    # a: {q, r}; singleton s sits between q and r
    emb = np.array([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6]])
    cliques = ["a", "a", "s"]
    report = evaluate_retrieval(emb, cliques)
    assert [q.index for q in report.queries] == [0, 1]
    assert [q.first_rank for q in report.queries] == [2, 2]
    assert report.metrics["HR1"] == 0.0 and report.metrics["HR10"] == 1.0
    assert report.metrics["MAP10"] == pytest.approx(0.5)
    assert report.queries[0].top_fp_index == 2
    assert report.queries[0].top_fp_similarity == pytest.approx(0.8)


def test_clique_of_two_hand_computed():
    # x0, x1 same work; x2, x3 other singletons; x0 is closer to x2 than to x1
    emb = np.array([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.9, 0.0, 0.436], [0.0, 0.0, 1.0]])
    m = retrieval_metrics(emb, [7, 7, 8, 9])
    # query 0: x2 (0.9) then x1 (0.6) → rank 2; query 1: x0 (0.6) first → rank 1
    assert m["n_queries"] == 2
    assert m["MR1"] == pytest.approx(1.5)
    assert m["HR1"] == pytest.approx(0.5)
    assert m["MAP10"] == pytest.approx((0.5 + 1.0) / 2)


def test_k_larger_than_the_collection():
    emb = np.eye(4) + 0.1
    m = retrieval_metrics(emb, ["a", "a", "b", "b"], k=1000)
    assert m["HR1000"] == 1.0 and m["HR100"] == 1.0
    assert m["n_queries"] == 4


def test_all_equal_vectors_rank_pessimistically():
    # a collapsed model must not score well because of item order
    emb = np.ones((6, 3))
    m = retrieval_metrics(emb, ["a", "a", "b", "b", "c", "c"])
    assert m["MR1"] == 5.0  # the 4 other-clique items tie with the version and rank ahead of it
    assert m["HR1"] == 0.0
    assert m["MAP10"] == pytest.approx(1 / 5)


def test_unnormalised_inputs_give_the_same_metrics():
    emb, cliques, expected = load_golden()
    scale = np.random.default_rng(3).uniform(0.01, 100.0, size=(len(emb), 1))
    assert_metrics(retrieval_metrics(emb * scale, cliques), expected)


def test_map_normalised_by_min_of_ten_and_relevant_count():
    # one clique of 12: each query has 11 versions; MAP@10 divides by 10, so a perfect ranking gives 1.0
    rng = np.random.default_rng(0)
    base = rng.normal(size=8)
    emb = np.vstack([base + 0.01 * rng.normal(size=8) for _ in range(12)] + [rng.normal(size=(5, 8))])
    m = retrieval_metrics(emb, ["w"] * 12 + [f"s{i}" for i in range(5)])
    assert m["MAP10"] == pytest.approx(1.0)
    assert m["n_queries"] == 12


def test_max_aggregation_uses_best_window_pair():
    # track 0 and 1 share one near-identical window; their means point elsewhere
    t0 = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    t1 = np.array([[1.0, 0.1, 0.0], [0.0, 1.0, 0.0]])
    t2 = np.array([[0.6, 0.4, 0.5]])
    cliques = ["a", "a", "b"]
    means = np.vstack([w.mean(axis=0) for w in (t0, t1, t2)])
    assert retrieval_metrics(means, cliques)["HR1"] == 0.0  # mean: the distractor wins for both
    report = evaluate_windows([t0, t1, t2], cliques)
    assert report.metrics["HR1"] == 1.0
    assert report.queries[0].first_similarity == pytest.approx(1 / np.linalg.norm([1.0, 0.1]), abs=1e-12)


def test_no_queries_gives_nan_metrics():
    m = retrieval_metrics(np.eye(3), ["a", "b", "c"])
    assert m["n_queries"] == 0 and np.isnan(m["MR1"])


def test_empty_collection_gives_nan_metrics_for_both_aggregations():
    from livi_cli.evaluate import evaluate_windows

    for m in (retrieval_metrics(np.zeros((0, 4)), []), evaluate_windows([], []).metrics):
        assert m["n_queries"] == 0 and m["n_items"] == 0 and np.isnan(m["MAP10"])


@pytest.mark.parametrize("bad, message", [
    (np.array([[1.0, 0.0], [0.0, 0.0]]), "row 1 is all zeros"),
    (np.array([[1.0, np.nan], [0.0, 1.0]]), "row 0 contains NaN"),
])
def test_bad_vectors_are_refused(bad, message):
    with pytest.raises(EvalError, match=message):
        retrieval_metrics(bad, ["a", "a"])


def test_label_count_must_match():
    with pytest.raises(EvalError, match="3 embeddings but 2 clique labels"):
        retrieval_metrics(np.eye(3), ["a", "a"])
