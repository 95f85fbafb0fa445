"""The best constant answers (llava_st.embedded.baselines): the search finds the optimum, and the
constant predictor's answers are read by the benchmarks' own parsers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from llava_st.embedded.baselines import ConstantPredictor, Constants, best_box, best_span, box_candidates
from llava_st.eval.base import Request
from llava_st.protocol.answers import ParseFailure, parse_answer
from llava_st.protocol.tokens import BinCounts


def _iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / u if u > 0 else 0.0


def test_best_box_is_the_best_candidate_by_brute_force():
    rng = np.random.default_rng(0)
    centres = rng.uniform(0.3, 0.7, (40, 2))
    sizes = rng.uniform(0.1, 0.3, (40, 2))
    truth = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)
    chosen = best_box(truth, 0.5)
    hits = lambda box: sum(_iou(box, t) >= 0.5 for t in truth)  # noqa: E731
    best = max(hits(tuple(c)) for c in box_candidates()[::7])  # a sample of the grid, checked slowly
    assert hits(chosen) >= best and hits(chosen) > 0


def test_best_span_maximises_recall_at_half():
    truth = np.array([[0.2, 0.6], [0.25, 0.55], [0.3, 0.7], [0.0, 0.1]])
    span = best_span(truth, 16)
    points = np.arange(16) / 15

    def recall(s):
        return sum((min(s[1], t[1]) - max(s[0], t[0])) / (max(s[1], t[1]) - min(s[0], t[0])) >= 0.5 for t in truth)

    assert recall(span) == max(recall(c) for c in itertools.combinations(points, 2)) == 3


@pytest.mark.parametrize("task", ["rec", "tvg", "stvg", "svg"])
def test_constant_answers_parse_with_the_task_grammar(task):
    constants = Constants(rec_box=(0.1, 0.2, 0.5, 0.6), tvg_span=(0.2, 0.6), stvg_span=(0.4, 0.6),
                          stvg_box=(0.3, 0.3, 0.6, 0.6), svg_box=(0.2, 0.2, 0.4, 0.4))
    bins = BinCounts(16, 100)
    predictor = ConstantPredictor(constants, task, bins, 16)
    prompt = "<video>\nDuring {0.2,0.4}, follow the red circle." if task == "svg" else "<image>\nwhere?"
    text = predictor.ask_batch([Request(0, prompt, None)])[0]
    result = parse_answer(text, task, bins=bins)
    assert not isinstance(result, ParseFailure), result
    if task == "rec":
        assert result.box.xyxy == pytest.approx((0.1, 0.2, 0.5, 0.6), abs=0.006)
    if task in ("stvg", "svg"):
        frames = [round(f.time * 15) for f in result.track.frames]
        lo, hi = (0.4, 0.6) if task == "stvg" else (0.2, 0.4)
        assert frames == [k for k in range(16) if lo <= k / 15 <= hi]
