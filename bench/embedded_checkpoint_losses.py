"""Held-out coordinate losses of embedded-model checkpoints, to compare training plans at one budget.

For each checkpoint folder given (a training checkpoint, ``<stage>/step-N``), the held-out
answer loss (:func:`llava_st.embedded.reproduce.held_out_losses`) on the coordinate tokens of
REC, TVG, STVG and SVG, over the whole held-out split of ``--data`` (or its first ``--limit``
samples per task). Greedy scores move in steps; the loss separates two plans at a short budget.
Writes ``bench/results/<--name>.json``.

    python bench/embedded_checkpoint_losses.py runs/embedded-v5/stage0-video/step-1000 \\
        runs/embedded-v6/stage0-video/step-600 --data runs/embedded/eval-data --name embedded_visibility_step
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import write_result  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", type=Path, nargs="+", help="training checkpoint folders (<stage>/step-N)")
    parser.add_argument("--data", type=Path, required=True, help="the ST-Synth evaluation folder (build-tiny's eval-data)")
    parser.add_argument("--limit", type=int, help="the first N held-out samples of each task (default: all)")
    parser.add_argument("--name", default="embedded_checkpoint_losses", help="result file name under bench/results")
    args = parser.parse_args()
    from llava_st.embedded.reproduce import held_out_losses
    from llava_st.train.checkpoint import load_checkpoint_model

    rows = {}
    for folder in args.checkpoints:
        model, processor = load_checkpoint_model(folder)
        with torch.no_grad():
            losses = held_out_losses(model, processor, args.data, args.limit)
        rows[str(folder)] = {b: {"coord_loss": v.coord_loss, "coord_tokens": v.coord_tokens, "samples": v.samples}
                             for b, v in losses.items()}
        print(folder, {b: round(v.coord_loss, 4) for b, v in losses.items()}, flush=True)
    path = write_result(args.name, {"benchmark": "embedded_checkpoint_losses", "data": str(args.data),
                                    "limit": args.limit, "checkpoints": rows})
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
