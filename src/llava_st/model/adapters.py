"""LoRA adapters in the release layout (SPEC §6, §8).

A LoRA stage is stored as a PEFT adapter (``adapter_config.json`` and
``adapter_model.safetensors`` with ``lora_A``/``lora_B`` pairs) plus the full
tensors the stage trained besides the adapters (packer, coordinate tables,
embeddings): ``non_lora_trainables.bin`` in the release, a pickle, or
``non_lora_trainables.safetensors`` in the adapters we write. :func:`load_lora_adapter`
merges both into a model; pickles are read only with ``weights_only=True``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from ..errors import CheckpointError, ModelNotFoundError
from .checkpoint import release_to_ours


def _strip_peft_prefix(key: str) -> str:
    for prefix in ("base_model.model.", "base_model."):
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def _param_name(key: str, params: Mapping[str, torch.Tensor]) -> str | None:
    """Our parameter name for a (PEFT-prefix-stripped) key in release or in our naming."""
    if key in params:
        return key
    mapped = release_to_ours(key)
    return mapped if mapped in params else None


#: The file of an adapter folder holding the stage's other trained tensors: ours
#: (safetensors) first, then the release's pickle.
NON_LORA_FILES = ("non_lora_trainables.safetensors", "non_lora_trainables.bin")


def find_non_lora_trainables(folder: Path) -> Path | None:
    """The non-LoRA tensor file of an adapter folder, or None when it has none."""
    for name in NON_LORA_FILES:
        if (folder / name).is_file():
            return folder / name
    return None


def copy_non_lora_trainables(
    path: Path, params: Mapping[str, torch.Tensor], resolve, problems: list[str]
) -> int:
    """Copy the full tensors of a non-LoRA tensor file into ``params`` (in place); returns the count.

    ``path`` is a ``.safetensors`` file or the release's pickle (read with
    ``weights_only=True``). ``resolve(key)`` gives the parameter name a stored
    key stands for, or None. A key that names no parameter, or a shape that
    differs, is appended to ``problems`` (the caller raises with all of them)
    and the tensor is skipped.
    """
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        stored = load_file(str(path))
    else:
        stored = torch.load(str(path), map_location="cpu", weights_only=True)
    copied = 0
    for key, tensor in stored.items():
        name = resolve(key)
        if name is None:
            problems.append(f"{path.name}: {key} names no parameter of the model")
            continue
        target = params[name]
        if tuple(tensor.shape) != tuple(target.shape):
            problems.append(f"{path.name}: {key} is {tuple(tensor.shape)} but the model has {tuple(target.shape)}")
            continue
        target.copy_(tensor.to(target.device, target.dtype))
        copied += 1
    return copied


def load_lora_adapter(model: nn.Module, adapter_dir: str | Path) -> dict[str, int]:
    """Merge a PEFT LoRA adapter (and its non-LoRA tensors, :data:`NON_LORA_FILES`, if present) into ``model``.

    Adapter keys ``base_model.model.<module>.lora_A.weight`` / ``lora_B.weight`` may
    name modules in the release layout (``model.layers.0.self_attn.q_proj``) or in
    ours (``language_model.layers.0...``). Each target weight becomes
    ``W + s * B @ A`` with ``s = lora_alpha / r`` (``lora_alpha / sqrt(r)`` with
    rsLoRA), computed in float32. ``non_lora_trainables.safetensors`` (ours) or
    ``non_lora_trainables.bin`` (the release's pickle, read with
    ``weights_only=True``) replaces the full tensors it holds.

    Returns counts: ``{"merged": n_lora_pairs, "replaced": n_full_tensors}``.
    Raises CheckpointError for keys that name no parameter, shapes that differ,
    or an ``A`` without its ``B``.
    """
    from safetensors.torch import load_file

    folder = Path(adapter_dir)
    cfg_path = folder / "adapter_config.json"
    if not cfg_path.is_file():
        raise ModelNotFoundError(f"no adapter_config.json in {folder}")
    acfg = json.loads(cfg_path.read_text())
    r = int(acfg.get("r", 0))
    alpha = float(acfg.get("lora_alpha", r))
    if r <= 0:
        raise CheckpointError(f"{cfg_path}: r must be a positive integer, got {acfg.get('r')!r}")
    scale = alpha / math.sqrt(r) if acfg.get("use_rslora") else alpha / r
    if acfg.get("fan_in_fan_out"):
        raise CheckpointError(f"{cfg_path}: fan_in_fan_out adapters are not supported (Qwen2 uses nn.Linear)")

    st, binf = folder / "adapter_model.safetensors", folder / "adapter_model.bin"
    if st.is_file():
        weights = load_file(str(st))
    elif binf.is_file():
        weights = torch.load(str(binf), map_location="cpu", weights_only=True)
    else:
        raise ModelNotFoundError(f"no adapter_model.safetensors or adapter_model.bin in {folder}")

    params = dict(model.named_parameters())
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    problems: list[str] = []
    for key, tensor in weights.items():
        k = _strip_peft_prefix(key)
        for part in ("lora_A", "lora_B"):
            marker = f".{part}."
            if marker in k:
                module = k.split(marker)[0]
                pairs.setdefault(module, {})[part] = tensor
                break
        else:
            problems.append(f"{key}: not a lora_A/lora_B tensor")
    merged = 0
    with torch.no_grad():
        for module, ab in sorted(pairs.items()):
            if set(ab) != {"lora_A", "lora_B"}:
                problems.append(f"{module}: has {sorted(ab)} but needs both lora_A and lora_B")
                continue
            name = _param_name(module + ".weight", params)
            if name is None:
                problems.append(f"{module}: names no weight of the model")
                continue
            w = params[name]
            delta = ab["lora_B"].float() @ ab["lora_A"].float()
            if delta.shape != w.shape:
                problems.append(f"{module}: B @ A is {tuple(delta.shape)} but the weight is {tuple(w.shape)}")
                continue
            w.copy_((w.float() + scale * delta.to(w.device)).to(w.dtype))
            merged += 1

        extra = find_non_lora_trainables(folder)
        replaced = 0
        if extra is not None:
            replaced = copy_non_lora_trainables(extra, params, lambda key: _param_name(_strip_peft_prefix(key), params), problems)
    if problems:
        raise CheckpointError(f"adapter {folder} does not fit the model:\n  " + "\n  ".join(problems))
    return {"merged": merged, "replaced": replaced}


def convert_pickle_to_safetensors(src: str | Path, dst: str | Path) -> int:
    """Rewrite a tensor pickle (e.g. ``non_lora_trainables.bin``) as safetensors; returns the tensor count.

    The pickle is read with ``weights_only=True``; anything that is not a flat
    mapping of names to tensors is refused.
    """
    from safetensors.torch import save_file

    data = torch.load(str(src), map_location="cpu", weights_only=True)
    if not isinstance(data, Mapping) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise CheckpointError(f"{src} is not a flat mapping of names to tensors")
    save_file({k: v.contiguous() for k, v in data.items()}, str(dst), metadata={"format": "pt"})
    return len(data)
