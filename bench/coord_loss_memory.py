"""Peak memory of the coordinate loss against plain cross-entropy (issue 3, benchmark 2).

L = 8192 supervised positions, vocabulary 32,000 + 300 bins, float32 logits
that require grad. Each variant runs forward + backward in a fresh process
(``--variant``), and its peak is measured from the moment the logits exist:

* ``plain``: ``F.cross_entropy(logits, labels)`` with one-hot labels;
* ``coordinate``: our sparse two-hot loss (:func:`build_targets` +
  :func:`coordinate_loss`) with 10% of the positions coordinate labels;
* ``dense``: the release's approach for reference, a dense ``[L, V + 300]``
  two-hot target and soft-target cross-entropy.

On CPU the peak is the process' peak resident memory (glibc serves these
large tensors with mmap, so freed blocks leave the resident set); on CUDA it
is ``torch.cuda.max_memory_allocated``. Writes
``bench/results/coord_loss_memory[_cuda].json`` with ``peak_memory_ratio``
(coordinate / plain, target <= 1.05).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

import torch
from torch.nn import functional as F

from _machine import write_result
from llava_st.model.loss import build_targets, coordinate_loss
from llava_st.protocol.tokens import BinCounts, SpecialTokenIds

V, BINS = 32000, 100


def _rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_variant(variant: str, length: int, device: str) -> dict:
    ids = SpecialTokenIds.release_layout(V)
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, V - 14, (1, length + 1), generator=g)
    values = torch.full(labels.shape, float("nan"), dtype=torch.float64)
    coord = torch.rand(labels.shape, generator=g) < 0.1
    labels[coord] = ids.width_output
    values[coord] = torch.rand(int(coord.sum()), generator=g, dtype=torch.float64)
    rows, tid, tw = build_targets(labels, values, ids, BinCounts(BINS, BINS))
    hard = labels[0, 1:].clone()
    hard[hard >= V] = 0
    labels, values, rows, tid, tw, hard = (t.to(device) for t in (labels, values, rows, tid, tw, hard))
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _rss_bytes()
    logits = torch.randn(length, V + 3 * BINS, device=device, generator=None, requires_grad=True)
    if variant == "plain":
        loss = F.cross_entropy(logits, hard)
    elif variant == "coordinate":
        loss = coordinate_loss(logits, tid, tw)
    elif variant == "dense":
        target = torch.zeros_like(logits)
        target.scatter_add_(1, tid, tw)
        loss = -(target * logits.log_softmax(-1)).sum(-1).mean()
    else:
        raise ValueError(variant)
    loss.backward()
    if device == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = _rss_bytes() - base
    return {"variant": variant, "peak_bytes": peak, "logits_bytes": logits.numel() * logits.element_size(),
            "loss": float(loss)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--length", type=int, default=8192)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.length, args.device)))
        return
    runs = {}
    for variant in ("plain", "coordinate", "dense"):
        out = subprocess.run([sys.executable, __file__, "--variant", variant, "--length", str(args.length),
                              "--device", args.device], capture_output=True, text=True, check=True)
        runs[variant] = json.loads(out.stdout.strip().splitlines()[-1])
    gib = 2**30
    result = {
        "peak_memory_ratio": runs["coordinate"]["peak_bytes"] / runs["plain"]["peak_bytes"],
        "target": "<= 1.05",
        "dense_target_ratio_for_reference": runs["dense"]["peak_bytes"] / runs["plain"]["peak_bytes"],
        "peak_gib": {k: r["peak_bytes"] / gib for k, r in runs.items()},
        "logits_gib": runs["plain"]["logits_bytes"] / gib,
        "settings": {"length": args.length, "vocab": V, "bins": 3 * BINS, "dtype": "float32", "device": args.device,
                     "measure": "torch.cuda.max_memory_allocated" if args.device == "cuda" else "peak RSS (ru_maxrss)",
                     "coordinate_label_share": 0.1},
    }
    path = write_result("coord_loss_memory" + ("_cuda" if args.device == "cuda" else ""), result)
    print(json.dumps({k: v for k, v in result.items() if k != "settings"}, indent=1), "->", path)


if __name__ == "__main__":
    main()
