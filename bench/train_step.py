"""Training speed and memory (issue "Training: the three progressive stages").

Three measurements, written to ``bench/results/train_step.json`` with the machine's facts:

1. **Stages** (``stages``): each training stage of ``recipes/tiny`` (1: packer +
   input embedding; 2: LoRA + packer + tables + embedding; 3: a new LoRA on stage 1
   with stage 2's adapter merged) runs through ``llava-st train`` in its own process
   on an ST-Synth set, for the ``tiny`` (``debug`` zoo config) and a ``mid``
   model (debug vision and packer, a 1024-wide 8-layer Qwen2). Reported per
   stage: input tokens/s over the steps after the first two (``tokens_per_s``, median
   of per-step rates) and over the whole loop (``tokens_per_s_run``), and the
   process's peak resident memory (``peak_memory_mb``; CUDA: peak allocated).
2. **Coordinate head overhead** (``train_step_overhead_ratio``): a training step
   (forward + backward, LLM trainable) at ``L = 8192`` supervised positions, 10%
   of them coordinate answers, with the extended head and the two-hot loss
   (:func:`llava_st.train.step.training_loss`) divided by the same step with plain
   cross-entropy on the text vocabulary only (``lm_head`` then ``F.cross_entropy``).
   Text vocabulary 32,000; a 2-layer 256-wide Qwen2, so the head is about half
   the step's work (the release's 28 layers make it far less): the ratio here
   is a worst case. The extra time grows with ``L x V`` (the concatenated
   logits and the loss's element-wise passes). Target <= 1.10.
3. **Data-loader wait share** (``loader_wait_share``): the share of the training
   loop's wall time spent waiting for the next batch (DataLoader workers decode
   the videos and images), from the ``mid`` stage-3 run, the heaviest mix of
   videos and images. The first fetch, which also waits for the workers to
   start (``loader_startup_s``, reported beside), is left out. Target <= 5%.

Usage (the final numbers)::

    python bench/train_step.py

Quick check with small settings::

    python bench/train_step.py --small --out train_step_small
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from _machine import write_result
from llava_st.config import TextConfig

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes" / "tiny"


def mid_text(vocab: int, pad: int, eos: int) -> TextConfig:
    return TextConfig(vocab_size=vocab, hidden_size=1024, intermediate_size=2816, num_hidden_layers=8,
                      num_attention_heads=16, num_key_value_heads=4, bos_token_id=None, eos_token_id=eos,
                      pad_token_id=pad)


# ------------------------------------------------------------------ setup


def tokenizer_folder(tmp: Path) -> Path:
    """A folder with a release-layout tokenizer: the parity fixture's when present, else the tests' tiny one."""
    parity = Path(os.environ.get("LLAVA_ST_PARITY_DIR", REPO.parent / "shared" / "parity")) / "model"
    out = tmp / "tokenizer"
    if (parity / "tokenizer.json").is_file():
        from llava_st.processor import load_tokenizer

        load_tokenizer(parity).save_pretrained(str(out))
        return out
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import tiny_model_tokenizer

    tiny_model_tokenizer().save_pretrained(str(out))
    return out


def synth_data(tmp: Path, videos: int, images: int) -> Path:
    from llava_st.synth import PRESETS, SplitSettings, TaskSettings, generate

    base = PRESETS["tiny"]
    cfg = base.replace(
        seed=1, num_videos=videos, num_images=images, video=replace(base.video, sample_frames=16),
        split=SplitSettings(test_fraction=0.1), tasks=TaskSettings(subclip_prob=0.5),
    )
    out = tmp / "data"
    generate(cfg, out, workers=2, preview=False)
    return out


def mid_model(tmp: Path, tok: Path) -> Path:
    """A saved mid-sized model (random weights) with the tokenizer: stage 1 starts from it."""
    from llava_st.model import LlavaSTModel
    from llava_st.processor import LlavaSTProcessor, load_tokenizer
    from llava_st.train.build import fit_config_to_tokenizer
    from llava_st.zoo import debug

    tokenizer = load_tokenizer(tok)
    cfg = fit_config_to_tokenizer(debug(), tokenizer)
    t = cfg.text
    cfg = replace(cfg, text=mid_text(t.vocab_size, t.pad_token_id, t.eos_token_id))
    torch.manual_seed(0)
    folder = tmp / "mid-base"
    LlavaSTModel(cfg).save_pretrained(folder)
    LlavaSTProcessor(tokenizer, cfg).save_pretrained(folder)
    return folder


# ------------------------------------------------------------------ stages


def run_stage(stage: int, source: list[str], data: Path, out: Path, steps: int, workers: int, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "llava_st", "train", "--recipe", str(RECIPES / f"stage{stage}.yaml"), *source,
           f"data.mix={data / f'stage{stage}.yaml'}", f"output.dir={out}", f"schedule.max_steps={steps}",
           f"batch.num_workers={workers}", "output.save_every=0", "output.log_every=1", *extra, "--no-progress"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(f"stage {stage} failed:\n{done.stderr[-4000:]}")
    summary = json.loads((out / "summary.json").read_text())
    rates = [json.loads(line)["tokens_per_s"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    steady = rates[2:] if len(rates) > 3 else rates
    return {
        "steps": summary["steps"],
        "tokens_per_s": round(statistics.median(steady), 1),
        "tokens_per_s_run": round(summary["tokens_per_s"], 1),
        "peak_memory_mb": round(summary["peak_memory_mb"], 1),
        "loader_wait_share": round(summary["loader_wait_share"], 4),
        "loader_startup_s": round(summary["loader_startup_s"], 2),
        "loss_first": summary["loss_first"],
        "loss_last": summary["loss_last"],
        "wall_s": round(summary["wall_s"], 1),
    }


def run_stages(name: str, base: list[str], data: Path, tmp: Path, steps: int, workers: int) -> dict:
    runs = tmp / name
    out = {}
    out["stage1"] = run_stage(1, base, data, runs / "s1", steps, workers, [])
    s1 = runs / "s1" / "final"
    out["stage2"] = run_stage(2, [f"model.path={s1}"], data, runs / "s2", steps, workers, [])
    out["stage3"] = run_stage(
        3, [f"model.path={s1}", f"model.merge_adapters=[{runs / 's2' / 'final' / 'adapter'}]"], data, runs / "s3",
        steps, workers, [],
    )
    return out


# ------------------------------------------------------------------ coordinate head overhead


def overhead(length: int, vocab: int, repeats: int) -> dict:
    """Median step time with the coordinate head + two-hot loss over plain text cross-entropy."""
    from torch.nn import functional as F

    from llava_st.model import LlavaSTModel
    from llava_st.protocol.tokens import IGNORE_INDEX
    from llava_st.train import Trainability, apply_trainability
    from llava_st.train.step import training_loss
    from llava_st.zoo import debug

    cfg = debug(vocab_size=vocab)
    text = replace(cfg.text, hidden_size=256, intermediate_size=704, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=2, max_position_embeddings=length + 8)
    cfg = replace(cfg, text=text)
    torch.manual_seed(0)
    model = LlavaSTModel(cfg).train()
    apply_trainability(model, Trainability(llm=True, lm_head=True, coord_tables=["time_out", "height_out",
                                                                                 "width_out"]), lr=1e-4)
    ids = cfg.token_ids
    g = torch.Generator().manual_seed(0)
    input_ids = torch.randint(0, ids.im_start - 3, (1, length + 1), generator=g)
    values = torch.full(input_ids.shape, float("nan"), dtype=torch.float64)
    coord = torch.rand(input_ids.shape, generator=g) < 0.1
    coord[0, 0] = False
    axes = torch.tensor([ids.temp_output, ids.height_output, ids.width_output])
    input_ids[coord] = axes[torch.randint(0, 3, (int(coord.sum()),), generator=g)]
    values[coord] = torch.rand(int(coord.sum()), generator=g, dtype=torch.float64)
    labels = input_ids.clone()
    labels[0, 0] = IGNORE_INDEX
    batch = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "coord_values": values,
             "labels": labels, "pixel_values": [None], "modalities": [None]}
    text_labels = labels[0, 1:].clone()
    text_labels[coord[0, 1:]] = 0  # plain CE: a coordinate answer becomes an ordinary text token

    def coordinate_step():
        out = training_loss(model, batch)
        out.loss.backward()

    def plain_step():
        hidden = model(input_ids=input_ids, attention_mask=batch["attention_mask"], coord_values=values,
                       return_logits=False).hidden_states  # [1, L + 1, D]
        logits = model.lm_head(hidden[0, :-1])  # [L, V]
        F.cross_entropy(logits.float(), text_labels).backward()

    times = {"coordinate": [], "plain": []}
    for r in range(repeats + 1):
        for name, fn in (("coordinate", coordinate_step), ("plain", plain_step)) if r % 2 else (
            ("plain", plain_step), ("coordinate", coordinate_step)
        ):
            model.zero_grad(set_to_none=True)
            t0 = time.perf_counter()
            fn()
            if r:  # the first round warms up
                times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "train_step_overhead_ratio": round(med["coordinate"] / med["plain"], 4),
        "coordinate_step_s": round(med["coordinate"], 3),
        "plain_step_s": round(med["plain"], 3),
        "length": length,
        "text_vocab": vocab,
        "coordinate_positions": int(coord.sum()),
        "model": "debug vision; Qwen2 256 wide, 2 layers; LLM, text head and output tables trainable",
        "repeats": repeats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="quick check: fewer steps, shorter sequence")
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps per stage")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    parser.add_argument("--length", type=int, default=8192, help="L for the overhead ratio")
    parser.add_argument("--vocab", type=int, default=32000, help="text vocabulary for the overhead ratio")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per variant (medians are reported)")
    parser.add_argument("--out", default="train_step", help="result name under bench/results")
    args = parser.parse_args()
    if args.small:
        args.steps, args.length, args.repeats = 4, 1024, 2
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        t0 = time.perf_counter()
        tok = tokenizer_folder(tmp)
        data = synth_data(tmp, videos=6 if args.small else 16, images=6 if args.small else 16)
        tiny = run_stages("tiny", ["model.zoo=debug", f"model.tokenizer={tok}"], data, tmp, args.steps, args.workers)
        mid = run_stages("mid", [f"model.path={mid_model(tmp, tok)}", "model.zoo=null", "model.tokenizer=null"], data, tmp,
                         args.steps, args.workers)
        head = overhead(args.length, args.vocab, args.repeats)
    result = {
        **{k: head[k] for k in ("train_step_overhead_ratio",)},
        "loader_wait_share": mid["stage3"]["loader_wait_share"],
        "targets": {"train_step_overhead_ratio": 1.10, "loader_wait_share": 0.05},
        "overhead": head,
        "stages": {"tiny": tiny, "mid": mid},
        "setup": {
            "data": "ST-Synth tiny preset, 16 frames sampled per video, 128x96 videos, 4 frame sub-clips at 50%",
            "tiny": "debug zoo config (9x9 grid, 64-wide 2-layer Qwen2)",
            "mid": "debug vision and packer, Qwen2 1024 wide, 8 layers, 16 heads (4 KV)",
            "recipes": "recipes/tiny/stage{1,2,3}.yaml, fp32, batch 2, workers " + str(args.workers),
            "steps": {"tiny": args.steps, "mid": args.steps},
            "small": args.small,
            "wall_s": round(time.perf_counter() - t0, 1),
        },
    }
    path = write_result(args.out, result)
    print(json.dumps({k: result[k] for k in ("train_step_overhead_ratio", "loader_wait_share")}), path)


if __name__ == "__main__":
    main()
