"""Learning curves of the embedded model: each headline metric against minutes of training.

Reads a ``llava-st build-tiny`` folder: the periodic evaluations of its stages (a recipe's
``eval`` section: the held-out set's first samples of some benchmarks, every few hundred
steps), with the minutes counted from the start of the first stage (the tower step) and the
evaluations' own time taken out; and the finished model's full held-out evaluation (``eval/summary.json``)
after all stages. With ``--loss N``, also the held-out answer loss on the coordinate tokens
(:func:`llava_st.train.validation.answer_loss`, first ``N`` held-out samples of each task) of
every checkpoint the run kept and of the final model: greedy scores move in steps and sit at
the best constant answer until a skill is nearly learnt, the loss shows whether the model is
still learning. Writes ``bench/results/embedded_curves.json`` (the points, the best constant
answers and the targets) and ``bench/results/embedded_curves.png``.

    python bench/embedded_curves.py --run runs/embedded --loss 96
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import RESULTS  # noqa: E402

from llava_st.embedded.reproduce import HEADLINE, STAGES  # noqa: E402


def _records(path: Path) -> list[dict]:
    if not path.is_file():
        raise SystemExit(f"no training log {path}")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def training_minutes(records: list[dict]) -> dict[int, float]:
    """Step -> minutes of training since the stage started, without the periodic evaluations' time.

    An evaluation runs between a step and its log line, so the log's clock jumps there; the
    jump beyond the stage's median step time is the evaluation's, and is taken out.
    """
    steps = [r for r in records if "elapsed_s" in r and r.get("loss") is not None]
    gaps = [b["elapsed_s"] - a["elapsed_s"] for a, b in zip(steps, steps[1:]) if b["step"] == a["step"] + 1]
    typical = statistics.median(gaps) if gaps else 0.0
    out, removed, prev = {}, 0.0, None
    for r in steps:
        if "eval" in r and prev is not None:
            removed += max(0.0, r["elapsed_s"] - prev - typical)
        out[r["step"]] = (r["elapsed_s"] - removed) / 60
        prev = r["elapsed_s"]
    return out


def coordinate_losses(model, processor, data: Path, limit: int) -> dict[str, float]:
    """Per headline benchmark, the held-out answer loss on the coordinate tokens of its task."""
    from llava_st.embedded.reproduce import held_out_losses

    return {b: loss.coord_loss for b, loss in held_out_losses(model, processor, data, limit).items()}


def loss_points(run: Path, limit: int) -> list[dict]:
    """Held-out coordinate losses of every kept checkpoint of every finished stage and of the final
    model, at their minutes of training (as in :func:`main`)."""
    from llava_st.model import LlavaSTModel
    from llava_st.processor import LlavaSTProcessor
    from llava_st.train.checkpoint import list_checkpoints, load_checkpoint_model

    data = run / "eval-data"
    offset, points = 0.0, []
    for stage in STAGES:
        if not (run / "done" / f"{stage}.json").is_file():
            break
        minutes = training_minutes(_records(run / stage / "metrics.jsonl"))
        for step, folder in list_checkpoints(run / stage):
            losses = coordinate_losses(*load_checkpoint_model(folder), data, limit)
            points.append({"stage": stage, "step": step, "minutes": round(offset + minutes[step], 2), "coord_loss": losses})
            print(stage, step, {b: round(v, 3) for b, v in losses.items()}, flush=True)
        offset += max(minutes.values())
    model = run / "model"
    if model.is_dir():
        losses = coordinate_losses(LlavaSTModel.from_pretrained(model), LlavaSTProcessor.from_pretrained(model), data, limit)
        points.append({"stage": "model", "minutes": round(offset, 2), "coord_loss": losses})
    return points


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a build-tiny folder")
    parser.add_argument("--loss", type=int, default=0, metavar="N",
                        help="also the held-out coordinate loss of every kept checkpoint, on the first N samples a task")
    args = parser.parse_args()
    run = args.run
    if args.loss < 0:
        parser.error(f"--loss must be >= 0, got {args.loss}")

    offset = 0.0
    points = []
    for stage in STAGES:
        done = run / "done" / f"{stage}.json"
        if not done.is_file():
            break
        records = _records(run / stage / "metrics.jsonl")
        minutes = training_minutes(records)
        for r in records:
            if "eval" in r:
                points.append({"stage": stage, "step": r["step"], "minutes": round(offset + minutes[r["step"]], 2),
                               "samples": "first", "metrics": {b: r["eval"][b][m] for b, (m, _) in HEADLINE.items()
                                                                if b in r["eval"]}})
        offset += max(minutes.values())
    summary_path = run / "eval" / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
    if summary:
        points.append({"stage": "model", "minutes": round(offset, 2), "samples": "all",
                       "metrics": {b: v["model"] for b, (_, v) in summary["headline"].items()}})
    if not points:
        raise SystemExit(f"{run}: no evaluations yet (stage 0's eval section writes them)")
    result = {
        "benchmark": "embedded_curves",
        "run": str(run),
        "headline": {b: m for b, (m, _) in HEADLINE.items()},
        "targets": {b: t for b, (_, t) in HEADLINE.items()},
        "constants": {b: v["constant"] for b, (_, v) in summary["headline"].items()} if summary else None,
        "points": points,
        "loss_samples": args.loss or None,
        "loss_points": loss_points(run, args.loss) if args.loss else None,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "embedded_curves.json").write_text(json.dumps(result, indent=1) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = 2 if result["loss_points"] else 1
    fig, grid = plt.subplots(rows, len(HEADLINE), figsize=(4 * len(HEADLINE), 3.4 * rows), sharex=True, squeeze=False)
    axes = grid[0]
    for ax, (bench, (metric, target)) in zip(axes, HEADLINE.items()):
        curve = [(p["minutes"], p["metrics"][bench]) for p in points if p["samples"] == "first" and bench in p["metrics"]]
        if curve:
            ax.plot(*zip(*curve), "o-", label="stage 0 (first held-out samples)")
        final = [(p["minutes"], p["metrics"][bench]) for p in points if p["samples"] == "all"]
        if final:
            ax.plot(*zip(*final), "s", color="black", label="final model (whole held-out set)")
        ax.axhline(target, color="green", ls="--", label="target")
        if result["constants"]:
            ax.axhline(result["constants"][bench], color="grey", ls=":", label="best constant answer")
        ax.set_title(f"{bench} {metric}")
        ax.set_xlabel("minutes of training (2 cores)")
        ax.set_ylim(0, 100)
    axes[0].legend(fontsize=7, loc="upper left")
    if result["loss_points"]:
        for ax, bench in zip(grid[1], HEADLINE):
            curve = [(p["minutes"], p["coord_loss"][bench]) for p in result["loss_points"] if p["stage"] != "model"]
            if curve:
                ax.plot(*zip(*curve), "o-", color="tab:red", label="checkpoints")
            final = [(p["minutes"], p["coord_loss"][bench]) for p in result["loss_points"] if p["stage"] == "model"]
            if final:
                ax.plot(*zip(*final), "s", color="black", label="final model")
            # before the LLM has trained (tower step) or seen a clip (one-object and REC steps), losses are far above the rest
            ax.set_ylim(0, 5)
            ax.set_title(f"{bench} held-out coordinate loss")
            ax.set_xlabel("minutes of training (2 cores)")
        grid[1][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / "embedded_curves.png", dpi=110)
    for p in points:
        print(p["stage"], p.get("step", ""), f"{p['minutes']:.1f} min", {b: round(v, 1) for b, v in p["metrics"].items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
