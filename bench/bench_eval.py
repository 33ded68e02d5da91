"""`livi eval`'s metric computation: seconds for an all-vs-all evaluation of N random 768-d tracks.

The cost is quadratic in N (one float64 N x N similarity matrix, computed in row blocks), so the 100k figure
is extrapolated from the measured N.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import main, row  # noqa: E402


def run(quick: bool) -> list[dict]:
    import numpy as np

    from livi_cli.evaluate import BLOCK_ELEMENTS, retrieval_metrics

    n = 5_000 if quick else 20_000
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((n, 768)).astype(np.float32)
    cliques = rng.integers(0, n // 4, size=n)
    start = time.perf_counter()
    metrics = retrieval_metrics(emb, cliques)
    secs = time.perf_counter() - start
    block_mib = BLOCK_ELEMENTS * 8 / 2**20
    return [
        row(f"retrieval_metrics {n} x 768", secs, "s", note=f"{metrics['n_queries']} queries, float64 blocks"),
        row("retrieval_metrics 100k x 768 (extrapolated)", secs * (100_000 / n) ** 2, "s",
            note=f"quadratic in N; similarity blocks of {block_mib:.0f} MiB, so memory stays ~1 GB"),
    ]


if __name__ == "__main__":
    main(run, title="evaluation metrics")
