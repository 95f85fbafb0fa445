"""Autoregressive decoding for LLaVA-ST (SPEC §2.10).

The prompt is merged once (visual features and coordinate values injected),
then tokens are decoded one at a time with transformers' ``DynamicCache``.
A generated coordinate id ``V + k`` is fed back through the input table rows
``E_in`` (:meth:`LlavaSTModel.embed_tokens`), never through the text table.

Batches must be LEFT-padded (every sequence ends at the last column);
positions count only real tokens, so a padded row decodes exactly as it
would alone. Greedy decoding is deterministic; sampling applies temperature
and nucleus (top-p) filtering and draws from a seedable generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from ..errors import ConfigError


@dataclass
class GenerationConfig:
    """Decoding settings. ``do_sample=False`` is greedy; the release evaluates with
    ``do_sample=True, temperature=0.01`` (near-greedy), which we do not default to."""

    max_new_tokens: int = 256
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    eos_token_ids: tuple[int, ...] | None = None
    pad_token_id: int | None = None
    seed: int | None = None
    return_scores: bool = False

    def validate(self) -> None:
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.do_sample and not self.temperature > 0:
            raise ConfigError(f"sampling needs temperature > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")


@dataclass
class GenerationOutput:
    """``sequences`` ``[B, N]`` new ids (``pad`` after a row's eos); ``lengths`` ``[B]``
    tokens generated per row, eos included; ``stopped`` ``[B]`` bool, the row ended with
    an eos (its last token, at ``lengths - 1``); ``scores`` ``[B, N, V + K]`` raw logits of
    each step when asked for (before temperature/top-p)."""

    sequences: torch.Tensor
    lengths: torch.Tensor
    stopped: torch.Tensor
    scores: torch.Tensor | None = None


def _top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of highest-probability ids whose mass reaches ``top_p``."""
    if top_p >= 1.0:
        return logits
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    probs = sorted_logits.softmax(-1)
    # drop an id when the mass before it already reaches top_p (the top id always stays)
    drop_sorted = (probs.cumsum(-1) - probs) >= top_p
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def _next_tokens(logits: torch.Tensor, cfg: GenerationConfig, generator: torch.Generator | None) -> torch.Tensor:
    if not cfg.do_sample:
        return logits.argmax(-1)
    logits = _top_p_filter(logits / cfg.temperature, cfg.top_p)
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def generate(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    coord_values: torch.Tensor | None = None,
    pixel_values: Sequence[torch.Tensor | None] | None = None,
    modalities: Sequence[str | None] | None = None,
    generation_config: GenerationConfig | None = None,
    inputs_embeds: torch.Tensor | None = None,
    **overrides,
) -> GenerationOutput:
    """Decode up to ``max_new_tokens`` for a left-padded batch.

    Args:
        model: a :class:`~llava_st.model.modeling.LlavaSTModel`.
        input_ids, attention_mask, coord_values, pixel_values, modalities: the
            processor's outputs (``[B, L]`` tensors and per-sample lists).
        generation_config: settings; keyword ``overrides`` replace its fields.
        inputs_embeds: the merged prompt ``[B, L, D]`` when the caller already has it
            (:meth:`LlavaSTModel.embed_inputs`); the media inputs are then not used.

    Stops per row at an eos id, and for the batch when all rows stopped or
    ``max_new_tokens`` were generated.
    """
    from transformers import DynamicCache

    unknown = set(overrides) - set(GenerationConfig.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown generation arguments: {sorted(unknown)}")
    cfg = generation_config or GenerationConfig()
    cfg = GenerationConfig(**{**cfg.__dict__, **{k: v for k, v in overrides.items() if k in cfg.__dict__}})
    cfg.validate()

    ids_cfg = model.config.token_ids
    eos = cfg.eos_token_ids
    if eos is None:
        eos = (ids_cfg.eos,) if ids_cfg.eos is not None else (model.config.text.eos_token_id,)
    eos = tuple(e for e in eos if e is not None)
    pad = cfg.pad_token_id if cfg.pad_token_id is not None else ids_cfg.pad
    if pad is None:
        pad = eos[0] if eos else 0  # only written after a row's eos, so any id will do

    device = model.device
    input_ids = input_ids.to(device)
    bsz = input_ids.shape[0]
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    attention_mask = attention_mask.to(device).long()
    if not bool(attention_mask[:, -1].all()):
        raise ValueError("generation needs left-padded batches: every sequence must end at the last column")

    if inputs_embeds is None:
        embeds = model.embed_inputs(input_ids, coord_values, pixel_values, modalities)
    elif inputs_embeds.shape[:2] != input_ids.shape:
        raise ValueError(f"inputs_embeds {tuple(inputs_embeds.shape)} does not match input_ids {tuple(input_ids.shape)}")
    else:
        embeds = inputs_embeds.to(device)
    positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)  # [B, L]
    cache = DynamicCache(config=model.language_model.config)
    out = model.language_model(
        inputs_embeds=embeds, attention_mask=attention_mask, position_ids=positions, cache=cache, use_cache=True
    )
    hidden = out.last_hidden_state[:, -1]  # [B, D]
    next_pos = positions[:, -1:] + 1  # [B, 1]

    generator = None
    if cfg.do_sample and cfg.seed is not None:
        generator = torch.Generator(device=device).manual_seed(cfg.seed)
    eos_t = torch.tensor(eos, device=device)
    finished = torch.zeros(bsz, dtype=torch.bool, device=device)
    lengths = torch.zeros(bsz, dtype=torch.long, device=device)
    tokens: list[torch.Tensor] = []
    scores: list[torch.Tensor] = []
    for step in range(cfg.max_new_tokens):
        logits = model.extended_logits(hidden).float()  # [B, V + K]
        if cfg.return_scores:
            scores.append(logits)
        nxt = _next_tokens(logits, cfg, generator)
        nxt = torch.where(finished, torch.full_like(nxt, pad), nxt)
        tokens.append(nxt)
        lengths += (~finished).long()
        finished |= torch.isin(nxt, eos_t)
        if bool(finished.all()) or step == cfg.max_new_tokens - 1:
            break
        attention_mask = torch.cat([attention_mask, torch.ones_like(attention_mask[:, :1])], dim=1)
        out = model.language_model(
            inputs_embeds=model.embed_tokens(nxt[:, None], validate=False),
            attention_mask=attention_mask,
            position_ids=next_pos,
            cache=cache,
            use_cache=True,
        )
        hidden = out.last_hidden_state[:, -1]
        next_pos = next_pos + 1
    return GenerationOutput(
        sequences=torch.stack(tokens, dim=1),
        lengths=lengths,
        stopped=finished,
        scores=torch.stack(scores, dim=1) if cfg.return_scores else None,
    )
