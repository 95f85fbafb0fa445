"""Decoding speed of LLaVA-ST: the eager path, the static/compiled path and a bare Qwen2 step, in one run.

Three parts, all on the same weights:

1. **Decode step** (issue 3, benchmark 1): one LLaVA-ST step on the eager path
   (transformers' forward with its ``DynamicCache``: embed the new id through
   the extended table, the language model, the extended head ``V + 300``), one
   step of the static path (:mod:`llava_st.model.static_decode`, uncompiled
   and compiled), and one bare ``Qwen2ForCausalLM`` step (its cache, its
   ``V``-column head), timed interleaved at the same cache length.
   ``decode_step_ratio`` = ours eager / bare (target <= 1.10).
2. **Generation tokens/s**: :meth:`LlavaSTModel.generate` on a text prompt
   of ``--context`` tokens, ``--new-tokens`` greedy tokens, decode time only
   (``GenerationOutput.decode_seconds``), at batch 1 and ``--batch``, for the
   eager, static and compiled decoders, interleaved, ``--rounds`` rounds.
   ``compiled_speedup`` = new path / eager tokens/s at batch 1 (target >= 2);
   ``batch8_speedup`` = batch-8 / batch-1 tokens/s of the new path (target
   >= 6 on the CPU); each the median of the rounds with their range. The new
   path is ``compiled`` (``--new static`` to measure the uncompiled step).
   Compile time per shape bucket is recorded; it is paid once per bucket.
   The prefill is timed too: the visual features of one ``--frames`` video
   (tower + projector + LAPE + packer, one batched pass) and the language
   model's prefill of the prompt.
3. **Constrained answers** (``--answers``; the debug model with the parity
   tokenizer and random weights, or ``--answers-model DIR``): for every task,
   over ``--answer-seeds`` sampled answers, how often the unconstrained answer
   parses, and under the grammar how many tokens were written, how many
   model calls that took and how many tokens the grammar forced.

    python bench/model_decode.py --preset cpu-tiny --answers   # debug-size LLM, every part
    python bench/model_decode.py                               # CPU, mid-sized model
    python bench/model_decode.py --preset 7b --device cuda --dtype bfloat16 --context 2048

Writes ``bench/results/model_decode[_<preset>_<device>].json`` (``model_decode.json``
for the CPU mid-sized model) with the machine, the load before and after, and the settings.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from _machine import write_result
from llava_st.config import TextConfig
from llava_st.model import LlavaSTModel
from llava_st.model.static_decode import StaticDecoder, decode_cache
from llava_st.zoo import debug, release_7b

PRESETS = {
    # the debug model's LLM: a step is all overhead, what the static/compiled path removes
    "cpu-tiny": debug().text,
    # a mid-sized LLM so that the step measures real work on a CPU, not Python overhead alone
    "cpu-mid": TextConfig(vocab_size=32000, hidden_size=1024, intermediate_size=2816, num_hidden_layers=8,
                          num_attention_heads=16, num_key_value_heads=4, eos_token_id=31999, pad_token_id=31997),
    "7b": release_7b().text,
}


def loadavg() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def build(preset: str, device: str, dtype: torch.dtype):
    from transformers import Qwen2ForCausalLM

    text = PRESETS[preset]
    base = release_7b() if preset == "7b" else debug()
    cfg = replace(base, text=text)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # build in the target dtype: a 7B float32 copy would not fit twice
    try:
        with torch.device(device):
            torch.manual_seed(0)
            ours = LlavaSTModel(cfg, attn_implementation="sdpa").eval()
            bare = Qwen2ForCausalLM(text.to_qwen2_config("sdpa")).eval()
    finally:
        torch.set_default_dtype(previous)
    bare.model.load_state_dict(ours.language_model.state_dict())
    bare.lm_head.weight.data.copy_(ours.lm_head.weight.data)
    return ours, bare


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "range": [min(values), max(values)], "rounds": values}


@torch.no_grad()
def step_times(ours, bare, args) -> dict[str, float]:
    """Median ms of one decode step per path, interleaved, at ``args.context`` cached tokens."""
    from transformers import DynamicCache

    v = ours.config.text.vocab_size
    g = torch.Generator(device="cpu").manual_seed(1)
    prompt = torch.randint(0, v, (args.batch_step, args.context), generator=g).to(args.device)
    mask = torch.ones_like(prompt)
    pos = torch.arange(args.context, device=args.device).expand(args.batch_step, -1)
    # a coordinate id is fed back through the extended table on every other step
    ids = [torch.full((args.batch_step, 1), v + 7 if i % 2 else 11, device=args.device) for i in range(2)]
    bare_ids = torch.full((args.batch_step, 1), 11, device=args.device)
    valid = torch.ones(args.batch_step, 1, dtype=torch.bool, device=args.device)

    def run_eager():
        cache = DynamicCache(config=ours.language_model.config)
        ours.language_model(inputs_embeds=ours.embed_tokens(prompt), attention_mask=mask, position_ids=pos, cache=cache,
                            use_cache=True)
        state = {"m": mask}

        def step(i, p):
            state["m"] = torch.cat([state["m"], torch.ones_like(state["m"][:, :1])], dim=1)
            h = ours.language_model(inputs_embeds=ours.embed_tokens(ids[i % 2], validate=False), attention_mask=state["m"],
                                    position_ids=p, cache=cache, use_cache=True).last_hidden_state[:, -1]
            return ours.extended_logits(h)
        return step

    def run_bare():
        cache = DynamicCache(config=bare.config)
        bare(input_ids=prompt, attention_mask=mask, position_ids=pos, cache=cache, use_cache=True, logits_to_keep=1)
        state = {"m": mask}

        def step(i, p):
            state["m"] = torch.cat([state["m"], torch.ones_like(state["m"][:, :1])], dim=1)
            return bare(input_ids=bare_ids, attention_mask=state["m"], position_ids=p, cache=cache, use_cache=True).logits[:, -1]
        return step

    def run_static(compiled: bool):
        held = []

        def make():
            if held:
                held.pop().close()
            dec = StaticDecoder(ours, args.batch_step, args.context + 64, compile=compiled)
            held.append(dec)
            dec.prefill(ours.embed_tokens(prompt), mask, pos)
            return lambda i, p: dec.feed(ids[i % 2], valid, p)
        return make

    paths = {"ours": run_eager, "bare": run_bare, "static": run_static(False)}
    if args.new == "compiled":
        paths["compiled"] = run_static(True)
    times = {k: [] for k in paths}
    for rep in range(args.steps // 10 + 2):
        for name, make in paths.items():
            step = make()
            for i in range(10):
                p = torch.full((args.batch_step, 1), args.context + i, device=args.device)
                _sync(args.device)
                t0 = time.perf_counter()
                out = step(i, p)
                _sync(args.device)
                if rep > 0:  # the first round warms up (and compiles)
                    times[name].append(time.perf_counter() - t0)
            assert out.shape[-1] in (v, v + ours.config.coords.num_bins)
    return {k: statistics.median(t) * 1e3 for k, t in times.items()}


@torch.no_grad()
def generation_rates(ours, args) -> dict:
    """Decode tokens/s of generate() per decoder and batch size, ``args.rounds`` interleaved rounds."""
    v = ours.config.text.vocab_size
    g = torch.Generator(device="cpu").manual_seed(2)
    prompts = {b: torch.randint(0, v - 20, (b, args.context), generator=g) for b in (1, args.batch)}
    decoders = ["eager", "static"] + (["compiled"] if args.new == "compiled" else [])
    kw = dict(max_new_tokens=args.new_tokens, eos_token_ids=())
    for b in prompts:  # warm-up: compiles the new path's buckets (timed in compile_seconds)
        for d in decoders:
            ours.generate(prompts[b], decoder=d, **kw)
    rates = {d: {b: [] for b in prompts} for d in decoders}
    for _ in range(args.rounds):
        for b, ids in prompts.items():
            for d in decoders:
                out = ours.generate(ids, decoder=d, **kw)
                assert out.decoder == d and out.sequences.shape == (b, args.new_tokens)
                rates[d][b].append(b * args.new_tokens / out.decode_seconds)
    new = args.new
    one, many = 1, args.batch
    speedup = [n / e for n, e in zip(rates[new][one], rates["eager"][one])]
    batch_gain = {d: [m / s for m, s in zip(rates[d][many], rates[d][one])] for d in decoders}
    return {
        "compiled_speedup": summary(speedup),
        "batch_speedup": {d: summary(x) for d, x in batch_gain.items()},
        "tokens_per_s": {d: {f"batch{b}": summary(x) for b, x in per.items()} for d, per in rates.items()},
    }


@torch.no_grad()
def prefill_times(ours, args) -> dict:
    """Median ms of the visual prefill of one video: tower, projector, LAPE and packer over
    ``--frames`` frames in one batched pass (``get_video_features``; SDPA attention, the model's
    dtype), and of the language model's prefill of ``--context`` text tokens at batch 1."""
    cfg = ours.config
    frames = args.frames or cfg.num_frames
    size = cfg.vision.image_size
    g = torch.Generator(device="cpu").manual_seed(3)
    pix = torch.randn(frames, 3, size, size, generator=g).to(args.device, ours.dtype)
    ids = torch.randint(0, cfg.text.vocab_size - 20, (1, args.context), generator=g)
    vision, text = [], []
    for rep in range(args.prefill_reps + 1):
        _sync(args.device)
        t0 = time.perf_counter()
        ours.get_video_features(pix, fast=cfg.inject_fast_stream)
        _sync(args.device)
        t1 = time.perf_counter()
        out = ours.generate(ids, decoder="eager", max_new_tokens=1, eos_token_ids=())
        if rep:  # the first one warms up
            vision.append((t1 - t0) * 1e3)
            text.append(out.prefill_seconds * 1e3)
    return {"video_features_ms": summary(vision), "frames": frames, "frame_size": size,
            "vision_attention": ours.vision_tower.tower.config._attn_implementation,
            "text_prefill_ms": summary(text), "text_prefill_tokens": args.context}


@torch.no_grad()
def constrained_answers(args) -> dict:
    """Per task, on the debug model with random weights and the parity tokenizer: unconstrained
    answers that parse, and the constrained answers' tokens, model calls and forced tokens."""
    with tempfile.TemporaryDirectory(prefix="llava-st-decode-") as folder:
        return _constrained_answers(args, Path(folder))


def _constrained_answers(args, tmp: Path) -> dict:
    import numpy as np
    from PIL import Image

    from llava_st.infer import LlavaST
    from llava_st.media.load import load_media
    from llava_st.processor import LlavaSTProcessor

    if args.answers_model:
        st = LlavaST.from_pretrained(args.answers_model)
    else:
        parity = Path(os.environ.get("LLAVA_ST_PARITY_DIR", Path(__file__).resolve().parents[2] / "shared" / "parity"))
        torch.manual_seed(0)
        model = LlavaSTModel(debug(num_frames=12))
        model.save_pretrained(tmp / "model")
        tokenizer = LlavaSTProcessor.from_pretrained(parity / "model").tokenizer
        LlavaSTProcessor(tokenizer, model.config).save_pretrained(tmp / "model")
        st = LlavaST.from_pretrained(tmp / "model")
    rng = np.random.default_rng(0)
    video = rng.integers(0, 255, (30, 48, 64, 3), dtype=np.uint8)
    image = tmp / "photo.png"
    Image.fromarray(rng.integers(0, 255, (40, 80, 3), dtype=np.uint8)).save(image)
    clip = load_media(video, st.num_frames, fps=10.0)
    calls = {
        "tvg": lambda **kw: st.ground_time(clip, "the screen brightens", **kw),
        "rec": lambda **kw: st.refer(image, "the grey area", **kw),
        "stvg": lambda **kw: st.track(clip, "the bright frame", **kw),
        "svg": lambda **kw: st.boxes_in_span(clip, "the frame", 0.0, 2.9, **kw),
        "elc": lambda **kw: st.caption_event(clip, 0.3, [8, 6, 40, 30], **kw),
        "dvc": lambda **kw: st.dense_captions(clip, **kw),
        "dgc": lambda **kw: st.grounded_caption(image, **kw),
        "reg": lambda **kw: st.describe_region(image, [0, 0, 40, 20], **kw),
        "tr": lambda **kw: st.describe_span(clip, 0.0, 1.5, **kw),
    }
    out = {}
    for task, call in calls.items():
        free_ok, tokens, model_calls, forced, ok = 0, 0, 0, 0, 0
        for seed in range(args.answer_seeds):
            gen = dict(max_new_tokens=args.answer_tokens, do_sample=True, temperature=1.0, seed=seed)
            free_ok += call(constrained=False, **gen).ok
            ans = call(**gen)
            ok += ans.ok
            tokens += ans.num_tokens
            model_calls += st.last_stats.model_calls
            forced += st.last_stats.forced_tokens
        n = args.answer_seeds
        out[task] = {"unconstrained_parse_rate": free_ok / n, "constrained_parse_rate": ok / n,
                     "tokens": tokens, "model_calls": model_calls, "forced_tokens": forced,
                     "calls_saved": 1 - model_calls / tokens}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="cpu-mid")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--context", type=int, default=512, help="tokens already in the cache")
    ap.add_argument("--batch-step", type=int, default=1, help="batch of the decode-step timing")
    ap.add_argument("--steps", type=int, default=60, help="timed steps per path")
    ap.add_argument("--batch", type=int, default=8, help="the large batch of the tokens/s comparison")
    ap.add_argument("--new-tokens", type=int, default=64, help="tokens generated per round")
    ap.add_argument("--rounds", type=int, default=5, help="rounds of the tokens/s comparison")
    ap.add_argument("--new", choices=["compiled", "static"], default="compiled", help="the new path to compare")
    ap.add_argument("--frames", type=int, default=0, help="frames of the visual prefill (default: the config's)")
    ap.add_argument("--prefill-reps", type=int, default=3, help="timed repetitions of the prefill")
    ap.add_argument("--answers", action="store_true", help="also measure constrained answers (debug model)")
    ap.add_argument("--answers-model", help="a model folder for the answers part (default: the debug model, random weights)")
    ap.add_argument("--answer-seeds", type=int, default=5)
    ap.add_argument("--answer-tokens", type=int, default=96)
    ap.add_argument("--name", help="result file name under bench/results (default: model_decode[_<preset>_<device>])")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch intra-op threads (default: torch's); on a shared machine 1 avoids threads waiting on each other")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load_start = loadavg()
    dtype = getattr(torch, args.dtype)
    ours, bare = build(args.preset, args.device, dtype)
    steps = step_times(ours, bare, args)
    del bare
    rates = generation_rates(ours, args)
    prefill = prefill_times(ours, args)
    compile_s = {"x".join(map(str, k)): round(v, 2) for k, v in decode_cache(ours).compile_seconds.items()}
    batch = rates["batch_speedup"][args.new]
    result = {
        "compiled_speedup": rates["compiled_speedup"]["median"],
        "compiled_speedup_range": rates["compiled_speedup"]["range"],
        "compiled_speedup_target": ">= 2 (CPU, batch 1)",
        f"batch{args.batch}_speedup": batch["median"],
        f"batch{args.batch}_speedup_range": batch["range"],
        f"batch{args.batch}_speedup_target": ">= 6 (CPU)",
        "new_path": args.new,
        "decode_step_ratio": steps["ours"] / steps["bare"],
        "decode_step_ratio_target": "<= 1.10",
        "step_ms": {"ours_eager": steps["ours"], "ours_static": steps["static"],
                    **({"ours_compiled": steps["compiled"]} if "compiled" in steps else {}),
                    "bare_qwen2": steps["bare"]},
        "generation": rates,
        "prefill": prefill,
        "compile_seconds_per_bucket": compile_s,
        "settings": {"preset": args.preset, "device": args.device, "dtype": args.dtype, "context": args.context,
                     "batch_step": args.batch_step, "timed_steps_per_path": args.steps, "batch": args.batch,
                     "new_tokens": args.new_tokens, "rounds": args.rounds, "threads": torch.get_num_threads(),
                     "vocab": ours.config.text.vocab_size,
                     "extended_vocab": ours.config.text.vocab_size + ours.config.coords.num_bins,
                     "hidden": ours.config.text.hidden_size, "layers": ours.config.text.num_hidden_layers},
    }
    if args.answers:
        result["constrained_answers"] = constrained_answers(args)
        result["settings"].update(answer_seeds=args.answer_seeds, answer_tokens=args.answer_tokens,
                                  answers_model=args.answers_model or "debug config, random weights, parity tokenizer")
    result["load_average_start"] = load_start
    result["load_average_end"] = loadavg()
    name = args.name or ("model_decode" if (args.preset, args.device) == ("cpu-mid", "cpu")
                         else f"model_decode_{args.preset}_{args.device.split(':')[0]}")
    path = write_result(name, result)
    print(f"decode step ms: {', '.join(f'{k} {v:.2f}' for k, v in result['step_ms'].items())}; ratio ours/bare "
          f"{result['decode_step_ratio']:.3f}")
    print(f"tokens/s new/eager at batch 1: {result['compiled_speedup']:.2f} (range {result['compiled_speedup_range']}); "
          f"batch {args.batch}/1: {batch['median']:.2f} (range {batch['range']}); load {load_start} -> {result['load_average_end']}"
          f" -> {path}")


if __name__ == "__main__":
    main()
