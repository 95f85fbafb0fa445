"""``llava-st train``: run one training stage from a recipe (SPEC §8).

Example (one CPU or one GPU)::

    llava-st train --recipe recipes/tiny/stage1.yaml optim.lr=5e-4 schedule.max_steps=50

Several GPUs or nodes: start the same command under ``accelerate launch`` with
an engine config from ``recipes/engines`` (DDP, FSDP, DeepSpeed ZeRO-2/3)::

    accelerate launch --config_file recipes/engines/ddp.yaml -m llava_st train --recipe ...

``key=value`` arguments override recipe keys (typed, checked). ``--resume``
continues from the newest checkpoint in ``output.dir`` (weights, optimizer,
schedule, generator states and data position). ``--skip-bad`` counts, logs and
skips samples that fail to load instead of stopping at the first one.

Prints the run's summary as JSON on the main process. Exit codes: 0 done;
2 bad input (recipe, data, model folder); 1 an I/O failure.
"""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipe", required=True, help="a stage recipe YAML (recipes/...)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="recipe overrides, e.g. optim.lr=1e-4")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint of output.dir")
    parser.add_argument(
        "--skip-bad", action="store_true", help="skip samples that fail to load (counted and reported), do not stop"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")


def run(args: argparse.Namespace) -> int:
    from ..train.loop import train
    from ..train.recipe import load_recipe

    overrides = list(args.overrides)
    if args.skip_bad:
        overrides.append("data.skip_bad=true")
    recipe = load_recipe(args.recipe, overrides)
    result = train(recipe, resume=args.resume, progress=not args.no_progress)
    import os

    if int(os.environ.get("RANK", "0")) == 0:
        summary = {k: v for k, v in result.to_dict().items() if k != "eval"}
        print(json.dumps(summary, indent=1, default=str))
    return 0
