"""One-to-one matchings and the IoU matrix against slow, obviously correct computations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from llava_st.eval.metrics import box_iou, box_iou_matrix, greedy_matching, order_preserving_max

from eval_references import slow_box_iou


def glamm_pairs(iou: np.ndarray) -> list[tuple[int, int]]:
    """GLaMM's loop: take the largest IoU, delete its row and column, until the largest is 0 (indices kept)."""
    m = iou.copy()
    rows, cols = list(range(m.shape[0])), list(range(m.shape[1]))
    pairs = []
    while m.size > 0 and np.max(m) > 0:
        r, c = np.unravel_index(np.argmax(m, axis=None), m.shape)
        pairs.append((rows[r], cols[c]))
        m = np.delete(np.delete(m, r, axis=0), c, axis=1)
        del rows[r], cols[c]
    return pairs


def brute_order_preserving(s: np.ndarray) -> float:
    """The best total over every set of pairs increasing in both row and column."""
    n, m = s.shape
    best = 0.0
    for k in range(1, min(n, m) + 1):
        for rows in itertools.combinations(range(n), k):
            for cols in itertools.combinations(range(m), k):
                best = max(best, sum(s[r, c] for r, c in zip(rows, cols)))
    return best


def random_boxes(rng, n):
    xy = rng.uniform(0, 1, size=(n, 2))
    wh = rng.uniform(0, 0.6, size=(n, 2)) * (rng.uniform(size=(n, 1)) > 0.1)  # some zero-area boxes
    return np.concatenate([xy, xy + wh], axis=1)


def test_box_iou_matrix_is_every_pair():
    rng = np.random.default_rng(0)
    a, b = random_boxes(rng, 5), random_boxes(rng, 4)
    want = np.array([[slow_box_iou(x, y) for y in b] for x in a])
    np.testing.assert_allclose(box_iou_matrix(a, b), want, rtol=0, atol=1e-12)
    assert box_iou_matrix(np.zeros((0, 4)), b).shape == (0, 4)
    assert box_iou_matrix(a[0], b[0]).shape == (1, 1) and box_iou_matrix(a[0], b[0])[0, 0] == box_iou(a[0], b[0])


@pytest.mark.parametrize("seed", range(30))
def test_greedy_matching_is_glamms(seed):
    rng = np.random.default_rng(seed)
    n, m = rng.integers(0, 6, size=2)
    iou = rng.uniform(size=(n, m)) * (rng.uniform(size=(n, m)) > 0.4)
    if seed % 5 == 0 and iou.size:
        iou = np.round(iou, 1)  # ties: the first in row-major order wins in both
    assert greedy_matching(iou) == glamm_pairs(iou)


def test_greedy_matching_hand_case():
    assert greedy_matching([[0.9, 0.8], [0.85, 0.0]]) == [(0, 0)]
    assert greedy_matching([[0.5, 0.6], [0.7, 0.1]]) == [(1, 0), (0, 1)]
    assert greedy_matching(np.zeros((3, 0))) == []


@pytest.mark.parametrize("seed", range(40))
def test_order_preserving_max_against_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    n, m = rng.integers(1, 5, size=2)
    s = rng.uniform(size=(n, m)) * (rng.uniform(size=(n, m)) > 0.3)
    assert order_preserving_max(s) == pytest.approx(brute_order_preserving(s), abs=1e-12)


def test_order_preserving_max_hand_cases():
    assert order_preserving_max([[1, 5], [4, 1]]) == 5  # the crossing pairs (0, 1) + (1, 0) are not allowed
    assert order_preserving_max([[1, 0], [0, 1]]) == 2
    assert order_preserving_max(np.zeros((0, 3))) == 0
    with pytest.raises(ValueError, match=">= 0"):
        order_preserving_max([[-1.0]])
