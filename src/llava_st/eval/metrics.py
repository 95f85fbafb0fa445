"""Pure metric functions: box IoU, temporal IoU, per-frame track IoU, recall (SPEC §5).

Definitions shared by both scoring modes (EVAL-PROTOCOL §1-§3):

* box IoU over ``xyxy`` boxes: ``area = (x2 - x1)(y2 - y1)`` (signed, no +1),
  ``inter = max(0, min x2 - max x1) * max(0, min y2 - max y1)``,
  ``IoU = inter / (area_a + area_b - inter)`` and 0 when that union is 0;
  an inverted or zero-area box therefore scores 0;
* temporal IoU over ``[s, e]``: ``max(min(e) - max(s), 0) / (max(e) - min(s))``
  (the hull as denominator, which equals the union whenever the spans
  overlap), floored at 0. A zero-length hull (both spans the same instant)
  divides by zero in the release; :func:`temporal_iou` raises
  :class:`ZeroHullError` for it unless told the canonical rule (IoU 1);
* per-frame track scores over frame keys: with ``I`` the keys present in
  both tracks and ``U`` those present in either, ``sIoU = sum_I IoU / |I|``
  (mean over the frames both have) and ``vIoU = sum_I IoU / |U|``;
* one-to-one matching of two sets by a score matrix: :func:`greedy_matching`
  (highest score first, GLaMM's grounded-caption matching) and
  :func:`order_preserving_max` (SODA's best matching that keeps both orders).

Everything is vectorised over samples / frames with numpy.
"""

from __future__ import annotations

from typing import Hashable, Literal, Mapping, Sequence

import numpy as np

ZeroHull = Literal["raise", "one"]


class ZeroHullError(ZeroDivisionError):
    """Temporal IoU of two identical zero-length spans: the release divides by zero here."""

    def __init__(self, index: int, pred: Sequence[float], gt: Sequence[float]):
        self.index = index
        super().__init__(f"temporal IoU of identical zero-length spans pred={list(pred)} gt={list(gt)} (row {index})")


def box_iou(a: np.ndarray | Sequence, b: np.ndarray | Sequence) -> np.ndarray:
    """IoU of ``xyxy`` boxes, row by row: ``a`` and ``b`` are ``[..., 4]`` (broadcast) -> ``[...]``.

    Example: ``box_iou([0, 0, 2, 2], [1, 1, 3, 3])`` = 1 / (4 + 4 - 1) = 1/7.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    iw = np.maximum(0.0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]))
    ih = np.maximum(0.0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]))
    inter = iw * ih
    union = area_a + area_b - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union != 0, inter / np.where(union != 0, union, 1.0), 0.0)
    # an inverted box can make the union negative: the ratio is then -0.0 or below; never a hit
    return np.maximum(iou, 0.0) + 0.0


def temporal_iou(pred: np.ndarray | Sequence, gt: np.ndarray | Sequence, zero_hull: ZeroHull = "raise") -> np.ndarray:
    """Temporal IoU of spans row by row: ``[..., 2]`` and ``[..., 2]`` -> ``[...]``.

    Args:
        zero_hull: ``"raise"`` (the release: two identical zero-length spans
            divide by zero; raises :class:`ZeroHullError` naming the first such
            row) or ``"one"`` (canonical: the same instant scores 1).

    Example: ``temporal_iou([0.2, 0.6], [0.4, 0.8])`` = 0.2 / 0.6 = 1/3.
    """
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    p, g = np.broadcast_arrays(p, g)
    inter = np.maximum(np.minimum(p[..., 1], g[..., 1]) - np.maximum(p[..., 0], g[..., 0]), 0.0)
    hull = np.maximum(p[..., 1], g[..., 1]) - np.minimum(p[..., 0], g[..., 0])
    zero = hull == 0
    if np.any(zero):
        if zero_hull == "raise":
            flat = np.flatnonzero(zero.reshape(-1))[0]
            raise ZeroHullError(int(flat), p.reshape(-1, 2)[flat].tolist(), g.reshape(-1, 2)[flat].tolist())
        if zero_hull != "one":
            raise ValueError(f"zero_hull must be 'raise' or 'one', got {zero_hull!r}")
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(zero, 1.0, inter / np.where(zero, 1.0, hull))
    return np.maximum(iou, 0.0)


def box_iou_matrix(a: np.ndarray | Sequence, b: np.ndarray | Sequence) -> np.ndarray:
    """IoU of every box of ``a`` (``[N, 4]``) with every box of ``b`` (``[M, 4]``) -> ``[N, M]`` (:func:`box_iou`)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    return box_iou(a[:, None, :], b[None, :, :]).reshape(len(a), len(b))


def greedy_matching(scores: np.ndarray | Sequence) -> list[tuple[int, int]]:
    """One-to-one pairs ``(row, column)`` of a score matrix, highest score first.

    Repeatedly takes the largest remaining entry (the first in row-major order
    on ties), pairs its row and column and removes both, while the largest is
    above 0: entries of 0 never pair. This is the one-to-one matching GLaMM's
    grounded-caption evaluation applies to its IoU matrix.

    Example: ``[[0.9, 0.8], [0.85, 0.0]]`` -> ``[(0, 0)]``: after (0, 0) row 1 could
    only take column 1, whose score is 0.
    """
    m = np.array(scores, dtype=np.float64, copy=True)
    if m.ndim != 2:
        raise ValueError(f"scores must be a matrix, got shape {m.shape}")
    pairs: list[tuple[int, int]] = []
    for _ in range(min(m.shape)):  # a non-empty matrix inside the loop
        r, c = divmod(int(np.argmax(m)), m.shape[1])
        if not m[r, c] > 0:
            break
        pairs.append((r, c))
        m[r, :] = -np.inf  # removed: never the maximum again
        m[:, c] = -np.inf
    return pairs


def order_preserving_max(scores: np.ndarray | Sequence) -> float:
    """The largest total score of a one-to-one matching of rows to columns that keeps both orders.

    A matching pairs rows ``i1 < i2 < ...`` with columns ``j1 < j2 < ...``; its
    total is the sum of ``scores[i, j]`` over the pairs. This is SODA's
    ``chased_dp_assignment`` score (Fujita et al., ECCV 2020), computed by the
    recurrence ``dp[i, j] = max(dp[i-1, j], dp[i, j-1], dp[i-1, j-1] + scores[i, j])``
    one row at a time (a running maximum along the row). Scores must be >= 0;
    an empty matrix gives 0.

    Example: ``[[1, 5], [4, 1]]`` -> 5 (pairs (0, 0) + (1, 1) give 2; (0, 1) alone 5;
    (1, 0) alone 4; (0, 1) and (1, 0) cross).
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"scores must be a matrix, got shape {s.shape}")
    if s.size == 0:
        return 0.0
    if np.any(s < 0):
        raise ValueError("order_preserving_max needs scores >= 0")
    prev = np.zeros(s.shape[1] + 1)  # dp of the row above, with a 0 column in front
    for row in s:
        take = prev[:-1] + row  # pair this row with column j: dp[i-1, j-1] + s[i, j]
        best = np.maximum(prev[1:], take)  # or leave this row out of column j
        prev = np.concatenate(([0.0], np.maximum.accumulate(best)))  # or leave column j out
    return float(prev[-1])


def hits(values: np.ndarray | Sequence[float], threshold: float, strict: bool) -> int:
    """How many values exceed ``threshold`` (``>`` when ``strict``, else ``>=``)."""
    v = np.asarray(values, dtype=np.float64)
    return int(np.count_nonzero(v > threshold if strict else v >= threshold))


def sequential_sum(values: Sequence[float] | np.ndarray) -> float:
    """Left-to-right float sum, as the release's ``total += x`` loops add (numpy sums pairwise)."""
    total = 0.0
    for v in np.asarray(values, dtype=np.float64).tolist():
        total += v
    return total


def track_scores(
    gt: Mapping[Hashable, Sequence[float]],
    pred: Mapping[Hashable, Sequence[float]],
    empty_both: float = 0.0,
) -> tuple[float, float, np.ndarray]:
    """Per-frame box agreement of two tracks keyed by frame.

    Args:
        gt, pred: frame key -> ``xyxy`` box (same units in both).
        empty_both: the score of both sIoU and vIoU when neither track has a
            frame (the release: 0; canonical: 1, nothing to find and nothing
            predicted).

    Returns:
        ``(sIoU, vIoU, ious)`` where ``ious`` are the IoUs of the common frames in
        sorted key order; ``sIoU = sum(ious) / max(|I|, 1)`` and
        ``vIoU = sum(ious) / max(|U|, 1)``.
    """
    common = sorted(set(gt) & set(pred), key=_sort_key)
    union = len(set(gt) | set(pred))
    if union == 0:
        return empty_both, empty_both, np.zeros(0)
    if common:
        ious = box_iou([gt[k] for k in common], [pred[k] for k in common])
    else:
        ious = np.zeros(0)
    total = float(ious.sum())
    return total / max(len(common), 1), total / max(union, 1), ious


def _sort_key(k: Hashable) -> tuple:
    try:
        return (0, float(k))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return (1, str(k))


__all__ = [
    "ZeroHullError",
    "box_iou",
    "box_iou_matrix",
    "greedy_matching",
    "hits",
    "order_preserving_max",
    "sequential_sum",
    "temporal_iou",
    "track_scores",
]
