"""Training (`livi train fit`): student step speed at full size, shard streaming speed, and the synthetic
learning task of tests/train (loss and held-out MAP@10 before/after training).

Rows: windows/s of one optimiser step of the published-size head (1280 → 768, 31.9 M parameters) on
1500-frame states (CPU fp32; CUDA bf16 at the paper's batch 128 when present), windows/s read back from
float16 turbo-size shards through the block-shuffled mmap stream, and the synthetic task's numbers.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parents[1]


def step_speed(device: str, batch: int, steps: int) -> float:
    import torch

    from livi_cli.model.head import HeadConfig, LiviHead
    from livi_cli.train.loss import livi_loss
    from livi_cli.train.trainer import resolve_training_precision
    from livi_cli.model.device import autocast

    dev = torch.device(device)
    precision = resolve_training_precision("auto", dev)
    head = LiviHead(HeadConfig()).to(dev)
    opt = torch.optim.AdamW(head.parameters(), lr=1e-4, betas=(0.9, 0.98), weight_decay=0.01)
    x = torch.randn(batch, 1500, 1280, device=dev, dtype=torch.float16)
    t = torch.randn(batch, 768, device=dev)

    def step():
        with autocast(dev, precision):
            emb = head(x.float())
        loss = livi_loss(emb, t).total
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()

    step()  # warm-up (allocations, kernels)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - start), precision


def stream_speed(n_windows: int) -> float:
    import numpy as np

    from livi_cli.train.shards import ShardSet, ShardWriter, TrackWindows, iter_windows

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        w = ShardWriter(tmp, {"store": "states"}, shard_size=16)
        for i in range(n_windows // 2):
            w.add(TrackWindows(f"t{i}", f"c{i // 2}", "", rng.standard_normal((2, 1500, 1280)).astype(np.float16),
                               np.ones((2, 768), np.float32), [(0, 30), (30, 60)], ["a b c d", "e f g h"], 2))
        w.close()
        s = ShardSet.open(tmp)
        start = time.perf_counter()
        n = sum(1 for _ in iter_windows(s, s.windows, shuffle=True, seed=1, mix=8))
        return n / (time.perf_counter() - start)


def synthetic_task() -> dict:
    sys.path.insert(0, str(ROOT / "tests" / "train"))
    from synthetic import make_task  # type: ignore[import-not-found]

    from livi_cli.train.trainer import FitConfig, fit

    with tempfile.TemporaryDirectory() as tmp:
        make_task(Path(tmp) / "shards", cliques=100, per_clique=2, windows=1, shard_size=16)
        cfg = FitConfig(epochs=6, batch_size=8, hiddens=(64,), base_lr=2e-3, peak_lr=1e-2, warmup_steps=5,
                        val_fraction=0.25, device="cpu", precision="fp32", seed=0)
        r = fit(Path(tmp) / "shards", Path(tmp) / "out", cfg)
    return {"before": r.history[0], "after": r.best, "first_loss": r.first_loss, "last_loss": r.last_loss}


def run(quick: bool) -> list[dict]:
    import torch
    from _common import row  # type: ignore[import-not-found]

    rows = []
    batch, steps = (4, 1) if quick else (16, 2)
    speed, precision = step_speed("cpu", batch, steps)
    rows.append(row("head train step, cpu", speed, "windows/s", note=f"full-size head, batch {batch}, {precision}"))
    if torch.cuda.is_available():
        speed, precision = step_speed("cuda", 128, 5 if quick else 20)
        rows.append(row("head train step, cuda", speed, "windows/s", note=f"full-size head, batch 128, {precision}"))
    n = 32 if quick else 128
    rows.append(row("shard stream read", stream_speed(n), "windows/s", note=f"{n} turbo windows (3.8 MB each), page cache warm"))
    task = synthetic_task()
    b, a = task["before"], task["after"]
    rows.append(row("synthetic: train loss first→last 10%", task["last_loss"], "loss", note=f"from {task['first_loss']:.3f}"))
    rows.append(row("synthetic: held-out MAP@10", a["MAP10"], "MAP", note=f"untrained head {b['MAP10']:.3f}"))
    rows.append(row("synthetic: held-out mean cos", a["mean_cos"], "cos", note=f"untrained head {b['mean_cos']:.3f}"))
    return rows


if __name__ == "__main__":
    from _common import main  # type: ignore[import-not-found]

    main(run, "training")
