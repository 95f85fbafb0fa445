"""A choice inside the compiled static decode step, as built against its alternative, in
interleaved rounds on the same model and prompts.

``--compare filled-slots``: attending to the cache's filled slots (as built) against the whole
cache bucket (the path before, and what CUDA graphs still do). ``--compare attention``: SDPA's
fused kernel (as built) against the same attention written as two grouped matrix products
around a float32 softmax (query heads grouped per key-value head), which inductor fuses with
the mask; tried for the batch-8 step, where attention is a large share, and not kept: on an
idle machine the two were equal within the run-to-run spread.

Debug-size LLM (``model_decode.py``'s ``cpu-tiny`` preset), a random prompt of ``--context``
tokens, ``--new-tokens`` greedy tokens at batch 1 and ``--batch``; each mode compiles into its
own store (the first round warms up and is not timed) and must give the same greedy ids.
Reports tokens/s per mode and batch, ``<built>_speedup_batch<N>`` (as built / alternative
tokens/s, the median of the rounds) and each mode's batch ratio. Writes
``bench/results/decode_filled_slots.json`` or ``bench/results/decode_attention.json``.

    PYTHONPATH=bench python bench/decode_variants.py --compare attention --threads 1
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
from pathlib import Path
from unittest.mock import patch

import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import write_result  # noqa: E402
from model_decode import build, summary  # noqa: E402

from llava_st.model import static_decode as sd  # noqa: E402


def _grouped_attention(q, k, v, attn_mask, scale, enable_gqa=False):
    """SDPA's signature as the step calls it: ``q`` ``[B, H, C, hd]``, ``k``/``v`` ``[B, Hkv, n, hd]``,
    ``attn_mask`` ``[B, 1, C, n]`` (True: attend) -> ``[B, H, C, hd]``; query head ``h`` reads
    key-value head ``h // G``."""
    b, h, c, hd = q.shape
    hkv, n = k.shape[1], k.shape[2]
    groups = h // hkv
    scores = torch.matmul(q.reshape(b, hkv, groups * c, hd), k.transpose(-1, -2))  # [B, Hkv, G*C, n]
    scores = scores.float().view(b, hkv, groups, c, n) * scale
    scores = scores.masked_fill(~attn_mask[:, :, None], float("-inf"))
    weights = torch.softmax(scores, dim=-1).to(v.dtype).view(b, hkv, groups * c, n)
    return torch.matmul(weights, v).view(b, h, c, hd)


class _GroupedF:
    """``torch.nn.functional`` for the step, with its attention replaced by :func:`_grouped_attention`."""

    scaled_dot_product_attention = staticmethod(_grouped_attention)

    def __getattr__(self, name):
        return getattr(F, name)


#: comparison -> (result name, {mode: a context that puts the step in that mode}); the first mode is as built
COMPARISONS = {
    "filled-slots": ("decode_filled_slots", {
        "filled": contextlib.nullcontext,
        # the step treated as under CUDA graphs, which attend to the whole bucket
        "whole": lambda: patch.object(sd.StaticDecoder, "_cuda_graphs", property(lambda self: True)),
    }),
    "attention": ("decode_attention", {
        "sdpa": contextlib.nullcontext,
        "grouped": lambda: patch.object(sd, "F", _GroupedF()),
    }),
}


@torch.no_grad()
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--compare", choices=sorted(COMPARISONS), required=True)
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds (after one warm-up round)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    name, modes = COMPARISONS[args.compare]

    load_start = [round(v, 2) for v in os.getloadavg()]
    ours, _ = build("cpu-tiny", "cpu", torch.float32)
    v = ours.config.text.vocab_size
    g = torch.Generator().manual_seed(2)
    prompts = {b: torch.randint(0, v - 20, (b, args.context), generator=g) for b in (1, args.batch)}
    stores = {m: sd.DecodeCache() for m in modes}
    rates = {m: {b: [] for b in prompts} for m in modes}
    ids = {}
    for r in range(args.rounds + 1):
        for m, mode in modes.items():
            ours.__dict__["_decode_cache"] = stores[m]
            with mode():
                for b, prompt in prompts.items():
                    out = ours.generate(prompt, decoder="compiled", max_new_tokens=args.new_tokens, eos_token_ids=())
                    reference = ids.setdefault(b, out.sequences)  # the first call at this batch size
                    if not torch.equal(out.sequences, reference):
                        raise SystemExit(f"mode {m!r} changed the greedy ids at batch {b} (round {r})")
                    if r > 0:
                        rates[m][b].append(b * args.new_tokens / out.decode_seconds)
    built, other = modes
    many = args.batch
    med = {m: {b: statistics.median(x) for b, x in per.items()} for m, per in rates.items()}
    result = {
        f"{built}_speedup_batch{many}": med[built][many] / med[other][many],
        f"{built}_speedup_batch1": med[built][1] / med[other][1],
        f"batch{many}_ratio": {m: med[m][many] / med[m][1] for m in modes},
        "tokens_per_s": {m: {f"batch{b}": summary(x) for b, x in per.items()} for m, per in rates.items()},
        "settings": {"compare": args.compare, "preset": "cpu-tiny", "context": args.context,
                     "new_tokens": args.new_tokens, "batch": many, "rounds": args.rounds,
                     "threads": torch.get_num_threads()},
        "load_average_start": load_start,
        "load_average_end": [round(v, 2) for v in os.getloadavg()],
    }
    path = write_result(name, result)
    print({k: result[k] for k in result if "speedup" in k or "ratio" in k}, "->", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
