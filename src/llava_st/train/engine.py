"""The engine under the trainer: the ``accelerate`` set-up a recipe asks for, devices and memory.

:func:`make_accelerator` builds the :class:`accelerate.Accelerator` with the
recipe's precision and accumulation, DDP with ``find_unused_parameters``, and
DeepSpeed from the recipe's engine file when the launcher did not configure
it (see :mod:`.loop` for how the engines are launched).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError
from .recipe import Recipe

_PRECISION = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}
MODEL_KEYS = ("input_ids", "attention_mask", "coord_values", "labels", "pixel_values", "modalities")


def _has_accelerator() -> bool:
    acc = getattr(torch, "accelerator", None)
    if acc is not None and hasattr(acc, "is_available"):
        return bool(acc.is_available())
    return torch.cuda.is_available()


def _engine_kind(path: str) -> str:
    """``deepspeed`` for a JSON engine, else the ``distributed_type`` of an accelerate YAML."""
    if path.endswith(".json"):
        return "deepspeed"
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"engine: no such file {path}")
    data = yaml.safe_load(p.read_text()) or {}
    return str(data.get("distributed_type", "NO")).lower()


def make_accelerator(recipe: Recipe):
    """The :class:`accelerate.Accelerator` of a run (see the module docstring)."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    kwargs: dict[str, Any] = {
        "mixed_precision": _PRECISION[recipe.precision],
        "gradient_accumulation_steps": recipe.batch.grad_accum,
        "kwargs_handlers": [DistributedDataParallelKwargs(find_unused_parameters=True)],
    }
    env_true = lambda name: os.environ.get(name, "false").lower() == "true"  # noqa: E731
    if recipe.engine is not None:
        kind = _engine_kind(recipe.engine)
        if kind == "deepspeed" and not env_true("ACCELERATE_USE_DEEPSPEED"):
            try:
                import deepspeed  # noqa: F401
            except ImportError:
                raise ConfigError(
                    f"engine: {recipe.engine} is a DeepSpeed config but deepspeed is not installed "
                    "(pip install deepspeed), or set engine=null"
                ) from None
            from accelerate.utils import DeepSpeedPlugin

            kwargs["deepspeed_plugin"] = DeepSpeedPlugin(hf_ds_config=recipe.engine)
        elif kind == "fsdp" and not env_true("ACCELERATE_USE_FSDP"):
            raise ConfigError(
                f"engine: {recipe.engine} is an FSDP config; start the run with "
                f"accelerate launch --config_file {recipe.engine} -m llava_st train ..."
            )
    if env_true("ACCELERATE_USE_FSDP") and recipe.trainable.embed_tokens == "new":
        raise ConfigError(
            "trainable.embed_tokens: 'new' masks rows of the embedding gradient with a hook that FSDP's "
            "flattened/sharded parameters do not keep; use 'all' under FSDP"
        )
    if not _has_accelerator():
        kwargs["cpu"] = True  # accelerate would otherwise not start a multi-process CPU (gloo) run
    return Accelerator(**kwargs)


def configure_deepspeed(accelerator, recipe: Recipe) -> None:
    """Fill the DeepSpeed config values accelerate would guess: clipping, batch sizes."""
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    if plugin is None:
        return
    cfg = plugin.deepspeed_config
    cfg["gradient_clipping"] = float(recipe.optim.max_grad_norm or 0.0)  # 0 = no clipping in DeepSpeed
    cfg["train_micro_batch_size_per_gpu"] = recipe.batch.per_device
    cfg["gradient_accumulation_steps"] = recipe.batch.grad_accum
    cfg["train_batch_size"] = recipe.batch.per_device * recipe.batch.grad_accum * accelerator.num_processes


# ------------------------------------------------------------------ small helpers


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    out = {}
    for k in MODEL_KEYS:
        v = batch.get(k)
        if isinstance(v, torch.Tensor):
            v = v.to(device, non_blocking=True)
        elif k == "pixel_values" and v is not None:
            v = [None if t is None else t.to(device, non_blocking=True) for t in v]
        out[k] = v
    if batch.get("dense_targets") is not None:  # stage 0's targets: the auxiliary loss moves what it uses
        out["dense_targets"] = batch["dense_targets"]
    return out


__all__ = ["MODEL_KEYS", "configure_deepspeed", "make_accelerator", "peak_memory_mb", "to_device"]
