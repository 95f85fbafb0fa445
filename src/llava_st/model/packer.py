"""The spatial-temporal packer, STP (SPEC §2.6).

Three point-to-region attention blocks with the same structure and separate
weights. A block turns a *query grid* (a downsampled copy of its input) into
output tokens: every query attends only to the input tokens of the region it
was downsampled from, and the result is added to the query (residual).

* ``spatial``: per frame, ``G x G -> g x g`` with ``g = G / spatial_factor``
  (27 -> 9); query ``(i, j)`` covers patches ``[f*i, f*i + f) x [f*j, f*j + f)``.
* ``slow`` (temporal): ``T`` frames -> ``S = max(1, T // temporal_window)`` slots
  at every spatial position; slot ``i`` covers frames
  ``[floor(i*T/S), floor((i+1)*T/S))`` (for T = 100: frames 5i..5i+4).
* ``fast``: per frame, ``g x g -> g / fast_factor`` (9 -> 3).

Video: ``spatial`` on all frames gives ``[T, g*g, D]``; from it ``slow`` gives
``[S, g*g, D]`` and ``fast`` gives ``[T, (g/ff)^2, D]``. Images are not packed.

Query grids come from plain linear/bilinear resizes with half-pixel centres
(``align_corners=False``, no antialiasing), computed in float32. With the
release's factors, the spatial query of a 3x3 region is exactly its centre
patch and the temporal query of frames 5i..5i+4 is frame 5i+2.

Notation: ``T`` frames, ``P`` input positions per frame, ``Q`` query positions
per frame, ``R`` tokens per region, ``D`` LLM width, ``E`` packer width,
``H`` heads.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..config import LlavaSTConfig
from .projector import Projector


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """Resizes run in float32 for half-precision inputs (as the release does), else as is."""
    return x.float() if x.element_size() < 4 else x


class RegionAttention(nn.Module):
    """Multi-head attention of ``N`` queries, each over its own region of ``R`` tokens.

    Parameters are laid out as ``torch.nn.MultiheadAttention``'s (packed
    ``in_proj_weight``/``in_proj_bias`` with q, k, v rows in that order, and
    ``out_proj``), so the release's weights load unchanged.
    """

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The packed input projection as ``torch.nn.MultiheadAttention`` starts it
        (``out_proj`` is a Linear with its own init)."""
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.in_proj_bias)

    def forward(self, q: torch.Tensor, kv_k: torch.Tensor, kv_v: torch.Tensor, key_mask: torch.Tensor | None = None):
        """``q`` ``[N, E]``, ``kv_k``/``kv_v`` ``[N, R, E]``, ``key_mask`` ``[N, R]`` bool (True = attend) -> ``[N, E]``."""
        n, r, e = kv_k.shape
        h = self.num_heads
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        b_q, b_k, b_v = self.in_proj_bias.chunk(3)
        q = F.linear(q, w_q, b_q).view(n, h, 1, e // h)  # [N, H, 1, E/H]
        k = F.linear(kv_k, w_k, b_k).view(n, r, h, e // h).transpose(1, 2)  # [N, H, R, E/H]
        v = F.linear(kv_v, w_v, b_v).view(n, r, h, e // h).transpose(1, 2)  # [N, H, R, E/H]
        mask = None if key_mask is None else key_mask[:, None, None, :]  # [N, 1, 1, R]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # [N, H, 1, E/H]
        return self.out_proj(out.reshape(n, e))  # [N, E]


class PackerBlock(nn.Module):
    """One point-to-region block: ``query + to_out(attn(ln_q(to_q(query)), regions))``.

    Submodule names follow the release's (``to_q``, ``ln_q``, ``attn``, ``to_out`` ...).
    """

    def __init__(self, dim: int, embed_dim: int, num_heads: int, eps: float):
        super().__init__()
        self.to_q = Projector(dim, embed_dim)  # Linear(D, E) -> GELU (erf) -> Linear(E, E)
        self.to_k = Projector(dim, embed_dim)
        self.to_v = Projector(dim, embed_dim)
        self.ln_q = nn.LayerNorm(embed_dim, eps=eps)
        self.ln_k = nn.LayerNorm(embed_dim, eps=eps)
        self.ln_v = nn.LayerNorm(embed_dim, eps=eps)
        self.attn = RegionAttention(embed_dim, num_heads)
        self.to_out = nn.Linear(embed_dim, dim, bias=False)

    def attend(
        self, queries: torch.Tensor, regions: torch.Tensor, region_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``queries`` ``[N, D]``, ``regions`` ``[N, R, D]`` -> ``[N, D]`` (residual included)."""
        q = self.ln_q(self.to_q(queries))  # [N, E]
        k = self.ln_k(self.to_k(regions))  # [N, R, E]
        v = self.ln_v(self.to_v(regions))  # [N, R, E]
        return queries + self.to_out(self.attn(q, k, v, region_mask))

    def spatial(self, x: torch.Tensor, grid: int, factor: int) -> torch.Tensor:
        """Per-frame ``[T, G*G, D]`` -> ``[T, g*g, D]`` with ``g = G / factor``.

        Regions are ``factor x factor`` blocks, cut by a reshape:
        ``[T, g, f, g, f, D] -> [T, g, g, f, f, D]``.
        """
        t, p, d = x.shape
        g = grid // factor
        query = F.interpolate(
            _at_least_float32(x.reshape(t, grid, grid, d).permute(0, 3, 1, 2)), size=(g, g), mode="bilinear", align_corners=False
        )  # [T, D, g, g]
        query = query.permute(0, 2, 3, 1).reshape(t * g * g, d).to(x.dtype)  # [T*g*g, D]
        regions = x.reshape(t, g, factor, g, factor, d).permute(0, 1, 3, 2, 4, 5)  # [T, g, g, f, f, D]
        regions = regions.reshape(t * g * g, factor * factor, d)  # [T*g*g, f*f, D]
        return self.attend(query, regions).reshape(t, g * g, d)

    def temporal(self, x: torch.Tensor, slots: int) -> torch.Tensor:
        """``[T, P, D]`` -> ``[S, P, D]``: slot ``i`` covers frames ``[floor(i*T/S), floor((i+1)*T/S))``.

        Example: T = 100, S = 20: slot 3 covers frames 15..19 and its query is
        the linear resize of the 100 frames to 20 at slot 3, i.e. frame 17.
        T = 12, S = 2: slots cover frames 0..5 and 6..11. When ``T`` is not a
        multiple of ``S`` regions differ in length; the shorter ones are padded
        and the padding masked out of the attention.
        """
        t, p, d = x.shape
        if t == 1:
            query = x
        else:
            query = F.interpolate(_at_least_float32(x.permute(1, 2, 0)), size=slots, mode="linear", align_corners=False)
            query = query.permute(2, 0, 1).to(x.dtype)  # [S, P, D]
        if t % slots == 0:
            w = t // slots
            regions = x.reshape(slots, w, p, d).permute(0, 2, 1, 3).reshape(slots * p, w, d)  # [S*P, w, D]
            out = self.attend(query.reshape(slots * p, d), regions)
        else:
            bounds = (torch.arange(slots + 1, device=x.device) * t) // slots  # [S+1]
            lengths = bounds[1:] - bounds[:-1]  # [S]
            width = int(lengths.max())
            offs = torch.arange(width, device=x.device)
            frame_idx = (bounds[:-1, None] + offs[None, :]).clamp(max=t - 1)  # [S, w]
            valid = offs[None, :] < lengths[:, None]  # [S, w]
            regions = x[frame_idx]  # [S, w, P, D]
            regions = regions.permute(0, 2, 1, 3).reshape(slots * p, width, d)  # [S*P, w, D]
            mask = valid[:, None, :].expand(slots, p, width).reshape(slots * p, width)
            out = self.attend(query.reshape(slots * p, d), regions, mask)
        return out.reshape(slots, p, d)


class SpatialTemporalPacker(nn.Module):
    """``spatial`` (G -> g), ``slow`` (T -> S slots) and ``fast`` (g -> g / ff) blocks."""

    def __init__(self, config: LlavaSTConfig):
        super().__init__()
        pc = config.packer
        d = config.hidden_size
        self.grid = config.vision.grid_size
        self.spatial_factor = pc.spatial_factor
        self.fast_factor = pc.fast_factor
        self.num_slots = config.num_slow_slots
        self.spatial = PackerBlock(d, pc.embed_dim, pc.num_heads, pc.layer_norm_eps)
        self.slow = PackerBlock(d, pc.embed_dim, pc.num_heads, pc.layer_norm_eps)
        self.fast = PackerBlock(d, pc.embed_dim, pc.num_heads, pc.layer_norm_eps)

    def forward(self, x: torch.Tensor, fast: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``[B, T, G*G, D]`` clips (LAPE applied) -> ``(spatial [B, T, g*g, D], slow [B, S, g*g, D],
        fast [B, T, (g/ff)^2, D])``. A single clip ``[T, G*G, D]`` gives the same without ``B``.
        ``fast=False`` skips the fast block (its output is then None), for models that
        do not write the fast stream into the sequence.

        Frames are independent in the spatial and fast blocks, and spatial
        positions are independent in the slow block, so a batch of clips with
        the same ``T`` runs as one call of each block.
        """
        if x.dim() == 3:
            return tuple(None if t is None else t[0] for t in self.forward(x[None], fast))
        b, t, _, d = x.shape
        g = self.grid // self.spatial_factor
        packed = self.spatial.spatial(x.reshape(b * t, -1, d), self.grid, self.spatial_factor)  # [B*T, g*g, D]
        fast_out = self.fast.spatial(packed, g, self.fast_factor).reshape(b, t, -1, d) if fast else None  # [B, T, f*f, D]
        per_time = packed.reshape(b, t, g * g, d).transpose(0, 1).reshape(t, b * g * g, d)  # [T, B*g*g, D]
        slots = self.num_slots(t)
        slow = self.slow.temporal(per_time, slots).reshape(slots, b, g * g, d).transpose(0, 1)  # [B, S, g*g, D]
        return packed.reshape(b, t, g * g, d), slow, fast_out


__all__ = ["PackerBlock", "RegionAttention", "SpatialTemporalPacker"]
