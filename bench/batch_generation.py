"""Batched asking against one-by-one asking, and how well loading media overlaps generation.

Three measurements on random-weight models with the ``debug`` vision part
(12 frames per video); every request generates exactly its token budget
(end-of-turn disabled), so both sides of a comparison produce the same tokens.

1. ``batch_speedup`` (target >= 5): generated tokens/s of ``ask_batch`` over 8
   requests (one batch, 2 loading threads) / tokens/s of 8 single ``ask``
   calls, tiny language model, ``--new-tokens`` (128) each. Both include
   loading the media; short, small videos keep that part small so the ratio
   measures what batching changes: the decoding steps of the language model.
   ``--rounds`` interleaved rounds (default 5); the median of the per-round
   ratios is reported with its run-to-run range.

2. ``overlap_ratio`` (target <= 0.6): the prefetching loop of
   :mod:`llava_st.infer.pipeline` where loading and generating cost about the
   same. Loading a batch (decoding 640x480 H.264 videos, keyframe every 2 s,
   resizing, encoding the prompt) and generating it (a 1024-wide 8-layer
   language model) are each given one core: one loader decoding with one
   FFmpeg thread (what ``ask_batch`` gives its loaders) and one torch thread,
   so that on a 2-core machine they can run side by side. The token
   budget is calibrated on the machine so that generating a batch takes as
   long as one thread takes to load it. Per round:

   * loading alone: every request's media loaded one after another by one
     thread, decoding with one FFmpeg thread (``load_alone_default_threads_s``
     records the same with FFmpeg's own threading, as a single ``ask`` decodes);
   * generation alone: the already loaded batches generated one after another;
   * the loop: ``ask_batch(..., num_workers=1, processes=True)``: one loader
     process, one batch loaded ahead; the process is started by a warm-up call
     before the rounds (it stays up between calls, as in an evaluation or a
     server; starting it costs ~1-2 s once);
   * the same loop with one loader thread (``processes=False``, the default).

   ``overlap_ratio = loop / (loading alone + generation alone)`` with the
   loader process: 1.0 means no overlap, 0.5 perfect overlap of equal halves
   (the first batch must still load before anything generates).
   ``overlap_ratio_threads`` is the same with a loader thread, which shares
   the interpreter lock with the generation loop. ``overlap_wait_share`` is
   the share of the (process) loop the model waited for media. Medians over
   the rounds, with ranges.

3. ``model_wait_share`` (target <= 0.10): 32 ten-second 320x240 videos in
   batches of 8 (2 loading threads) on the same mid-sized model with the
   default torch threads. A batch costs ~16 s to generate and ~0.4 s to decode
   here, so this mostly shows that the model does not stall on decoding when
   generation dominates, as with real checkpoints; measurement 2 is the one
   that needs the prefetching. The tiny model's share is recorded too.

    PYTHONPATH=bench python bench/batch_generation.py            # ~4 min on 2 idle cores

Writes ``bench/results/batch_generation.json`` (or ``--out``). The tokenizer
comes from the parity fixtures (``LLAVA_ST_PARITY_DIR``, default
``../shared/parity``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import torch

from _machine import machine, write_result
from llava_st.config import TextConfig
from llava_st.infer import LlavaST, Request
from llava_st.model import LlavaSTModel
from llava_st.processor import LlavaSTProcessor
from llava_st.zoo import debug

MID_TEXT = TextConfig(vocab_size=529, hidden_size=1024, intermediate_size=2816, num_hidden_layers=8,
                      num_attention_heads=16, num_key_value_heads=4, bos_token_id=None, eos_token_id=514,
                      pad_token_id=512)
QUESTION = "What happens in this video?"


def write_video(path: Path, seed: int, frames: int, size: tuple[int, int], fps: int, preset: str = "medium") -> Path:
    rng = np.random.default_rng(seed)
    w, h = size
    base = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"g": str(2 * fps), "preset": preset}  # a keyframe every 2 s, as in typical camera/web videos
        for i in range(frames):
            img = np.roll(base, 3 * i, axis=1)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


def build_model(folder: Path, parity: Path, text: TextConfig | None = None) -> LlavaST:
    torch.manual_seed(0)
    cfg = debug(num_frames=12)
    model = LlavaSTModel(cfg if text is None else replace(cfg, text=text))
    model.save_pretrained(folder)
    tok = LlavaSTProcessor.from_pretrained(parity / "model").tokenizer
    LlavaSTProcessor(tok, model.config).save_pretrained(folder)
    return LlavaST.from_pretrained(folder)


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "range": [min(values), max(values)], "rounds": values}


def batch_speedup(st: LlavaST, videos: list[Path], new_tokens: int, rounds: int) -> dict:
    gen = dict(max_new_tokens=new_tokens, eos_token_ids=())
    st.ask_batch([(videos[0], QUESTION)], batch_size=1, num_workers=0, **gen)  # warm-up
    single, batch = [], []
    for _ in range(rounds):  # interleaved, so that a change of machine load hits both sides
        t0 = time.perf_counter()
        singles = [st.ask(v, QUESTION, **gen) for v in videos]
        single.append(sum(a.num_tokens for a in singles) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        batched = st.ask_batch([Request(v, QUESTION) for v in videos], batch_size=len(videos), num_workers=2, **gen)
        batch.append(sum(a.num_tokens for a in batched) / (time.perf_counter() - t0))
        assert sum(a.num_tokens for a in singles) == sum(a.num_tokens for a in batched) == len(videos) * new_tokens
    return {"speedup": summary([b / s for b, s in zip(batch, single)]),
            "tokens_per_s": {"ask_batch": summary(batch), "ask_one_by_one": summary(single)}}


def calibrate_tokens(st: LlavaST, requests: list[Request], batch_size: int) -> tuple[int, dict]:
    """The token budget whose generation of one batch takes as long as loading that batch in one thread."""
    loads = []
    for r in requests[:3]:
        t0 = time.perf_counter()
        st.prepare(r, decoder_threads=1)
        loads.append(time.perf_counter() - t0)
    load_batch = statistics.median(loads) * batch_size
    prepared = [st.prepare(r) for r in requests[:batch_size]]
    cost = {}
    for n in (8, 32):
        st.generate_texts(prepared, max_new_tokens=n, eos_token_ids=())  # warm-up of this shape
        t0 = time.perf_counter()
        st.generate_texts(prepared, max_new_tokens=n, eos_token_ids=())
        cost[n] = time.perf_counter() - t0
    per_token = max((cost[32] - cost[8]) / 24, 1e-6)
    fixed = max(cost[8] - 8 * per_token, 0.0)
    tokens = int(min(1024, max(4, round((load_batch - fixed) / per_token))))
    return tokens, {"load_s_per_batch": load_batch, "generate_s_fixed": fixed, "generate_s_per_token": per_token}


def overlap(st: LlavaST, videos: list[Path], batch_size: int, num_batches: int, rounds: int, tokens: int | None) -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # generation on one core, loading on the other
    try:
        requests = [Request(videos[i % len(videos)], QUESTION) for i in range(batch_size * num_batches)]
        calibration = {}
        if tokens is None:
            tokens, calibration = calibrate_tokens(st, requests, batch_size)
        gen = dict(max_new_tokens=tokens, eos_token_ids=())
        st.ask_batch(requests[:1], batch_size=1, num_workers=1, processes=True, **gen)  # starts the loader process
        per_round = {"load_alone_s": [], "generate_alone_s": [], "loop_s": [], "overlap_ratio": [], "wait_share": [],
                     "loop_threads_s": [], "overlap_ratio_threads": [], "wait_share_threads": [],
                     "load_alone_default_threads_s": []}
        for _ in range(rounds):
            t0 = time.perf_counter()
            prepared = [st.prepare(r, decoder_threads=1) for r in requests]  # as the loop's loaders decode
            load = time.perf_counter() - t0
            t0 = time.perf_counter()
            for r in requests:
                st.prepare(r)  # FFmpeg's own threading, as a single ask() decodes
            per_round["load_alone_default_threads_s"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for lo in range(0, len(prepared), batch_size):
                st.generate_texts(prepared[lo : lo + batch_size], **gen)
            generate = time.perf_counter() - t0
            answers = st.ask_batch(requests, batch_size=batch_size, num_workers=1, processes=True, **gen)
            stats = st.last_stats
            assert sum(a.num_tokens for a in answers) == len(requests) * tokens
            answers = st.ask_batch(requests, batch_size=batch_size, num_workers=1, processes=False, **gen)
            threads_stats = st.last_stats
            assert sum(a.num_tokens for a in answers) == len(requests) * tokens
            for key, value in (("load_alone_s", load), ("generate_alone_s", generate), ("loop_s", stats.total),
                               ("overlap_ratio", stats.total / (load + generate)), ("wait_share", stats.wait_share),
                               ("loop_threads_s", threads_stats.total),
                               ("overlap_ratio_threads", threads_stats.total / (load + generate)),
                               ("wait_share_threads", threads_stats.wait_share)):
                per_round[key].append(value)
    finally:
        torch.set_num_threads(threads)
    return {
        **{k: summary(v) for k, v in per_round.items()},
        "settings": {"requests": len(requests), "batch_size": batch_size, "new_tokens": tokens,
                     "loaders": "1 process (overlap_ratio) / 1 thread (overlap_ratio_threads)", "torch_threads": 1,
                     "calibration": calibration},
    }


def wait_run(st: LlavaST, videos: list[Path], new_tokens: int):
    gen = dict(max_new_tokens=new_tokens, eos_token_ids=())
    st.ask_batch([(videos[0], QUESTION)], batch_size=1, num_workers=0, **gen)  # warm-up
    st.ask_batch([Request(v, QUESTION) for v in videos], batch_size=8, num_workers=2, **gen)
    s = st.last_stats
    return {"wait_share": s.wait_share, "total": s.total, "waiting_for_media": s.waiting_for_media, "model": s.model}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="rounds of measurements 1 and 2 (medians and ranges)")
    ap.add_argument("--new-tokens", type=int, default=128, help="tokens per request in measurements 1 and 3")
    ap.add_argument("--overlap-batches", type=int, default=8, help="batches of measurement 2")
    ap.add_argument("--overlap-batch-size", type=int, default=2, help="requests per batch of measurement 2")
    ap.add_argument("--overlap-video-frames", type=int, default=400, help="frames of its 640x480 30 fps videos")
    ap.add_argument("--overlap-tokens", type=int, default=None, help="its token budget (default: calibrated)")
    ap.add_argument("--wait-videos", type=int, default=32, help="videos of measurement 3 (0: skip it)")
    ap.add_argument("--out", type=Path, default=None, help="result file (default bench/results/batch_generation.json)")
    args = ap.parse_args()
    parity = Path(os.environ.get("LLAVA_ST_PARITY_DIR", Path(__file__).resolve().parents[2] / "shared" / "parity"))
    tmp = Path(tempfile.mkdtemp(prefix="llava-st-bench-"))
    started = time.perf_counter()

    tiny = build_model(tmp / "model", parity)
    mid = build_model(tmp / "mid-model", parity, MID_TEXT)
    short = [write_video(tmp / f"s{i}.mp4", i, 48, (96, 72), fps=24) for i in range(8)]
    speed = batch_speedup(tiny, short, args.new_tokens, args.rounds)

    # two different videos, asked about in turn: decoding costs the same for each request
    large = [write_video(tmp / f"l{i}.mp4", i, args.overlap_video_frames, (640, 480), fps=30, preset="veryfast")
             for i in range(2)]
    lap = overlap(mid, large, args.overlap_batch_size, args.overlap_batches, args.rounds, args.overlap_tokens)

    result = {
        "rounds": args.rounds,
        "batch_speedup": speed["speedup"]["median"],
        "batch_speedup_range": speed["speedup"]["range"],
        "batch_speedup_target": ">= 5",
        "overlap_ratio": lap["overlap_ratio"]["median"],
        "overlap_ratio_range": lap["overlap_ratio"]["range"],
        "overlap_ratio_target": "<= 0.6",
        "overlap_ratio_threads": lap["overlap_ratio_threads"]["median"],
        "overlap_ratio_threads_range": lap["overlap_ratio_threads"]["range"],
        "overlap_wait_share": lap["wait_share"]["median"],
        "overlap_wait_share_range": lap["wait_share"]["range"],
        "batch_speedup_detail": speed,
        "overlap_detail": lap,
    }
    if args.wait_videos:
        videos = [write_video(tmp / f"v{i}.mp4", i, 300, (320, 240), fps=30) for i in range(args.wait_videos)]
        mid_run, tiny_run = wait_run(mid, videos, args.new_tokens), wait_run(tiny, videos, args.new_tokens)
        result.update({
            "model_wait_share": mid_run["wait_share"],
            "model_wait_share_target": "<= 0.10",
            "model_wait_share_tiny_model": tiny_run["wait_share"],
            "wait_run_s": {"mid_model": mid_run, "tiny_model": tiny_run},
        })
    result["settings"] = {
        "models": "debug vision; tiny: debug language model; mid: 1024-wide 8-layer Qwen2; random weights",
        "frames_per_video": tiny.num_frames,
        "new_tokens": args.new_tokens,
        "speedup_videos": "8 x 48 frames 96x72 H.264 at 24 fps; one batch of 8, 2 loading threads",
        "overlap_videos": f"2 x {args.overlap_video_frames} frames 640x480 H.264 (veryfast) at 30 fps, keyframe every 60",
        "wait_videos": f"{args.wait_videos} x 300 frames 320x240 H.264 at 30 fps, keyframe every 60; batches of 8, "
                       "2 loading threads",
        "torch_threads": torch.get_num_threads(),
        "wall_s": time.perf_counter() - started,
    }
    if args.out is None:
        path = write_result("batch_generation", result)
    else:
        path = args.out
        path.write_text(json.dumps({**result, "machine": machine()}, indent=2) + "\n")
    print(f"batch speedup {result['batch_speedup']:.2f}x (range {result['batch_speedup_range'][0]:.2f}-"
          f"{result['batch_speedup_range'][1]:.2f}), overlap ratio {result['overlap_ratio']:.3f} "
          f"(range {result['overlap_ratio_range'][0]:.3f}-{result['overlap_ratio_range'][1]:.3f}), model waits "
          f"{100 * result['overlap_wait_share']:.1f}% of the overlap run -> {path}")


if __name__ == "__main__":
    sys.exit(main())
