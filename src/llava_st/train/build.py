"""A stage's model, processor and optimizer groups, built from its recipe (SPEC §8).

Order of preparation (each step named by a key of the recipe's ``model``
section, then ``lora``, ``trainable``, ``ntp`` and ``gradient_checkpointing``):

1. the source: ``path`` (a LLaVA-ST folder in the release layout, loaded in
   float32; with ``kind: onevision`` a LLaVA-OneVision Qwen2 + SigLIP folder,
   converted by :func:`~llava_st.train.onevision.convert_onevision`: text rows
   sized to the tokenizer, the LLaVA-ST tokens' rows at the mean of the others,
   packer and coordinate tables initialised (after ``torch.manual_seed(seed)``),
   unused tensors such as the extra tower layer and ``image_newline`` reported
   in the notes) or ``zoo`` (a named config with random weights drawn after
   ``torch.manual_seed(seed)``, its text vocabulary sized to ``tokenizer``);
   ``inject_*`` switches replace the config's when given;
2. ``merge_adapters``: each LoRA adapter folder (release layout, e.g. a LoRA
   stage's ``final/adapter``) is folded into the weights, in order, with its
   non-LoRA tensors (:func:`~llava_st.train.export.load_adapter`);
3. ``new_tokens``: the rows of the tokens new in this stage start at the mean
   of the other rows (input embedding and LM head; rows a OneVision conversion
   already started there are left as they are);
4. ``coord_tables_init``: ``keep``, ``zeros`` or ``normal``;
5. ``lora``: fresh adapters on every LLM linear (or the named targets);
6. ``trainable``: :func:`~llava_st.train.trainability.apply_trainability`
   freezes the rest and returns the AdamW groups; with ``auxiliary`` weights,
   stage 0's heads (:mod:`~llava_st.train.auxiliary`) are attached as
   ``model.auxiliary`` with a group of their own;
7. NTP on or off; gradient checkpointing.

The tokenizer: a folder with ``tokenizer.json``. A folder that holds a plain
Qwen2 tokenizer (no LLaVA-ST tokens) gets them added in the release's order
(:func:`~llava_st.processor.build_release_tokenizer`); the processor then
checks it against the model's config.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ..errors import ConfigError, ModelNotFoundError
from .auxiliary import ATTRIBUTE as AUXILIARY, AuxiliaryHeads
from .export import load_adapter
from .lora import add_lora
from .recipe import Recipe
from .step import enable_gradient_checkpointing, set_ntp
from .trainability import (
    apply_trainability,
    init_coordinate_tables,
    init_new_token_rows,
    init_tower_positions,
    new_token_ids,
)


@dataclass
class BuiltStage:
    """What :func:`build_stage` returns.

    ``model``: the :class:`~llava_st.model.LlavaSTModel` in training mode;
    ``processor``: its :class:`~llava_st.processor.LlavaSTProcessor` (``max_length``
    set from the recipe); ``groups``: AdamW parameter groups (name, params, lr,
    weight_decay); ``new_token_ids``: the rows ``new_tokens`` initialised;
    ``modified``: parameters the preparation changed (new-token rows, fresh
    tables), trainable or not: an adapter of this stage must carry them, since a
    frozen LM head with new rows differs from the base it will be merged into;
    ``notes``: what was done, for the log.
    """

    model: torch.nn.Module
    processor: object
    groups: list[dict]
    new_token_ids: list[int] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _tokenizer(folder: str | Path, config):
    """The tokenizer of ``folder``, with the release's added tokens added when it lacks them."""
    from ..processor import build_release_tokenizer, load_tokenizer
    from ..protocol.tokens import ADDED_TOKENS

    tok = load_tokenizer(folder)
    if tok.convert_tokens_to_ids(ADDED_TOKENS[0]) in (None, tok.unk_token_id):
        tok = build_release_tokenizer(tok, config.coords.bins)
    return tok


def fit_config_to_tokenizer(config, tokenizer):
    """``config`` with its text vocabulary ``V = len(tokenizer) - bins`` and the tokenizer's
    pad and end-of-turn ids (a zoo config has no tokenizer of its own)."""
    from ..processor.chat import TURN_END

    v = len(tokenizer) - config.coords.num_bins
    eos = tokenizer.convert_tokens_to_ids(TURN_END)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    text = dataclasses.replace(config.text, vocab_size=v, eos_token_id=eos, pad_token_id=pad, bos_token_id=None)
    return dataclasses.replace(config, text=text)


def _switches(config, source) -> object:
    changes = {}
    if source.inject_fast_stream is not None:
        changes["inject_fast_stream"] = source.inject_fast_stream
    if source.use_lape is not None:
        changes["use_lape"] = source.use_lape
    if source.inject_width_inputs is not None:
        changes["inject_width_inputs"] = source.inject_width_inputs
    if source.media_position is not None:
        changes["media_position"] = source.media_position
    return dataclasses.replace(config, **changes) if changes else config


def load_source(recipe: Recipe, conversion: list | None = None):
    """Step 1 of the module docstring: ``(model, processor)`` of the recipe's model source.

    ``conversion``: a list that receives the
    :class:`~llava_st.train.onevision.OneVisionConversion` of a ``kind: onevision`` source.
    """
    from ..config import LlavaSTConfig
    from ..model import LlavaSTModel
    from ..processor import LlavaSTProcessor

    src = recipe.model
    if src.kind == "onevision":
        from .onevision import convert_onevision

        folder = Path(src.path)
        if not folder.is_dir():
            raise ModelNotFoundError(f"model.path: no LLaVA-OneVision folder {folder}")
        # the config as converted, for the bin counts the tokenizer gets
        source_config = LlavaSTConfig.from_pretrained(folder, layout="onevision")
        tokenizer = _tokenizer(Path(src.tokenizer) if src.tokenizer is not None else folder, source_config)
        torch.manual_seed(recipe.seed)  # the packer's and tables' init
        model, done = convert_onevision(
            folder,
            tokenizer,
            inject_fast_stream=src.inject_fast_stream,
            inject_width_inputs=src.inject_width_inputs,
            attn_implementation=src.attn_implementation,
        )
        if conversion is not None:
            conversion.append(done)
        return model, LlavaSTProcessor(tokenizer, model.config)
    if src.zoo is not None:
        from ..zoo import get_config

        if src.tokenizer is None:
            raise ConfigError("model.tokenizer: a zoo config has no tokenizer; name a folder holding tokenizer.json")
        config = get_config(src.zoo)
        tokenizer = _tokenizer(src.tokenizer, config)
        config = _switches(fit_config_to_tokenizer(config, tokenizer), src)
        torch.manual_seed(recipe.seed)
        model = LlavaSTModel(config, attn_implementation=src.attn_implementation)
        return model, LlavaSTProcessor(tokenizer, config)
    folder = Path(src.path)
    if not folder.is_dir():
        raise ModelNotFoundError(f"model.path: no model folder {folder}")
    config = _switches(LlavaSTConfig.from_pretrained(folder), src)
    model = LlavaSTModel.from_pretrained(
        folder, dtype=torch.float32, attn_implementation=src.attn_implementation, config=config
    )
    tok_folder = Path(src.tokenizer) if src.tokenizer is not None else folder
    processor = LlavaSTProcessor(_tokenizer(tok_folder, model.config), model.config)
    return model, processor


def build_stage(recipe: Recipe, log: Callable[[str], None] | None = None) -> BuiltStage:
    """Prepare the stage's model (the module docstring's steps 1-7)."""
    from ..model.checkpoint import release_to_ours

    log = log or (lambda _msg: None)
    conversions: list = []
    model, processor = load_source(recipe, conversions)
    notes = [f"model: {recipe.model.path or 'zoo ' + str(recipe.model.zoo)} (V = {model.config.text.vocab_size})"]
    modified: list[str] = []
    converted_rows: set[int] = set()
    for conversion in conversions:
        notes += conversion.notes()
        converted_rows.update(conversion.new_rows)
        # everything the checkpoint did not hold is new, and the text rows changed
        modified += ["language_model.embed_tokens.weight", "lm_head.weight"]
        modified += [release_to_ours(k) for k in conversion.missing]
    for adapter in recipe.model.merge_adapters:
        counts = load_adapter(model, adapter, merge=True)
        notes.append(f"merged adapter {adapter}: {counts['lora']} LoRA tensors, {counts['non_lora']} full tensors")
    ids = new_token_ids(model, recipe.model.new_tokens) if recipe.model.new_tokens else []
    if ids:
        fresh = [i for i in ids if i not in converted_rows]
        if fresh:
            init_new_token_rows(model, fresh)
            notes.append(f"new tokens {recipe.model.new_tokens}: {len(fresh)} rows start at the mean of the others")
        else:
            notes.append(f"new tokens {recipe.model.new_tokens}: {len(ids)} rows, started by the conversion")
        modified += ["language_model.embed_tokens.weight", "lm_head.weight"]
    torch.manual_seed(recipe.seed + 1)  # fresh tables and adapters do not depend on how the source was made
    if recipe.model.tower_positions_init != "keep":
        init_tower_positions(model, recipe.model.tower_positions_init)
        modified += [n for n, _ in model.named_parameters() if n.endswith("position_embedding.weight")]
        notes.append(f"tower positions: {recipe.model.tower_positions_init}")
    if recipe.model.coord_tables_init != "keep":
        init_coordinate_tables(model, recipe.model.coord_tables_init)
        modified += [f"coord_tables.{n}" for n, _ in model.coord_tables.named_parameters()]
        notes.append(f"coordinate tables: {recipe.model.coord_tables_init}")
    if recipe.lora.enabled:
        add_lora(model, recipe.lora)
        notes.append(f"LoRA r {recipe.lora.r}, alpha {recipe.lora.alpha:g}, dropout {recipe.lora.dropout:g}")
    groups = apply_trainability(
        model,
        recipe.trainable,
        lr=recipe.optim.lr,
        lr_groups=recipe.optim.lr_groups,
        weight_decay=recipe.optim.weight_decay,
        new_token_ids=ids,
    )
    if recipe.auxiliary.enabled:
        heads = AuxiliaryHeads(recipe.auxiliary, model.config.text.hidden_size, processor.tokenizer).to(model.device)
        setattr(model, AUXILIARY, heads)
        groups.append({"name": "auxiliary", "params": list(heads.parameters()), "lr": recipe.optim.lr,
                       "weight_decay": recipe.optim.weight_decay})
        notes.append(f"auxiliary heads (stage 0, not exported): {recipe.auxiliary}")
    set_ntp(model, recipe.ntp)
    model.train()
    if recipe.gradient_checkpointing:
        enable_gradient_checkpointing(model)
    processor.options = dataclasses.replace(processor.options, max_length=recipe.batch.max_length)
    for note in notes:
        log(note)
    return BuiltStage(model, processor, groups, ids, list(dict.fromkeys(modified)), notes)


__all__ = ["BuiltStage", "build_stage", "fit_config_to_tokenizer", "load_source"]
