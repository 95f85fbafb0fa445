"""What a training run writes as it goes: its log, its metrics, and the periodic evaluation.

:class:`RunLog` appends to ``train.log`` and ``metrics.jsonl`` in the run
folder (and TensorBoard when installed) from the main process;
:func:`run_periodic_eval` runs the evaluation runner on held-out files.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import torch

from .recipe import Recipe

METRICS = "metrics.jsonl"
LOG = "train.log"


class RunLog:
    """Log lines, metrics JSONL and TensorBoard of the main process (no-ops elsewhere)."""

    def __init__(self, run_dir: Path, main: bool, echo: Callable[[str], None] | None):
        self.main = main
        self.run_dir = run_dir
        self.echo = echo
        self.tb = None
        if main:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir / "tb"))
            except ImportError:  # tensorboard is optional
                self.tb = None

    def log(self, message: str) -> None:
        if not self.main:
            return
        with open(self.run_dir / LOG, "a", encoding="utf-8") as fh:
            fh.write(message + "\n")
        if self.echo is not None:
            self.echo(message)

    def metrics(self, record: dict[str, Any]) -> None:
        if not self.main:
            return
        with open(self.run_dir / METRICS, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        if self.tb is not None:
            step = record.get("step", 0)
            for k, v in record.items():
                if isinstance(v, (int, float)) and k != "step":
                    self.tb.add_scalar(f"train/{k}", v, step)
                elif isinstance(v, dict):
                    for kk, vv in v.items():
                        if isinstance(vv, (int, float)):
                            self.tb.add_scalar(f"{k}/{kk}", vv, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def truncate_metrics(path: Path, step: int) -> None:
    """Drop metric lines past ``step`` (written by a run that was stopped after its last checkpoint)."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                kept.append(line)
        except json.JSONDecodeError:  # a line cut short by a kill
            continue
    path.write_text("".join(k + "\n" for k in kept), encoding="utf-8")


def echo(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)


# ------------------------------------------------------------------ evaluation


def run_periodic_eval(accelerator, model, processor, recipe: Recipe, step: int, run_dir: Path) -> dict[str, Any]:
    """Evaluate the model on the recipe's benchmarks (main process; the others wait).

    Each benchmark runs through :func:`llava_st.eval.runner.run_eval` into
    ``<output.dir>/eval/step-<N>/<benchmark>`` and its report's metrics are
    returned ``{benchmark: metrics}`` (empty on other processes).
    """
    results: dict[str, Any] = {}
    if accelerator.is_main_process:
        from ..eval.benchmarks import default_paths
        from ..eval.predictor import ModelPredictor
        from ..eval.runner import EvalConfig, run_eval
        from ..eval.shards import DistEnv
        from ..infer import LlavaST

        unwrapped = accelerator.unwrap_model(model)
        was_training = unwrapped.training
        st = LlavaST(unwrapped, processor)
        predictor = ModelPredictor(st, media_workers=1, max_new_tokens=recipe.eval.max_new_tokens)
        try:
            with torch.no_grad(), accelerator.autocast():
                for bench in recipe.eval.benchmarks:
                    data, media = default_paths(bench, recipe.eval.data_root, recipe.eval.split)
                    cfg = EvalConfig(
                        bench=bench,
                        data=data,
                        media_root=media,
                        out_dir=run_dir / "eval" / f"step-{step}" / bench,
                        bins=unwrapped.config.coords.bins,
                        mode=recipe.eval.mode,
                        split=recipe.eval.split,
                        batch_size=recipe.eval.batch_size,
                        limit=recipe.eval.max_samples,
                        seed=recipe.seed,
                        progress=False,
                    )
                    report = run_eval(predictor, cfg, DistEnv(0, 1, 0))
                    results[bench] = report.get("metrics", report) if report else {}
        finally:
            predictor.close()
            unwrapped.train(was_training)
    accelerator.wait_for_everyone()
    return results


# ------------------------------------------------------------------ the loop


__all__ = ["LOG", "METRICS", "RunLog", "echo", "run_periodic_eval", "truncate_metrics"]
