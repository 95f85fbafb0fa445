"""Decoding with a preallocated KV cache and a lean, compilable decode step (SPEC §2.9-2.10).

transformers' decode step is general: it builds a mask object, grows a
``DynamicCache`` by concatenation and wraps every layer in Python machinery.
On a small model that overhead is the whole step, and on a GPU the many small
kernel launches keep a 7B step several times above its memory-bandwidth
limit. This module runs the same Qwen2 layers (the same weights, the same
formulas as ``modeling_qwen2``) on a cache that is allocated once:

* :class:`StaticKVCache`: per layer ``keys``/``values`` ``[B, Hkv, Lmax, hd]``
  and ``valid`` ``[B, Lmax]`` (which slots hold a real token of that row).
  Every row writes a fed chunk at the same slots ``[n, n + C)``; left padding
  and padded chunk slots are simply invalid slots, so rows never interact.
* :func:`decode_step`: ``C`` new ids per row -> logits ``[B, V + K]`` at each
  row's last real slot: the extended embedding (coordinate ids fed back
  through ``E_in``), the Qwen2 layers with RoPE at each row's own positions,
  SDPA over the cache's filled slots (its first ``n``, the length of ``valid``)
  under the validity-and-causality mask, the final norm and the extended head.
  No host synchronisation: it is what ``torch.compile`` compiles. On the CPU
  the filled length ``n`` is a symbolic size of one graph, so a step attends
  to the slots it uses, not the whole bucket (attention is most of a batched
  step there); under CUDA graphs (``reduce-overhead``), which replay fixed
  shapes, ``n`` is the whole cache.
* :class:`StaticDecoder`: the backend :func:`llava_st.model.generate.generate`
  drives. The prompt is prefilled by transformers' own forward (so the
  prefill is the eager path's, bit for bit) and its keys and values are copied
  into the static cache; decoding then calls the step, compiled per shape
  bucket ``(B, C, Lmax)`` and cached on the model (:func:`decode_cache`), so a
  compile happens once per bucket, never per call. ``C = 1`` (one token per
  row) has its own static graph; wider chunks (a grammar's forced tokens) are
  padded to a power of two and share one graph with a symbolic width; ``Lmax``
  is rounded to a power of two or 1.5 times one (at least 256), so calls of
  similar length share graphs and cache buffers.

Notation: ``B`` rows, ``C`` tokens fed per row in one call, ``Lmax`` cache
slots, ``D`` width, ``H``/``Hkv`` query/key-value heads, ``hd`` head width.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch.nn import functional as F

#: Smallest cache length bucket: calls up to this many tokens share one set of buffers and graphs.
MIN_CACHE_BUCKET = 256


def static_support(model) -> str | None:
    """Why the static path cannot run this model's language model (None: it can).

    The lean step implements Qwen2 with full attention and default RoPE, which
    is every LLaVA-ST checkpoint; anything else (sliding-window layers, scaled
    RoPE variants) stays on the eager path rather than being approximated.
    """
    cfg = model.language_model.config
    kinds = set(getattr(cfg, "layer_types", None) or ["full_attention"])
    if kinds != {"full_attention"}:
        return f"layer types {sorted(kinds)} (only full attention is implemented)"
    rope = (getattr(cfg, "rope_parameters", None) or {}).get("rope_type", "default")
    if rope != "default":
        return f"rope_type {rope!r} (only the default RoPE is implemented)"
    if getattr(model.language_model.rotary_emb, "attention_scaling", 1.0) != 1.0:
        return "a RoPE attention scaling other than 1"
    return None


def bucket_length(n: int) -> int:
    """Cache slots for ``n`` tokens: the next of 256, 384, 512, 768, 1024, 1536, ... (powers of
    two and 1.5 times them), so a call attends to at most 1.5 times the slots it uses while
    calls of similar length share one bucket.

    Example: 10 -> 256, 300 -> 384, 513 -> 768, 800 -> 1024, 3000 -> 3072.
    """
    n = max(n, MIN_CACHE_BUCKET)
    p = 1 << (n - 1).bit_length()  # the power of two at or above n
    return p * 3 // 4 if p * 3 // 4 >= n and p >= 2 * MIN_CACHE_BUCKET else p


def bucket_chunk(c: int) -> int:
    """Width of a compiled chunk holding ``c`` tokens per row: 1, 2, 4, 8, ... (``c`` rounded up)."""
    return 1 << max(0, c - 1).bit_length()


@dataclass
class StaticKVCache:
    """Preallocated keys and values of every layer, shared write position ``length``.

    ``keys[i]``/``values[i]`` ``[B, Hkv, Lmax, hd]``; ``valid`` ``[B, Lmax]`` bool marks
    the slots that hold a real token of their row (left padding and padded
    chunk slots stay False and are never attended to).
    """

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    valid: torch.Tensor
    length: int = 0
    in_use: bool = False  # held by a running decoder: a concurrent call must not write into it

    @classmethod
    def allocate(cls, model, batch: int, max_len: int) -> "StaticKVCache":
        cfg = model.language_model.config
        hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        shape = (batch, cfg.num_key_value_heads, max_len, hd)
        kw = dict(dtype=model.dtype, device=model.device)
        layers = cfg.num_hidden_layers
        cache = cls([torch.zeros(shape, **kw) for _ in range(layers)], [torch.zeros(shape, **kw) for _ in range(layers)],
                    torch.zeros(batch, max_len, dtype=torch.bool, device=model.device))
        if model.device.type == "cuda":
            # fixed addresses: CUDA graphs replay in place instead of copying the cache in
            for t in [*cache.keys, *cache.values, cache.valid]:
                torch._dynamo.mark_static_address(t)
        return cache

    @property
    def capacity(self) -> int:
        return self.valid.shape[1]

    @property
    def batch_size(self) -> int:
        return self.valid.shape[0]

    def reset(self) -> None:
        self.valid.zero_()
        self.length = 0


def _rms_norm(norm, x: torch.Tensor) -> torch.Tensor:
    """``Qwen2RMSNorm`` with the same operations in the same order (float32 statistics)."""
    dtype = x.dtype
    h = x.to(torch.float32)
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + norm.variance_epsilon)
    return norm.weight * h.to(dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def decode_step(
    model,
    ids: torch.Tensor,
    positions: torch.Tensor,
    slots: torch.Tensor,
    last: torch.Tensor,
    keys: list[torch.Tensor],
    values: list[torch.Tensor],
    valid: torch.Tensor,
) -> torch.Tensor:
    """Feed ``C`` tokens per row through the language model on the static cache.

    Args:
        model: the :class:`~llava_st.model.modeling.LlavaSTModel`.
        ids: ``[B, C]`` token ids (text or bin ids ``V + k``).
        positions: ``[B, C]`` RoPE positions (each row counts only its real tokens).
        slots: ``[C]`` cache slots the chunk is written to (the same for every row).
        last: ``[B]`` index in ``0..C-1`` of each row's last real token.
        keys, values: the cache's per-layer buffers ``[B, Hkv, Lmax, hd]``, written in
            place at ``slots``.
        valid: ``[B, n]`` validity of the first ``n`` slots (``n <= Lmax``, covering
            ``slots``), already True for this chunk's real slots; attention reads those
            ``n`` slots only.

    Returns:
        ``[B, V + K]`` float32 logits at each row's ``last`` position.
    """
    lm = model.language_model
    x = model.embed_tokens(ids, validate=False)  # [B, C, D]
    b, c, _ = x.shape
    # RoPE exactly as Qwen2RotaryEmbedding: float32 angles, cos/sin cast to the model dtype
    freqs = positions[..., None].float() * lm.rotary_emb.inv_freq.float()  # [B, C, hd/2]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos().to(x.dtype)[:, None], emb.sin().to(x.dtype)[:, None]  # [B, 1, C, hd]
    # slot j is visible to chunk token i when it holds a real token and is not after it
    n = valid.shape[1]
    cols = torch.arange(n, device=valid.device)
    mask = valid[:, None, None, :] & (cols[None, None, None, :] <= slots[None, None, :, None])  # [B, 1, C, n]
    for layer, kc, vc in zip(lm.layers, keys, values):
        attn = layer.self_attn
        h = _rms_norm(layer.input_layernorm, x)
        q = attn.q_proj(h).view(b, c, -1, attn.head_dim).transpose(1, 2)  # [B, H, C, hd]
        k = attn.k_proj(h).view(b, c, -1, attn.head_dim).transpose(1, 2)  # [B, Hkv, C, hd]
        v = attn.v_proj(h).view(b, c, -1, attn.head_dim).transpose(1, 2)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        kc.index_copy_(2, slots, k)
        vc.index_copy_(2, slots, v)
        o = F.scaled_dot_product_attention(q, kc[:, :, :n], vc[:, :, :n], attn_mask=mask, scale=attn.scaling,
                                           enable_gqa=attn.num_key_value_groups > 1)  # [B, H, C, hd]
        x = x + attn.o_proj(o.transpose(1, 2).reshape(b, c, -1))
        x = x + layer.mlp(_rms_norm(layer.post_attention_layernorm, x))
    h_last = x[torch.arange(b, device=x.device), last]  # [B, D]
    return model.extended_logits(_rms_norm(lm.norm, h_last)).float()


@dataclass
class DecodeCache:
    """What the static path keeps on a model between calls: compiled steps per shape bucket
    and the most recently used caches (their buffers are reused, not reallocated)."""

    compiled: dict = field(default_factory=dict)
    caches: "OrderedDict[tuple, StaticKVCache]" = field(default_factory=OrderedDict)
    compile_seconds: dict = field(default_factory=dict)
    compile_failed: str | None = None
    keep_caches: int = 2
    lock: threading.Lock = field(default_factory=threading.Lock)

    def cache_for(self, model, batch: int, max_len: int) -> StaticKVCache:
        """A reset cache of this shape, marked in use: the kept one when free, else a new one
        (which is kept in its place; two calls running at once never share buffers)."""
        key = (batch, max_len, model.dtype, str(model.device))
        with self.lock:
            cache = self.caches.pop(key, None)
            if cache is None or cache.in_use:
                while len(self.caches) >= self.keep_caches:
                    self.caches.popitem(last=False)
                cache = StaticKVCache.allocate(model, batch, max_len)
            self.caches[key] = cache
            cache.reset()
            cache.in_use = True
            return cache

    @staticmethod
    def release(cache: StaticKVCache) -> None:
        cache.in_use = False


def decode_cache(model) -> DecodeCache:
    """The model's :class:`DecodeCache`, created on first use (not a module attribute: never saved)."""
    cache = model.__dict__.get("_decode_cache")
    if cache is None:
        cache = DecodeCache()
        model.__dict__["_decode_cache"] = cache
    return cache


def release_decode_cache(model) -> None:
    """Drop the compiled steps and cache buffers kept on ``model`` (frees their memory)."""
    model.__dict__.pop("_decode_cache", None)


def compile_available(device: torch.device) -> str | None:
    """Why ``torch.compile`` cannot be used on ``device`` here (None: it can)."""
    if not hasattr(torch, "compile"):
        return "this torch has no torch.compile"
    if device.type == "cuda":
        try:
            import triton  # noqa: F401
        except ImportError:
            return "triton is not installed"
        return None
    if device.type == "cpu":
        import shutil

        if shutil.which("c++") is None and shutil.which("g++") is None and shutil.which("clang++") is None:
            return "no C++ compiler on PATH (inductor compiles CPU kernels with one)"
        return None
    return f"device type {device.type!r}"


class StaticDecoder:
    """The static-cache backend of :func:`llava_st.model.generate.generate`.

    ``compile``: run the step through ``torch.compile`` (``reduce-overhead``,
    i.e. CUDA graphs, on CUDA). ``prefill`` returns the prompt's last logits;
    each :meth:`feed` writes ``C`` tokens per row and returns the logits at
    each row's last real token. :attr:`model_calls` counts the feeds.
    """

    def __init__(self, model, batch: int, capacity: int, compile: bool = False, strict: bool = True):
        self.model = model
        self.store = decode_cache(model)
        # strict=False (decoder "auto"): a compile that fails falls back to the uncompiled step, once per model
        self.strict = strict
        self.compile = compile and (strict or self.store.compile_failed is None)
        self.cache = self.store.cache_for(model, batch, bucket_length(capacity))
        self.model_calls = 0

    @property
    def _cuda_graphs(self) -> bool:
        """Whether the step replays as a CUDA graph (compiled on CUDA), which needs fixed shapes."""
        return self.compile and self.model.device.type == "cuda"

    # ------------------------------------------------------------ prefill
    def prefill(self, embeds: torch.Tensor, attention_mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Run the prompt ``[B, L, D]`` with transformers' forward, copy its keys/values into the cache."""
        from transformers import DynamicCache

        lm = self.model.language_model
        length = embeds.shape[1]
        if length > self.cache.capacity:
            raise ValueError(f"the prompt has {length} tokens, more than the cache's {self.cache.capacity} slots")
        dyn = DynamicCache(config=lm.config)
        out = lm(inputs_embeds=embeds, attention_mask=attention_mask, position_ids=positions, cache=dyn, use_cache=True)
        for i, layer in enumerate(dyn.layers):
            self.cache.keys[i][:, :, :length].copy_(layer.keys)
            self.cache.values[i][:, :, :length].copy_(layer.values)
        self.cache.valid[:, :length] = attention_mask.bool()
        self.cache.length = length
        return self.model.extended_logits(out.last_hidden_state[:, -1]).float()

    def _grow(self, needed: int) -> StaticKVCache:
        """Move to a larger cache bucket, keeping what is written (rare: the estimate covers the
        usual case; a batch whose rows feed chunks of very different widths may need more)."""
        old = self.cache
        new = self.store.cache_for(self.model, old.batch_size, bucket_length(max(needed, 2 * old.capacity)))
        n = old.capacity
        for src, dst in zip(old.keys + old.values, new.keys + new.values):
            dst[:, :, :n].copy_(src)
        new.valid[:, :n].copy_(old.valid)
        new.length = old.length
        self.store.release(old)
        self.cache = new
        return new

    def close(self) -> None:
        """Hand the cache back for the next call."""
        self.store.release(self.cache)

    # ------------------------------------------------------------ decoding
    def _step_fn(self, batch: int, width: int) -> Callable:
        """The step for a chunk of ``width``: the plain function, or the compiled one of its bucket.

        One token per row (the common step) has its own fully static graph; wider
        chunks (a grammar's forced runs) share one graph whose chunk width is
        symbolic, so every width costs one compile in all (a CUDA graph is still
        recorded per width, which is cheap).
        """
        if not self.compile:
            return decode_step
        key = (batch, "chunk" if width > 1 else 1, self.cache.capacity, self.model.dtype, str(self.model.device))
        fn = self.store.compiled.get(key)
        if fn is None:
            # one code object serves every bucket: let dynamo keep a graph per bucket
            limit = getattr(torch._dynamo.config, "recompile_limit", None)
            if limit is not None and limit < 64:
                torch._dynamo.config.recompile_limit = 64
            mode = "reduce-overhead" if self.model.device.type == "cuda" else None
            # shapes are static except those feed() marks dynamic (the chunk width, the filled length)
            fn = torch.compile(decode_step, fullgraph=True, dynamic=None, mode=mode)
            self.store.compiled[key] = fn
        return fn

    def feed(self, ids: torch.Tensor, valid: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Feed ``ids`` ``[B, C]`` (``valid`` ``[B, C]`` marks real tokens, ``positions`` their RoPE positions)."""
        cache = self.cache
        b, c = ids.shape
        width = bucket_chunk(c) if self.compile else c
        if width > c:  # pad the chunk to its bucket with invalid slots
            pad = width - c
            ids = F.pad(ids, (0, pad), value=0)
            valid = F.pad(valid, (0, pad), value=False)
            positions = F.pad(positions, (0, pad), value=0)
        start = cache.length
        if start + width > cache.capacity:
            cache = self._grow(start + width)
        device = cache.valid.device
        slots = torch.arange(start, start + width, device=device)
        cache.valid[:, start : start + width] = valid.to(device)
        # the last real token of each row (rows with none use slot 0; their logits are not read)
        idx = torch.arange(width, device=device)
        last = torch.where(valid.to(device), idx, -1).amax(1).clamp(min=0)
        fn = self._step_fn(b, width)
        key = (b, width if width == 1 else "chunk", cache.capacity)
        t0 = time.perf_counter() if self.compile and key not in self.store.compile_seconds else None
        ids, positions = ids.to(device).contiguous(), positions.to(device).contiguous()  # strides are guarded too
        # the slots attended to: the filled ones, or (CUDA graphs replay fixed shapes) the whole cache
        filled = cache.valid if self._cuda_graphs else cache.valid[:, : start + width]
        if self.compile:
            dynamic = [] if self._cuda_graphs else [(filled, 1)]
            if width > 1:  # the chunk width is symbolic in the shared graph
                dynamic += [(ids, 1), (positions, 1), (slots, 0)]
            for t, dim in dynamic:
                torch._dynamo.mark_dynamic(t, dim)
        args = (self.model, ids, positions, slots, last, cache.keys, cache.values, filled)
        try:
            logits = fn(*args)
        except Exception as exc:  # a compiler failure (no toolchain, an unsupported op): say so, go on uncompiled
            if fn is decode_step or self.strict:
                raise
            self.store.compile_failed = f"{type(exc).__name__}: {exc}"
            warnings.warn(f"compiling the decode step failed ({self.store.compile_failed}); decoding uncompiled",
                          RuntimeWarning, stacklevel=2)
            self.compile, t0 = False, None
            logits = decode_step(*args)
        if t0 is not None:
            if device.type == "cuda":
                torch.cuda.synchronize()
            self.store.compile_seconds[key] = time.perf_counter() - t0
        cache.length = start + width
        self.model_calls += 1
        # a CUDA graph's output is overwritten by its next replay: keep our own copy
        return logits.clone() if self.compile and device.type == "cuda" else logits


def required_capacity(prompt_len: int, max_new_tokens: int, chunked: bool, compiled: bool) -> int:
    """Cache slots to allocate for a call: the prompt plus every fed token.

    One token per row and call needs ``max_new_tokens`` slots. Chunked
    (grammar) decoding feeds the widest row's chunk for every row, and a
    compiled step pads chunks to a power of two: twice as many slots cover the
    usual case, and :meth:`StaticDecoder.feed` moves to a larger bucket if a
    batch needs more.
    """
    return prompt_len + (2 * max_new_tokens if chunked else max_new_tokens) * (2 if chunked and compiled else 1)


__all__ = [
    "DecodeCache",
    "MIN_CACHE_BUCKET",
    "StaticDecoder",
    "StaticKVCache",
    "bucket_chunk",
    "bucket_length",
    "compile_available",
    "decode_cache",
    "decode_step",
    "release_decode_cache",
    "required_capacity",
    "static_support",
]
