"""Learning-rate schedules: linear warmup, then cosine, linear or constant (SPEC §8: cosine, 3% warmup).

The factor multiplies each parameter group's own rate, so per-part rates
keep their ratios through the schedule.

Example: 100 steps, ``warmup_ratio`` 0.03 -> ``ceil(3) = 3`` warmup steps;
the factor at step s (0-based, the step about to run) is ``(s + 1) / 3`` for
``s < 3`` (1/3, 2/3, 1 — the first step already trains), then
``0.5 * (1 + cos(pi * (s - 3) / 97))`` (cosine), reaching 0 after the last step.
"""

from __future__ import annotations

import math

import torch


class WarmupSchedule:
    """The factor of step ``s`` (see the module docstring); a plain object, so that
    ``LambdaLR.state_dict()`` stores its fields (JSON-able)."""

    def __init__(self, total_steps: int, warmup_ratio: float = 0.03, kind: str = "cosine"):
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        if kind not in ("cosine", "linear", "constant"):
            raise ValueError(f"unknown schedule {kind!r}")
        self.total_steps = int(total_steps)
        self.warmup_steps = int(math.ceil(warmup_ratio * total_steps))
        self.kind = kind

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.kind == "constant":
            return 1.0
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        if self.kind == "linear":
            return 1.0 - progress
        return 0.5 * (1.0 + math.cos(math.pi * progress))


def make_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, warmup_ratio: float, kind: str):
    """A ``LambdaLR`` stepping once per optimizer step with :class:`WarmupSchedule`."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupSchedule(total_steps, warmup_ratio, kind))


__all__ = ["WarmupSchedule", "make_scheduler"]
