"""Learning-rate schedule: linear warm-up from the base to the peak rate, then cosine decay.

The paper warms up from 1e-4 to 5e-4 over 10k steps and then decays. With a small personal data
set 10k steps may exceed the whole run, so the default warm-up is capped at a tenth of the run.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

PAPER_WARMUP_STEPS = 10_000


@dataclass(frozen=True)
class Schedule:
    base_lr: float = 1e-4  # rate at step 0
    peak_lr: float = 5e-4  # rate at the end of warm-up
    final_lr: float = 1e-6  # rate at the last step
    warmup_steps: int = 0
    total_steps: int = 1

    def lr(self, step: int) -> float:
        """Learning rate for optimiser step `step` (0-based)."""
        if self.warmup_steps > 0 and step < self.warmup_steps:
            return self.base_lr + (self.peak_lr - self.base_lr) * step / self.warmup_steps
        decay_steps = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / decay_steps)
        return self.final_lr + 0.5 * (self.peak_lr - self.final_lr) * (1.0 + math.cos(math.pi * progress))


def default_warmup(total_steps: int) -> int:
    """The paper's 10k steps, but never more than 10 % of the run."""
    return min(PAPER_WARMUP_STEPS, max(0, total_steps // 10))


def apply(optimizer, lr: float) -> None:
    """Set the rate of every parameter group (called before each optimiser step)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
