"""Learning curves of the embedded model: each headline metric against minutes of training.

Reads a ``llava-st build-tiny`` folder: stage 0's periodic evaluations (its recipe's
``eval`` section: the held-out set's first samples of each benchmark, every 250 steps), with
the minutes counted from the start of stage 0's one-object step and the evaluations' own
time taken out; and the finished model's full held-out evaluation (``eval/summary.json``)
after all stages. Writes ``bench/results/embedded_curves.json`` (the points, the best constant
answers and the targets) and ``bench/results/embedded_curves.png``.

    python bench/embedded_curves.py --run runs/embedded
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a build-tiny folder")
    args = parser.parse_args()
    run = args.run

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
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "embedded_curves.json").write_text(json.dumps(result, indent=1) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(HEADLINE), figsize=(4 * len(HEADLINE), 3.4), sharex=True)
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
    fig.tight_layout()
    fig.savefig(RESULTS / "embedded_curves.png", dpi=110)
    for p in points:
        print(p["stage"], p.get("step", ""), f"{p['minutes']:.1f} min", {b: round(v, 1) for b, v in p["metrics"].items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
