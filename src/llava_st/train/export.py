"""What a stage leaves behind: the final model folder, and LoRA adapters in the release's layout.

The final model of a stage (``<output.dir>/final``) is a model folder in the
release layout that :meth:`llava_st.model.LlavaSTModel.from_pretrained` and
:meth:`llava_st.LlavaST.from_pretrained` load: ``config.json``, safetensors
weights, the tokenizer files and ``llava_st_processor.json``. A LoRA stage
writes BOTH forms:

* ``final/`` holds the model with the adapters merged into the weights
  (``W + (alpha / r) B A``, float32 arithmetic), so it loads like any model;
* ``final/adapter/`` holds the adapter itself, in the release's LoRA layout
  (``adapter_config.json``, ``adapter_model.safetensors``) with the other
  trained tensors (packer, coordinate tables, input embedding), and the frozen
  ones the stage changed before training (the LM head when the stage adds
  tokens: its new rows), in ``non_lora_trainables.safetensors`` under the
  release's keys: the
  release's ``non_lora_trainables.bin`` holds the same tensors as a pickle,
  which we do not write. The next stage merges it through
  ``model.merge_adapters`` (:func:`load_adapter`), and ``llava-st merge-lora``
  folds it into a base model.

``final/training.json`` records the recipe and the run's counters.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from ..errors import CheckpointError, ModelNotFoundError
from .auxiliary import ATTRIBUTE as AUXILIARY
from .lora import _PEFT_PREFIX, ADAPTER_CONFIG, attach_lora_adapter, has_lora, merge_lora, save_lora_adapter

ADAPTER_DIR = "adapter"
NON_LORA_SAFE = "non_lora_trainables.safetensors"
TRAINING_INFO = "training.json"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def save_adapter(model: nn.Module, folder: str | Path, also: Sequence[str] = ()) -> dict[str, int]:
    """Write the model's LoRA adapter and its other trainable tensors (see the module docstring);
    ``also`` names further parameters to store with them (e.g. a frozen head with new rows).

    Returns counts ``{"lora": ..., "non_lora": ...}``.
    """
    from safetensors.torch import save_file

    from ..model.checkpoint import ours_to_release

    folder = Path(folder)
    counts = save_lora_adapter(model, folder, include_non_lora=False)
    others = {
        _PEFT_PREFIX + ours_to_release(name.replace(".base_layer.", ".")): p.detach().to("cpu").contiguous()
        for name, p in model.named_parameters()
        if (p.requires_grad or name.replace(".base_layer.", ".") in set(also)) and ".lora_" not in name
    }
    save_file(others, str(folder / NON_LORA_SAFE), metadata={"format": "pt"})
    return {"lora": counts["lora"], "non_lora": len(others)}


@torch.no_grad()
def load_adapter(model: nn.Module, folder: str | Path, merge: bool = True) -> dict[str, int]:
    """Attach an adapter folder (ours or the release's) and load its non-LoRA tensors; merge it when asked.

    The non-LoRA tensors come from ``non_lora_trainables.safetensors`` (ours) or a
    release folder's ``non_lora_trainables.bin`` (read with ``weights_only=True``),
    through :func:`~llava_st.train.lora.attach_lora_adapter`.

    Raises:
        ModelNotFoundError: no adapter in ``folder``. CheckpointError: tensors that do not fit.
    """
    folder = Path(folder)
    if not (folder / ADAPTER_CONFIG).is_file():
        raise ModelNotFoundError(f"no {ADAPTER_CONFIG} in {folder}: not a LoRA adapter folder")
    counts = attach_lora_adapter(model, folder)  # reads either non-LoRA file
    if merge:
        merge_lora(model)
    return counts


def export_final(
    model: nn.Module,
    processor,
    folder: str | Path,
    dtype: str | None = None,
    info: dict[str, Any] | None = None,
    also: Sequence[str] = (),
) -> Path:
    """Write the final model folder (see the module docstring); a LoRA model is merged IN PLACE
    and stage 0's auxiliary heads are removed from it.

    ``dtype``: ``float32``, ``bfloat16``, ``float16`` or None (the weights' own);
    ``also``: parameters the adapter stores beside the trainable ones (:func:`save_adapter`).
    The folder is written beside itself and renamed, so a folder named
    ``final`` is always complete.
    """
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    if getattr(model, AUXILIARY, None) is not None:
        delattr(model, AUXILIARY)  # stage 0's heads are training aids, not part of the model
    lora = has_lora(model)
    if lora:
        save_adapter(model, tmp / ADAPTER_DIR, also)
        merge_lora(model)
    model.save_pretrained(tmp, dtype=DTYPES[dtype] if dtype else None)
    processor.save_pretrained(tmp)
    record = {"lora_merged": lora, "adapter": ADAPTER_DIR if lora else None, **(info or {})}
    (tmp / TRAINING_INFO).write_text(json.dumps(record, indent=2, default=str) + "\n")
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder


def merge_adapter_folder(base: str | Path, adapter: str | Path, out: str | Path, dtype: str | None = None) -> dict[str, int]:
    """``llava-st merge-lora``: load ``base``, fold ``adapter`` into it, write ``out`` with the
    base's tokenizer and processor files. Returns the counts of :func:`load_adapter`."""
    from ..model import LlavaSTModel
    from ..processor import LlavaSTProcessor

    base, out = Path(base), Path(out)
    if out.resolve() == base.resolve():
        raise CheckpointError(f"--out {out} is the base folder; write the merged model elsewhere")
    model = LlavaSTModel.from_pretrained(base, dtype=torch.float32)
    processor = LlavaSTProcessor.from_pretrained(base, config=model.config)
    counts = load_adapter(model, adapter, merge=True)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, dtype=DTYPES[dtype] if dtype else None)
    processor.save_pretrained(out)
    return counts


__all__ = ["ADAPTER_DIR", "NON_LORA_SAFE", "export_final", "load_adapter", "merge_adapter_folder", "save_adapter"]
