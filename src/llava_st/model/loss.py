"""The coordinate-aware language-modelling loss (SPEC §2.11) in O(sequence) memory.

Cross-entropy over the ``V + bins`` outputs on supervised positions. A
position whose target is an ``-OUTPUT`` placeholder with value ``v`` gets a
two-hot target over that axis' bins: with ``p = v * (n - 1)``, weight
``1 - frac(p)`` on bin ``floor(p)`` and ``frac(p)`` on ``ceil(p)`` (a single bin
when ``p`` is whole). Every other supervised position has a one-hot target.

A target is stored sparsely as two ``(id, weight)`` pairs per position
(``[N, 2]`` ids and weights) instead of a dense ``[N, V + bins]`` matrix, and
:func:`soft_target_cross_entropy` computes ``logsumexp(z) - sum_j w_j z_j`` with
a hand-written backward, so the only ``[N, V + bins]`` buffers are the logits
and their gradient. The loss is the mean over all supervised positions of
the batch.
"""

from __future__ import annotations

import torch

from ..protocol.tokens import IGNORE_INDEX, BinCounts, SpecialTokenIds
_CHUNK_ROWS = 1024


def _row_chunks(n: int):
    for start in range(0, n, _CHUNK_ROWS):
        yield slice(start, min(n, start + _CHUNK_ROWS))


class _SoftTargetCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: torch.Tensor, target_ids: torch.Tensor, target_weights: torch.Tensor) -> torch.Tensor:
        n = logits.shape[0]
        lse = torch.empty(n, dtype=torch.float32, device=logits.device)
        for rows in _row_chunks(n):  # bounded float32 temporaries
            lse[rows] = torch.logsumexp(logits[rows].float(), dim=-1)
        picked = logits.gather(1, target_ids).float()  # [N, K]
        loss = lse - (picked * target_weights).sum(-1)  # [N]
        ctx.save_for_backward(logits, lse, target_ids, target_weights)
        return loss

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):
        logits, lse, target_ids, target_weights = ctx.saved_tensors
        grad = torch.empty_like(logits)
        for rows in _row_chunks(logits.shape[0]):
            g = torch.exp(logits[rows].float() - lse[rows, None])  # softmax  [n, E]
            g.scatter_add_(1, target_ids[rows], -target_weights[rows])
            g.mul_(grad_loss[rows, None].float())
            grad[rows] = g.to(grad.dtype)
        return grad, None, None


def soft_target_cross_entropy(
    logits: torch.Tensor, target_ids: torch.Tensor, target_weights: torch.Tensor
) -> torch.Tensor:
    """Per-row ``logsumexp(z) - sum_k w_k z[id_k]`` for sparse soft targets.

    Args:
        logits: ``[N, E]`` (any float dtype; reduced in float32).
        target_ids: ``[N, K]`` long, the target columns (repeat an id with weight 0 to pad).
        target_weights: ``[N, K]`` float32, summing to 1 per row.

    Returns:
        ``[N]`` float32 losses.
    """
    if logits.dim() != 2 or target_ids.shape != target_weights.shape or target_ids.shape[0] != logits.shape[0]:
        raise ValueError(
            f"shapes do not fit: logits {tuple(logits.shape)}, target_ids {tuple(target_ids.shape)}, "
            f"target_weights {tuple(target_weights.shape)}"
        )
    return _SoftTargetCrossEntropy.apply(logits, target_ids, target_weights.float())


def build_targets(
    labels: torch.Tensor,
    coord_values: torch.Tensor | None,
    ids: SpecialTokenIds,
    bins: BinCounts,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sparse targets for the supervised positions of a batch.

    Positions are shifted as usual: logits at ``p - 1`` predict ``labels[p]``.

    Args:
        labels: ``[B, L]`` with ``-100`` where unsupervised.
        coord_values: ``[B, L]`` placeholder values (NaN elsewhere) aligned with
            the input ids; a supervised ``-OUTPUT`` placeholder at ``p`` reads
            its value at ``p``. May be None when no label is a placeholder.
        ids: special token ids (``vocab_size`` = V gives the bin offsets).
        bins: the model's bin counts (``config.coords.bins``): time bin ``k`` has
            id ``V + k``, height ``V + bins.time + k``, width ``V + bins.time + bins.space + k``.

    Returns:
        ``rows`` ``[N, 2]`` (batch index, logit position ``p - 1``), ``target_ids``
        ``[N, 2]`` and ``target_weights`` ``[N, 2]`` float32.

    Example: with V = 529 and 100 bins, a ``<WIDTH-OUTPUT>`` label of value
    0.312 has ``p = 30.888``: ids ``(729 + 30, 729 + 31)``, weights ``(0.112, 0.888)``.
    """
    shifted = labels[:, 1:]  # [B, L-1]
    sup = shifted != IGNORE_INDEX
    b_idx, p_idx = sup.nonzero(as_tuple=True)
    tgt = shifted[b_idx, p_idx]  # [N]
    target_ids = torch.stack([tgt, tgt], dim=1)  # [N, 2]
    target_w = torch.zeros(tgt.shape[0], 2, dtype=torch.float32, device=labels.device)
    target_w[:, 0] = 1.0

    v = ids.vocab_size
    axis_of = (
        (ids.temp_output, v, bins.time),
        (ids.height_output, v + bins.time, bins.space),
        (ids.width_output, v + bins.time + bins.space, bins.space),
    )
    coord = torch.zeros_like(tgt, dtype=torch.bool)
    for pid, _, _ in axis_of:
        coord |= tgt == pid
    if coord.any():
        if coord_values is None:
            raise ValueError("labels hold coordinate placeholders but no coord_values were given")
        vals = coord_values[:, 1:][b_idx, p_idx].to(torch.float64)  # [N]
        bad = coord & ~torch.isfinite(vals)
        if bad.any():
            first = int(bad.nonzero()[0])
            raise ValueError(
                f"coordinate label at batch row {int(b_idx[first])}, position {int(p_idx[first]) + 1} has no value"
            )
        offset = torch.zeros_like(tgt)
        scale = torch.zeros_like(vals)
        for pid, off, n in axis_of:
            m = tgt == pid
            offset[m] = off
            scale[m] = n - 1
        pos = vals.nan_to_num(0.0).clamp(0.0, 1.0) * scale
        lo = pos.floor()
        frac = pos - lo
        two_hot = torch.stack([offset + lo.long(), offset + pos.ceil().long()], dim=1)
        weights = torch.stack([1.0 - frac, frac], dim=1).float()
        target_ids = torch.where(coord[:, None], two_hot, target_ids)
        target_w = torch.where(coord[:, None], weights, target_w)
    rows = torch.stack([b_idx, p_idx], dim=1)
    return rows, target_ids, target_w


def coordinate_loss(
    logits: torch.Tensor, target_ids: torch.Tensor, target_weights: torch.Tensor
) -> torch.Tensor:
    """Mean of :func:`soft_target_cross_entropy` over the rows (the supervised positions)."""
    if logits.shape[0] == 0:
        raise ValueError("no supervised positions: every label is -100")
    return soft_target_cross_entropy(logits, target_ids, target_weights).mean()
