"""Batched asking against one-by-one asking, and how long the model waits for video decoding (issue 6).

On a tiny random model (the ``debug`` config, 12 frames per video):

1. ``batch_speedup``: generated tokens/s of ``ask_batch`` over 8 requests
   (one batch, 2 loading threads) / tokens/s of 8 single ``ask`` calls
   (target >= 5). Both include loading the media; short, small videos keep
   that part small so the ratio measures what batching changes: the decoding
   steps of the language model.
2. ``model_wait_share``: a run of 32 ten-second 320x240 H.264 videos (batches of
   8, 2 loading threads): the share of the wall time the model spends waiting
   for decoded media (target <= 0.10). The first batch cannot start before its
   8 videos are decoded; the later ones are decoded while the model generates.
   This run uses the debug vision part with a mid-sized language model (1024
   wide, 8 layers), so that generating a batch costs more than decoding its
   videos, as with real checkpoints (a 7B model takes seconds per batch, a
   video decodes in a tenth of a second). The same run with the tiny language
   model is reported too (``model_wait_share_tiny_model``): that model
   generates a batch faster than two threads decode eight videos, so on two
   cores it is bound by decoding whatever the overlap.

Every request generates exactly ``--new-tokens`` tokens (end-of-turn
disabled), so both sides of a comparison produce the same tokens; the default
128 is the length of a grounded answer (an STVG answer with ~20 boxes is about
180 tokens).

    python bench/batch_generation.py

Writes ``bench/results/batch_generation.json``. The tokenizer comes from the
parity fixtures (``LLAVA_ST_PARITY_DIR``, default ``../shared/parity``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import statistics
import time
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import torch

from _machine import write_result
from llava_st.infer import LlavaST, Request
from llava_st.model import LlavaSTModel
from llava_st.processor import LlavaSTProcessor
from llava_st.config import TextConfig
from llava_st.zoo import debug

MID_TEXT = TextConfig(vocab_size=529, hidden_size=1024, intermediate_size=2816, num_hidden_layers=8,
                      num_attention_heads=16, num_key_value_heads=4, bos_token_id=None, eos_token_id=514,
                      pad_token_id=512)


def write_video(path: Path, seed: int, frames: int, size: tuple[int, int], fps: int) -> Path:
    rng = np.random.default_rng(seed)
    w, h = size
    base = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"g": str(2 * fps)}  # a keyframe every 2 s, as in typical camera/web videos
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    parity = Path(os.environ.get("LLAVA_ST_PARITY_DIR", Path(__file__).resolve().parents[2] / "shared" / "parity"))
    tmp = Path(tempfile.mkdtemp(prefix="llava-st-bench-"))
    st = build_model(tmp / "model", parity)
    short = [write_video(tmp / f"s{i}.mp4", i, 48, (96, 72), fps=24) for i in range(8)]
    videos = [write_video(tmp / f"v{i}.mp4", i, 300, (320, 240), fps=30) for i in range(32)]
    gen = dict(max_new_tokens=args.new_tokens, eos_token_ids=())
    question = "What happens in this video?"

    st.ask_batch([(short[0], question)], batch_size=1, num_workers=0, **gen)  # warm-up
    rates = {"single": [], "batch": []}
    for _ in range(args.rounds):  # interleaved rounds; medians
        t0 = time.perf_counter()
        singles = [st.ask(v, question, **gen) for v in short]
        rates["single"].append(sum(a.num_tokens for a in singles) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        batched = st.ask_batch([Request(v, question) for v in short], batch_size=8, num_workers=2, **gen)
        rates["batch"].append(sum(a.num_tokens for a in batched) / (time.perf_counter() - t0))
        assert sum(a.num_tokens for a in singles) == sum(a.num_tokens for a in batched) == 8 * args.new_tokens
    single_rate, batch_rate = statistics.median(rates["single"]), statistics.median(rates["batch"])

    def wait_run(model: LlavaST):
        model.ask_batch([(videos[0], question)], batch_size=1, num_workers=0, **gen)  # warm-up
        model.ask_batch([Request(v, question) for v in videos], batch_size=8, num_workers=2, **gen)
        return model.last_stats

    tiny_stats = wait_run(st)
    stats = wait_run(build_model(tmp / "mid-model", parity, MID_TEXT))
    result = {
        "batch_speedup": batch_rate / single_rate,
        "batch_speedup_target": ">= 5",
        "model_wait_share": stats.wait_share,
        "model_wait_share_target": "<= 0.10",
        "model_wait_share_tiny_model": tiny_stats.wait_share,
        "tokens_per_s": {"ask_batch_8": batch_rate, "ask_x8": single_rate, "rounds": rates},
        "run_32_videos_s": {"total": stats.total, "waiting_for_media": stats.waiting_for_media, "model": stats.model},
        "run_32_videos_tiny_model_s": {"total": tiny_stats.total, "waiting_for_media": tiny_stats.waiting_for_media,
                                       "model": tiny_stats.model},
        "settings": {
            "model": "debug config, random weights", "wait_run_model": "debug vision + 1024-wide 8-layer Qwen2, random",
            "frames_per_video": st.num_frames, "new_tokens": args.new_tokens,
            "speedup_videos": "8 x 48 frames 96x72 H.264 at 24 fps",
            "wait_videos": "32 x 300 frames 320x240 H.264 at 30 fps, keyframe every 60",
            "batch_size": 8, "loading_threads": 2, "torch_threads": torch.get_num_threads(),
        },
    }
    path = write_result("batch_generation", result)
    print(f"batch speedup {result['batch_speedup']:.2f}x, model waits {100 * stats.wait_share:.1f}% -> {path}")


if __name__ == "__main__":
    sys.exit(main())
