"""LAPE, coordinate-row interpolation and NTP against slow, written-out references."""

from __future__ import annotations

import math

import torch

from llava_st.model.lape import CoordinateTables, add_lape, interpolate_rows, ntp_matrix, ntp_reparam, resize_rows
from llava_st.protocol.tokens import BinCounts


def _resize_reference(table: torch.Tensor, size: int) -> torch.Tensor:
    """Half-pixel-centre linear resize, one output row at a time."""
    n = table.shape[0]
    out = []
    for i in range(size):
        src = min(max((i + 0.5) * n / size - 0.5, 0.0), n - 1)
        lo = math.floor(src)
        hi = min(lo + 1, n - 1)
        frac = src - lo
        out.append(table[lo] * (1 - frac) + table[hi] * frac)
    return torch.stack(out)


def test_resize_rows_matches_formula() -> None:
    torch.manual_seed(0)
    table = torch.randn(100, 8, dtype=torch.float64)
    for size in (27, 9, 12, 100, 1, 150):
        torch.testing.assert_close(resize_rows(table, size), _resize_reference(table, size), rtol=0, atol=1e-12)


def test_interpolate_rows_matches_two_row_blend() -> None:
    torch.manual_seed(1)
    table = torch.randn(100, 6, dtype=torch.float64)
    values = torch.tensor([0.0, 0.2, 0.5, 0.999, 1.0, 0.3125], dtype=torch.float64)
    rows = interpolate_rows(table, values)
    for v, row in zip(values.tolist(), rows):
        p = v * 99
        lo, hi = math.floor(p), math.ceil(p)
        expect = table[lo] * (1 - (p - lo)) + table[hi] * (p - lo)
        torch.testing.assert_close(row, expect, rtol=0, atol=1e-12)
    # whole positions read exactly one row
    torch.testing.assert_close(interpolate_rows(table, torch.tensor([7 / 99], dtype=torch.float64)), table[7:8], rtol=0, atol=1e-12)


def test_add_lape_video_and_image_against_loops() -> None:
    torch.manual_seed(2)
    grid, dim = 6, 5
    p_t, p_h, p_w = (torch.randn(10, dim, dtype=torch.float64) for _ in range(3))
    for frames, is_video in ((7, True), (10, True), (1, False)):
        feats = torch.randn(frames, grid * grid, dim, dtype=torch.float64)
        out = add_lape(feats, (p_t, p_h, p_w), grid, is_video)
        rows, cols = _resize_reference(p_h, grid), _resize_reference(p_w, grid)
        times = _resize_reference(p_t, frames) if is_video else p_t[:1]
        for t in range(frames):
            for r in range(grid):
                for c in range(grid):
                    expect = feats[t, grid * r + c] + rows[r] + cols[c] + times[t]
                    torch.testing.assert_close(out[t, grid * r + c], expect, rtol=0, atol=1e-12)


def test_video_with_as_many_frames_as_bins_uses_time_rows_directly() -> None:
    torch.manual_seed(3)
    p = tuple(torch.randn(10, 4) for _ in range(3))
    feats = torch.zeros(10, 9, 4)
    out = add_lape(feats, p, 3, is_video=True)
    h, w = resize_rows(p[1], 3), resize_rows(p[2], 3)
    for t in range(10):
        torch.testing.assert_close(out[t, 0], h[0] + w[0] + p[0][t])


def test_ntp_forward_is_exactly_w_and_gradient_spreads_to_neighbours() -> None:
    torch.manual_seed(4)
    n = 9
    w = torch.randn(n, 3, requires_grad=True)
    r = ntp_matrix(n)
    assert r[2, 5] == 2.0**-3 and r[4, 4] == 1.0
    out = ntp_reparam(w, r)
    assert torch.equal(out, w.detach())
    # gradient of one row reaches the others with weight 2^-|i-j|
    g = torch.zeros(n, 3)
    g[4] = 1.0
    (out * g).sum().backward()
    expect = torch.zeros(n, 3)
    for i in range(n):
        expect[i] = (1.0 if i == 4 else 0.0) + 2.0 ** -abs(i - 4)
    torch.testing.assert_close(w.grad, expect)


def test_tables_use_ntp_only_when_asked() -> None:
    tables = CoordinateTables(BinCounts(10, 8), 4)
    for a, b in zip(tables.inputs(ntp=True), tables.inputs(ntp=False)):
        assert torch.equal(a, b)
    assert [t.shape[0] for t in tables.outputs()] == [10, 8, 8]
    sig = tables.lape_signal()
    torch.testing.assert_close(sig[1], (tables.height_in + tables.height_out) / 2)
