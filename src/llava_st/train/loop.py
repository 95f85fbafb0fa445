"""The trainer: one loop for every stage, on one CPU or a GPU cluster, driven by ``accelerate``.

``train(recipe)`` runs a stage (SPEC §8):

* an :class:`accelerate.Accelerator` with the recipe's precision (``fp32`` ->
  ``no``, ``bf16``, ``fp16``), gradient accumulation, DDP with
  ``find_unused_parameters`` (image-only batches never reach the packer, and
  with the release's switches the fast packer is never used), and the engine
  the process was launched with (``accelerate launch --config_file
  recipes/engines/<engine>``): DDP, FSDP or DeepSpeed. A recipe whose
  ``engine`` is a DeepSpeed JSON gets a ``DeepSpeedPlugin`` from it when the
  launcher did not already configure DeepSpeed; the loop writes the recipe's
  clipping norm into that config, since accelerate would otherwise fill
  ``gradient_clipping: auto`` with 1.0 whatever ``optim.max_grad_norm`` says;
* the model, processor and AdamW groups of :func:`~llava_st.train.build.build_stage`;
* the mix's dataset (:mod:`llava_st.data.dataset`), loaded by DataLoader
  worker processes, batches from :class:`~llava_st.data.dataset.LengthGroupedBatchSampler`;
* AdamW (``optim.betas``, ``optim.eps``), the warmup + cosine schedule
  (:mod:`.schedule`) over ``schedule.max_steps`` or ``epochs`` worth of steps,
  gradient clipping at ``optim.max_grad_norm``;
* progress bar (loss, learning rate, tokens/s, ETA) on the main process;
  metrics as JSONL (``<output.dir>/metrics.jsonl``) and, when the
  ``tensorboard`` package is installed, TensorBoard (``<output.dir>/tb``);
* optional periodic evaluation through the evaluation runner
  (:func:`llava_st.eval.runner.run_eval`) on held-out benchmark files
  (``eval`` section), on the main process;
* checkpoints (:mod:`.checkpoint`) every ``output.save_every`` steps and at
  the end, keeping the last ``output.keep_last``; ``resume=True`` continues
  from the newest one with the same weights, optimizer, schedule, generator
  states and data position, so a resumed run ends with the weights an
  uninterrupted run ends with;
* the final model in ``<output.dir>/final`` (:func:`~llava_st.train.export.export_final`).

Loader wait: the time spent in ``next()`` on the DataLoader, as a share of the
loop's wall time (``loader_wait_share``); the first fetch of a run, which also
waits for the worker processes to start, is reported apart
(``loader_startup_s``) and left out of the share.

Loss weighting: the loss of a micro-batch is the mean over its supervised
tokens; an optimizer step weights its micro-batches (on every rank) by their
token counts ``n_i``, so its gradient is that of the mean over all the
global batch's supervised tokens, ``sum_i n_i * loss_i / sum_i n_i``, whatever
the split into ranks and micro-batches. Each backward is scaled by
``n_i * world * accum / N`` (DDP averages over ``world``, accelerate divides by
``accum``).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import ConfigError
from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from .engine import configure_deepspeed, make_accelerator, peak_memory_mb, to_device
from .report import METRICS, RunLog, echo, run_periodic_eval, truncate_metrics
from .recipe import Recipe, dump_recipe
from .schedule import make_scheduler
from .step import keep_trainables_in_graph, supervised_tokens, training_loss

SUMMARY = "summary.json"
FINAL = "final"


@dataclass
class TrainResult:
    """What a finished run reports (also written to ``<output.dir>/summary.json``)."""

    run_dir: Path
    final_dir: Path | None
    steps: int
    epochs_done: float
    tokens: int
    samples: int
    skipped: int
    loss_first: float | None
    loss_last: float | None
    wall_s: float
    loader_wait_s: float
    loader_wait_share: float
    loader_startup_s: float
    tokens_per_s: float
    peak_memory_mb: float
    resumed_from: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items() if k != "extra"}
        out.update(self.extra)
        return out


# ------------------------------------------------------------------ accelerator


def _check_run_dir(run_dir: Path, resume: bool) -> None:
    busy = [p.name for p in run_dir.iterdir()] if run_dir.is_dir() else []
    if busy and not resume:
        raise ConfigError(
            f"output.dir {run_dir} already holds a run ({', '.join(sorted(busy)[:5])}); "
            "continue it with --resume, or choose another output.dir"
        )


def train(
    recipe: Recipe,
    *,
    resume: bool = False,
    echo: Callable[[str], None] | None = echo,
    progress: bool = True,
) -> TrainResult:
    """Run one training stage (see the module docstring); returns its :class:`TrainResult`.

    Raises:
        ConfigError: an invalid combination (engine, resume into a run of another shape ...).
        DataError: a sample that fails to load (without ``data.skip_bad``), naming file and index.
    """
    from accelerate.utils import DistributedType, set_seed
    from tqdm import tqdm

    from ..data.dataset import LengthGroupedBatchSampler, TrainCollator, build_mix_dataset, worker_context
    from .build import build_stage
    from .export import export_final
    from .trainability import describe_groups

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # workers are forked after the tokenizer ran
    t_start = time.perf_counter()
    accelerator = make_accelerator(recipe)
    main = accelerator.is_main_process
    run_dir = Path(recipe.output.dir)
    if main:
        _check_run_dir(run_dir, resume)
        run_dir.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    out = RunLog(run_dir, main, echo)
    world, rank = accelerator.num_processes, accelerator.process_index
    if recipe.eval.every or recipe.eval.at_end:
        sharded = accelerator.distributed_type == DistributedType.FSDP or (
            accelerator.distributed_type == DistributedType.DEEPSPEED
            and accelerator.state.deepspeed_plugin.zero_stage == 3
        )
        if sharded:
            raise ConfigError("eval: evaluation during training needs whole weights on one process; not under FSDP or ZeRO-3")

    set_seed(recipe.seed)
    built = build_stage(recipe, log=out.log)
    model, processor = built.model, built.processor
    out.log(f"{accelerator.distributed_type.value}: {world} process(es), device {accelerator.device}, "
            f"precision {recipe.precision}")
    out.log("trainable groups:\n" + describe_groups(built.groups))

    dense = None
    if recipe.auxiliary.enabled:
        from .auxiliary import DenseTargetSource

        dense = DenseTargetSource(model.config)
    dataset = build_mix_dataset(
        recipe.data.mix, processor, seed=recipe.seed, num_frames=recipe.data.num_frames, skip_bad=recipe.data.skip_bad,
        targets=dense,
    )
    from ..data.mix import describe_mix

    out.log(f"data {recipe.data.mix}: {len(dataset)} samples\n" + describe_mix(dataset.entries, dataset.counts))
    for s in dataset.read_skips:
        out.log(f"skipped (malformed): {s.file}: sample {s.index}: {s.reason}")

    def sampler_for(epoch: int, start: int) -> LengthGroupedBatchSampler:
        return LengthGroupedBatchSampler(
            dataset.lengths,
            per_device=recipe.batch.per_device,
            world_size=world,
            rank=rank,
            grad_accum=recipe.batch.grad_accum,
            seed=recipe.seed,
            epoch=epoch,
            start_step=start,
            group_by_length=recipe.batch.group_by_length,
        )

    steps_per_epoch = sampler_for(0, 0).steps_per_epoch
    total_steps = recipe.schedule.max_steps or max(1, math.ceil(recipe.schedule.epochs * steps_per_epoch))
    global_batch = recipe.batch.per_device * world * recipe.batch.grad_accum

    betas = tuple(recipe.optim.betas)
    optimizer = torch.optim.AdamW(built.groups, lr=recipe.optim.lr, betas=betas, eps=recipe.optim.eps,
                                  weight_decay=recipe.optim.weight_decay)
    scheduler = make_scheduler(optimizer, total_steps, recipe.schedule.warmup_ratio, recipe.schedule.scheduler)
    configure_deepspeed(accelerator, recipe)
    if accelerator.distributed_type == DistributedType.FSDP:
        keep_trainables_in_graph(model)  # registered before FSDP's own hooks, so it sees gathered weights
    model, optimizer = accelerator.prepare(model, optimizer)
    params = [p for p in model.parameters() if p.requires_grad]
    use_ds = accelerator.distributed_type == DistributedType.DEEPSPEED

    # -------------------------------------------------------------- position
    step, epoch, in_epoch = 0, 0, 0
    counters = {"tokens": 0, "input_tokens": 0, "samples": 0, "skipped": 0}
    resumed_from = None
    ckpt = latest_checkpoint(run_dir) if resume else None
    if ckpt is not None:
        state = load_checkpoint(ckpt, accelerator, model, optimizer, scheduler)
        if state.get("global_batch") != global_batch:
            raise ConfigError(
                f"resume: {ckpt} was made with a global batch of {state.get('global_batch')} samples, this run has "
                f"{global_batch} (per_device x processes x grad_accum); the data position would not carry over"
            )
        step, epoch, in_epoch = state["step"], state["epoch"], state["step_in_epoch"]
        counters.update(state.get("counters", {}))
        resumed_from = step
        if main:
            truncate_metrics(run_dir / METRICS, step)
        out.log(f"resumed from {ckpt}: step {step}, epoch {epoch}, step {in_epoch} of {steps_per_epoch} in the epoch")
    elif resume:
        out.log(f"--resume: no checkpoint in {run_dir}; starting from the beginning")
    if main:
        dump_recipe(recipe, run_dir / "recipe.yaml")
    if not resume or ckpt is None:
        counters["skipped"] += len(dataset.read_skips)

    def save(at: int) -> None:
        pos_epoch, pos_step = (epoch + 1, 0) if in_epoch >= steps_per_epoch else (epoch, in_epoch)
        state = {
            "epoch": pos_epoch,
            "step_in_epoch": pos_step,
            "steps_per_epoch": steps_per_epoch,
            "total_steps": total_steps,
            "global_batch": global_batch,
            "world_size": world,
            "counters": counters,
            "seed": recipe.seed,
            "recipe": recipe.name,
        }
        folder = save_checkpoint(run_dir, at, accelerator, model, optimizer, scheduler, state, recipe.output.keep_last)
        out.log(f"checkpoint {folder}")

    collator = TrainCollator(processor)
    bar = tqdm(total=total_steps, initial=step, disable=not (main and progress), desc=recipe.name, unit="step",
               dynamic_ncols=True)
    wait_s = 0.0
    startup_s = None  # the first fetch of a run also waits for the workers to start: kept apart
    loop_start = time.perf_counter()
    window = {"t": loop_start, "wait": 0.0, "input_tokens": 0}
    loss_first = loss_last = None
    last_saved = step if ckpt is not None else None
    eval_results: dict[int, Any] = {}
    device = accelerator.device

    workers = recipe.batch.num_workers
    sampler = sampler_for(epoch, min(in_epoch, steps_per_epoch))
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collator,
        num_workers=workers,
        prefetch_factor=4 if workers else None,
        persistent_workers=workers > 0,  # the dataset is sent to each worker once per run
        multiprocessing_context=worker_context(recipe.batch.worker_start) if workers else None,
        # the workers' seeds come from this generator, not from the global one that dropout draws from
        generator=torch.Generator().manual_seed(recipe.seed * 7919),
    )
    while step < total_steps:
        if in_epoch >= steps_per_epoch:
            epoch, in_epoch = epoch + 1, 0
        sampler.set_position(epoch, in_epoch)
        batches = iter(loader)
        while in_epoch < steps_per_epoch and step < total_steps:
            t0 = time.perf_counter()
            micro = [next(batches) for _ in range(recipe.batch.grad_accum)]
            waited = time.perf_counter() - t0
            if startup_s is None:
                startup_s = waited
            else:
                wait_s += waited
            window["wait"] += waited

            counts = [supervised_tokens(b["labels"]) if b["size"] else 0 for b in micro]
            stats = torch.tensor(
                [sum(counts), sum(int(b["attention_mask"].sum()) for b in micro if b["size"]),
                 sum(b["size"] for b in micro), sum(len(b["skipped"]) for b in micro)],
                dtype=torch.float64, device=device,
            )
            stats = accelerator.reduce(stats, reduction="sum")
            total_tokens = int(stats[0])
            for b in micro:
                for s in b["skipped"]:
                    out_line = f"skipped (rank {rank}): {s['file']}: sample {s['index']}: {s['reason']}"
                    if main:
                        out.log(out_line)
                    else:
                        print(out_line, file=sys.stderr)
            loss_sum = torch.zeros((), dtype=torch.float64, device=device)
            grad_norm = None
            parts: dict[str, float] = {}
            # A step whose every sample (on every rank) was skipped trains nothing: no optimizer
            # update (AdamW would still move the weights on zero gradients), the schedule goes on.
            for b, n in zip(micro, counts) if total_tokens > 0 else ():
                with accelerator.accumulate(model):
                    if n > 0:
                        result = training_loss(model, to_device(b, device))
                        loss = result.loss * (n * world * recipe.batch.grad_accum / total_tokens)
                        loss_sum += result.loss.detach().double() * n
                        for k, v in result.parts.items():
                            parts[k] = parts.get(k, 0.0) + v / len(micro)
                    else:  # this rank's micro-batch was all skipped: a zero loss keeps the ranks in step
                        loss = sum(p.sum() for p in params) * 0.0
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and not use_ds:
                        max_norm = recipe.optim.max_grad_norm
                        norm = accelerator.clip_grad_norm_(params, max_norm if max_norm else float("inf"))
                        grad_norm = float(norm) if norm is not None else None
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
            lrs = {g.get("name", str(i)): g["lr"] for i, g in enumerate(optimizer.param_groups)}  # this step's
            if not accelerator.optimizer_step_was_skipped:
                scheduler.step()
            loss_sum = accelerator.reduce(loss_sum, reduction="sum")
            step_loss = float(loss_sum) / total_tokens if total_tokens else None
            step += 1
            in_epoch += 1
            counters["tokens"] += total_tokens
            counters["input_tokens"] += int(stats[1])
            counters["samples"] += int(stats[2])
            counters["skipped"] += int(stats[3])
            window["input_tokens"] += int(stats[1])
            if step_loss is not None:
                loss_first = step_loss if loss_first is None else loss_first
                loss_last = step_loss

            evaluated = None
            if recipe.eval.every and step % recipe.eval.every == 0:
                evaluated = eval_results[step] = run_periodic_eval(accelerator, model, processor, recipe, step, run_dir)
            if recipe.output.save_every and (step % recipe.output.save_every == 0 or step == total_steps):
                save(step)
                last_saved = step
            if step % recipe.output.log_every == 0 or step == total_steps or evaluated:
                now = time.perf_counter()
                span = max(now - window["t"], 1e-9)
                elapsed = now - loop_start
                record = {
                    "step": step,
                    "epoch": round(epoch + in_epoch / steps_per_epoch, 6),
                    "loss": step_loss,
                    "lr": lrs,
                    "grad_norm": grad_norm,
                    "supervised_tokens": total_tokens,
                    "tokens_per_s": window["input_tokens"] / span,
                    "samples": counters["samples"],
                    "skipped": counters["skipped"],
                    "skipped_step": int(stats[3]),
                    "loader_wait_share": wait_s / max(elapsed - startup_s, 1e-9),
                    "loader_startup_s": startup_s,
                    "loader_wait_share_window": window["wait"] / span,
                    "elapsed_s": elapsed,
                    "peak_memory_mb": peak_memory_mb(device),
                }
                if parts:
                    record["loss_parts"] = parts  # this rank's last step: the answer's loss and stage 0's
                if evaluated:
                    record["eval"] = evaluated
                out.metrics(record)
                window = {"t": now, "wait": 0.0, "input_tokens": 0}
                first_lr = next(iter(lrs.values()))
                bar.set_postfix(loss="-" if step_loss is None else f"{step_loss:.4f}", lr=f"{first_lr:.2e}",
                                tok_s=f"{record['tokens_per_s']:.0f}", refresh=False)
            bar.update(1)
        del batches
    del loader
    bar.close()

    if recipe.eval.at_end and not (recipe.eval.every and step % recipe.eval.every == 0):
        evaluated = eval_results[step] = run_periodic_eval(accelerator, model, processor, recipe, step, run_dir)
        out.metrics({"step": step, "eval": evaluated})
    if recipe.output.save_every and last_saved != step:
        save(step)

    wall = time.perf_counter() - t_start
    loop_wall = time.perf_counter() - loop_start
    final_dir = run_dir / FINAL
    accelerator.wait_for_everyone()
    unwrapped = _whole_model(accelerator, model, recipe)
    if main:
        info = {"recipe": recipe.to_dict(), "steps": step, "tokens": counters["tokens"], "skipped": counters["skipped"]}
        export_final(unwrapped, processor, final_dir, recipe.output.save_dtype, info, also=built.modified)
        out.log(f"final model: {final_dir}")
    accelerator.wait_for_everyone()
    result = TrainResult(
        run_dir=run_dir,
        final_dir=final_dir,
        steps=step,
        epochs_done=epoch + in_epoch / steps_per_epoch,
        tokens=counters["tokens"],
        samples=counters["samples"],
        skipped=counters["skipped"],
        loss_first=loss_first,
        loss_last=loss_last,
        wall_s=wall,
        loader_wait_s=wait_s,
        loader_wait_share=wait_s / max(loop_wall - (startup_s or 0.0), 1e-9),
        loader_startup_s=startup_s or 0.0,
        tokens_per_s=counters["input_tokens"] / max(loop_wall, 1e-9) if resumed_from is None else float("nan"),
        peak_memory_mb=peak_memory_mb(device),
        resumed_from=resumed_from,
        extra={"world_size": world, "global_batch": global_batch, "total_steps": total_steps,
               "steps_per_epoch": steps_per_epoch, "eval": eval_results},
    )
    if main:
        (run_dir / SUMMARY).write_text(json.dumps(result.to_dict(), indent=1, default=str) + "\n")
    out.close()
    accelerator.end_training()
    return result


def _whole_model(accelerator, model, recipe: Recipe):
    """The trained model with whole tensors on the main process (FSDP: gathered into a fresh CPU copy)."""
    from accelerate.utils import DistributedType

    unwrapped = accelerator.unwrap_model(model)
    if accelerator.distributed_type != DistributedType.FSDP:
        return unwrapped
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    from ..model.checkpoint import build_empty
    from .lora import add_lora

    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if not accelerator.is_main_process:
        return unwrapped
    copy = build_empty(unwrapped.config)
    if recipe.lora.enabled:
        with torch.device("meta"):
            add_lora(copy, recipe.lora)
    copy.load_state_dict(state, strict=False, assign=True)
    for name, p in copy.named_parameters():
        p.requires_grad_(dict(unwrapped.named_parameters()).get(name, p).requires_grad)
    return copy


__all__ = ["METRICS", "SUMMARY", "TrainResult", "make_accelerator", "run_periodic_eval", "train"]
