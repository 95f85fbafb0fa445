"""Decode-step cost of LLaVA-ST against the bare Qwen2 it is built on (issue 3, benchmark 1).

Both models share the same Qwen2 weights and the same KV-cache length. One
LLaVA-ST step embeds the new id through the extended input table (text rows
or coordinate rows), runs the language model with the cache and scores the
extended vocabulary ``V + 300``; one bare step is transformers'
``Qwen2ForCausalLM`` forward with its cache and its ``V``-column head. The
two are timed interleaved, many times, and the medians compared.

    python bench/model_decode.py                     # CPU, mid-sized model
    python bench/model_decode.py --preset 7b --device cuda --dtype bfloat16

Writes ``bench/results/model_decode[_<preset>_<device>].json`` with the top-level field
``decode_step_ratio`` (target <= 1.10).
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import torch

from _machine import write_result
from llava_st.config import TextConfig
from llava_st.model import LlavaSTModel
from llava_st.zoo import debug, release_7b

PRESETS = {
    # a mid-sized LLM so that the step measures real work on a CPU, not Python overhead alone
    "cpu-mid": TextConfig(vocab_size=32000, hidden_size=1024, intermediate_size=2816, num_hidden_layers=8,
                          num_attention_heads=16, num_key_value_heads=4, eos_token_id=31999, pad_token_id=31997),
    "7b": release_7b().text,
}


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


@torch.no_grad()
def main() -> None:
    from transformers import DynamicCache

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="cpu-mid")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--context", type=int, default=512, help="tokens already in the cache")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=60, help="timed steps per model")
    args = ap.parse_args()
    dtype = getattr(torch, args.dtype)
    ours, bare = build(args.preset, args.device, dtype)
    v = ours.config.text.vocab_size
    g = torch.Generator(device="cpu").manual_seed(1)
    prompt = torch.randint(0, v, (args.batch, args.context), generator=g).to(args.device)
    mask = torch.ones_like(prompt)
    pos = torch.arange(args.context, device=args.device).expand(args.batch, -1)

    def prefill_ours():
        cache = DynamicCache(config=ours.language_model.config)
        ours.language_model(inputs_embeds=ours.embed_tokens(prompt), attention_mask=mask, position_ids=pos,
                            cache=cache, use_cache=True)
        return cache

    def prefill_bare():
        cache = DynamicCache(config=bare.config)
        bare(input_ids=prompt, attention_mask=mask, position_ids=pos, cache=cache, use_cache=True, logits_to_keep=1)
        return cache

    # a coordinate id is fed back through the extended table on every other step
    ids = [torch.full((args.batch, 1), v + 7 if i % 2 else 11, device=args.device) for i in range(2)]
    bare_ids = torch.full((args.batch, 1), 11, device=args.device)

    def step_ours(cache, i, m, p):
        # the decoding loop's embedding (LlavaSTModel.generate): no range check, no host sync
        h = ours.language_model(inputs_embeds=ours.embed_tokens(ids[i % 2], validate=False), attention_mask=m, position_ids=p,
                                cache=cache, use_cache=True).last_hidden_state[:, -1]
        return ours.extended_logits(h)

    def step_bare(cache, i, m, p):
        return bare(input_ids=bare_ids, attention_mask=m, position_ids=p, cache=cache, use_cache=True).logits[:, -1]

    times = {"ours": [], "bare": []}
    for rep in range(args.steps // 10 + 2):
        for name, prefill, step in (("ours", prefill_ours, step_ours), ("bare", prefill_bare, step_bare)):
            cache = prefill()
            m = mask
            for i in range(10):
                m = torch.cat([m, torch.ones_like(m[:, :1])], dim=1)
                p = torch.full((args.batch, 1), args.context + i, device=args.device)
                _sync(args.device)
                t0 = time.perf_counter()
                out = step(cache, i, m, p)
                _sync(args.device)
                if rep > 0:  # the first round warms up
                    times[name].append(time.perf_counter() - t0)
            assert out.shape[-1] in (v, v + ours.config.coords.num_bins)
    med = {k: statistics.median(t) for k, t in times.items()}
    result = {
        "decode_step_ratio": med["ours"] / med["bare"],
        "target": "<= 1.10",
        "ours_step_ms": med["ours"] * 1e3,
        "bare_qwen2_step_ms": med["bare"] * 1e3,
        "settings": {"preset": args.preset, "device": args.device, "dtype": args.dtype, "context": args.context,
                     "batch": args.batch, "timed_steps_per_model": len(times["ours"]),
                     "vocab": v, "extended_vocab": v + ours.config.coords.num_bins,
                     "hidden": ours.config.text.hidden_size, "layers": ours.config.text.num_hidden_layers},
    }
    name = "model_decode" if (args.preset, args.device) == ("cpu-mid", "cpu") else f"model_decode_{args.preset}_{args.device.split(':')[0]}"
    path = write_result(name, result)
    print(f"decode step: ours {med['ours'] * 1e3:.2f} ms, bare Qwen2 {med['bare'] * 1e3:.2f} ms, "
          f"ratio {result['decode_step_ratio']:.3f} -> {path}")


if __name__ == "__main__":
    main()
