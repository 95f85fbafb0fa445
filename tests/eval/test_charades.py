"""Charades-STA prompt and TVG scoring in both modes, against hand computations."""

from __future__ import annotations

import random

import pytest

from llava_st.protocol.bins import release_rewrite
from llava_st.eval.base import ReleaseCrash
from llava_st.eval.charades import CharadesSTA, video_file
from llava_st.eval.scoring import score
from llava_st.protocol.tokens import RELEASE_BINS

ITEMS = [
    {"image_id": "v_AB12C.mp4", "caption": "Person opens the door.", "timestamp": [0.25, 0.75]},
    {"image_id": "XY34Z.mp4", "caption": "a person sits", "timestamp": [0.25, 0.75]},
    {"image_id": "XY34Z.mp4", "caption": "a person sits", "timestamp": [0.0, 1.0]},
    {"image_id": "XY34Z.mp4", "caption": "a person sits", "timestamp": [0.25, 0.75]},
    {"image_id": "XY34Z.mp4", "caption": "a person sits", "timestamp": [0.25, 0.75]},
    {"image_id": "XY34Z.mp4", "caption": "a person sits", "timestamp": [0.25, 0.75]},
]
ANSWERS = {
    0: "{0.25, 0.75}",  # 1
    1: "{0.0, 0.5}",  # inter .25, hull .75 -> 1/3
    2: "{0.5, 1.0}",  # exactly 0.5: not a hit for R@0.5 (strict)
    3: "",  # unreadable
    4: "{<TEMP-000><TEMP-000>}",  # [0, 0]: skipped by the release; canonical: zero-length, IoU 0
    5: "{0.5 , 0.6}",  # space before the comma: release fails; canonical reads it (inter .1 / hull .5)
}


@pytest.fixture
def tvg_file(tmp_path, files):
    return files.write_json(tmp_path / "test.json", ITEMS)


def test_published(tvg_file):
    bench = CharadesSTA(bins=RELEASE_BINS)
    rep = score(bench, bench.load(tvg_file), ANSWERS, "published")
    ious = [1.0, 1 / 3, 0.5, 0.0, 0.0, 0.0]
    m = rep["metrics"]
    assert m["miou"] == pytest.approx(sum(ious) / 6)
    assert m["R1@(0.3)"] == pytest.approx(3 / 6 * 100)  # 1, 1/3, .5
    assert m["R1@(0.5)"] == pytest.approx(1 / 6 * 100)  # only 1: 0.5 is not > 0.5
    assert m["R1@(0.7)"] == pytest.approx(1 / 6 * 100)
    assert [r["skipped"] for r in rep["samples"]] == [False, False, False, True, True, True]


def test_canonical(tvg_file):
    bench = CharadesSTA(bins=RELEASE_BINS)
    rep = score(bench, bench.load(tvg_file), ANSWERS, "canonical")
    ious = [1.0, 1 / 3, 0.5, 0.0, 0.0, 0.1 / 0.5]
    m = rep["metrics"]
    assert m["mIoU"] == pytest.approx(sum(ious) / 6 * 100)
    assert m["R@0.3"] == pytest.approx(3 / 6 * 100)
    assert m["R@0.5"] == pytest.approx(1 / 6 * 100)
    assert m["R@0.7"] == pytest.approx(1 / 6 * 100)
    assert [r["readable"] for r in rep["samples"]] == [True, True, True, False, True, True]


def test_zero_length_truth_and_prediction(tmp_path, files):
    path = files.write_json(tmp_path / "t.json", [{"image_id": "a.mp4", "caption": "x", "timestamp": [1.0, 1.0]}])
    bench = CharadesSTA(bins=RELEASE_BINS)
    answers = {0: "{<TEMP-099><TEMP-099>}"}
    with pytest.raises(ReleaseCrash, match="sample 0"):
        score(bench, bench.load(path), answers, "published")
    rep = score(bench, bench.load(path), answers, "canonical")
    assert rep["samples"][0]["scores"]["iou"] == 1.0


def test_both_answer_forms_score_identically(tvg_file):
    bench = CharadesSTA(bins=RELEASE_BINS)
    samples = bench.load(tvg_file)
    tokens = {i: f"{{<TEMP-0{10 + 5 * i}><TEMP-0{60 + i}>}}" for i in range(6)}
    tokens[3] = "{<TEMP-010>,<TEMP-050>}"
    tokens[4] = "{<TEMP-010><TEMP-050> }"
    for mode in ("published", "canonical"):
        a = score(bench, samples, tokens, mode)
        b = score(bench, samples, {i: release_rewrite(t, RELEASE_BINS) for i, t in tokens.items()}, mode)
        assert a["metrics"] == b["metrics"]


def test_prompt_and_video_path(tvg_file):
    bench = CharadesSTA(bins=RELEASE_BINS)
    s = bench.load(tvg_file)[0]
    req = bench.request(s, "canonical", random.Random(0), "/data/charades/sources", 100)
    assert req.prompt == (
        "<video>\nGive you a textual query: 'person opens the door'. When does the described content occur in "
        "the video? Please return the start and end timestamps."
    )
    assert req.media.path == "/data/charades/sources/AB12C.mp4" and req.media.split is None
    assert video_file("a_v_b.mp4", "/d", "published") == "/d/a_b.mp4"  # the release removes every 'v_'
    assert video_file("a_v_b.mp4", "/d", "canonical") == "/d/a_v_b.mp4"
    assert video_file("v_x.mp4", "/data/activitynet", "published") == "/data/activitynet/v_x.mp4"
