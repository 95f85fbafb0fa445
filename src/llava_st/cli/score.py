"""``llava-st score``: score a predictions file against a benchmark's annotations (no model, no media).

Example::

    llava-st score --bench stvg --data st-align/stvg.json --predictions preds.jsonl --out report.json
    llava-st score --bench refcoco --data refcoco/refcoco_val.json --predictions p.jsonl --published-compat --out r.json

Writes the JSON report to ``--out`` and a markdown table beside it (same
name, ``.md``), and prints the markdown.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..eval.base import AnnotationError, PredictionError, ReleaseCrash
from ..eval.benchmarks import BENCHMARKS, get_benchmark, infer_split
from ..eval.report import markdown
from ..eval.scoring import read_predictions, score
from ..protocol.tokens import RELEASE_BINS, BinCounts
from ._args import count, positive


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bench", required=True, choices=BENCHMARKS, help="which benchmark the file belongs to")
    parser.add_argument("--data", required=True, type=Path, help="the benchmark's annotation file (released format)")
    parser.add_argument(
        "--predictions", required=True, type=Path, help='JSONL, one {"id": position, "answer": text} per line'
    )
    parser.add_argument("--out", required=True, type=Path, help="report JSON to write (a .md table is written beside it)")
    parser.add_argument(
        "--published-compat",
        action="store_true",
        help="reproduce the authors' released scorer, bugs included, under its key names (default: canonical)",
    )
    parser.add_argument(
        "--split", default=None, help="RefCOCO split (val, testA, testB, test) for the published comparison, or "
        "ActivityNet Captions split (val_1, val_2); default: read from the file name"
    )
    parser.add_argument("--num-frames", type=positive, default=100, help="frames sampled per clip (ST-Align; default 100)")
    parser.add_argument("--limit", type=count, default=None, help="score only the first N samples of the evaluated set")
    parser.add_argument(
        "--num-bins", type=BinCounts.parse, default=RELEASE_BINS, metavar="N|TIME,SPACE",
        help="bins per axis of the model that wrote the answers (canonical mode; default: the release's "
        f"{RELEASE_BINS.time}; published mode always reads with the release's)",
    )


def run(args: argparse.Namespace) -> int:
    mode = "published" if args.published_compat else "canonical"
    bench = get_benchmark(args.bench, bins=args.num_bins)
    split = args.split or infer_split(args.bench, args.data)
    try:
        samples = bench.load(args.data)
        answers = read_predictions(args.predictions)
        report = score(
            bench,
            samples,
            answers,
            mode,
            num_frames=args.num_frames,
            limit=args.limit,
            data=args.data,
            split=split,
            predictions=args.predictions,
        )
    except (AnnotationError, PredictionError, ReleaseCrash, ValueError) as exc:
        print(f"llava-st score: {exc}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    md = markdown(report)
    args.out.with_suffix(".md").write_text(md, encoding="utf-8")
    print(md, end="")
    return 0
