"""The student: train a LiviHead on frozen encoder states streamed from shards (`livi train fit`).

One epoch = one pass over the training windows in block-shuffled order; after each epoch the head
embeds the held-out windows (split by clique, so no song is on both sides), and the checkpoint with
the best validation MAP@10 (mean cosine to the targets when the split has no covers) is kept.
Every step and every validation appends a JSON line to log.jsonl.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from livi_cli import constants as C
from livi_cli.errors import TrainingError
from livi_cli.model.head import HeadConfig, LiviHead
from livi_cli.train import schedule as sched
from livi_cli.train.loss import DEFAULT_ALPHA, livi_loss
from livi_cli.train.shards import ShardSet, ShardStream

Callback = Callable[[dict], None]


@dataclass
class FitConfig:
    epochs: int = 3
    batch_size: int = 128
    base_lr: float = 1e-4
    peak_lr: float = 5e-4
    final_lr: float = 1e-6
    warmup_steps: int | None = None  # None: the paper's 10k, capped at 10 % of the run
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    alpha: float = DEFAULT_ALPHA
    grad_clip: float | None = 1.0  # max global grad norm; None/0 disables
    seed: int = 0
    val_fraction: float = 0.1  # share of cliques held out
    device: str = "auto"
    precision: str = "auto"  # auto: bf16 (or fp16 + loss scaling) autocast on CUDA, fp32 on CPU
    hiddens: tuple[int, ...] | None = None  # projection sizes; None: the published head's
    num_heads: int = C.HEAD_NUM_HEADS
    mlp_ratio: float = C.HEAD_MLP_RATIO
    init: str | None = None  # start from this head checkpoint (fine-tuning)
    num_workers: int = 0  # DataLoader workers reading shards
    mix: int = 8  # shards interleaved by the shuffle
    log_every: int = 1  # steps between train log lines
    validate_before: bool = True  # also validate the untrained head (epoch 0) as a baseline


@dataclass
class FitResult:
    best_path: Path | None
    last_path: Path
    log_path: Path
    best: dict | None  # validation record of the best checkpoint
    history: list[dict] = field(default_factory=list)  # validation records, epoch 0 first
    first_loss: float = float("nan")  # mean training loss of the first 10 % of steps
    last_loss: float = float("nan")  # ... and of the last 10 %
    windows_per_s: float = 0.0  # training throughput: optimiser steps plus waiting for shard data


# ---------------------------------------------------------------- split
def split_by_clique(track_cliques: dict[str, str | None], val_fraction: float, seed: int = 0) -> tuple[set[str], set[str]]:
    """(train tracks, validation tracks). Tracks without a clique are singletons (distractors in validation).

    Multi-track cliques and singletons are sampled separately so validation gets its share of covers.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise TrainingError(f"--val-fraction must lie in [0, 1), got {val_fraction}")
    groups: dict[str, list[str]] = {}
    for track, clique in sorted(track_cliques.items()):
        groups.setdefault(f"clique:{clique}" if clique is not None else f"track:{track}", []).append(track)
    rng = np.random.default_rng(seed)
    val: set[str] = set()
    for pool in ([g for g in sorted(groups) if len(groups[g]) > 1], [g for g in sorted(groups) if len(groups[g]) == 1]):
        n = int(round(val_fraction * len(pool)))
        if val_fraction > 0 and n == 0 and len(pool) >= 4:
            n = 1
        for g in rng.permutation(len(pool))[:n] if pool else []:
            val.update(groups[pool[g]])
    return set(track_cliques) - val, val


# ---------------------------------------------------------------- helpers
def resolve_training_precision(precision: str, device: torch.device) -> str:
    """Like model.device.resolve_precision, but `auto` prefers bf16 on CUDA (no loss scaling) and fp32 elsewhere."""
    from livi_cli.model.device import PRECISIONS

    precision = (precision or "auto").lower()
    if precision not in PRECISIONS:
        raise TrainingError(f"--precision: unknown value '{precision}' (use {', '.join(PRECISIONS)})")
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "fp32"
    if precision == "fp16" and device.type == "cpu":
        raise TrainingError("--precision fp16 needs a GPU; on CPU use fp32 or bf16")
    return precision


def build_head(cfg: FitConfig, dim_input: int, dim_target: int) -> LiviHead:
    if cfg.init:
        from livi_cli.model.checkpoint import load_head

        head = load_head(cfg.init)
        if (head.config.dim_whisper, head.config.dim_embed) != (dim_input, dim_target):
            raise TrainingError(f"--init {cfg.init}: head maps {head.config.dim_whisper}→{head.config.dim_embed}, "
                                f"the shards need {dim_input}→{dim_target}")
        return head.train()
    hiddens = C.HEAD_HIDDENS if cfg.hiddens is None else tuple(cfg.hiddens)
    try:
        config = HeadConfig(dim_input, hiddens, dim_target, cfg.num_heads, cfg.mlp_ratio)
    except ValueError as exc:
        raise TrainingError(f"head configuration: {exc}") from exc
    torch.manual_seed(cfg.seed)
    return LiviHead(config)


def _loader(dataset: ShardStream, batch_size: int, num_workers: int, drop_last: bool, pin: bool):
    from torch.utils.data import DataLoader

    return DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, drop_last=drop_last,
                      pin_memory=pin, persistent_workers=False)


class _Log:
    def __init__(self, path: Path, callback: Callback | None):
        self.path, self.callback = path, callback
        self.file = open(path, "a", encoding="utf-8")

    def write(self, record: dict) -> None:
        self.file.write(json.dumps(record, default=float) + "\n")
        self.file.flush()
        if self.callback:
            self.callback(record)

    def close(self) -> None:
        self.file.close()


# ---------------------------------------------------------------- trainer
class Trainer:
    def __init__(self, shards: ShardSet, out_dir: str | os.PathLike, cfg: FitConfig, *,
                 encoder=None, callback: Callback | None = None):
        """`encoder` (a frozen Whisper encoder) is needed only for shards that store log-mel."""
        from livi_cli.model.device import resolve_device

        self.shards, self.cfg, self.callback = shards, cfg, callback
        self.out = Path(out_dir)
        self.device = resolve_device(cfg.device)
        self.precision = resolve_training_precision(cfg.precision, self.device)
        m = shards.manifest
        cliques = shards.track_cliques()
        if not cliques:  # first: the manifest records the dimensions only once a window is written
            raise TrainingError(f"{shards.directory}: the shards hold no windows")
        self.store = m.get("store", "states")
        if self.store == "mel" and encoder is None:
            raise TrainingError(f"{shards.directory}: shards hold log-mel; fitting needs the Whisper encoder")
        if self.store == "mel" and int(encoder.config.num_mel_bins) != int(m["dim_input"]):
            # Caught here, not as a shape error in the first step (e.g. --whisper of another family).
            raise TrainingError(f"{shards.directory}: shards hold {m['dim_input']}-bin log-mel, the Whisper "
                                f"encoder reads {encoder.config.num_mel_bins} bins; use the Whisper the teacher used")
        self.encoder = encoder.to(self.device).eval().requires_grad_(False) if encoder is not None else None
        dim_input = int(self.encoder.config.d_model if self.encoder is not None else m["dim_input"])
        self.head = build_head(cfg, dim_input, int(m["dim_target"])).to(self.device)
        self.train_tracks, self.val_tracks = split_by_clique(cliques, cfg.val_fraction, cfg.seed)
        self.train_windows = shards.select(self.train_tracks)
        self.val_windows = shards.select(self.val_tracks)
        if not self.train_windows:
            raise TrainingError("no training windows left after the validation split; lower --val-fraction")
        self.out.mkdir(parents=True, exist_ok=True)  # only once every check has passed
        (self.out / "split.json").write_text(json.dumps(
            {"train": sorted(self.train_tracks), "validation": sorted(self.val_tracks)}, indent=1))

    # -------------------------------------------------------- pieces
    def _autocast(self):
        from livi_cli.model.device import autocast

        return autocast(self.device, self.precision)

    def _states(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.store == "mel":
            with torch.no_grad(), self._autocast():
                return self.encoder(x.float()).last_hidden_state.float()
        return x.float()

    def steps_per_epoch(self) -> int:
        n, bs = len(self.train_windows), self.cfg.batch_size
        return max(1, n // bs if n >= bs else 1)

    def validate(self, epoch: int, step: int) -> dict:
        """Mean cosine, loss and retrieval metrics of the held-out tracks (mean of window embeddings)."""
        from livi_cli.evaluate import retrieval_metrics

        record = {"kind": "val", "epoch": epoch, "step": step, "n_windows": len(self.val_windows)}
        if not self.val_windows:
            return record
        stream = ShardStream(self.shards, self.val_windows, shuffle=False)
        self.head.eval()
        sums: dict[str, np.ndarray] = {}
        counts: dict[str, int] = {}
        cos_total, loss_total, n, batches = 0.0, 0.0, 0, 0
        with torch.no_grad():
            for x, t, tracks in _loader(stream, self.cfg.batch_size, self.cfg.num_workers, False, False):
                with self._autocast():
                    emb = self.head(self._states(x))
                emb, t = emb.float(), t.to(self.device)
                cos_total += float((emb * torch.nn.functional.normalize(t, dim=-1)).sum(-1).sum())
                loss_total += float(livi_loss(emb, t, self.cfg.alpha).total)
                n, batches = n + len(emb), batches + 1
                for vec, track in zip(emb.cpu().numpy(), tracks):
                    sums[track] = sums.get(track, 0) + vec
                    counts[track] = counts.get(track, 0) + 1
        self.head.train()
        record.update(mean_cos=cos_total / n, loss=loss_total / batches)
        cliques = self.shards.track_cliques()
        tracks = sorted(sums)
        vectors = np.stack([sums[k] / counts[k] for k in tracks])
        labels = [cliques[k] if cliques[k] is not None else f"track:{k}" for k in tracks]
        if len(set(labels)) < len(labels):  # at least one clique with two tracks: retrieval is defined
            metrics = retrieval_metrics(vectors, labels)
            record.update({k: metrics[k] for k in ("MAP10", "HR1", "HR10", "MR1", "n_queries")})
        return record

    @staticmethod
    def _score(record: dict) -> float:
        value = record.get("MAP10")
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return record.get("mean_cos", -math.inf)
        return value + 1e-6 * record.get("mean_cos", 0.0)  # cosine breaks ties

    def _save(self, path: Path, extra: dict) -> None:
        from livi_cli.model.checkpoint import save_head

        m = self.shards.manifest
        save_head(path, self.head, extra={**extra, "whisper": m.get("whisper"), "whisper_revision": m.get("whisper_revision"),
                                          "text_model": m.get("text_model"), "shards": str(self.shards.directory)})

    # -------------------------------------------------------- loop
    def fit(self) -> FitResult:
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        per_epoch = self.steps_per_epoch()
        total = per_epoch * cfg.epochs
        warmup = sched.default_warmup(total) if cfg.warmup_steps is None else cfg.warmup_steps
        plan = sched.Schedule(cfg.base_lr, cfg.peak_lr, cfg.final_lr, warmup, total)
        optim = torch.optim.AdamW(self.head.parameters(), lr=cfg.base_lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
        scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        stream = ShardStream(self.shards, self.train_windows, shuffle=True, seed=cfg.seed, mix=cfg.mix)
        log = _Log(self.out / "log.jsonl", self.callback)
        log.write({"kind": "start", "total_steps": total, "steps_per_epoch": per_epoch, "train_windows": len(self.train_windows),
                   "val_windows": len(self.val_windows), "train_tracks": len(self.train_tracks),
                   "val_tracks": len(self.val_tracks), "device": str(self.device), "precision": self.precision,
                   "parameters": self.head.num_parameters(), "config": asdict(cfg)})
        history, losses, best, best_path = [], [], None, None
        step, seen, busy, waited = 0, 0, 0.0, 0.0  # busy: compute time; waited: time spent waiting for data
        try:
            if cfg.validate_before and self.val_windows:
                history.append(self.validate(0, 0))
                log.write(history[-1])
            for epoch in range(1, cfg.epochs + 1):
                stream.set_epoch(epoch)
                loader = _loader(stream, cfg.batch_size, cfg.num_workers, len(self.train_windows) >= cfg.batch_size,
                                 self.device.type == "cuda")
                fetched = time.perf_counter()
                for x, t, _ in loader:
                    if step >= total:
                        break
                    started = time.perf_counter()
                    waited += started - fetched
                    lr = plan.lr(step)
                    sched.apply(optim, lr)
                    with self._autocast():
                        emb = self.head(self._states(x))
                    parts = livi_loss(emb, t.to(self.device), cfg.alpha)
                    optim.zero_grad(set_to_none=True)
                    scaler.scale(parts.total).backward()
                    scaler.unscale_(optim)
                    norm = torch.nn.utils.clip_grad_norm_(self.head.parameters(), cfg.grad_clip or float("inf"))
                    scaler.step(optim)
                    scaler.update()
                    loss = float(parts.total.detach())
                    if self.device.type == "cuda":
                        torch.cuda.synchronize()
                    fetched = time.perf_counter()
                    busy += fetched - started
                    seen += len(x)
                    step += 1
                    losses.append(loss)
                    if not math.isfinite(loss):
                        raise TrainingError(f"loss became {loss} at step {step}; lower --lr/--peak-lr or use --precision fp32")
                    if step % max(1, cfg.log_every) == 0 or step == total:
                        log.write({"kind": "train", "epoch": epoch, "step": step, "loss": loss, "cosine": parts.cosine,
                                   "geometry": parts.geometry, "lr": lr, "grad_norm": float(norm),
                                   "windows_per_s": seen / (busy + waited) if busy else 0.0,
                                   "compute_windows_per_s": seen / busy if busy else 0.0})
                record = self.validate(epoch, step) if self.val_windows else {"kind": "val", "epoch": epoch, "step": step}
                history.append(record)
                log.write(record)
                self._save(self.out / "last.pt", {"epoch": epoch, "step": step, "validation": record})
                if not self.val_windows or best is None or self._score(record) > self._score(best):
                    best, best_path = record, self.out / "best.pt"
                    self._save(best_path, {"epoch": epoch, "step": step, "validation": record})
                    log.write({"kind": "best", "epoch": epoch, "step": step, "path": str(best_path)})
        finally:
            log.close()
        tenth = max(1, len(losses) // 10)
        return FitResult(best_path, self.out / "last.pt", log.path, best, history,
                         float(np.mean(losses[:tenth])) if losses else float("nan"),
                         float(np.mean(losses[-tenth:])) if losses else float("nan"),
                         seen / (busy + waited) if busy else 0.0)


def fit(shards_dir: str | os.PathLike, out_dir: str | os.PathLike, cfg: FitConfig | None = None, *,
        encoder=None, callback: Callback | None = None) -> FitResult:
    return Trainer(ShardSet.open(shards_dir), out_dir, cfg or FitConfig(), encoder=encoder, callback=callback).fit()
