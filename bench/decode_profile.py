"""Where the compiled decode step's time goes, per operator, at batch 1 and at a larger batch.

Debug-size LLM (``model_decode.py``'s ``cpu-tiny`` preset), a random prompt of ``--context``
tokens. For each batch size the generation runs once to compile, then under
``torch.profiler`` twice: with ``--new-tokens`` tokens and with one token. The difference of the
two, divided by the extra steps, is each operator's CPU time per decode step, without the
prefill (the first token comes from the prefill in both); the median of ``--repeats`` such
pairs is kept. Reports the operators above 1% of a
step, ``step_ms`` per batch size and ``extra_ms_per_step``: how much more each operator takes
at the larger batch (the batch ratio is ``batch * step_ms[1] / step_ms[batch]``; profiling adds
a fixed cost per operator call, so the times are larger than unprofiled ones).

    PYTHONPATH=bench python bench/decode_profile.py --threads 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections import Counter
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import write_result  # noqa: E402
from model_decode import build  # noqa: E402


def _op_name(key: str) -> str:
    """The profiler's event name without the per-graph hash or index (so batch sizes line up)."""
    if key.startswith("## Call CompiledFxGraph"):
        return "inductor kernels of the compiled step"
    if key.startswith("Torch-Compiled Region"):
        return "Torch-Compiled Region"
    return key


def _self_times_us(model, prompt: torch.Tensor, new_tokens: int) -> Counter:
    """Self CPU microseconds per operator over one compiled generation of ``new_tokens`` tokens."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model.generate(prompt, decoder="compiled", max_new_tokens=new_tokens, eos_token_ids=())
    times = Counter()
    for event in prof.key_averages():
        times[_op_name(event.key)] += event.self_cpu_time_total
    return times


@torch.no_grad()
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=7, help="profiled pairs per batch size (the median is kept)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load_start = [round(v, 2) for v in os.getloadavg()]
    model, _ = build("cpu-tiny", "cpu", torch.float32)
    g = torch.Generator().manual_seed(2)
    per_step = {}
    for b in (1, args.batch):
        prompt = torch.randint(0, model.config.text.vocab_size - 20, (b, args.context), generator=g)
        model.generate(prompt, decoder="compiled", max_new_tokens=args.new_tokens, eos_token_ids=())  # compile
        runs = []
        for _ in range(args.repeats):
            diff = _self_times_us(model, prompt, args.new_tokens)
            diff.subtract(_self_times_us(model, prompt, 1))
            runs.append(diff)
        ops = set().union(*runs)
        # ms per step, the median over the repeats
        per_step[b] = {op: statistics.median(r[op] for r in runs) / (args.new_tokens - 1) / 1e3 for op in ops}
    step_ms = {b: sum(max(v, 0.0) for v in ops.values()) for b, ops in per_step.items()}
    big = args.batch
    shown = sorted((op for op in per_step[big] if per_step[big][op] > 0.01 * step_ms[big]),
                   key=lambda op: -per_step[big][op])
    result = {
        f"batch{big}_ratio_profiled": big * step_ms[1] / step_ms[big],
        "step_ms": {f"batch{b}": round(v, 4) for b, v in step_ms.items()},
        "ops_ms_per_step": {op: {f"batch{b}": round(per_step[b].get(op, 0.0), 4) for b in per_step} for op in shown},
        "extra_ms_per_step": {op: round(per_step[big][op] - per_step[1].get(op, 0.0), 4) for op in shown},
        "settings": {"preset": "cpu-tiny", "context": args.context, "new_tokens": args.new_tokens, "batch": big,
                     "threads": torch.get_num_threads(),
                     "repeats": args.repeats},
        "load_average_start": load_start,
        "load_average_end": [round(v, 2) for v in os.getloadavg()],
    }
    path = write_result("decode_profile", result)
    print(f"step ms {result['step_ms']}; extra ms per step at batch {big}:")
    for op, ms in result["extra_ms_per_step"].items():
        print(f"  {op[:60]:60s} {ms:8.4f}  ({result['ops_ms_per_step'][op]})")
    print("->", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
