"""Coordinate tables, NTP and the language-aligned positional embedding (SPEC §2.5, §2.8, §2.11-2.12).

Each axis ``a`` in (time, height, width) owns two tables of ``n_a`` rows and
width ``D``: ``E_in[a]`` embeds coordinate tokens in the text and
``E_out[a]`` holds the extra LM-head rows that score the axis' bins. Bin ``k``
means the value ``k / (n_a - 1)``.

* **LAPE**: the positional signal of an axis is ``P[a] = (E_in[a] + E_out[a]) / 2``;
  visual features get ``P[h]`` resampled to the grid's rows, ``P[w]`` to its
  columns and ``P[t]`` per frame (resampled to ``T`` frames when ``T != n_t``;
  row 0 for an image).
* **Coordinate inputs**: a placeholder with value ``v`` is embedded as the
  linear interpolation of ``E_in[a]`` at fractional row ``v * (n_a - 1)``.
* **NTP** (training only): each table is used as ``W + (R @ W - stopgrad(R @ W))``
  with ``R[i, j] = 2^-|i - j|``: the forward value is exactly ``W`` while each
  bin's gradient also reaches its neighbours, halving per step.

Resizes are plain linear interpolation with half-pixel centres
(``align_corners=False``, no antialiasing): output row ``i`` reads source
position ``(i + 0.5) * n_in / n_out - 0.5`` clamped to ``[0, n_in - 1]``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..protocol.tokens import BinCounts

AXIS_NAMES = ("time", "height", "width")


def ntp_matrix(num_bins: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``R[i, j] = 2^-|i - j|``, ``[num_bins, num_bins]``."""
    idx = torch.arange(num_bins)
    return torch.pow(2.0, -(idx[:, None] - idx[None, :]).abs().to(torch.float64)).to(dtype)


def ntp_reparam(weight: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """``W + (R @ W - stopgrad(R @ W))``: value exactly ``W``, gradient ``g + R^T g``."""
    spread = matrix.to(weight.dtype) @ weight
    return weight + (spread - spread.detach())


def resize_rows(table: torch.Tensor, size: int) -> torch.Tensor:
    """Linear resize of ``[n, D]`` along its rows to ``[size, D]`` (half-pixel centres).

    Example: a 100-row table resized to 27 rows reads source position
    ``(i + 0.5) * 100 / 27 - 0.5`` for row ``i``; row 0 blends rows 1 and 2
    (position 1.352). ``size == n`` returns the table unchanged.
    """
    if size == table.shape[0]:
        return table
    return F.interpolate(table.t().unsqueeze(0), size=size, mode="linear", align_corners=False)[0].t()


def interpolate_rows(table: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Rows of ``table`` ``[n, D]`` at fractional positions ``values * (n - 1)`` -> ``[M, D]``.

    ``values`` (``[M]``, any float dtype; float64 keeps the release's precision)
    are clamped to [0, 1]; row ``floor(p)`` gets weight ``1 - frac`` and row
    ``ceil(p)`` weight ``frac``. Example with ``n = 100``: ``v = 0.2`` gives
    ``p = 19.8``, i.e. ``0.2 * row19 + 0.8 * row20``.
    """
    pos = values.to(torch.float64).clamp(0.0, 1.0) * (table.shape[0] - 1)
    lo = pos.floor()
    frac = (pos - lo).to(table.dtype).unsqueeze(-1)  # [M, 1]
    lo = lo.long()
    hi = pos.ceil().long()
    return table[lo] * (1 - frac) + table[hi] * frac


class CoordinateTables(nn.Module):
    """The six coordinate tables: ``{time,height,width}_{in,out}``, each ``[n_axis, D]``."""

    def __init__(self, bins: BinCounts, hidden_size: int):
        super().__init__()
        self.num_bins = (bins.time, bins.space, bins.space)
        for axis, n in zip(AXIS_NAMES, self.num_bins):
            setattr(self, f"{axis}_in", nn.Parameter(torch.empty(n, hidden_size)))
            setattr(self, f"{axis}_out", nn.Parameter(torch.empty(n, hidden_size)))
        self.register_buffer("ntp_time", ntp_matrix(bins.time), persistent=False)
        self.register_buffer("ntp_space", ntp_matrix(bins.space), persistent=False)
        self.reset_parameters()

    def reset_parameters(self, std: float = 0.02) -> None:
        for p in self.parameters():
            nn.init.normal_(p, std=std)

    def _get(self, kind: str, ntp: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        tables = tuple(getattr(self, f"{axis}_{kind}") for axis in AXIS_NAMES)
        if not ntp:
            return tables
        mats = (self.ntp_time, self.ntp_space, self.ntp_space)
        return tuple(ntp_reparam(w, m) for w, m in zip(tables, mats))

    def inputs(self, ntp: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(E_in[t], E_in[h], E_in[w])``, reparameterised when ``ntp``."""
        return self._get("in", ntp)

    def outputs(self, ntp: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(E_out[t], E_out[h], E_out[w])``, reparameterised when ``ntp``."""
        return self._get("out", ntp)

    def lape_signal(self, ntp: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``P[a] = (E_in[a] + E_out[a]) / 2`` for the three axes."""
        return tuple((i + o) / 2 for i, o in zip(self.inputs(ntp), self.outputs(ntp)))


def add_lape(
    features: torch.Tensor,
    signal: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    grid: int,
    is_video: bool,
) -> torch.Tensor:
    """Add LAPE to projected features.

    Notation: ``T`` frames (1 for an image), ``G`` grid side, ``D`` width; any
    leading dimensions (e.g. a batch of clips ``B``) are kept.

    Args:
        features: ``[..., T, G*G, D]`` projector output, patches row-major.
        signal: ``(P[t], P[h], P[w])`` from :meth:`CoordinateTables.lape_signal`.
        grid: ``G``.
        is_video: frame ``t`` of a video gets the time row for ``t`` (the time
            table resampled to ``T`` rows when ``T != n_t``); an image gets row 0.

    Returns:
        ``[..., T, G*G, D]``: ``feature[t, G*r + c] + H[r] + W[c] + Tm[t]``, summed in that order.
    """
    p_t, p_h, p_w = signal
    frames, _, dim = features.shape[-3:]
    rows = resize_rows(p_h, grid)  # [G, D]
    cols = resize_rows(p_w, grid)  # [G, D]
    times = resize_rows(p_t, frames) if is_video else p_t[:1]  # [T, D]
    x = features.reshape(*features.shape[:-2], grid, grid, dim)  # [..., T, G, G, D]
    x = x + rows[:, None, :] + cols[None, :, :] + times[:, None, None, :]
    return x.reshape(features.shape)  # [..., T, G*G, D]
