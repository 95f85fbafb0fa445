"""``llava-st eval``: run a predictor on a benchmark, sharded and resumable, and score it.

By default the model is the LLaVA-ST checkpoint named by ``--model``
(:mod:`llava_st.eval.predictor`; ``--predictor-arg device=cuda dtype=bfloat16``).
Any other model is reached through a predictor factory named by ``--predictor``
(``package.module:function`` or ``path/to/file.py:function``): it is called
with ``model=`` the ``--model`` value (when given) and every
``--predictor-arg KEY=VALUE`` as keyword arguments, and returns an object with
``ask_batch(requests) -> list[str]`` (:class:`llava_st.eval.runner.Predictor`).

Example (two GPUs)::

    torchrun --nproc-per-node 2 -m llava_st eval --model ./ckpt --predictor-arg device=cuda \\
        --bench charades-sta --data-root data/benchmarks --out runs/charades

Writes per-rank records, ``predictions.jsonl``, ``report.json`` and ``report.md``
into ``--out``; ``--resume`` continues a killed run.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any, Callable

from ..eval.base import AnnotationError, ReleaseCrash
from ..eval.benchmarks import BENCHMARKS, default_paths, infer_split
from ..eval.report import markdown
from ..eval.runner import EvalConfig, Predictor, preflight, run_eval
from ..eval.shards import dist_env
from ..eval.store import StoreError

BUILTIN_PREDICTOR = "llava_st.eval.predictor:load"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--predictor",
        default=BUILTIN_PREDICTOR,
        help="predictor factory: package.module:function or path/to/file.py:function "
        f"(default {BUILTIN_PREDICTOR}: the LLaVA-ST model named by --model)",
    )
    parser.add_argument("--model", default=None, help="model name or folder, passed to the factory as model=")
    parser.add_argument(
        "--predictor-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra keyword argument for the factory (repeatable; values are text)",
    )
    parser.add_argument("--bench", required=True, choices=BENCHMARKS)
    parser.add_argument("--data-root", type=Path, default=None, help="folder laid out as the release's data/benchmarks")
    parser.add_argument("--data", type=Path, default=None, help="annotation file (default: from --data-root)")
    parser.add_argument("--media-root", type=Path, default=None, help="media folder (default: from --data-root)")
    parser.add_argument("--split", default=None, help="RefCOCO split: val, testA, testB or test")
    parser.add_argument("--out", required=True, type=Path, help="run folder")
    parser.add_argument("--limit", type=int, default=None, help="only the first N samples")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out, skipping recorded samples")
    parser.add_argument("--published-compat", action="store_true", help="score as the authors' release does")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--num-frames", type=int, default=100, help="frames sampled per video (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="prompt seed (canonical mode)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def load_factory(spec: str) -> Callable[..., Any]:
    """``module:function`` or ``file.py:function`` -> the function."""
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name:
        raise ValueError(f"--predictor must be MODULE:FUNCTION or FILE.py:FUNCTION, got {spec!r}")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise ValueError(f"--predictor: no such file {path}")
        mod_spec = importlib.util.spec_from_file_location(f"_llava_st_predictor_{path.stem}", path)
        if mod_spec is None or mod_spec.loader is None:
            raise ValueError(f"--predictor: cannot import {path}")
        module = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    factory = getattr(module, name, None)
    if not callable(factory):
        raise ValueError(f"--predictor: {target} has no function {name!r}")
    return factory


def _options(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--predictor-arg must be KEY=VALUE, got {pair!r}")
        out[key] = value
    return out


def run(args: argparse.Namespace) -> int:
    mode = "published" if args.published_compat else "canonical"
    try:
        data, media = args.data, args.media_root
        if data is None or media is None:
            if args.data_root is None:
                raise ValueError("give --data-root, or both --data and --media-root")
            d, m = default_paths(args.bench, args.data_root, args.split)
            data, media = data or d, media or m
        split = args.split or infer_split(args.bench, data)
        options = _options(args.predictor_arg)
        if args.model is not None:
            options["model"] = args.model
        elif args.predictor == BUILTIN_PREDICTOR:
            raise ValueError("give --model (a model folder or name), or a --predictor of your own")
        cfg = EvalConfig(
            bench=args.bench,
            data=data,
            media_root=media,
            out_dir=args.out,
            mode=mode,
            split=split,
            num_frames=args.num_frames,
            batch_size=args.batch_size,
            limit=args.limit,
            resume=args.resume,
            seed=args.seed,
            progress=not args.no_progress,
        )
        preflight(cfg)  # bad data or a used folder fail now, not after the model has loaded
        predictor = load_factory(args.predictor)(**options)
        if not isinstance(predictor, Predictor):
            raise ValueError(f"--predictor returned {type(predictor).__name__}, which has no ask_batch(requests)")
        report = run_eval(predictor, cfg, dist_env())
    except (AnnotationError, ReleaseCrash, StoreError, RuntimeError, ValueError, OSError) as exc:
        print(f"llava-st eval: {exc}", file=sys.stderr)
        return 1
    if report is not None:
        print(markdown(report), end="")
    return 0
