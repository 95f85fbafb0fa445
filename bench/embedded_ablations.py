"""Ablations of the embedded model's training plan, all at one equal, reduced budget.

Each variant is ``llava-st build-tiny`` at ``--scale`` (every stage's step count times the
scale) with one change, trained on the same data (copied from a finished build, which
must have its ``data``, ``data-single``, ``data-images``, ``eval-data`` and ``tokenizer`` steps done) and
evaluated on the same first ``--limit`` held-out samples of each headline benchmark. The
variants stop after stage 0 (its steps learn; the release's stages 1-3 are short
fine-tunes of it), except ``no-stage0``, which spends the same number of optimizer steps in
the release's stages 1, 2 and 3 (in their proportions), from the same random
initialisation (sine/cosine coordinate tables included). A variant that leaves a step out
gives its optimizer steps to the step that follows it:

* ``ours``: the plan as built (``recipes/embedded``);
* ``no-lape``: LAPE's positional signal left out of the visual features;
* ``no-ntp``: the coordinate tables trained without neighbouring token propagation;
* ``no-fast-stream``: the fast stream not written into the LLM (the release's quirk);
* ``no-curriculum``: none of the one-object, REC and video steps: from the tower step
  straight to every task on every scene;
* ``no-rec-step``: no REC-only step (the one-object step, then the video step);
* ``no-video-step``: no video step (the REC step, then every task);
* ``no-tower-step``: no tower step: the one-object step starts from a fresh model and
  trains the tower beside the answers;
* ``no-grey``: the tower step without its grey images (every image in colour);
* ``random-tables``: the coordinate tables at random rows instead of sine/cosine ones;
* ``no-stage0``: the release's stages only;
* ``no-aux``: stage 0's LLM steps without their auxiliary losses (answers only);
* ``attend``: the ``attend`` loss on (the last layer's head 0 trained to attend where the
  pointer target says, at the positions that write a coordinate) in stage 0's LLM steps;
* ``ours-seed1``: the plan again with another training seed (initialisation, data order):
  the run-to-run spread that a difference between variants has to exceed;
* ``media-last``: the media after the question (our option; the plan keeps the release's
  layout, media first), so the visual positions of the causal LLM can read the phrase.

The tables of earlier plans are kept: ``bench/results/embedded_ablations_plan1.json`` (one-object
step then every task, no tower or REC step) and ``embedded_ablations_plan2.json`` (tower,
one-object and REC steps, no video step; two variants).

Each variant is also scored by its held-out answer loss (:func:`llava_st.train.validation.answer_loss`)
on the whole held-out ``test/<task>.json`` of REC, TVG, STVG and SVG: greedy scores move in steps
and sit near the best constant answer until a skill is nearly learnt, so at a short budget the loss
is what separates the variants (lower is better; every variant shares the tokenizer, so the answer
tokens are the same).

Writes ``bench/results/embedded_ablations.json`` (one row per variant: every metric of the four
benchmarks, the held-out answer losses, train seconds, the settings and the machine) and prints a
Markdown table. Rerunning it re-scores finished variants without training them again.

    python bench/embedded_ablations.py --data-from runs/embedded-v5 --out runs/ablations3 --scale 0.1
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import RESULTS, machine  # noqa: E402

from llava_st.embedded.reproduce import HEADLINE, STAGES, BuildSettings, build, evaluate, held_out_losses  # noqa: E402
from llava_st.model import LlavaSTModel  # noqa: E402
from llava_st.processor import LlavaSTProcessor  # noqa: E402
from llava_st.train.recipe import load_recipe  # noqa: E402

STAGE0 = tuple(s for s in STAGES if s.startswith("stage0"))
#: stage 0's steps that run the LLM (the tower step trains the tower on its own)
LLM_STEPS = tuple(s for s in STAGE0 if s != "stage0-tower")
AUX = ("attributes", "boxes", "pointer", "referred")
SHARED_STEPS = ("data", "data-single", "data-images", "eval-data", "tokenizer")
def scored_losses(model_dir: Path, data: Path) -> dict[str, dict]:
    """Per headline benchmark, the held-out answer loss of the model in ``model_dir`` on its whole task file."""
    model = LlavaSTModel.from_pretrained(model_dir)
    losses = held_out_losses(model, LlavaSTProcessor.from_pretrained(model_dir), data)
    return {b: loss.to_dict() for b, loss in losses.items()}


def _steps(stage: str, scale: float, recipes: Path) -> int:
    return max(1, round(load_recipe(recipes / f"{stage}.yaml").schedule.max_steps * scale))


def variants(scale: float, out: Path, recipes: Path) -> dict[str, tuple[tuple[str, ...], list[str]]]:
    """Variant name -> (stages run, build-tiny overrides)."""
    steps = {s: _steps(s, scale, recipes) for s in STAGE0}
    budget = sum(steps[s] for s in LLM_STEPS)
    tokenizer = str((out / "tokenizer").resolve())
    fresh = ["model.path=null", "model.zoo=tiny", f"model.tokenizer={tokenizer}", "model.coord_tables_init=sincos"]
    # the release's stages from the same random start, given stage 0's LLM steps in their proportions
    release = {s: load_recipe(recipes / f"{s}.yaml").schedule.max_steps for s in ("stage1", "stage2", "stage3")}
    shares = {s: max(1, round(budget * n / sum(release.values()))) for s, n in release.items()}
    first = STAGE0[0]  # where the model is made: its architecture and initialisation options go here
    quiet = [f"{s}:eval.every=0" for s in LLM_STEPS]  # no learning-curve evaluations inside the ablations
    without = lambda *gone: tuple(s for s in STAGE0 if s not in gone)  # noqa: E731
    table = {
        "ours": (STAGE0, []),
        "no-lape": (STAGE0, [f"{first}:model.use_lape=false"]),
        "no-ntp": (STAGE0, ["ntp=false"]),
        "no-fast-stream": (STAGE0, [f"{first}:model.inject_fast_stream=false"]),
        "no-curriculum": (without("stage0-single", "stage0-rec", "stage0-video"), [f"stage0:schedule.max_steps={budget}"]),
        "no-rec-step": (without("stage0-rec"),
                        [f"stage0-video:schedule.max_steps={steps['stage0-rec'] + steps['stage0-video']}"]),
        "no-video-step": (without("stage0-video"),
                          [f"stage0:schedule.max_steps={steps['stage0-video'] + steps['stage0']}"]),
        "no-tower-step": (without("stage0-tower"), [f"stage0-single:{o}" for o in fresh]
                          + ["stage0-single:trainable.vision_tower=true"]),
        "no-grey": (STAGE0, ["stage0-tower:auxiliary.grey=0"]),
        "random-tables": (STAGE0, [f"{first}:model.coord_tables_init=keep"]),
        "no-stage0": (("stage1", "stage2", "stage3"), [
            *[f"stage1:{o}" for o in fresh], *[f"{s}:schedule.max_steps={n}" for s, n in shares.items()]]),
        "no-aux": (STAGE0, [f"{s}:auxiliary.{k}=0" for s in LLM_STEPS for k in AUX]),
        "attend": (STAGE0, [f"{s}:auxiliary.attend=1" for s in LLM_STEPS]),
        "ours-seed1": (STAGE0, [f"{s}:seed=1" for s in STAGE0]),
        "media-last": (STAGE0, [f"{first}:model.media_position=last"]),
    }
    return {name: (stages, quiet + overrides) for name, (stages, overrides) in table.items()}


def share_data(source: Path, out: Path) -> None:
    """Link the finished build's data, evaluation data and tokenizer into ``out`` and mark them done."""
    (out / "done").mkdir(parents=True, exist_ok=True)
    for step in SHARED_STEPS:
        marker = source / "done" / f"{step}.json"
        if not marker.is_file():
            raise SystemExit(f"{source} has not finished its {step!r} step ({marker} is missing)")
        link = out / step
        if not link.exists():
            link.symlink_to((source / step).resolve(), target_is_directory=True)
        shutil.copy(marker, out / "done" / f"{step}.json")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-from", type=Path, required=True, help="a build-tiny folder whose data steps are done")
    parser.add_argument("--out", type=Path, default=Path("runs/ablations3"))
    parser.add_argument("--scale", type=float, default=0.2, help="the budget: every stage's steps times this")
    parser.add_argument("--limit", type=int, default=96, help="held-out samples per benchmark")
    parser.add_argument("--only", nargs="*", help="run these variants only (default: all)")
    parser.add_argument("--recipes", type=Path, default=BuildSettings(out=Path(".")).recipes)
    args = parser.parse_args()
    # a kill unwinds like an exception, so the training DataLoader's workers end with the run
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    table = variants(args.scale, args.out / "ours", args.recipes)
    names = args.only or list(table)
    unknown = sorted(set(names) - set(table))
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {list(table)}")
    path = RESULTS / "embedded_ablations.json"
    rows = json.loads(path.read_text())["variants"] if path.is_file() else {}
    for name in names:
        stages, overrides = table[name]
        out = args.out / name
        share_data(args.data_from, out)
        settings = BuildSettings(out=out, scale=args.scale, overrides=overrides, stages=stages, evaluate=False)
        t0 = time.perf_counter()
        model = build(settings)
        train_s = sum(json.loads((out / "done" / f"{s}.json").read_text())["seconds"] for s in stages)
        reports = evaluate(model, out / "eval-data", out / "eval", limit=args.limit)
        losses = scored_losses(model, out / "eval-data")
        rows[name] = {
            "stages": list(stages),
            "overrides": overrides,
            "steps": {s: json.loads((out / "done" / f"{s}.json").read_text()).get("steps") for s in stages},
            "stage_s": {s: json.loads((out / "done" / f"{s}.json").read_text())["seconds"] for s in stages},
            "train_s": train_s,
            "wall_s": round(time.perf_counter() - t0, 1),
            "metrics": {b: reports[b]["metrics"][m] for b, (m, _) in HEADLINE.items()},
            "all_metrics": {b: reports[b]["metrics"] for b in HEADLINE},
            "answer_loss": losses,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({
            "benchmark": "embedded_ablations",
            "settings": {"scale": args.scale, "limit": args.limit, "data_from": str(args.data_from),
                         "all_stages": list(STAGES)},
            "headline": {b: m for b, (m, _) in HEADLINE.items()},
            "machine": machine(),
            "variants": rows,
        }, indent=1) + "\n")
        print(f"{name}: " + ", ".join(f"{b} {v:.1f} (loss {losses[b]['loss']:.3f})"
                                      for b, v in rows[name]["metrics"].items()), flush=True)
    print("\n| variant | " + " | ".join(f"{b} {m} / loss" for b, (m, _) in HEADLINE.items()) + " | train min |")
    print("|---" * (len(HEADLINE) + 2) + "|")
    for name, row in rows.items():
        cells = [f"{row['metrics'][b]:.1f} / {row['answer_loss'][b]['loss']:.3f}" if "answer_loss" in row
                 else f"{row['metrics'][b]:.1f} / -" for b in HEADLINE]
        print(f"| {name} | " + " | ".join(cells) + f" | {row['train_s'] / 60:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
