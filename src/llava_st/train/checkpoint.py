"""Training checkpoints: safetensors and JSON only, resumable to the same weights.

A checkpoint is a folder ``<output.dir>/step-<N>`` (N = optimizer steps done)::

    trainable.safetensors       every trainable parameter, full tensors, our names
    optimizer.safetensors       AdamW state tensors, keys "<parameter name>/<state key>"
    optimizer.json              the rest of the optimizer state (param groups, non-tensor state)
    scheduler.json              the learning-rate scheduler's state_dict
    rng-rank<R>.json            Python and NumPy generator states of rank R
    rng-rank<R>.safetensors     torch CPU (and CUDA) generator states of rank R
    trainer_state.json          step, data position (epoch, step in epoch), counters, run shape

Frozen parameters are not stored: a stage rebuilds them from its recipe
exactly (the same source, merges and initialisations), and resuming checks
that the checkpoint's trainable names and shapes are the model's.

The tensors are gathered with :mod:`torch.distributed.checkpoint.state_dict`
(``full_state_dict``, CPU offload), which handles a plain module, DDP and FSDP
alike and keys the optimizer state by parameter name rather than by position.
Under DeepSpeed the optimizer state is partitioned by DeepSpeed itself; that
engine's state goes through ``accelerator.save_state`` into a ``deepspeed/``
sub-folder (DeepSpeed's own files), next to the same JSON files.

Why not ``accelerator.save_state`` everywhere: it writes the optimizer, the
scheduler and the generator states with ``torch.save`` (pickles) whatever
``safe_serialization`` says; only model weights follow that switch.

A folder is written as ``step-<N>.tmp`` and renamed when complete, so an
interrupted save never looks like a checkpoint; :func:`latest_checkpoint`
finds the newest complete one and :func:`prune_checkpoints` keeps the last K.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError

TRAINABLE = "trainable.safetensors"
OPTIM_TENSORS = "optimizer.safetensors"
OPTIM_JSON = "optimizer.json"
SCHEDULER = "scheduler.json"
STATE = "trainer_state.json"
DS_DIR = "deepspeed"
_STEP_RE = re.compile(r"^step-(\d+)$")


def step_dir(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / f"step-{step}"


def list_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run, oldest first: ``[(step, folder), ...]``."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = []
    for p in run_dir.iterdir():
        m = _STEP_RE.match(p.name)
        if m and p.is_dir() and (p / STATE).is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint folder of a run, or None."""
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


def prune_checkpoints(run_dir: str | Path, keep_last: int) -> list[Path]:
    """Delete all but the ``keep_last`` newest checkpoints (0 keeps all); returns the deleted folders."""
    if keep_last <= 0:
        return []
    old = [p for _, p in list_checkpoints(run_dir)[:-keep_last]]
    for p in old:
        shutil.rmtree(p, ignore_errors=True)
    return old


# ------------------------------------------------------------------ generator states


def rng_state() -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """This process's generator states: JSON-able (Python, NumPy) and tensors (torch CPU, CUDA)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    plain = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
    }
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = s
    return plain, tensors


def set_rng_state(plain: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    """Restore what :func:`rng_state` returned."""
    version, internal, gauss = plain["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = plain["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["torch"])
    cuda = sorted((int(k.split(".")[1]), v) for k, v in tensors.items() if k.startswith("cuda."))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([v for _, v in cuda])


# ------------------------------------------------------------------ optimizer state <-> files


def _split_optimizer_state(osd: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An FQN-keyed optimizer state dict -> (tensors for safetensors, the rest as JSON-able data)."""
    tensors: dict[str, torch.Tensor] = {}
    plain_state: dict[str, dict[str, Any]] = {}
    for name, entry in osd["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{name}/{key}"] = value.detach().to("cpu").contiguous()
            else:
                plain_state.setdefault(name, {})[key] = value
    groups = []
    for g in osd["param_groups"]:
        groups.append({k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()})
    return tensors, {"state": plain_state, "param_groups": groups}


def _join_optimizer_state(tensors: dict[str, torch.Tensor], plain: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, dict[str, Any]] = {}
    for key, value in tensors.items():
        name, _, sub = key.rpartition("/")
        state.setdefault(name, {})[sub] = value
    for name, entry in plain["state"].items():
        state.setdefault(name, {}).update(entry)
    groups = []
    for g in plain["param_groups"]:
        g = dict(g)
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    return {"state": state, "param_groups": groups}


def _dcp_options(**kw):
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(**kw)


def _uses_deepspeed(accelerator) -> bool:
    from accelerate.utils import DistributedType

    return accelerator.distributed_type == DistributedType.DEEPSPEED


def trainable_names(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every trainable parameter of the unwrapped model."""
    return {n: tuple(p.shape) for n, p in model.named_parameters() if p.requires_grad}


# ------------------------------------------------------------------ save / load


def save_checkpoint(
    run_dir: str | Path,
    step: int,
    accelerator,
    model,
    optimizer,
    scheduler,
    state: dict[str, Any],
    keep_last: int = 0,
) -> Path:
    """Write ``step-<step>`` (see the module docstring); every rank must call it.

    ``state``: the trainer's JSON-able position and counters (written as
    ``trainer_state.json`` with the trainable names and shapes added).
    """
    from safetensors.torch import save_file

    final = step_dir(run_dir, step)
    tmp = final.with_name(final.name + ".tmp")
    main = accelerator.is_main_process
    if main:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()

    rank = accelerator.process_index
    plain, tensors = rng_state()
    (tmp / f"rng-rank{rank}.json").write_text(json.dumps(plain))
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp / f"rng-rank{rank}.safetensors"))

    unwrapped = accelerator.unwrap_model(model)
    shapes = trainable_names(unwrapped)
    if _uses_deepspeed(accelerator):
        accelerator.save_state(str(tmp / DS_DIR), safe_serialization=True)
        if main:
            weights = {n: p.detach().to("cpu").contiguous() for n, p in unwrapped.named_parameters() if p.requires_grad}
            save_file(weights, str(tmp / TRAINABLE))
    else:
        from torch.distributed.checkpoint.state_dict import get_state_dict

        inner = getattr(optimizer, "optimizer", optimizer)  # accelerate's wrapper holds the torch optimizer
        msd, osd = get_state_dict(
            model, inner, options=_dcp_options(full_state_dict=True, cpu_offload=True, ignore_frozen_params=True)
        )
        if main:
            save_file({k: v.contiguous() for k, v in msd.items() if k in shapes}, str(tmp / TRAINABLE))
            opt_tensors, opt_plain = _split_optimizer_state(osd)
            save_file(opt_tensors, str(tmp / OPTIM_TENSORS))
            (tmp / OPTIM_JSON).write_text(json.dumps(opt_plain, indent=1))
    if main:
        (tmp / SCHEDULER).write_text(json.dumps(scheduler.state_dict(), indent=1))
        record = {**state, "step": step, "trainable": {n: list(s) for n, s in shapes.items()}}
        (tmp / STATE).write_text(json.dumps(record, indent=1))
    accelerator.wait_for_everyone()
    if main:
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        prune_checkpoints(run_dir, keep_last)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(folder: str | Path, accelerator, model, optimizer, scheduler) -> dict[str, Any]:
    """Restore weights, optimizer, scheduler and this rank's generator states from ``folder``;
    returns the trainer state. Every rank must call it (after ``accelerator.prepare``).

    Raises:
        CheckpointError: a missing file, or trainable parameters that differ from the model's.
    """
    from safetensors.torch import load_file

    folder = Path(folder)
    need = [STATE, TRAINABLE, SCHEDULER]
    missing = [f for f in need if not (folder / f).is_file()]
    if missing:
        raise CheckpointError(f"checkpoint {folder} lacks {missing}")
    state = json.loads((folder / STATE).read_text())
    unwrapped = accelerator.unwrap_model(model)
    have = {n: list(s) for n, s in trainable_names(unwrapped).items()}
    if have != state["trainable"]:
        extra = sorted(set(state["trainable"]) - set(have))
        absent = sorted(set(have) - set(state["trainable"]))
        shape = sorted(n for n in set(have) & set(state["trainable"]) if have[n] != state["trainable"][n])
        raise CheckpointError(
            f"checkpoint {folder} was made with other trainable parameters than this recipe's model: "
            f"only in the checkpoint {extra[:5]}, only in the model {absent[:5]}, other shapes {shape[:5]}"
        )
    weights = load_file(str(folder / TRAINABLE))
    if _uses_deepspeed(accelerator):
        accelerator.load_state(str(folder / DS_DIR))
    else:
        from torch.distributed.checkpoint.state_dict import set_state_dict

        for f in (OPTIM_TENSORS, OPTIM_JSON):
            if not (folder / f).is_file():
                raise CheckpointError(f"checkpoint {folder} lacks {f}")
        osd = _join_optimizer_state(load_file(str(folder / OPTIM_TENSORS)), json.loads((folder / OPTIM_JSON).read_text()))
        inner = getattr(optimizer, "optimizer", optimizer)
        set_state_dict(
            model, inner, model_state_dict=weights, optim_state_dict=osd, options=_dcp_options(full_state_dict=True, strict=False)
        )
    scheduler.load_state_dict(json.loads((folder / SCHEDULER).read_text()))
    rank = accelerator.process_index
    rng_json, rng_st = folder / f"rng-rank{rank}.json", folder / f"rng-rank{rank}.safetensors"
    if rng_json.is_file() and rng_st.is_file():
        set_rng_state(json.loads(rng_json.read_text()), load_file(str(rng_st)))
    else:  # a run resumed on more ranks than it was saved with: new ranks start from rank 0's states
        set_rng_state(json.loads((folder / "rng-rank0.json").read_text()), load_file(str(folder / "rng-rank0.safetensors")))
    return state


def load_checkpoint_model(folder: str | Path):
    """The model of a checkpoint, for evaluating it: the stage's model rebuilt from the run's
    ``recipe.yaml`` (beside the checkpoint; frozen parameters come out exactly as in training)
    with the checkpoint's trainable tensors put in, in evaluation mode. A DeepSpeed checkpoint,
    whose weights live in DeepSpeed's own files, is not read.

    Returns:
        ``(model, processor)``.

    Raises:
        CheckpointError: no checkpoint or recipe there, or tensors that do not match the
            rebuilt model's trainable ones (names or shapes).
    """
    from safetensors.torch import load_file

    from .build import build_stage
    from .recipe import load_recipe

    folder = Path(folder)
    recipe_path = folder.parent / "recipe.yaml"
    for need in (folder / TRAINABLE, recipe_path):
        if not need.is_file():
            raise CheckpointError(f"{folder} is not a checkpoint of a training run: {need} is missing")
    built = build_stage(load_recipe(recipe_path))
    weights = load_file(str(folder / TRAINABLE))
    params = dict(built.model.named_parameters())
    unknown = sorted(set(weights) - set(params))
    absent = sorted(n for n, p in params.items() if p.requires_grad and n not in weights)
    shapes = sorted(n for n in set(weights) & set(params) if tuple(weights[n].shape) != tuple(params[n].shape))
    if unknown or absent or shapes:
        raise CheckpointError(f"checkpoint {folder} does not fit the model its recipe builds: tensors the model "
                              f"lacks {unknown[:5]}, trainable tensors the checkpoint lacks {absent[:5]}, "
                              f"other shapes {shapes[:5]}")
    with torch.no_grad():
        for name, tensor in weights.items():
            params[name].copy_(tensor)
    built.model.eval()
    return built.model, built.processor


__all__ = [
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "load_checkpoint_model",
    "prune_checkpoints",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
    "step_dir",
]
