"""``llava-st build-tiny``: reproduce the embedded model from nothing (data, tokenizer, stages, evaluation).

Example (the shipped model; about the time the README states on 2 CPU cores)::

    llava-st build-tiny --out runs/embedded

Running it again continues where it stopped: finished steps are skipped and a
stage that was interrupted resumes from its last checkpoint. ``--scale``
multiplies every stage's number of steps (ablations at a smaller budget);
``--set key=value`` overrides a field of every stage's recipe (e.g.
``auxiliary.pointer=0`` for an ablation); ``--ship`` then installs the model
(with its held-out summary, ``EVAL.json``) as the package's ``tiny``. See
:mod:`llava_st.embedded.reproduce`.
"""

from __future__ import annotations

import argparse
import json

from ._args import count, number, positive


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="run folder (data, tokenizer, stages, model, eval)")
    parser.add_argument("--videos", type=count, default=4000, help="videos of the training set")
    parser.add_argument("--images", type=count, default=8000, help="images of the training set")
    parser.add_argument("--scale", type=number(lambda x: x > 0, "a number > 0"), default=1.0,
                        help="multiply every stage's steps")
    parser.add_argument("--workers", type=positive, default=2, help="ST-Synth worker processes")
    parser.add_argument("--stages", nargs="+", help="run these stages only, in plan order (default: the whole plan, "
                        "stage0-tower to stage3); a stage left out hands its model on unchanged")
    parser.add_argument("--no-eval", action="store_true", help="stop after writing the model (no held-out evaluation)")
    parser.add_argument("--ship", action="store_true",
                        help="then install the model as the package's 'tiny' (a source checkout's src/llava_st/embedded/model)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="recipe override for every stage, or STAGE:KEY=VALUE for one stage (repeatable)")


def run(args: argparse.Namespace) -> int:
    from ..embedded.reproduce import STAGES, BuildSettings, build, ship

    settings = BuildSettings(out=args.out, videos=args.videos, images=args.images, scale=args.scale,
                             workers=args.workers, overrides=list(args.set),
                             stages=tuple(args.stages) if args.stages else STAGES, evaluate=not args.no_eval)
    model = build(settings)
    shipped = ship(settings.out) if args.ship else None
    print(json.dumps({"model": str(model), **({"shipped": str(shipped)} if shipped else {})}))
    return 0
