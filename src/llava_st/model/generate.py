"""Autoregressive decoding for LLaVA-ST (SPEC §2.10).

The prompt is merged once (visual features and coordinate values injected)
and prefilled; then tokens are decoded with a KV cache. A generated
coordinate id ``V + k`` is fed back through the input table rows ``E_in``
(:meth:`LlavaSTModel.embed_tokens`), never through the text table.

Two decoders run the same loop (``GenerationConfig.decoder``):

* ``"eager"``: transformers' forward with a ``DynamicCache``, one call per step;
* ``"static"``: a preallocated cache and a lean Qwen2 step
  (:mod:`.static_decode`), and ``"compiled"``: the same step through
  ``torch.compile`` (CUDA graphs on a GPU), compiled once per shape bucket;
* ``"auto"`` (default): ``"compiled"`` on CUDA, ``"static"`` on the CPU (a
  compile takes tens of seconds there and pays off only over long runs), and
  ``"eager"`` for a language model the static step does not implement.

Greedy ids are the same on every decoder (the tests check it; logits differ
by float rounding only).

Batches must be LEFT-padded (every sequence ends at the last column);
positions count only real tokens, so a padded row decodes exactly as it
would alone. Greedy decoding is deterministic; sampling applies temperature
and nucleus (top-p) filtering and draws from a seedable generator.

With a grammar (``constraint``, a :class:`~.grammar.GrammarState`) every
row's next token is masked to what its answer grammar allows, and the tokens
the grammar fixes are written without being chosen: the sampled token and
the forced run after it go to the model in ONE call, so a call may feed
several tokens per row (padded chunks are masked out of the cache).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import torch

from ..errors import ConfigError
from .grammar import GrammarError, GrammarState
from .static_decode import StaticDecoder, compile_available, decode_cache, required_capacity, static_support

DECODERS = ("auto", "eager", "static", "compiled")


@dataclass
class GenerationConfig:
    """Decoding settings. ``do_sample=False`` is greedy; the release evaluates with
    ``do_sample=True, temperature=0.01`` (near-greedy), which we do not default to.
    ``decoder``: ``"auto"``, ``"eager"``, ``"static"`` or ``"compiled"`` (module docstring)."""

    max_new_tokens: int = 256
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    eos_token_ids: tuple[int, ...] | None = None
    pad_token_id: int | None = None
    seed: int | None = None
    return_scores: bool = False
    decoder: str = "auto"

    def validate(self) -> None:
        if self.decoder not in DECODERS:
            raise ConfigError(f"decoder must be one of {DECODERS}, got {self.decoder!r}")
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
    each step when asked for (before temperature/top-p, and before a grammar's mask; NaN
    at tokens a grammar forced). ``model_calls``: forward calls after the prefill;
    ``forced`` ``[B]``: tokens a grammar wrote without a model choice; ``decoder``: the
    decoder that ran; ``prefill_seconds`` / ``decode_seconds``: wall time of the prompt
    (merge and prefill) and of the decoding loop."""

    sequences: torch.Tensor
    lengths: torch.Tensor
    stopped: torch.Tensor
    scores: torch.Tensor | None = None
    model_calls: int = 0
    forced: torch.Tensor | None = None
    decoder: str = "eager"
    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0


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


class EagerDecoder:
    """transformers' forward with a growing ``DynamicCache`` and 2-D mask (the reference path)."""

    def __init__(self, model):
        from transformers import DynamicCache

        self.model = model
        self.lm = model.language_model
        self.cache = DynamicCache(config=self.lm.config)
        self.mask: torch.Tensor | None = None
        self.model_calls = 0

    def close(self) -> None:
        self.cache = None

    def prefill(self, embeds: torch.Tensor, attention_mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        self.mask = attention_mask
        out = self.lm(inputs_embeds=embeds, attention_mask=attention_mask, position_ids=positions, cache=self.cache,
                      use_cache=True)
        return self.model.extended_logits(out.last_hidden_state[:, -1]).float()

    def feed(self, ids: torch.Tensor, valid: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        self.mask = torch.cat([self.mask, valid.long()], dim=1)
        out = self.lm(inputs_embeds=self.model.embed_tokens(ids, validate=False), attention_mask=self.mask,
                      position_ids=positions, cache=self.cache, use_cache=True)
        hidden = out.last_hidden_state  # [B, C, D]
        if ids.shape[1] == 1:
            last_hidden = hidden[:, -1]
        else:
            idx = torch.arange(ids.shape[1], device=ids.device)
            last = torch.where(valid, idx, -1).amax(1).clamp(min=0)  # each row's last real token
            last_hidden = hidden[torch.arange(ids.shape[0], device=ids.device), last]
        self.model_calls += 1
        return self.model.extended_logits(last_hidden).float()


def select_decoder(model, decoder: str = "auto") -> str:
    """The decoder that ``decoder`` (see :data:`DECODERS`) means for ``model`` on its device.

    Raises:
        ConfigError: ``"static"`` or ``"compiled"`` asked for where it cannot run (the reason named).
    """
    if decoder not in DECODERS:
        raise ConfigError(f"decoder must be one of {DECODERS}, got {decoder!r}")
    if decoder == "eager":
        return "eager"
    reason = static_support(model)
    if reason is not None:
        if decoder == "auto":
            return "eager"
        raise ConfigError(f"decoder={decoder!r} cannot run this model: {reason}")
    if decoder == "static":
        return "static"
    why = compile_available(model.device)
    if decoder == "compiled":
        if why is not None:
            raise ConfigError(f"decoder='compiled' is not available: {why}")
        return "compiled"
    failed = decode_cache(model).compile_failed  # a compile failed on this model before: do not retry
    return "compiled" if model.device.type == "cuda" and why is None and failed is None else "static"


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
    constraint: GrammarState | None = None,
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
        constraint: per-row answer grammars (:meth:`.grammar.TokenProgram.start`); a row
            then ends when its grammar does (its eos is the grammar's).

    Stops per row at an eos id (or the end of its grammar), and for the batch when all
    rows stopped or ``max_new_tokens`` were generated.

    Raises:
        GrammarError: ``max_new_tokens`` is too small for some row's shortest
            well-formed answer (the row and the count are named).
    """
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
    if constraint is not None:
        if len(constraint.pc) != bsz:
            raise ValueError(f"the constraint has {len(constraint.pc)} rows but the batch has {bsz}")
        need = constraint.min_tokens()
        short = (need > cfg.max_new_tokens).nonzero().flatten().tolist()
        if short:
            b = short[0]
            raise GrammarError(
                f"max_new_tokens={cfg.max_new_tokens} is too small for the constrained answer of row {b}: "
                f"its shortest well-formed answer has {int(need[b])} tokens"
            )

    t0 = time.perf_counter()
    if inputs_embeds is None:
        embeds = model.embed_inputs(input_ids, coord_values, pixel_values, modalities)
    elif inputs_embeds.shape[:2] != input_ids.shape:
        raise ValueError(f"inputs_embeds {tuple(inputs_embeds.shape)} does not match input_ids {tuple(input_ids.shape)}")
    else:
        embeds = inputs_embeds.to(device)
    positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)  # [B, L]

    kind = select_decoder(model, cfg.decoder)
    if kind == "eager":
        backend = EagerDecoder(model)
    else:
        capacity = required_capacity(input_ids.shape[1], cfg.max_new_tokens, constraint is not None, kind == "compiled")
        backend = StaticDecoder(model, bsz, capacity, compile=kind == "compiled", strict=cfg.decoder != "auto")
    try:
        logits = backend.prefill(embeds, attention_mask, positions)  # [B, V + K]
        next_pos = positions[:, -1] + 1  # [B]
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t1 = time.perf_counter()

        generator = None
        if cfg.do_sample and cfg.seed is not None:
            generator = torch.Generator(device=device).manual_seed(cfg.seed)
        loop = _constrained_loop if constraint is not None else _free_loop
        out = loop(backend, logits, next_pos, cfg, generator, eos, pad, constraint)
    finally:
        backend.close()
    out.model_calls = backend.model_calls
    out.decoder = "static" if kind == "compiled" and not backend.compile else kind
    out.prefill_seconds, out.decode_seconds = t1 - t0, time.perf_counter() - t1
    return out


def _free_loop(backend, logits, next_pos, cfg, generator, eos, pad, constraint) -> GenerationOutput:
    """One sampled token per row and call (no grammar)."""
    bsz, device = logits.shape[0], logits.device
    eos_t = torch.tensor(eos, device=device)
    finished = torch.zeros(bsz, dtype=torch.bool, device=device)
    lengths = torch.zeros(bsz, dtype=torch.long, device=device)
    ones = torch.ones(bsz, 1, dtype=torch.bool, device=device)
    tokens: list[torch.Tensor] = []
    scores: list[torch.Tensor] = []
    for step in range(cfg.max_new_tokens):
        if cfg.return_scores:
            scores.append(logits)
        nxt = _next_tokens(logits, cfg, generator)
        nxt = torch.where(finished, torch.full_like(nxt, pad), nxt)
        tokens.append(nxt)
        lengths += (~finished).long()
        finished |= torch.isin(nxt, eos_t)
        if bool(finished.all()) or step == cfg.max_new_tokens - 1:
            break
        logits = backend.feed(nxt[:, None], ones, next_pos[:, None])
        next_pos = next_pos + 1
    return GenerationOutput(
        sequences=torch.stack(tokens, dim=1),
        lengths=lengths,
        stopped=finished,
        scores=torch.stack(scores, dim=1) if cfg.return_scores else None,
        forced=torch.zeros(bsz, dtype=torch.long, device=device),
    )


def _constrained_loop(backend, logits, next_pos, cfg, generator, eos, pad, state: GrammarState) -> GenerationOutput:
    """Masked sampling; each call feeds a row's sampled token and the forced run after it.

    The grammar's state lives on the CPU (small per-row integers); only the
    mask ``[B, V + K]`` is built on the model's device.
    """
    bsz, device = logits.shape[0], logits.device
    max_new = cfg.max_new_tokens
    rows = torch.arange(bsz)
    out = torch.full((bsz, max_new), pad, dtype=torch.long)
    lengths = torch.zeros(bsz, dtype=torch.long)
    forced_count = torch.zeros(bsz, dtype=torch.long)
    next_pos = next_pos.cpu()
    scores = torch.full((bsz, max_new, logits.shape[-1]), float("nan"), device=device) if cfg.return_scores else None
    while True:
        remaining = max_new - lengths
        sample = state.needs_sample() & (remaining > 0)
        nxt = torch.full((bsz,), pad, dtype=torch.long)
        if bool(sample.any()):
            allowed = state.allowed(remaining, device)
            picked = _next_tokens(logits.masked_fill(~allowed, float("-inf")), cfg, generator).cpu()
            nxt = torch.where(sample, picked, nxt)
            if scores is not None:
                sel = sample.nonzero().flatten()
                scores[sel.to(device), lengths[sel].to(device)] = logits[sel.to(device)]
            state.advance(nxt, sample)
        forced, fvalid = state.forced_run(remaining - sample.long(), pad)
        chunk = torch.cat([nxt[:, None], forced], 1)  # [B, 1 + F]
        valid = torch.cat([sample[:, None], fvalid], 1)
        keep = valid.any(0)
        chunk, valid = chunk[:, keep], valid[:, keep]
        written = valid.cumsum(1) - 1  # [B, C] index among the row's new tokens
        out[rows[:, None].expand_as(valid)[valid], (lengths[:, None] + written)[valid]] = chunk[valid]
        new = valid.sum(1)
        lengths += new
        forced_count += fvalid.sum(1)
        ended = state.done | (lengths >= max_new)
        if bool(ended.all()) or chunk.shape[1] == 0:
            break
        positions = next_pos[:, None] + written.clamp(min=0)  # invalid slots: any position, they are masked
        next_pos = next_pos + new
        logits = backend.feed(chunk.to(device), valid.to(device), positions.to(device))
    width = max(1, int(lengths.max()))
    return GenerationOutput(
        sequences=out[:, :width].to(device),
        lengths=lengths.to(device),
        stopped=state.done.to(device),
        scores=scores[:, :width] if scores is not None else None,
        forced=forced_count.to(device),
    )
