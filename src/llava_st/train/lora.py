"""LoRA on the language model of a LLaVA-ST model, through ``peft`` (SPEC §8, stages 2 and 3).

The release trains LoRA adapters (r 128, alpha 256, dropout 0.05) on every
linear layer of the LLM except the head, beside fully trained packer,
coordinate tables and input embedding. Here:

* :func:`add_lora` injects adapters in place into ``model.language_model``
  (the model stays a :class:`~llava_st.model.LlavaSTModel`; a wrapped linear's
  weight is then named ``...q_proj.base_layer.weight`` and the adapter
  ``...q_proj.lora_A.default.weight``). The head (``lm_head`` and the output
  coordinate tables) lives outside the LLM and is never adapted.
* :func:`save_lora_adapter` writes the release's adapter layout: PEFT's
  ``adapter_config.json`` and ``adapter_model.safetensors`` with keys
  ``base_model.model.model.layers.N.<proj>.lora_{A,B}.weight``, plus
  ``non_lora_trainables.bin`` (a flat ``{name: tensor}`` pickle, names
  ``base_model.model.<release key>``) holding every other trainable tensor.
  :func:`llava_st.model.load_lora_adapter` merges such a folder into a
  plain model; :func:`attach_lora_adapter` attaches it unmerged (to go on
  training).
* :func:`merge_lora` folds the adapters into the base weights
  (``W + (alpha / r) B A``, in float32) and removes them, leaving a plain
  model that ``save_pretrained`` writes in the release layout.

``peft`` is an optional dependency (``pip install 'llava-st[train]'``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from .._optional import require
from ..errors import CheckpointError, ConfigError, ModelNotFoundError
from ..model.adapters import copy_non_lora_trainables, find_non_lora_trainables
from ..model.checkpoint import ours_to_release, release_to_ours

ADAPTER_NAME = "default"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
NON_LORA = "non_lora_trainables.bin"
_PEFT_PREFIX = "base_model.model."
_LLM_PREFIX = "language_model."


@dataclass
class LoraSettings:
    """LoRA hyper-parameters. Defaults: the release's (r 128, alpha 256, dropout 0.05).

    Attributes:
        enabled: attach adapters at all (a stage recipe without LoRA leaves it off).
        r: rank.
        alpha: ``lora_alpha``; the update is scaled by ``alpha / r``
            (``alpha / sqrt(r)`` with ``use_rslora``).
        dropout: dropout on the adapter's input in training.
        target_modules: module-name suffixes to adapt inside the LLM (e.g.
            ``["q_proj", "v_proj"]``); None = every ``nn.Linear`` of the LLM.
        use_rslora: rank-stabilised scaling.
    """

    enabled: bool = False
    r: int = 128
    alpha: float = 256.0
    dropout: float = 0.05
    target_modules: list[str] | None = None
    use_rslora: bool = False

    def validate(self) -> None:
        if self.r < 1:
            raise ConfigError(f"r: must be >= 1, got {self.r}")
        if not self.alpha > 0:
            raise ConfigError(f"alpha: must be > 0, got {self.alpha}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout: must be in [0, 1), got {self.dropout}")
        if self.target_modules is not None and not self.target_modules:
            raise ConfigError("target_modules: an empty list adapts nothing; leave it out (null) for every linear layer")

    @property
    def scaling(self) -> float:
        return self.alpha / math.sqrt(self.r) if self.use_rslora else self.alpha / self.r


def llm_linear_suffixes(model: nn.Module) -> list[str]:
    """Last name parts of every ``nn.Linear`` in ``model.language_model`` (Qwen2: the 7 projections)."""
    return sorted({name.rsplit(".", 1)[-1] for name, mod in model.language_model.named_modules() if isinstance(mod, nn.Linear)})


def has_lora(model: nn.Module) -> bool:
    """Whether adapters are attached to the model's language model."""
    return any(".lora_" in name for name, _ in model.named_parameters())


def lora_parameters(model: nn.Module) -> Iterator[tuple[str, nn.Parameter]]:
    """``(name, parameter)`` of every adapter weight."""
    return ((n, p) for n, p in model.named_parameters() if ".lora_" in n)


def add_lora(model: nn.Module, settings: LoraSettings):
    """Inject LoRA adapters into ``model.language_model`` in place; returns the ``peft.LoraConfig``.

    The adapters start as PEFT does (``A`` random, ``B`` zero), so the model's
    output is unchanged until they train. They get the dtype and device of
    the weights they adapt.

    Raises:
        ConfigError: invalid settings, adapters already attached, or target
            names that match no linear layer of the LLM.
    """
    peft = require("peft")
    settings.validate()
    if has_lora(model):
        raise ConfigError("the model already has LoRA adapters; merge them (merge_lora) before adding new ones")
    available = llm_linear_suffixes(model)
    targets = sorted(settings.target_modules) if settings.target_modules is not None else available
    unknown = [t for t in targets if t not in available]
    if unknown:
        raise ConfigError(f"target_modules: {unknown} name no linear layer of the LLM; it has {available}")
    config = peft.LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=targets,
        use_rslora=settings.use_rslora,
        bias="none",
    )
    peft.inject_adapter_in_model(config, model.language_model, adapter_name=ADAPTER_NAME)
    _match_base_dtype(model)
    return config


def _lora_layers(model: nn.Module):
    from peft.tuners.lora import LoraLayer

    return [(name, mod) for name, mod in model.language_model.named_modules() if isinstance(mod, LoraLayer)]


def _match_base_dtype(model: nn.Module) -> None:
    for _, layer in _lora_layers(model):
        dtype = layer.get_base_layer().weight.dtype
        for p in list(layer.lora_A.parameters()) + list(layer.lora_B.parameters()):
            p.data = p.data.to(dtype)


@torch.no_grad()
def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every adapter into its base weight and remove the adapters.

    Each adapted weight becomes ``W + s * B @ A`` (``s`` the adapter's scaling),
    computed in float32 and stored in ``W``'s dtype; the wrapped linears are
    replaced by their base layers. Returns the same model object, now a plain
    :class:`~llava_st.model.LlavaSTModel` (a model without adapters is returned unchanged).
    """
    if not has_lora(model):
        return model
    for name, layer in _lora_layers(model):
        base = layer.get_base_layer()
        delta = torch.zeros(base.weight.shape, dtype=torch.float32, device=base.weight.device)
        for adapter in layer.active_adapters:
            if adapter in layer.lora_A:
                a = layer.lora_A[adapter].weight.float()  # [r, in]
                b = layer.lora_B[adapter].weight.float()  # [out, r]
                delta += (b @ a) * layer.scaling[adapter]
        base.weight.copy_((base.weight.float() + delta).to(base.weight.dtype))
        parent_name, _, child = name.rpartition(".")
        parent = model.language_model.get_submodule(parent_name) if parent_name else model.language_model
        setattr(parent, child, base)
    if hasattr(model.language_model, "peft_config"):
        del model.language_model.peft_config
    return model


def _adapter_key(name: str) -> str:
    """``language_model.layers.0.self_attn.q_proj.lora_A.default.weight`` ->
    ``base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`` (the release's adapter key)."""
    name = name.replace(f".{ADAPTER_NAME}.", ".")
    module, _, rest = name.partition(".lora_")
    return _PEFT_PREFIX + ours_to_release(module + ".weight")[: -len(".weight")] + ".lora_" + rest


def _adapter_config(model: nn.Module):
    cfg = getattr(model.language_model, "peft_config", {}).get(ADAPTER_NAME)
    if cfg is None:
        raise ConfigError("the model has no LoRA adapter to save (add_lora attaches one)")
    return cfg


def save_lora_adapter(model: nn.Module, folder: str | Path, include_non_lora: bool = True) -> dict[str, int]:
    """Write the adapter and the other trainable tensors in the release's LoRA layout.

    Files: ``adapter_config.json`` (PEFT's), ``adapter_model.safetensors``
    (adapter weights, release keys) and, when ``include_non_lora``,
    ``non_lora_trainables.bin`` with every parameter that has ``requires_grad``
    and is not an adapter weight (e.g. the packer, the coordinate tables and
    the input embedding of stages 2 and 3), under ``base_model.model.<release key>``.
    Tensors are written from the CPU in their own dtype.

    Returns counts ``{"lora": n_adapter_tensors, "non_lora": n_other_tensors}``.
    """
    from safetensors.torch import save_file

    cfg = _adapter_config(model)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg.save_pretrained(str(folder))
    adapters = {_adapter_key(n): p.detach().to("cpu").contiguous() for n, p in lora_parameters(model)}
    save_file(adapters, str(folder / ADAPTER_WEIGHTS), metadata={"format": "pt"})
    others: dict[str, torch.Tensor] = {}
    if include_non_lora:
        for name, param in model.named_parameters():
            if param.requires_grad and ".lora_" not in name:
                others[_PEFT_PREFIX + ours_to_release(name.replace(".base_layer.", "."))] = param.detach().to("cpu").clone()
        torch.save(others, folder / NON_LORA)
    return {"lora": len(adapters), "non_lora": len(others)}


@torch.no_grad()
def attach_lora_adapter(model: nn.Module, folder: str | Path) -> dict[str, int]:
    """Attach a saved adapter UNMERGED (to go on training it) and load its non-LoRA tensors
    (``non_lora_trainables.safetensors``, ours, or the release's ``non_lora_trainables.bin``).

    The adapter's ``adapter_config.json`` gives its rank, alpha, dropout and
    targets; its weights may use the release's keys or ours. Returns counts
    ``{"lora": n_adapter_tensors, "non_lora": n_other_tensors}``.

    Raises:
        ModelNotFoundError: a missing file. CheckpointError: keys or shapes that
        do not fit the model.
    """
    require("peft")  # fail early with the extra to install
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / ADAPTER_CONFIG).is_file():
        raise ModelNotFoundError(f"no {ADAPTER_CONFIG} in {folder}")
    if not (folder / ADAPTER_WEIGHTS).is_file():
        raise ModelNotFoundError(f"no {ADAPTER_WEIGHTS} in {folder}")
    raw = json.loads((folder / ADAPTER_CONFIG).read_text())
    weights = load_file(str(folder / ADAPTER_WEIGHTS))
    # the targets are the modules the saved weights adapt (the config may hold a regex)
    targets = sorted({k.partition(".lora_")[0].rsplit(".", 1)[-1] for k in weights if ".lora_" in k})
    if not targets:
        raise CheckpointError(f"{folder / ADAPTER_WEIGHTS} holds no lora_A/lora_B tensors")
    settings = LoraSettings(
        enabled=True,
        r=int(raw["r"]),
        alpha=float(raw.get("lora_alpha", raw["r"])),
        dropout=float(raw.get("lora_dropout", 0.0)),
        target_modules=targets,
        use_rslora=bool(raw.get("use_rslora", False)),
    )
    add_lora(model, settings)
    params = dict(model.named_parameters())
    problems: list[str] = []
    loaded = 0
    for key, tensor in weights.items():
        name = _our_adapter_name(key)
        if name is None or name not in params:
            problems.append(f"{key}: names no adapter weight of the model")
            continue
        if tuple(tensor.shape) != tuple(params[name].shape):
            problems.append(f"{key}: shape {tuple(tensor.shape)} vs {tuple(params[name].shape)} in the model")
            continue
        params[name].copy_(tensor.to(params[name].device, params[name].dtype))
        loaded += 1
    missing = sum(1 for n, _ in lora_parameters(model)) - loaded
    if missing and not problems:
        problems.append(f"{missing} adapter weight(s) of the model are not in {ADAPTER_WEIGHTS}")
    others = 0
    extra = find_non_lora_trainables(folder)
    if extra is not None:
        by_plain = {n.replace(".base_layer.", "."): n for n in params}

        def resolve(key: str) -> str | None:
            stripped = key[len(_PEFT_PREFIX):] if key.startswith(_PEFT_PREFIX) else key
            return by_plain.get(release_to_ours(stripped) or stripped)

        others = copy_non_lora_trainables(extra, params, resolve, problems)
    if problems:
        raise CheckpointError(f"adapter {folder} does not fit the model:\n  " + "\n  ".join(problems))
    return {"lora": loaded, "non_lora": others}


def _our_adapter_name(key: str) -> str | None:
    """A saved adapter key (release or our naming, with or without the PEFT prefix) -> our parameter name."""
    k = key[len(_PEFT_PREFIX):] if key.startswith(_PEFT_PREFIX) else key
    module, sep, rest = k.partition(".lora_")
    if not sep:
        return None
    ours = release_to_ours(module + ".weight")
    if ours is None:
        ours = module + ".weight"
    part, _, tail = rest.partition(".")  # "A" / "B", "weight"
    return f"{ours[: -len('.weight')]}.lora_{part}.{ADAPTER_NAME}.{tail}"


__all__ = [
    "LoraSettings",
    "add_lora",
    "attach_lora_adapter",
    "has_lora",
    "llm_linear_suffixes",
    "lora_parameters",
    "merge_lora",
    "save_lora_adapter",
]
