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
  (mean over the frames both have) and ``vIoU = sum_I IoU / |U|``.

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


__all__ = ["ZeroHullError", "box_iou", "hits", "sequential_sum", "temporal_iou", "track_scores"]
