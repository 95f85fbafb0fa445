"""Checkpoint I/O in the release layout (SPEC §6).

A release folder holds ``config.json`` (``model_type: llava_qwen``) and
safetensors weights (``model.safetensors`` or shards listed in
``model.safetensors.index.json``). Keys map to our module tree through the
declarative table :data:`KEY_MAP` (release prefix -> our prefix, longest
prefix wins, used in both directions). Loading is strict by default: every
parameter of the model must be provided and every tensor of the checkpoint
must be used, with matching shapes; otherwise :class:`CheckpointError` lists
every missing, unexpected and mis-shaped key. A non-strict load (``strict=False``,
e.g. converting a LLaVA-OneVision checkpoint, which lacks what LLaVA-ST adds)
loads what fits, gives every parameter without a tensor its init (the model's
own for the LLaVA-ST parts: packer, coordinate tables, projector; transformers'
standard one for the tower and the LLM) and never passes silently: the
:class:`LoadReport` is kept in ``model.load_report`` and logged as a warning.

The tower's config comes from an inline ``vision_config`` (configs we write),
else from the folder named by ``mm_vision_tower`` when it is a local folder
(relative to the checkpoint folder, or absolute), else the so400m defaults
(:meth:`LlavaSTConfig.from_pretrained`); its weights always come from the
LLaVA-ST checkpoint.

LoRA adapters in the release layout are read by :mod:`.adapters`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from ..config import LlavaSTConfig
from ..errors import CheckpointError, ConfigError, ModelNotFoundError

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"


def _packer_entries() -> list[tuple[str, str]]:
    entries = []
    for release, ours in (("token_packer", "spatial"), ("token_packer_slow", "slow"), ("token_packer_fast", "fast")):
        base_r = f"model.vision_resampler.{release}.devide_attention."
        base_o = f"packer.{ours}."
        entries.append((base_r, base_o))
        for proj in ("to_q", "to_k", "to_v"):
            entries.append((f"{base_r}{proj}.0.", f"{base_o}{proj}.fc1."))
            entries.append((f"{base_r}{proj}.2.", f"{base_o}{proj}.fc2."))
    return entries


#: (release key prefix, our key prefix). A key maps through its longest matching prefix.
KEY_MAP: tuple[tuple[str, str], ...] = (
    ("lm_head.", "lm_head."),
    ("model.embed_tokens.", "language_model.embed_tokens."),
    ("model.layers.", "language_model.layers."),
    ("model.norm.", "language_model.norm."),
    ("model.vision_tower.vision_tower.vision_model.", "vision_tower.tower."),
    ("model.mm_projector.0.", "projector.fc1."),
    ("model.mm_projector.2.", "projector.fc2."),
    *_packer_entries(),
    ("model.temporal_input_embeddings.weight", "coord_tables.time_in"),
    ("model.spatial_height_input_embeddings.weight", "coord_tables.height_in"),
    ("model.spatial_width_input_embeddings.weight", "coord_tables.width_in"),
    ("model.temporal_output_embeddings.weight", "coord_tables.time_out"),
    ("model.spatial_height_output_embeddings.weight", "coord_tables.height_out"),
    ("model.spatial_width_output_embeddings.weight", "coord_tables.width_out"),
    ("model.image_newline", "image_newline"),
)


def _map_key(key: str, table: list[tuple[str, str]]) -> str | None:
    best = None
    for src, dst in table:
        if key.startswith(src) and (best is None or len(src) > len(best[0])):
            best = (src, dst)
    if best is None:
        return None
    return best[1] + key[len(best[0]):]


_TO_OURS = sorted(KEY_MAP, key=lambda e: -len(e[0]))
_TO_RELEASE = sorted(((o, r) for r, o in KEY_MAP), key=lambda e: -len(e[0]))


def release_to_ours(key: str) -> str | None:
    """Our parameter name for a release key, or None when the key is not part of the model."""
    return _map_key(key, _TO_OURS)


def ours_to_release(key: str) -> str:
    """The release key for one of our parameter names."""
    mapped = _map_key(key, _TO_RELEASE)
    if mapped is None:
        raise KeyError(f"parameter {key!r} has no release key")
    return mapped


@dataclass
class LoadReport:
    """What a load found: checkpoint keys without a parameter, parameters without a
    tensor, and tensors whose shape differs (``key: checkpoint shape vs model shape``)."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def __str__(self) -> str:
        if self.ok:
            return "all keys matched"
        parts = []
        for name, keys in (("missing", self.missing), ("unexpected", self.unexpected), ("mis-shaped", self.mismatched)):
            if keys:
                parts.append(f"{len(keys)} {name} key(s):\n  " + "\n  ".join(keys))
        return "\n".join(parts)


# ---------------------------------------------------------------- reading


def _weight_files(folder: Path) -> list[Path]:
    index = folder / INDEX_NAME
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError) as exc:
            raise CheckpointError(f"{index} is not a valid safetensors index: {exc}") from exc
        files = sorted({folder / name for name in weight_map.values()})
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise CheckpointError(f"{index} names shard(s) that do not exist: {missing}")
        return files
    single = folder / WEIGHTS_NAME
    if single.is_file():
        return [single]
    raise ModelNotFoundError(f"no {WEIGHTS_NAME} or {INDEX_NAME} in {folder}")


def _parse_dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        out = dtype
    else:
        out = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
               "float16": torch.float16, "fp16": torch.float16}.get(str(dtype).replace("torch.", ""))
        if out is None:
            raise ConfigError(f"unsupported dtype {dtype!r}; use float32, bfloat16 or float16")
    if out not in (torch.float32, torch.bfloat16, torch.float16):
        raise ConfigError(f"unsupported dtype {out}; use float32, bfloat16 or float16")
    return out


def _rope_inv_freq(module: nn.Module) -> dict[str, torch.Tensor]:
    # A transformers rotary embedding has no parameters and computes its
    # frequencies from the config in __init__: build it again on the CPU.
    with torch.device("cpu"):
        fresh = type(module)(module.config)
    return {"inv_freq": fresh.inv_freq, "original_inv_freq": fresh.original_inv_freq}


def _position_ids(module: nn.Module) -> dict[str, torch.Tensor]:
    n = module.position_ids.shape[-1]
    return {"position_ids": torch.arange(n, device="cpu").expand((1, -1))}


def _ntp_matrices(module: nn.Module) -> dict[str, torch.Tensor]:
    from .lape import ntp_matrix

    return {"ntp_time": ntp_matrix(module.ntp_time.shape[0]), "ntp_space": ntp_matrix(module.ntp_space.shape[0])}


# Buffers are not in the checkpoint; a model built on the meta device gets them
# from these rules, keyed by the buffer names each rule fills.
_BUFFER_RULES = (
    (("inv_freq", "original_inv_freq"), _rope_inv_freq),
    (("position_ids",), _position_ids),
    (("ntp_time", "ntp_space"), _ntp_matrices),
)


def _materialise_buffers(model: nn.Module) -> None:
    """Give every buffer left on the meta device its real value on the CPU."""
    for module_name, module in model.named_modules():
        meta = {name for name, buf in module._buffers.items() if buf is not None and buf.is_meta}
        if not meta:
            continue
        for names, rule in _BUFFER_RULES:
            if meta & set(names):
                for name, value in rule(module).items():
                    if name in meta:
                        module._buffers[name] = value.to(module._buffers[name].dtype)
                        meta.discard(name)
        if meta:
            raise CheckpointError(
                f"buffers {sorted(meta)} of module {module_name or type(model).__name__!r} have no rule to be "
                "computed after building the model on the meta device (add one to _BUFFER_RULES)"
            )


#: Parts of our own (not transformers modules): a module there whose parameters all
#: came without a tensor gets the init it has when the model is built (``reset_parameters``).
_OWN_INIT_PREFIXES = ("packer.", "coord_tables", "projector.")


def _init_missing(model: nn.Module, names: list[str], device, dtype) -> None:
    """Give parameters the checkpoint did not provide real storage and an init.

    A module of our own parts (:data:`_OWN_INIT_PREFIXES`) whose direct
    parameters are all missing is materialised and reset with its own
    ``reset_parameters`` (as building the model would). Any other parameter gets
    transformers' standard init: biases and ``image_newline`` zero, norm scales
    one, other weights normal with std 0.02.
    """
    params = dict(model.named_parameters(remove_duplicate=False))
    missing = set(names)
    for module_name, module in model.named_modules():
        if not module_name.startswith(_OWN_INIT_PREFIXES) or not hasattr(module, "reset_parameters"):
            continue
        own = [f"{module_name}.{attr}" for attr, p in module.named_parameters(recurse=False) if p is not None]
        if not own or not missing.issuperset(own):
            continue
        for name in own:
            attr = name.rpartition(".")[2]
            old = params[name]
            setattr(module, attr, nn.Parameter(torch.empty(old.shape, dtype=dtype, device=device),
                                               requires_grad=old.requires_grad))
        module.reset_parameters()
        missing.difference_update(own)
    for name in [n for n in names if n in missing]:
        module_name, _, attr = name.rpartition(".")
        module = model.get_submodule(module_name) if module_name else model
        old = params[name]
        new = torch.empty(old.shape, dtype=dtype, device=device)
        if attr == "bias" or name == "image_newline":
            nn.init.zeros_(new)
        elif attr == "weight" and (isinstance(module, nn.LayerNorm) or "norm" in module_name):
            nn.init.ones_(new)  # LayerNorm / RMSNorm scales
        else:
            nn.init.normal_(new, std=0.02)
        setattr(module, attr, nn.Parameter(new, requires_grad=old.requires_grad))


def build_empty(config: LlavaSTConfig, attn_implementation: str = "sdpa"):
    """The model with parameters on the meta device, ready for ``load_state_dict(assign=True)``.

    The model is built inside ``torch.device("meta")`` (a thread-local mode, so
    models may be loaded in several threads at once): no memory is taken and no
    random init runs. Buffers, which no checkpoint holds, are then computed on
    the CPU by :func:`_materialise_buffers`.
    """
    from .modeling import LlavaSTModel

    with torch.device("meta"):
        model = LlavaSTModel(config, attn_implementation=attn_implementation)
    _materialise_buffers(model)
    return model


def load_state_dict_into(
    model: nn.Module,
    tensors: Mapping[str, torch.Tensor],
    strict: bool = True,
    source: str = "checkpoint",
) -> LoadReport:
    """Load release-keyed ``tensors`` into ``model`` (parameters may be on meta).

    Returns the report; raises :class:`CheckpointError` with it when ``strict``
    and anything is missing, unexpected or mis-shaped.
    """
    expected = {k: p for k, p in model.named_parameters()}
    report = LoadReport()
    ours: dict[str, torch.Tensor] = {}
    misshaped: set[str] = set()
    for key, tensor in tensors.items():
        name = release_to_ours(key)
        if name is None or name not in expected:
            report.unexpected.append(key)
            continue
        if tuple(tensor.shape) != tuple(expected[name].shape):
            report.mismatched.append(f"{key}: {tuple(tensor.shape)} in {source} vs {tuple(expected[name].shape)} in model")
            misshaped.add(name)
            continue
        ours[name] = tensor
    report.missing = sorted(ours_to_release(n) for n in expected if n not in ours and n not in misshaped)
    if strict and not report.ok:
        raise CheckpointError(f"{source} does not fit the model:\n{report}")
    model.load_state_dict(ours, strict=False, assign=True)
    return report


def load_pretrained(
    path: str | Path,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str = torch.float32,
    attn_implementation: str = "sdpa",
    strict: bool = True,
    config: LlavaSTConfig | None = None,
    revision: str | None = None,
):
    """Load a release-layout folder into a :class:`LlavaSTModel`.

    Args:
        path: the checkpoint folder, a model name of :data:`llava_st.zoo.WEIGHTS`
            or a Hugging Face Hub id (:func:`llava_st.zoo.model_path`).
        device: where the weights go (``"cpu"``, ``"cuda"``, ``"cuda:1"`` ...).
        dtype: float32, bfloat16 or float16 (tensors are cast while loading).
        attn_implementation: ``"sdpa"`` or ``"eager"`` for the tower and the LLM.
        strict: raise on any missing, unexpected or mis-shaped key (default).
            When False, missing parameters get a standard init and the
            :class:`LoadReport` is kept in ``model.load_report``.
        config: use this config instead of the folder's ``config.json``.
        revision: the Hub revision of a Hub id (branch, tag or commit).

    Returns:
        The model in eval mode.
    """
    from ..zoo import model_path

    folder = model_path(path, revision=revision)
    config = config or LlavaSTConfig.from_pretrained(folder)
    tensors = read_tensors(folder, dtype=dtype, device=device)
    return model_from_tensors(
        config, tensors, device=device, dtype=dtype, attn_implementation=attn_implementation, strict=strict,
        source=str(folder),
    )


def read_tensors(
    folder: str | Path, dtype: torch.dtype | str = torch.float32, device: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """Every tensor of a folder's safetensors weights (one file or shards), under its stored key,
    floating-point ones cast to ``dtype``, on ``device``."""
    from safetensors import safe_open

    dtype = _parse_dtype(dtype)
    device = torch.device(device)
    tensors: dict[str, torch.Tensor] = {}
    for file in _weight_files(Path(folder)):
        with safe_open(str(file), framework="pt", device="cpu") as f:
            for key in f.keys():
                t = f.get_tensor(key)
                tensors[key] = (t.to(dtype) if t.is_floating_point() else t).to(device)
    return tensors


def model_from_tensors(
    config: LlavaSTConfig,
    tensors: Mapping[str, torch.Tensor],
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str = torch.float32,
    attn_implementation: str = "sdpa",
    strict: bool = True,
    source: str = "checkpoint",
):
    """A :class:`LlavaSTModel` of ``config`` holding release-keyed ``tensors`` (see :func:`load_pretrained`).

    ``tensors`` must already be on ``device`` in ``dtype`` (:func:`read_tensors`);
    ``source`` names them in messages. Non-strict: parameters without a tensor
    are initialised (:func:`_init_missing`) and the report is logged.
    """
    dtype = _parse_dtype(dtype)
    device = torch.device(device)
    model = build_empty(config, attn_implementation)
    report = load_state_dict_into(model, tensors, strict=strict, source=source)
    if not report.ok:
        logger.warning("%s was loaded non-strictly:\n%s", source, report)
    not_loaded = [n for n, p in model.named_parameters() if p.is_meta]
    if not_loaded:
        _init_missing(model, not_loaded, device, dtype)
    if config.text.tie_word_embeddings:
        model.lm_head.weight = model.language_model.embed_tokens.weight
    for name, buf in model.named_buffers():
        if buf.device != device:
            module_name, _, attr = name.rpartition(".")
            model.get_submodule(module_name)._buffers[attr] = buf.to(device)
    if model.image_newline is not None:
        model.image_newline.requires_grad_(False)
    model.load_report = report
    return model.eval()


# ---------------------------------------------------------------- writing


def release_state_dict(model: nn.Module, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Every parameter under its release key (tied ``lm_head`` written once, as ``embed_tokens``)."""
    out = {}
    tied = getattr(model.config.text, "tie_word_embeddings", False)
    for name, param in model.named_parameters(remove_duplicate=False):
        if tied and name == "lm_head.weight":
            continue
        t = param.detach()
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        out[ours_to_release(name)] = t.to("cpu").contiguous()
    return out


def save_pretrained(
    model: nn.Module, path: str | Path, dtype: torch.dtype | None = None, max_shard_bytes: int = 5 * 2**30
) -> None:
    """Write ``config.json`` and the weights (sharded with an index above ``max_shard_bytes``)."""
    from safetensors.torch import save_file

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    model.config.to_json_file(folder / CONFIG_NAME)
    state = release_state_dict(model, dtype)
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key in sorted(state):
        nbytes = state[key].numel() * state[key].element_size()
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][key] = state[key]
        size += nbytes
    for stale in list(folder.glob("model*.safetensors")) + [folder / INDEX_NAME]:
        if stale.exists():
            stale.unlink()
    if len(shards) == 1:
        save_file(shards[0], str(folder / WEIGHTS_NAME), metadata={"format": "pt"})
        return
    weight_map = {}
    for i, shard in enumerate(shards, start=1):
        name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(folder / name), metadata={"format": "pt"})
        weight_map.update({k: name for k in shard})
    total = sum(t.numel() * t.element_size() for t in state.values())
    (folder / INDEX_NAME).write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2, sort_keys=True) + "\n"
    )


# ---------------------------------------------------------------- LoRA
