"""Load on the REST server: latency and throughput with and without batching, on the loopback address.

``llava-st serve`` runs in its own process on 127.0.0.1 with a media root of
ST-Synth videos and images (the world of the embedded model: 96x96, 6 s
clips). A client sends ``--requests`` (200) requests, ``--concurrency`` (16)
at a time, a quarter of them uploads and the rest paths under the media
root, each asking one of two questions about one of the files with
``--max-new-tokens`` (64). Three runs against three servers:

1. **batched**: ``--max-batch 16`` and the default waits (a batch waits
   20 ms for more requests, or up to 200 ms for requests already accepted
   and still reading their media): concurrent requests are answered
   together by ``LlavaST.ask_batch``;
2. **unbatched**: ``--max-batch 1``: one request at a time, otherwise the same;
3. **overload**: batched with ``--max-queue 4``: requests beyond the queue
   are answered 429 at once.

Before the load, every distinct input is sent alone to the batched server:
its answer is the reference. Every accepted answer of every run must equal
the reference of its input, and no status but 200 and 429 may occur
(``errors`` counts the violations, and must be 0).

``batching_speedup = throughput(batched) / throughput(unbatched)`` (answered
requests per second of wall time; target >= 3). Latency p50/p95 are of
answered requests, seconds from sending to the full answer.

The model is ``--model`` (default ``tiny``, the model shipped with the
package); when that name is not available, a random-weight model of the
``debug`` configuration (12 frames, 9x9 patch grid, 2-layer 64-wide language
model) is built, and the result says so.

    python bench/serve_load.py                       # ~3 min on 2 cores

Writes ``bench/results/serve_load.json`` (or ``--out``), with
``/proc/loadavg`` before and after the runs: the machine is shared, and a
high load makes both throughputs lower and noisier.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _machine import RESULTS, machine  # noqa: E402
from llava_st.serve.loadgen import (  # noqa: E402
    ServerProcess,
    build_calls,
    mismatches,
    reference_answers,
    run_load,
    summarise,
)

QUESTIONS = ["What happens in the video?", "Where is the object?"]


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "unknown"


def resolve_model(name: str, work: Path) -> tuple[str, str]:
    """``(model argument, what it is)``: the named model, or a random debug model when it is not available."""
    from llava_st.errors import LlavaSTError
    from llava_st.zoo import model_path

    try:
        return str(model_path(name)), f"{name} (trained weights)"
    except LlavaSTError as exc:
        from conftest import make_tiny_model_dir

        print(f"model {name!r} is not available ({exc}); using random weights of the debug config", file=sys.stderr)
        folder = make_tiny_model_dir(work / "random-debug-model")
        return str(folder), "random weights, debug config (12 frames, 2-layer 64-wide language model)"


def make_media(root: Path) -> list[str]:
    """Three ST-Synth videos and two images (preset ``embedded``) under ``root``; their names."""
    from llava_st.synth.config import PRESETS
    from llava_st.synth.item import make_image, make_video

    config = PRESETS["embedded"]
    names = []
    for i in range(3):
        names.append(make_video(config, i, frozenset(), root).truth["media"])
    for i in range(2):
        names.append(make_image(config, i, frozenset(), root).truth["media"])
    return names


def one_run(label: str, args: list[str], calls, concurrency: int, reference, work: Path) -> dict:
    print(f"{label}: starting the server ...", file=sys.stderr, flush=True)
    with ServerProcess(args, work / f"server-{label}.log") as server:
        if reference is None:
            reference = reference_answers(server.url, calls)
        outcomes, wall = asyncio.run(run_load(server.url, calls, concurrency))
        stats = server.health()["stats"]
    problems = mismatches(outcomes, reference)
    result = {**summarise(outcomes, wall), "server_batches": stats, "errors": len(problems),
              "error_examples": problems[:5]}
    print(f"{label}: {json.dumps({k: result[k] for k in ('statuses', 'latency_p50_s', 'latency_p95_s', 'throughput_rps', 'errors')})}",
          file=sys.stderr, flush=True)
    return result, reference


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="tiny")
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--max-batch", type=int, default=16)
    p.add_argument("--out", default=str(RESULTS / "serve_load.json"))
    a = p.parse_args()

    load_before = loadavg()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="serve-load-") as tmp:
        work = Path(tmp)
        model, model_kind = resolve_model(a.model, work)
        root = work / "media"
        names = make_media(root)
        calls = build_calls(root, names, QUESTIONS, a.requests, upload_every=4, max_new_tokens=a.max_new_tokens)
        base = ["--model", model, "--media-root", str(root)]  # the server's default batching waits
        batched, reference = one_run("batched", base + ["--max-batch", str(a.max_batch)], calls, a.concurrency, None, work)
        unbatched, _ = one_run("unbatched", base + ["--max-batch", "1"], calls, a.concurrency, reference, work)
        overload, _ = one_run("overload", base + ["--max-batch", str(a.max_batch), "--max-queue", "4"], calls,
                              a.concurrency, reference, work)
    speedup = batched["throughput_rps"] / unbatched["throughput_rps"]
    result = {
        "model": model_kind,
        "requests": a.requests,
        "concurrency": a.concurrency,
        "max_new_tokens": a.max_new_tokens,
        "max_batch": a.max_batch,
        "distinct_inputs": len(reference),
        "uploads_share": 0.25,
        "address": "127.0.0.1 (loopback), server in its own process",
        "batching_speedup": speedup,
        "batching_speedup_target": ">= 3",
        "errors": batched["errors"] + unbatched["errors"] + overload["errors"],
        "batched": batched,
        "unbatched": unbatched,
        "overload_queue_4": overload,
        "seconds": time.perf_counter() - t0,
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
    }
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**result, "machine": machine()}, indent=2) + "\n")
    print(f"batching_speedup {speedup:.2f} (target >= 3); errors {result['errors']}; wrote {out}")
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
