"""Metric functions against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from llava_st.eval.metrics import ZeroHullError, box_iou, hits, sequential_sum, temporal_iou, track_scores


def test_box_iou_hand_cases():
    assert box_iou([0, 0, 2, 2], [1, 1, 3, 3]) == pytest.approx(1 / 7)
    assert box_iou([0, 0, 2, 2], [0, 0, 2, 2]) == 1.0
    assert box_iou([0, 0, 1, 1], [2, 2, 3, 3]) == 0.0  # disjoint
    assert box_iou([0, 0, 1, 1], [1, 0, 2, 1]) == 0.0  # touching edge
    # exactly one half: [0, 0, .5, .5] vs [0, 0, .5, .25] -> .125 / .25
    assert box_iou([0, 0, 0.5, 0.5], [0, 0, 0.5, 0.25]) == 0.5


def test_box_iou_degenerate_boxes_score_zero():
    assert box_iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0  # zero union
    assert box_iou([0, 0, 1, 1], [0.5, 0.5, 0.5, 0.5]) == 0.0  # zero-area prediction
    inv = box_iou([0, 0, 1, 1], [0.8, 0.2, 0.2, 0.9])  # inverted in x
    assert inv == 0.0 and not np.signbit(inv)


def test_box_iou_outside_the_frame_and_vectorised():
    # a truth box half outside a 10x10 frame against the visible half
    gt = np.array([[-5, 0, 5, 10], [0, 0, 4, 4]], dtype=float)
    pred = np.array([[0, 0, 5, 10], [2, 2, 6, 6]], dtype=float)
    assert box_iou(gt, pred) == pytest.approx([50 / 100, 4 / 28])


def test_temporal_iou_hand_cases():
    assert temporal_iou([0.2, 0.6], [0.4, 0.8]) == pytest.approx(0.2 / 0.6)
    assert temporal_iou([0.0, 0.5], [0.0, 1.0]) == 0.5
    assert temporal_iou([0.6, 0.2], [0.1, 0.5]) == 0.0  # inverted prediction
    assert temporal_iou([0.3, 0.3], [0.1, 0.5]) == 0.0  # zero-length inside
    assert temporal_iou([0.0, 0.2], [0.5, 0.9]) == 0.0  # disjoint: hull denominator, floored
    assert temporal_iou(np.array([[0, 1], [0, 0.5]]), np.array([[0, 1], [0.25, 0.75]])) == pytest.approx([1.0, 1 / 3])


def test_temporal_iou_zero_hull_release_crashes_canonical_scores_one():
    with pytest.raises(ZeroHullError) as err:
        temporal_iou([[0.1, 0.2], [1.0, 1.0]], [[0.1, 0.3], [1.0, 1.0]], zero_hull="raise")
    assert err.value.index == 1
    out = temporal_iou([[0.1, 0.2], [1.0, 1.0], [0.5, 0.5]], [[0.1, 0.3], [1.0, 1.0], [0.4, 0.4]], zero_hull="one")
    assert out == pytest.approx([0.5, 1.0, 0.0])


def test_hits_at_exact_threshold_strict_and_not():
    values = [0.5, 0.3, 0.7, 0.2999, 0.71]
    assert hits(values, 0.5, strict=True) == 2  # 0.7, 0.71
    assert hits(values, 0.5, strict=False) == 3
    assert hits(values, 0.3, strict=True) == 3
    assert hits(values, 0.3, strict=False) == 4
    assert hits([], 0.5, strict=False) == 0


def test_sequential_sum_adds_left_to_right():
    # (1e16 + 1) + 1 loses both ones left to right; pairwise would not
    assert sequential_sum([1e16, 1.0, 1.0]) == 1e16
    assert sequential_sum([0.1, 0.2, 0.3]) == (0.1 + 0.2) + 0.3


def test_track_scores_intersection_and_union():
    gt = {"10": [0, 0, 2, 2], "12": [0, 0, 1, 1], "14": [0, 0, 4, 4]}
    pred = {"10": [0, 0, 2, 2], "14": [0, 0, 2, 2], "16": [5, 5, 6, 6]}
    siou, viou, ious = track_scores(gt, pred)
    # common 10 (IoU 1) and 14 (IoU 4/16); union 10, 12, 14, 16
    assert ious == pytest.approx([1.0, 0.25])
    assert siou == pytest.approx(1.25 / 2)
    assert viou == pytest.approx(1.25 / 4)


def test_track_scores_empty_tracks():
    assert track_scores({}, {})[:2] == (0.0, 0.0)
    assert track_scores({}, {}, empty_both=1.0)[:2] == (1.0, 1.0)
    assert track_scores({}, {"3": [0, 0, 1, 1]}, empty_both=1.0)[:2] == (0.0, 0.0)
    assert track_scores({"3": [0, 0, 1, 1]}, {}, empty_both=1.0)[:2] == (0.0, 0.0)
