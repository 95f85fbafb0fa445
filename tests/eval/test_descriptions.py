"""REG and TR: readers of RefCOCOg regions, ActivityNet/Charades spans and release-format files, and
caption scores against the COCO toolkit called directly here."""

from __future__ import annotations

import json

import pytest

from llava_st.eval.benchmarks import get_benchmark
from llava_st.eval.descriptions import MIN_SPAN, askable_span
from llava_st.eval.runner import prompt_rng
from llava_st.eval.scoring import score
from llava_st.protocol.tokens import RELEASE_BINS

from eval_references import toolkit


def refcocog_file(path, entries):
    """entries: (file_name, width, height, bbox xywh, expression), one per referring expression."""
    images = [{"id": i, "file_name": f, "width": w, "height": h, "caption": c} for i, (f, w, h, _, c) in enumerate(entries)]
    anns = [{"id": i, "bbox": b} for i, (_, _, _, b, _) in enumerate(entries)]
    path.write_text(json.dumps({"images": images, "annotations": anns}))
    return path


ENTRIES = [
    ("a.jpg", 200, 100, [20, 10, 100, 50], "the man in a red shirt"),
    ("a.jpg", 200, 100, [150, 0, 60, 100], "the tree on the right"),
    ("a.jpg", 200, 100, [20, 10, 100, 50], "a man wearing red"),  # the same region as entry 0
    ("b.jpg", 50, 50, [0, 0, 50, 50], "<image>\na white cat"),
]


def test_refcocog_regions_gather_expressions_and_score_like_the_toolkit(tmp_path):
    pytest.importorskip("pycocoevalcap")
    bench = get_benchmark("refcocog-reg", bins=RELEASE_BINS)
    samples = bench.load(refcocog_file(tmp_path / "refcocog_val.json", ENTRIES))
    assert [s.references for s in samples] == [
        ("the man in a red shirt", "a man wearing red"), ("the tree on the right",), ("a white cat",)]
    assert [s.entries for s in samples] == [(0, 2), (1,), (3,)]
    assert samples[0].box == pytest.approx((0.1, 0.1, 0.6, 0.6))
    assert samples[1].box == pytest.approx((0.75, 0.0, 1.0, 1.0))  # clipped to the image
    req = bench.request(samples[0], "canonical", prompt_rng(0, "refcocog-reg", 0, "canonical"), tmp_path / "img", 100)
    assert req.prompt == "<image>\nWhat is the object in the region [0.1, 0.1, 0.6, 0.6]?"
    assert req.media.kind == "image" and req.media.path == str(tmp_path / "img" / "a.jpg")

    answers = {0: "A man in a red shirt.<|im_end|>", 1: "<|im_end|>", 2: "a small white cat sitting"}
    rep = score(bench, samples, answers, "canonical")
    assert [r["hypothesis"] for r in rep["samples"]] == ["A man in a red shirt.", "", "a small white cat sitting"]
    assert rep["unreadable_answers"] == 1  # the empty answer: a miss, scored as an empty caption
    want = toolkit([list(s.references) for s in samples], [r["hypothesis"] for r in rep["samples"]])
    for key, value in want.items():
        assert rep["metrics"][key] == pytest.approx(value, rel=1e-12), key
    assert rep["published"] == [] and rep["samples"][2]["scores"]["caption"]["METEOR"] > 0
    with pytest.raises(ValueError, match="no published-compatible mode"):
        score(bench, samples, answers, "published")


def test_askable_spans():
    assert askable_span(0.2, 0.6) == (0.2, 0.6, False)
    assert askable_span(0.5, 0.5) == (0.5, 0.501, True)  # zero-length
    assert askable_span(0.5001, 0.5004) == (0.5, 0.501, True)  # equal once written with 3 decimals
    assert askable_span(1.0, 1.0) == (0.999, 1.0, True)
    assert askable_span(-0.1, 1.3) == (0.0, 1.0, False)  # clipped to the clip
    assert MIN_SPAN == 0.001


def test_tr_spans_of_both_public_formats(tmp_path):  # (a tmp folder named "activitynet" would keep v_)
    pytest.importorskip("pycocoevalcap")
    anet = tmp_path / "val_1.json"
    anet.write_text(json.dumps({
        "v_abc": {"duration": 20.0, "timestamps": [[2.0, 8.0], [10.0, 10.0], [15.0, 25.0]],
                  "sentences": ["A man walks in.", "He waves.", "He leaves the room."]},
    }))
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "abc.mkv").write_bytes(b"")  # found without the v_ prefix, by extension
    bench = get_benchmark("activitynet-tr", bins=RELEASE_BINS)
    samples = bench.load(anet)
    assert [s.span for s in samples] == [(0.1, 0.4), (0.5, 0.501), (0.75, 1.0)]
    assert [s.widened for s in samples] == [False, True, False]
    req = bench.request(samples[1], "canonical", prompt_rng(0, "x", 1, "canonical"), tmp_path / "videos", 12)
    assert req.prompt == "<video>\nWhat happens in the video during {0.5, 0.501}?"
    assert req.media.path == str(tmp_path / "videos" / "abc.mkv") and req.media.split is None and req.media.num_frames == 12

    answers = {0: "A man walks into the room.", 1: "He waves his hand.", 2: "nothing"}
    rep = score(bench, samples, answers, "canonical")
    assert rep["samples"][1]["widened_span"] == [0.5, 0.501]
    want = toolkit([[s.reference] for s in samples], list(answers.values()))
    assert rep["metrics"]["METEOR"] == pytest.approx(want["METEOR"], rel=1e-12)
    assert rep["metrics"]["CIDEr"] == pytest.approx(want["CIDEr"], rel=1e-12)

    cha = tmp_path / "charades.json"
    cha.write_text(json.dumps([{"image_id": "v_X1.mp4", "caption": "a person opens a door.", "timestamp": [0.25, 0.5]}]))
    tr = get_benchmark("charades-tr", bins=RELEASE_BINS)
    sample = tr.load(cha)[0]
    req = tr.request(sample, "canonical", prompt_rng(0, "x", 0, "canonical"), tmp_path, 12)
    assert req.prompt == "<video>\nWhat happens in the video during {0.25, 0.5}?" and req.media.path == str(tmp_path / "X1.mp4")
    assert sample.reference == "a person opens a door."
