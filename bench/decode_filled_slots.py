"""Compiled static decoding attending to the cache's filled slots (the path as built) against the
whole cache bucket (the path before: what CUDA graphs still do), in interleaved rounds.

Debug-size LLM (``model_decode.py``'s ``cpu-tiny`` preset), a random prompt of ``--context``
tokens, ``--new-tokens`` greedy tokens at batch 1 and ``--batch``; each mode compiles into its
own store (the first round warms up and is not timed). Reports tokens/s per mode and batch and
``filled_speedup_batch8`` (filled / whole tokens/s at the large batch) and the batch ratio of each.

    PYTHONPATH=bench python bench/decode_filled_slots.py --threads 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import write_result  # noqa: E402
from model_decode import build, summary  # noqa: E402


@torch.no_grad()
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds (after one warm-up round)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from llava_st.model import static_decode as sd

    load_start = [round(v, 2) for v in os.getloadavg()]
    ours, _ = build("cpu-tiny", "cpu", torch.float32)
    v = ours.config.text.vocab_size
    g = torch.Generator().manual_seed(2)
    prompts = {b: torch.randint(0, v - 20, (b, args.context), generator=g) for b in (1, args.batch)}
    # "whole": the step treated as under CUDA graphs, which attend to the whole bucket
    modes = {"filled": sd.StaticDecoder._cuda_graphs, "whole": property(lambda self: True)}
    stores = {m: sd.DecodeCache() for m in modes}
    rates = {m: {b: [] for b in prompts} for m in modes}
    try:
        for r in range(args.rounds + 1):
            for m, prop in modes.items():
                sd.StaticDecoder._cuda_graphs = prop
                ours.__dict__["_decode_cache"] = stores[m]
                for b, ids in prompts.items():
                    out = ours.generate(ids, decoder="compiled", max_new_tokens=args.new_tokens, eos_token_ids=())
                    if r > 0:
                        rates[m][b].append(b * args.new_tokens / out.decode_seconds)
    finally:
        sd.StaticDecoder._cuda_graphs = modes["filled"]
    many = args.batch
    med = {m: {b: statistics.median(x) for b, x in per.items()} for m, per in rates.items()}
    result = {
        f"filled_speedup_batch{many}": med["filled"][many] / med["whole"][many],
        "filled_speedup_batch1": med["filled"][1] / med["whole"][1],
        f"batch{many}_ratio": {m: med[m][many] / med[m][1] for m in modes},
        "tokens_per_s": {m: {f"batch{b}": summary(x) for b, x in per.items()} for m, per in rates.items()},
        "settings": {"preset": "cpu-tiny", "context": args.context, "new_tokens": args.new_tokens, "batch": many,
                     "rounds": args.rounds, "threads": torch.get_num_threads()},
        "load_average_start": load_start,
        "load_average_end": [round(v, 2) for v in os.getloadavg()],
    }
    path = write_result("decode_filled_slots", result)
    print({k: result[k] for k in result if "speedup" in k or "ratio" in k}, "->", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
