"""Converting a LLaVA-OneVision checkpoint into the model stage 1 starts from (SPEC §6, §8).

The release's stage 1 starts from LLaVA-OneVision Qwen2 + SigLIP (lmms-lab's
``llava-onevision-qwen2-*`` folders, LLaVA-NeXT layout). Its weights carry the
same names as LLaVA-ST's (SPEC §6) minus everything LLaVA-ST adds, so they go
through the one key map and loader of :mod:`llava_st.model.checkpoint`:

* config: :meth:`LlavaSTConfig.from_pretrained(folder, layout="onevision")
  <llava_st.config.LlavaSTConfig.from_pretrained>` (what changes is listed at
  :func:`~llava_st.config.onevision_release_dict`), its text vocabulary then
  sized to the tokenizer: ``V = len(tokenizer) - bins``;
* text rows (input embedding and LM head): the row of every token the
  checkpoint knows is copied; the 14 LLaVA-ST tokens (markers and
  placeholders) start at the mean of the copied rows
  (:func:`~llava_st.train.trainability.init_new_token_rows`); checkpoint rows
  past the tokenizer are dropped (Qwen2 pads its matrix: the 7B stores 152,064
  rows for 151,646 tokens, as the release's own resize did);
* loaded non-strictly, and checked: only the LLaVA-ST parts (packer and the six
  coordinate tables) may lack a tensor (they get the model's own init; the
  recipe's ``coord_tables_init`` applies after); a missing LLM or tower tensor,
  or one of another shape, is an error. Checkpoint tensors with no place in the
  model are reported as unused: the tower layers beyond the kept ones
  (OneVision may store all 27 SigLIP layers, LLaVA-ST keeps 26 with
  ``mm_vision_select_layer: -2``), ``image_newline`` and any other.

:class:`OneVisionConversion` holds what was done; its :meth:`~OneVisionConversion.notes`
go to the stage's log.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import CheckpointError, ModelNotFoundError
from ..processor.tokenizer import TokenizerMismatchError

#: Our parameter-name prefixes that a OneVision checkpoint does not hold.
LLAVA_ST_ADDITIONS = ("packer.", "coord_tables.")
#: Text rows resized to the tokenizer (release keys).
TEXT_ROWS = ("model.embed_tokens.weight", "lm_head.weight")
_TOWER_LAYER = re.compile(r"^model\.vision_tower\.vision_tower\.vision_model\.encoder\.layers\.(\d+)\.")


@dataclass
class OneVisionConversion:
    """What :func:`convert_onevision` did.

    ``source``: the folder; ``loaded``: checkpoint tensors loaded;
    ``missing``: our parameters with no tensor (release keys), initialised;
    ``unused``: checkpoint tensors not loaded (release keys); ``new_rows``: ids
    of the text rows started at the mean of the copied rows; ``copied_rows``:
    rows taken from the checkpoint; ``dropped_rows``: checkpoint rows not
    copied (past the tokenizer's own tokens: padding); ``kept_tower_layers``:
    tower layers of the model; ``changes``: what the config conversion changed.
    """

    source: str
    loaded: int
    missing: list[str]
    unused: list[str]
    new_rows: list[int]
    copied_rows: int
    dropped_rows: int
    kept_tower_layers: int
    changes: list[str] = field(default_factory=list)

    def notes(self) -> list[str]:
        """Lines for the stage log: every missing and unused tensor is accounted for."""
        lines = [
            f"converted LLaVA-OneVision {self.source}: {self.loaded} tensors loaded",
            f"text rows: {self.copied_rows} copied, {len(self.new_rows)} new (ids {_ranges(self.new_rows)}) at the "
            f"mean of the copied rows, {self.dropped_rows} checkpoint rows past the tokenizer's own tokens dropped",
        ]
        if self.missing:
            lines.append(f"not in the checkpoint, initialised: {_grouped(self.missing)}")
        extra_layers = sorted({int(m.group(1)) for m in map(_TOWER_LAYER.match, self.unused) if m})
        other = [k for k in self.unused if not _TOWER_LAYER.match(k)]
        if extra_layers:
            n = sum(1 for k in self.unused if _TOWER_LAYER.match(k))
            lines.append(
                f"unused: tower layer(s) {extra_layers} beyond the {self.kept_tower_layers} kept "
                f"(mm_vision_select_layer), {n} tensors"
            )
        if other:
            lines.append(f"unused: {', '.join(other)}")
        lines += self.changes
        return lines


def _ranges(ids: list[int]) -> str:
    if not ids:
        return "none"
    return f"{ids[0]}..{ids[-1]}" if ids == list(range(ids[0], ids[-1] + 1)) else str(ids)


def _grouped(keys: list[str]) -> str:
    """Release keys summed up by our module: ``packer.spatial (23 tensors), coord_tables (6 tensors)``."""
    from ..model.checkpoint import release_to_ours

    names = [release_to_ours(k) or k for k in keys]
    groups = Counter(n.split(".")[0] if n.startswith("coord_tables.") else ".".join(n.split(".")[:2]) for n in names)
    return ", ".join(f"{name} ({n} tensor{'s' if n > 1 else ''})" for name, n in sorted(groups.items()))


def convert_onevision(
    folder: str | Path,
    tokenizer,
    inject_fast_stream: bool | None = None,
    inject_width_inputs: bool | None = None,
    attn_implementation: str = "sdpa",
    dtype: torch.dtype | str = torch.float32,
):
    """The LLaVA-ST model converted from the OneVision checkpoint in ``folder`` (module docstring).

    Args:
        folder: the OneVision folder (``config.json`` and safetensors weights).
        tokenizer: the model's tokenizer, WITH the LLaVA-ST tokens
            (:func:`~llava_st.processor.build_release_tokenizer` adds them to a
            plain Qwen2 tokenizer); its base tokens must have checkpoint rows.
        inject_fast_stream, inject_width_inputs: SPEC §7 switches; None keeps
            ours (true).
        attn_implementation, dtype: as :func:`~llava_st.model.checkpoint.load_pretrained`.

    Returns:
        ``(model, conversion)``: the model in eval mode (``model.load_report``
        holds the raw :class:`~llava_st.model.checkpoint.LoadReport`) and the
        :class:`OneVisionConversion`.

    Raises:
        ModelNotFoundError: no folder, config or weights. ConfigError: not a
        OneVision config. TokenizerMismatchError: a tokenizer without the
        LLaVA-ST tokens, or with base tokens the checkpoint has no row for.
        CheckpointError: LLM or tower tensors missing or mis-shaped.
    """
    from ..config import LlavaSTConfig
    from ..model.checkpoint import model_from_tensors, read_tensors, release_to_ours
    from ..protocol.tokens import ADDED_TOKENS
    from .build import fit_config_to_tokenizer
    from .trainability import init_new_token_rows

    folder = Path(folder)
    if not folder.is_dir():
        raise ModelNotFoundError(f"model.path: no LLaVA-OneVision folder {folder}")
    source_config = LlavaSTConfig.from_pretrained(folder, layout="onevision")
    config = fit_config_to_tokenizer(source_config, tokenizer)
    bos = source_config.text.bos_token_id
    if bos is not None and bos < config.text.vocab_size:
        config = dataclasses.replace(config, text=dataclasses.replace(config.text, bos_token_id=bos))
    switches = {k: v for k, v in (("inject_fast_stream", inject_fast_stream),
                                  ("inject_width_inputs", inject_width_inputs)) if v is not None}
    if switches:
        config = dataclasses.replace(config, **switches)

    v = config.text.vocab_size
    new_ids = tokenizer.convert_tokens_to_ids(list(ADDED_TOKENS))
    if any(i is None or i == tokenizer.unk_token_id or i >= v for i in new_ids):
        raise TokenizerMismatchError(
            "the tokenizer lacks the LLaVA-ST tokens (build_release_tokenizer adds them to a Qwen2 tokenizer)"
        )
    new_ids = sorted(new_ids)
    old = torch.ones(v, dtype=torch.bool)
    old[new_ids] = False
    old_ids = old.nonzero().squeeze(1)  # [V - 14]

    tensors = read_tensors(folder, dtype=dtype)
    rows = None
    for key in TEXT_ROWS:
        if key not in tensors:
            continue  # lm_head of a model with tied embeddings
        src = tensors[key]  # [N, D]
        rows = src.shape[0]
        if int(old_ids.max()) >= rows:
            raise TokenizerMismatchError(
                f"{folder}: {key} has {rows} rows but the tokenizer's own tokens (before the LLaVA-ST ones) "
                f"go up to id {int(old_ids.max())}: the tokenizer is not the checkpoint's"
            )
        out = torch.zeros(v, src.shape[1], dtype=src.dtype, device=src.device)  # [V, D]
        out[old_ids] = src[old_ids]  # the new rows are set to the mean after loading
        tensors[key] = out
    if rows is None:
        raise CheckpointError(f"{folder} holds no {TEXT_ROWS[0]}: not a LLaVA-OneVision checkpoint")

    model = model_from_tensors(
        config, tensors, dtype=dtype, attn_implementation=attn_implementation, strict=False, source=str(folder)
    )
    report = model.load_report
    fatal = [k for k in report.missing if not (release_to_ours(k) or "").startswith(LLAVA_ST_ADDITIONS)]
    if fatal or report.mismatched:
        raise CheckpointError(
            f"{folder} does not fit the converted model (its config or tower config is not the checkpoint's):\n"
            + "\n".join([f"  missing {k}" for k in fatal] + [f"  mis-shaped {k}" for k in report.mismatched])
        )
    init_new_token_rows(model, new_ids)
    conversion = OneVisionConversion(
        source=str(folder),
        loaded=len(tensors) - len(report.unexpected),
        missing=list(report.missing),
        unused=list(report.unexpected),
        new_rows=new_ids,
        copied_rows=int(old_ids.numel()),
        dropped_rows=rows - int(old_ids.numel()),
        kept_tower_layers=config.vision.num_kept_layers,
        changes=[
            f"config: mm_resampler_type fast_slow_resampler, mm_patch_merge_type flat (no image_newline), "
            f"V {source_config.text.vocab_size} -> {v}, inject_fast_stream {config.inject_fast_stream}, "
            f"inject_width_inputs {config.inject_width_inputs}"
        ],
    )
    return model, conversion


__all__ = ["LLAVA_ST_ADDITIONS", "OneVisionConversion", "convert_onevision"]
