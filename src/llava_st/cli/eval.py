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

Videos are sampled at the model's own frame count (``num_frames`` of its
``config.json``; a predictor of your own may say with a ``num_frames``
attribute, else the release's 100) unless ``--num-frames`` says otherwise;
``--published-compat`` always samples 100, as the release.

Exit codes: 0 scored; 2 bad input (a :class:`~llava_st.errors.LlavaSTError`:
options, annotation file, media, model folder, a used run folder), with the
message on stderr; 1 an I/O failure.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError
from ._args import count, positive
from ..protocol.tokens import RELEASE_BINS, BinCounts
from ..eval.benchmarks import BENCHMARKS, default_paths, infer_split
from ..eval.report import markdown
from ..eval.runner import EvalConfig, Predictor, preflight, run_eval
from ..eval.shards import dist_env

BUILTIN_PREDICTOR = "llava_st.eval.predictor:load"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--predictor",
        default=BUILTIN_PREDICTOR,
        help="predictor factory: package.module:function or path/to/file.py:function "
        f"(default {BUILTIN_PREDICTOR}: the LLaVA-ST model named by --model)",
    )
    parser.add_argument(
        "--model", default=None,
        help="model folder, shipped model name or Hugging Face Hub id org/name[@revision], passed to the factory as "
        "model= (default for the built-in predictor: tiny, the model shipped with the package)",
    )
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
    parser.add_argument(
        "--split", default=None, help="RefCOCO split (val, testA, testB, test) or ActivityNet Captions split (val_1, val_2)"
    )
    parser.add_argument("--out", required=True, type=Path, help="run folder")
    parser.add_argument("--limit", type=count, default=None, help="only the first N samples")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out, skipping recorded samples")
    parser.add_argument("--published-compat", action="store_true", help="score as the authors' release does")
    parser.add_argument("--batch-size", type=positive, default=8)
    parser.add_argument(
        "--num-frames", type=positive, default=None,
        help="frames sampled per video (default: the model's own; 100 with --published-compat)",
    )
    parser.add_argument(
        "--num-bins", type=BinCounts.parse, default=None, metavar="N|TIME,SPACE",
        help="bins per axis of the model's answers (canonical mode; default: the predictor's own (the model's, with the built-in "
        f"predictor), else the release's {RELEASE_BINS.time})",
    )
    parser.add_argument("--seed", type=count, default=0, help="prompt seed (canonical mode)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def load_factory(spec: str) -> Callable[..., Any]:
    """``module:function`` or ``file.py:function`` -> the function."""
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name:
        raise ConfigError(f"--predictor must be MODULE:FUNCTION or FILE.py:FUNCTION, got {spec!r}")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise ConfigError(f"--predictor: no such file {path}")
        mod_spec = importlib.util.spec_from_file_location(f"_llava_st_predictor_{path.stem}", path)
        if mod_spec is None or mod_spec.loader is None:
            raise ConfigError(f"--predictor: cannot import {path}")
        module = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as exc:
            raise ConfigError(f"--predictor: cannot import {target}: {exc}") from exc
    factory = getattr(module, name, None)
    if not callable(factory):
        raise ConfigError(f"--predictor: {target} has no function {name!r}")
    return factory


def _options(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--predictor-arg must be KEY=VALUE, got {pair!r}")
        out[key] = value
    return out


def model_config(model: str, revision: str | None = None):
    """The :class:`~llava_st.config.LlavaSTConfig` of a model (folder, shipped name or Hub id); reads ``config.json`` only."""
    from ..config import LlavaSTConfig
    from ..zoo import model_path

    return LlavaSTConfig.from_pretrained(model_path(model, revision=revision))


def run(args: argparse.Namespace) -> int:
    """Run the evaluation; a :class:`~llava_st.errors.LlavaSTError` goes up to :func:`llava_st.cli.main` (exit 2)."""
    mode = "published" if args.published_compat else "canonical"
    data, media = args.data, args.media_root
    if data is None or media is None:
        if args.data_root is None:
            raise ConfigError("give --data-root, or both --data and --media-root")
        d, m = default_paths(args.bench, args.data_root, args.split)
        data, media = data or d, media or m
    split = args.split or infer_split(args.bench, data)
    options = _options(args.predictor_arg)
    builtin = args.predictor == BUILTIN_PREDICTOR
    model = args.model
    if model is None and builtin:
        model = "tiny"  # the model shipped with the package
    if model is not None:
        options["model"] = model
    # In canonical mode the built-in predictor's frame count defaults to the model's
    # own, read from its config.json before the model loads, so that the data, the
    # run folder and a resume are checked first. Bin counts left unset are the
    # predictor's own (the model's), decided by run_eval.
    uses_own = builtin and mode == "canonical"
    revision = options.get("revision") or None
    num_frames = model_config(model, revision).num_frames if args.num_frames is None and uses_own else args.num_frames
    cfg = EvalConfig(
        bench=args.bench,
        data=data,
        media_root=media,
        out_dir=args.out,
        bins=args.num_bins,
        mode=mode,
        split=split,
        num_frames=num_frames,
        batch_size=args.batch_size,
        limit=args.limit,
        resume=args.resume,
        seed=args.seed,
        progress=not args.no_progress,
    )
    env = dist_env()
    preflight(cfg)  # bad data or a used folder fail now, not after the model has loaded
    predictor = load_factory(args.predictor)(**options)
    if not isinstance(predictor, Predictor):
        raise ConfigError(f"--predictor returned {type(predictor).__name__}, which has no ask_batch(requests)")
    report = run_eval(predictor, cfg, env)
    if report is not None:
        print(markdown(report), end="")
    return 0
