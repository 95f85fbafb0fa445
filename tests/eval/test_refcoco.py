"""RefCOCO-family ground truth, prompts and REC scoring in both modes, against hand computations."""

from __future__ import annotations

import random

import pytest

from llava_st.protocol.bins import release_rewrite
from llava_st.eval.refcoco import PROMPTS, RefCOCO, gt_box
from llava_st.eval.scoring import score
from llava_st.protocol.tokens import RELEASE_BINS


@pytest.fixture
def rec_file(tmp_path, files):
    return files.refcoco_file(
        tmp_path / "refcoco_val.json",
        [
            (100, 100, [0, 0, 50, 50], "the left dog"),  # gt [0, 0, .5, .5]
            (100, 100, [0, 0, 50, 50], "the right dog"),
            (100, 100, [0, 0, 50, 50], "a cat"),
            (100, 100, [0, 0, 50, 50], "<image>\nWhere is the cat?"),
            (300, 300, [10, 10, 280, 285], "the sky"),  # rounding/clipping case
        ],
    )


ANSWERS = {
    0: "[0, 0, 0.5, 0.5]",  # IoU 1
    1: "[0, 0, 0.5, 0.25]",  # IoU exactly 0.5 (a hit: >=)
    2: "I cannot tell.",  # unreadable
    3: "[0.75, 0.75, 1, 1]",  # IoU 0
    4: "[0.033, 0.033, 0.967, 0.984]",
}


def test_ground_truth_per_mode(rec_file):
    """The file is read by llava_st.data.formats.refcoco (tests/data/formats); here: how each mode normalises it."""
    samples = RefCOCO("refcoco", bins=RELEASE_BINS).load(rec_file)
    assert len(samples) == 5
    s = samples[4]
    # published truth: each value rounded to 3 decimals then clipped
    assert gt_box(s, "published") == [0.033, 0.033, 0.967, 0.983]
    assert gt_box(s, "canonical") == pytest.approx([10 / 300, 10 / 300, 290 / 300, 295 / 300])


def test_published_scores_drop_unreadable(rec_file):
    bench = RefCOCO("refcoco", bins=RELEASE_BINS)
    rep = score(bench, bench.load(rec_file), ANSWERS, "published")
    # sample 4: gt [0.033, 0.033, 0.967, 0.983] vs pred [0.033, 0.033, 0.967, 0.984]
    inter = (0.967 - 0.033) * (0.983 - 0.033)
    iou4 = inter / ((0.967 - 0.033) * (0.983 - 0.033) + (0.967 - 0.033) * (0.984 - 0.033) - inter)
    ious = [1.0, 0.5, 0.0, iou4]  # sample 2 dropped
    assert rep["metrics"]["miou"] == pytest.approx(sum(ious) / 4, abs=1e-15)
    assert rep["metrics"]["R1@(0.5)"] == pytest.approx(3 / 4 * 100)
    assert set(rep["metrics"]) == {"miou", "R1@(0.5)"}
    assert rep["samples"][2]["counted"] is False and rep["unreadable_answers"] == 1
    assert rep["mode"] == "published-compat"


def test_canonical_scores_count_everything(rec_file):
    bench = RefCOCO("refcoco", bins=RELEASE_BINS)
    rep = score(bench, bench.load(rec_file), ANSWERS, "canonical")
    g = [10 / 300, 10 / 300, 290 / 300, 295 / 300]
    p = [0.033, 0.033, 0.967, 0.984]
    iw, ih = min(g[2], p[2]) - max(g[0], p[0]), min(g[3], p[3]) - max(g[1], p[1])
    inter = iw * ih
    iou4 = inter / ((g[2] - g[0]) * (g[3] - g[1]) + (p[2] - p[0]) * (p[3] - p[1]) - inter)
    assert rep["metrics"]["mIoU"] == pytest.approx((1.0 + 0.5 + 0 + 0 + iou4) / 5 * 100)
    assert rep["metrics"]["Acc@0.5"] == pytest.approx(3 / 5 * 100)
    assert rep["samples"][2]["parsed"]["type"] == "ParseFailure"


def test_release_variants_dropped_in_published_read_in_canonical(rec_file):
    bench = RefCOCO("refcoco", bins=RELEASE_BINS)
    samples = bench.load(rec_file)[:1]
    answers = {0: "[<WIDTH-000>,<HEIGHT-000>,<WIDTH-050>,<HEIGHT-050>]"}  # commas between tokens
    pub = score(bench, samples, answers, "published")
    assert pub["samples"][0]["counted"] is False
    assert pub["metrics"] == {"miou": 0.0, "R1@(0.5)": 0.0}  # no parsed record: n = 1
    can = score(bench, samples, answers, "canonical")
    assert can["samples"][0]["scores"]["iou"] == pytest.approx(
        0.25 / (50 / 99) ** 2  # pred [0, 0, 50/99, 50/99] contains gt [0, 0, .5, .5]: inter = gt area
    )


def test_both_answer_forms_score_identically(rec_file):
    bench = RefCOCO("refcoco", bins=RELEASE_BINS)
    samples = bench.load(rec_file)
    tokens = {i: f"at [<WIDTH-0{10 + i}><HEIGHT-020><WIDTH-060><HEIGHT-0{50 + i}>]" for i in range(5)}
    tokens[2] = "[<WIDTH-010><HEIGHT-020><WIDTH-060> ]"  # unreadable in both modes
    decimals = {i: release_rewrite(t, RELEASE_BINS) for i, t in tokens.items()}
    for mode in ("published", "canonical"):
        a, b = score(bench, samples, tokens, mode), score(bench, samples, decimals, mode)
        assert a["metrics"] == b["metrics"]
        assert [r["scores"] for r in a["samples"]] == [r["scores"] for r in b["samples"]]


def test_prompt(rec_file):
    bench = RefCOCO("refcoco", bins=RELEASE_BINS)
    samples = bench.load(rec_file)
    req = bench.request(samples[0], "canonical", random.Random(0), "/data/refcoco/sources", 100)
    assert req.prompt.startswith("<image>\n") and "the left dog" in req.prompt
    assert req.prompt[len("<image>\n") :] in [p.format(x="the left dog") for p in PROMPTS]
    assert req.media.kind == "image" and req.media.path == "/data/refcoco/sources/COCO_0.jpg"
    assert bench.request(samples[3], "canonical", random.Random(0), "/x", 100).prompt == "<image>\nWhere is the cat?"
