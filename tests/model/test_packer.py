"""The packer blocks against a per-query loop over torch.nn.MultiheadAttention."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from llava_st.model.packer import PackerBlock

DIM, EMBED, HEADS = 12, 8, 2


def _block(seed: int) -> PackerBlock:
    torch.manual_seed(seed)
    block = PackerBlock(DIM, EMBED, HEADS, eps=1e-5).double()
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(0, 0.3)
    return block


def _reference_attend(block: PackerBlock, query: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """One query ``[D]`` over one region ``[R, D]`` with torch's own MultiheadAttention."""
    mha = nn.MultiheadAttention(EMBED, HEADS).double()
    with torch.no_grad():
        mha.in_proj_weight.copy_(block.attn.in_proj_weight)
        mha.in_proj_bias.copy_(block.attn.in_proj_bias)
        mha.out_proj.weight.copy_(block.attn.out_proj.weight)
        mha.out_proj.bias.copy_(block.attn.out_proj.bias)
    q = block.ln_q(block.to_q(query))[None, None]  # [1, 1, E]
    k = block.ln_k(block.to_k(region))[:, None]  # [R, 1, E]
    v = block.ln_v(block.to_v(region))[:, None]
    out = mha(q, k, v, need_weights=False)[0][0, 0]
    return query + block.to_out(out)


def _bilinear_query(frame: torch.Tensor, grid: int, out: int) -> torch.Tensor:
    """``[G*G, D]`` -> ``[g*g, D]`` with half-pixel centres, written out."""
    img = frame.reshape(grid, grid, -1)
    scale = grid / out

    def taps(i):
        src = min(max((i + 0.5) * scale - 0.5, 0.0), grid - 1)
        lo = int(src)
        return lo, min(lo + 1, grid - 1), src - lo

    rows = []
    for i in range(out):
        y0, y1, fy = taps(i)
        for j in range(out):
            x0, x1, fx = taps(j)
            top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
            bot = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
            rows.append(top * (1 - fy) + bot * fy)
    return torch.stack(rows)


def test_spatial_block_matches_per_query_reference() -> None:
    block = _block(0)
    grid, factor, frames = 6, 3, 2
    x = torch.randn(frames, grid * grid, DIM, dtype=torch.float64)
    with torch.no_grad():
        out = block.spatial(x, grid, factor)
        g = grid // factor
        for t in range(frames):
            queries = _bilinear_query(x[t], grid, g)
            img = x[t].reshape(grid, grid, DIM)
            for i in range(g):
                for j in range(g):
                    region = img[i * factor:(i + 1) * factor, j * factor:(j + 1) * factor].reshape(-1, DIM)
                    expect = _reference_attend(block, queries[i * g + j], region)
                    torch.testing.assert_close(out[t, i * g + j], expect, rtol=1e-9, atol=1e-10)


def test_spatial_query_is_region_centre_for_odd_factor() -> None:
    x = torch.randn(1, 81, 4, dtype=torch.float64)
    q = F.interpolate(x.reshape(1, 9, 9, 4).permute(0, 3, 1, 2), size=(3, 3), mode="bilinear", align_corners=False)
    torch.testing.assert_close(q[0, :, 1, 2], x[0, 9 * 4 + 7])


def test_temporal_block_matches_reference_for_even_and_uneven_regions() -> None:
    block = _block(1)
    positions = 3
    for frames, slots in ((10, 2), (13, 2), (7, 1), (1, 1)):
        x = torch.randn(frames, positions, DIM, dtype=torch.float64)
        with torch.no_grad():
            out = block.temporal(x, slots)
            assert out.shape == (slots, positions, DIM)
            for s in range(slots):
                lo, hi = (s * frames) // slots, ((s + 1) * frames) // slots
                for p in range(positions):
                    series = x[:, p]  # [T, D]
                    if frames == 1:
                        query = series[0]
                    else:
                        src = min(max((s + 0.5) * frames / slots - 0.5, 0.0), frames - 1)
                        a = int(src)
                        b = min(a + 1, frames - 1)
                        query = series[a] * (1 - (src - a)) + series[b] * (src - a)
                    expect = _reference_attend(block, query, series[lo:hi])
                    torch.testing.assert_close(out[s, p], expect, rtol=1e-9, atol=1e-10)


def test_queries_see_only_their_region() -> None:
    block = _block(2)
    x = torch.randn(1, 36, DIM, dtype=torch.float64)
    with torch.no_grad():
        base = block.spatial(x, 6, 3)
        changed = x.clone()
        changed[0, 0] += 5.0  # patch (0, 0): region of query (0, 0) only, and not its bilinear query taps
        out = block.spatial(changed, 6, 3)
    diff = (out - base).abs().amax(-1)[0]
    assert diff[0] > 1e-6
    assert torch.all(diff[1:] == 0)
