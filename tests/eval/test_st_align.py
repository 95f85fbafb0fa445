"""ST-Align prompts and STVG/SVG/ELC scoring (no captions here) in both modes, by hand.

The file format itself is tested in tests/data/formats/test_st_align.py.
"""

from __future__ import annotations

import json
import random

import pytest

from llava_st.protocol.bins import release_rewrite
from llava_st.protocol.coords import to_placeholders
from llava_st.data.formats import AnnotationError, read_st_align
from llava_st.eval.base import ReleaseCrash
from llava_st.eval.scoring import score
from llava_st.eval.st_align import SPAN_PHRASES, STAlign
from llava_st.protocol.tokens import RELEASE_BINS

# frame size 198 x 99 and split [0, 198]: 100 sampled frames are 0, 2, 4, ..., 198 (frame 2i),
# bin k is 2k pixels across and k pixels down.
TRACK = {
    "10": [10, 10, 20, 20],  # xyxy [10, 10, 30, 30]
    "12": [-10, -5, 30, 20],  # xyxy [-10, -5, 20, 15]: partly outside the frame
    "3": [0, 0, 5, 5],  # not a sampled frame: dropped
}
PAIRS = (
    "<TEMP-005>:[<WIDTH-005><HEIGHT-010><WIDTH-015><HEIGHT-030>], "  # frame 10: [10, 10, 30, 30]
    "<TEMP-006>:[<WIDTH-000><HEIGHT-000><WIDTH-010><HEIGHT-015>], "  # frame 12: [0, 0, 20, 15]
    "<TEMP-007>:[<WIDTH-001><HEIGHT-001><WIDTH-002><HEIGHT-002>]"  # frame 14: no truth
)
# truth span: <s> = 20, <e> = 100 -> [round(20/198, 3), round(100/198, 3)] = [0.101, 0.505]
G0, G1 = 0.101, 0.505


def write(tmp_path, files, task, items):
    return files.write_json(tmp_path / f"{task}.json", items)


@pytest.fixture
def item(files):
    return files.st_item(track=TRACK)


def test_stvg_published(tmp_path, files, item):
    bench = STAlign("stvg", bins=RELEASE_BINS)
    path = write(tmp_path, files, "stvg", [item])
    rep = score(bench, bench.load(path), {0: "During the span of {<TEMP-010><TEMP-050>}. Object bounding box: " + PAIRS}, "published")
    sc = rep["samples"][0]["scores"]
    # decoded span [0.10101, 0.50505] against [0.101, 0.505]
    assert sc["tiou"] == pytest.approx((0.505 - 0.10101) / (0.50505 - 0.101), abs=1e-15)
    # frame 10: IoU 1; frame 12: unclipped truth area 600, prediction 300 inside -> 0.5; frame 14 extra
    assert sc["siou"] == pytest.approx((1 + 0.5) / 2)
    assert sc["viou"] == pytest.approx((1 + 0.5) / 3)
    assert rep["samples"][0]["parsed"]["boxes"] == {"10": [10, 10, 30, 30], "12": [0, 0, 20, 15], "14": [2, 1, 4, 2]}
    m = rep["metrics"]
    assert m["mtiou"] == sc["tiou"] and m["msiou"] == sc["siou"] and m["mstiou"] == sc["viou"]
    assert (m["tiou@0.5"], m["tiou@0.7"]) == (100.0, 100.0)
    assert (m["siou@0.7"], m["viou@0.5"], m["viou@0.7"]) == (100.0, 100.0, 0.0)
    assert m["caption_score"] == {}
    assert set(m) == {
        "mtiou", "tiou@0.3", "tiou@0.5", "tiou@0.7", "msiou", "siou@0.3", "siou@0.5", "siou@0.7",
        "mstiou", "viou@0.3", "viou@0.5", "viou@0.7", "caption_score",
    }  # fmt: skip


def test_stvg_canonical(tmp_path, files, item):
    bench = STAlign("stvg", bins=RELEASE_BINS)
    path = write(tmp_path, files, "stvg", [item])
    rep = score(bench, bench.load(path), {0: "During the span of {<TEMP-010><TEMP-050>}. Object bounding box: " + PAIRS}, "canonical")
    sc = rep["samples"][0]["scores"]
    assert sc["tiou"] == pytest.approx((0.505 - 10 / 99) / (50 / 99 - 0.101))
    # truth clipped to the frame: frame 12 becomes [0, 0, 20, 15] = the prediction
    assert sc["siou"] == pytest.approx(1.0)
    assert sc["viou"] == pytest.approx(2 / 3)
    m = rep["metrics"]
    assert m["m_tIoU"] == pytest.approx(sc["tiou"] * 100)
    assert m["m_sIoU"] == pytest.approx(100.0) and m["m_vIoU"] == pytest.approx(200 / 3)
    assert (m["vIoU@0.5"], m["vIoU@0.7"]) == (100.0, 0.0)


def test_svg_published_and_canonical(tmp_path, files, item):
    bench = STAlign("svg", bins=RELEASE_BINS)
    path = write(tmp_path, files, "svg", [item])
    samples = bench.load(path)
    pub = score(bench, samples, {0: PAIRS}, "published")
    assert pub["samples"][0]["scores"]["tiou"] == 0.0 and pub["metrics"]["mtiou"] == 0.0
    assert pub["metrics"]["msiou"] == pytest.approx(0.75)
    can = score(bench, samples, {0: PAIRS}, "canonical")
    assert "tiou" not in can["samples"][0]["scores"] and "m_tIoU" not in can["metrics"]
    assert can["metrics"]["m_sIoU"] == pytest.approx(100.0)


def test_elc_time_published_bug_and_canonical_fix(tmp_path, files):
    item = files.st_item(track=TRACK, human="<video>\nStarts in <s>, what does the dog do? ", gpt="Ends in <e>, a dog runs. Object bounding box: <bboxes>")
    bench = STAlign("elc", bins=RELEASE_BINS)
    samples = bench.load(write(tmp_path, files, "elc", [item]))
    answer = "Ends in <TEMP-050>, a dog runs. Object bounding box: " + PAIRS
    pub = bench.score_sample(samples[0], answer, "published", 100)
    assert pub["scores"]["tiou"] == 0.0  # no {s, e} in an 'Ends in' answer
    assert (pub["reference"], pub["hypothesis"]) == ("a dog runs.", " a dog runs")
    can = bench.score_sample(samples[0], answer, "canonical", 100)
    assert can["parsed"]["span"] == [0.101, 50 / 99]
    assert can["scores"]["tiou"] == pytest.approx((0.505 - 0.101) / (50 / 99 - 0.101))
    assert (can["reference"], can["hypothesis"]) == ("a dog runs.", "a dog runs.")
    early = bench.score_sample(samples[0], "Ends in <TEMP-005>, a dog runs. " + PAIRS, "canonical", 100)
    assert early["scores"]["tiou"] == 0.0  # ends before the given start


def test_integer_pixels_published_float_canonical(tmp_path, files):
    # 200 x 100, split [100, 199]: sampled frames 100..199; bin 1 -> 2.0202 px across, 1.0101 px down
    item = files.st_item(split=(100, 199), width=200, height=100, s=110, e=150, track={"105": [2, 1, 10, 5]})
    bench = STAlign("svg", bins=RELEASE_BINS)
    samples = bench.load(write(tmp_path, files, "svg", [item]))
    answer = "<TEMP-005>:[<WIDTH-001><HEIGHT-001><WIDTH-006><HEIGHT-006>]"
    pub = bench.score_sample(samples[0], answer, "published", 100)
    assert pub["parsed"]["boxes"] == {"105": [2, 1, 12, 6]}
    assert pub["scores"]["siou"] == 1.0
    can = bench.score_sample(samples[0], answer, "canonical", 100)
    p = [200 / 99, 100 / 99, 1200 / 99, 600 / 99]
    inter = (12 - p[0]) * (6 - p[1])
    expect = inter / (10 * 5 + (p[2] - p[0]) * (p[3] - p[1]) - inter)
    assert can["scores"]["siou"] == pytest.approx(expect) and can["scores"]["viou"] == pytest.approx(expect)


def test_duplicate_keys_and_empty_tracks(tmp_path, files):
    dup = files.st_item(track={"10": [10, 10, 20, 20]})
    empty = files.st_item(track={"3": [0, 0, 5, 5]})  # no truth on a sampled frame
    bench = STAlign("stvg", bins=RELEASE_BINS)
    samples = bench.load(write(tmp_path, files, "stvg", [dup, empty]))
    answers = {
        0: "{<TEMP-010><TEMP-050>} <TEMP-005>:[<WIDTH-005><HEIGHT-010><WIDTH-015><HEIGHT-030>], "
        "<TEMP-005>:[<WIDTH-005><HEIGHT-010><WIDTH-010><HEIGHT-030>]",
        1: "During {<TEMP-010><TEMP-050>}.",
    }
    pub = score(bench, samples, answers, "published")
    # the later box wins: [10, 10, 20, 30] inside [10, 10, 30, 30] -> 200 / 400
    assert pub["samples"][0]["scores"]["siou"] == pytest.approx(0.5)
    assert pub["samples"][1]["scores"]["siou"] == 0.0 and pub["samples"][1]["scores"]["viou"] == 0.0
    # sIoU exactly 0.5 is a hit at 0.5 (>=): one of two samples
    assert (pub["metrics"]["siou@0.5"], pub["metrics"]["siou@0.7"]) == (50.0, 0.0)
    can = score(bench, samples, answers, "canonical")
    assert can["samples"][0]["scores"]["siou"] == 0.0 and "given twice" in can["samples"][0]["problems"][0]
    assert can["samples"][1]["scores"]["siou"] == 1.0 and can["samples"][1]["scores"]["viou"] == 1.0
    assert can["samples"][1]["readable"] is False  # no boxes at all is still reported


def test_degenerate_splits_and_spans(tmp_path, files):
    one_frame = files.st_item(split=(5, 5), s=5, e=5, track={"5": [0, 0, 10, 10]})
    at_start = files.st_item(s=0, e=0, track={"0": [0, 0, 10, 10]})
    bench = STAlign("stvg", bins=RELEASE_BINS)
    samples = bench.load(write(tmp_path, files, "stvg", [one_frame, at_start]))
    with pytest.raises(ReleaseCrash, match="one-frame split"):
        bench.score_sample(samples[0], "{<TEMP-000><TEMP-000>}", "published", 100)
    with pytest.raises(ReleaseCrash, match="zero-length"):
        bench.score_sample(samples[1], "unreadable", "published", 100)
    one = bench.score_sample(samples[0], "{<TEMP-000><TEMP-000>} <TEMP-050>:[<WIDTH-000><HEIGHT-000><WIDTH-005><HEIGHT-010>]", "canonical", 100)
    assert one["scores"]["tiou"] == 1.0
    assert one["scores"]["siou"] == pytest.approx(1.0)  # every sampled frame is frame 5
    # the split samples frame 5 a hundred times: it is one frame of truth, predicted once
    assert one["scores"]["viou"] == pytest.approx(1.0)
    start = bench.score_sample(samples[1], "unreadable", "canonical", 100)
    assert start["scores"] == {"tiou": 0.0, "siou": 0.0, "viou": 0.0}


def test_first_2000_rule(tmp_path, files):
    items = [files.st_item() for _ in range(2001)]
    bench = STAlign("svg", bins=RELEASE_BINS)
    samples = bench.load(write(tmp_path, files, "svg", items))
    answers = {i: "<TEMP-005>:[<WIDTH-005><HEIGHT-010><WIDTH-015><HEIGHT-030>]" for i in range(2001)}
    pub = score(bench, samples, answers, "published")
    assert (pub["num_scored"], pub["ignored_predictions"]) == (2000, 1)
    can = score(bench, samples, answers, "canonical", limit=3)
    assert (can["num_scored"], can["ignored_predictions"]) == (3, 1998)


def test_both_answer_forms_score_identically(tmp_path, files, item):
    for task, answer in (
        ("stvg", "During the span of {<TEMP-010><TEMP-050>}. Object bounding box: " + PAIRS),
        ("svg", PAIRS + ", <TEMP-005>:[<WIDTH-001><HEIGHT-001><WIDTH-002><HEIGHT-002>]"),
        ("stvg", "{<TEMP-010>,<TEMP-050>} <TEMP-005>: [<WIDTH-005>,<HEIGHT-010>,<WIDTH-015>,<HEIGHT-030>]"),
    ):
        bench = STAlign(task, bins=RELEASE_BINS)
        samples = bench.load(write(tmp_path, files, task, [item]))
        for mode in ("published", "canonical"):
            a = bench.score_sample(samples[0], answer, mode, 100)
            b = bench.score_sample(samples[0], release_rewrite(answer, RELEASE_BINS), mode, 100)
            assert a["scores"] == b["scores"] and a["parsed"] == b["parsed"], (task, mode)


def test_prompt(tmp_path, files):
    item = files.st_item(
        human="<video>\nFrom <s> to <e>, who does the adult in <obj> watch? And <far>?",
        boxes={"<obj>": [10, 20, 30, 40], "<far>": [150, 50, 100, 100]},
    )
    zero = files.st_item(s=50, e=50, human="<video>\nFrom <s> to <e>, where is the dog?")
    bench = STAlign("svg", bins=RELEASE_BINS)
    samples = bench.load(write(tmp_path, files, "svg", [item, zero]))
    req = bench.request(samples[0], "canonical", random.Random(3), "/data/st-align/sources", 100)
    phrase = req.prompt[len("<video>\n") :].split(" {")[0]
    assert phrase in SPAN_PHRASES
    assert req.prompt == (
        f"<video>\n{phrase} {{0.101,0.505}}, who does the adult in [0.051, 0.202, 0.202, 0.606] watch? "
        "And [0.758, 0.505, 1.0, 1.0]?Please give the spatial bounding box corresponding to each timestamp in "
        "the time period."
    )
    assert (req.media.kind, req.media.split, req.media.num_frames) == ("video", (0, 198), 100)
    assert req.media.path == "/data/st-align/sources/clips/a.mp4"
    zreq = bench.request(samples[1], "canonical", random.Random(3), "/d", 100)
    assert "{<error>}, where is the dog?" in zreq.prompt
    # the coordinate protocol of the processor reads these prompts
    _, values = to_placeholders(req.prompt, "INPUT")
    assert values.temporal_input_locations == [0.101, 0.505]
    assert values.spatial_width_input_locations == [0.051, 0.202, 0.758, 1.0]
    assert values.spatial_height_input_locations == [0.202, 0.606, 0.505, 1.0]
    assert len(to_placeholders(zreq.prompt, "INPUT")[1]) == 0


def test_elc_answer_format_checked(tmp_path, files):
    bad = files.st_item(gpt="It ends at <e>: a dog runs. Object bounding box: <bboxes>")
    path = write(tmp_path, files, "elc", [bad])
    assert read_st_align(path)  # the format reader does not look at the gpt text
    with pytest.raises(AnnotationError, match="conversations\\[1\\].value"):
        STAlign("elc", bins=RELEASE_BINS).load(path)
    assert json.loads(path.read_text())  # untouched


def test_canonical_other_frame_count_maps_keys_through_sampled_frames(tmp_path, files):
    # T = 50 over [0, 198]: sampled frame i is round(i / 49 * 198); key 5 -> index round(5 / 99 * 49) = 2
    # -> frame round(2 / 49 * 198) = 8. The truth on frame 10 is no longer on a sampled frame.
    item = files.st_item(track={"8": [10, 10, 20, 20], "10": [0, 0, 5, 5]})
    bench = STAlign("svg", bins=RELEASE_BINS)
    samples = bench.load(write(tmp_path, files, "svg", [item]))
    rec = bench.score_sample(samples[0], "<TEMP-005>:[<WIDTH-005><HEIGHT-010><WIDTH-015><HEIGHT-030>]", "canonical", 50)
    assert rec["parsed"]["boxes"] == {"8": pytest.approx([10.0, 10.0, 30.0, 30.0])}  # keyed by frame number
    assert rec["scores"]["siou"] == pytest.approx(1.0) and rec["scores"]["viou"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="100 frames"):
        score(bench, samples, {0: "x"}, "published", num_frames=50)


def test_short_split_counts_each_real_frame_once(tmp_path, files):
    """A 10-frame split sampled at 100 frames repeats every frame: a perfect track scores 1 in both modes."""
    track = {str(f): [0, 0, 10 + f, 10] for f in range(20, 30)}
    item = files.st_item(split=(20, 29), s=20, e=29, track=track)
    bench = STAlign("stvg", bins=RELEASE_BINS)
    (sample,) = bench.load(write(tmp_path, files, "stvg", [item]))
    pairs = []
    for k in range(100):  # every time key names a sampled frame; frame = 20 + round(k / 99 * 9)
        f = 20 + round(k / 99 * 9)
        pairs.append(f"<TEMP-{k:03d}>:[<WIDTH-000><HEIGHT-000><WIDTH-{round((10 + f) / 198 * 99):03d}><HEIGHT-{round(10 / 99 * 99):03d}>]")
    answer = "{<TEMP-000><TEMP-099>} " + ", ".join(pairs)
    for mode in ("published", "canonical"):
        got = bench.score_sample(sample, answer, mode, 100)
        assert got["scores"]["viou"] == pytest.approx(got["scores"]["siou"], abs=1e-9), mode
        assert got["scores"]["viou"] > 0.9, mode


def _iou(a, b) -> float:
    """Box IoU of two xyxy boxes, written out (no +1, 0 for an empty union)."""
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def test_short_split_boxes_of_one_frame_under_different_keys_are_averaged(tmp_path, files):
    """T = 100 over a 40-frame split: each frame is sampled 2 or 3 times, and an answer with one box per
    sampled time gives it 2 or 3 slightly different boxes under different keys. Canonical mode scores the
    frame once with the mean of its boxes (it used to call the whole track unreadable: sIoU 0), close to
    what the release gives (it keeps the last key's box)."""
    # 198 x 99 frame: width bin b is 2b pixels, height bin b is b pixels. Truth on frame f: xyxy [2f+20, 10, 2f+80, 50]
    track = {str(f): [2 * f + 20, 10, 60, 40] for f in range(40)}
    item = files.st_item(split=(0, 39), s=0, e=39, track=track)
    bench = STAlign("stvg", bins=RELEASE_BINS)
    (sample,) = bench.load(write(tmp_path, files, "stvg", [item]))
    pairs, given = [], {}
    for k in range(100):
        f = round(k / 99 * 39)  # the frame sampled at time k (100 sampled times, 100 time bins)
        j = k % 2  # neighbouring times on one frame differ by a bin
        x1, y1, x2, y2 = f + 10 + j, 10 + j, f + 40 + j, 50 - j
        pairs.append(f"<TEMP-{k:03d}>:" + files.box_tokens(x1, y1, x2, y2))
        given.setdefault(f, []).append([2 * x1, y1, 2 * x2, y2])
    assert sorted(given) == list(range(40)) and all(len(b) in (2, 3) for b in given.values())
    answer = "During the span of {<TEMP-000><TEMP-099>}. Object bounding box: " + ", ".join(pairs)

    def truth(f):
        return [2 * f + 20, 10, 2 * f + 80, 50]

    mean_box = {f: [sum(b[i] for b in boxes) / len(boxes) for i in range(4)] for f, boxes in given.items()}
    expect_canonical = sum(_iou(mean_box[f], truth(f)) for f in range(40)) / 40
    expect_published = sum(_iou(given[f][-1], truth(f)) for f in range(40)) / 40
    can = bench.score_sample(sample, answer, "canonical", 100)
    pub = bench.score_sample(sample, answer, "published", 100)
    assert can["readable"] and "problems" not in can
    assert can["scores"]["siou"] == pytest.approx(expect_canonical, rel=1e-9)
    assert can["scores"]["viou"] == pytest.approx(expect_canonical, rel=1e-9)  # every frame is in both tracks
    assert pub["scores"]["siou"] == pytest.approx(expect_published, rel=1e-12)
    assert abs(can["scores"]["siou"] - pub["scores"]["siou"]) < 0.02 and can["scores"]["siou"] > 0.9
    assert can["parsed"]["boxes"]["7"] == pytest.approx(mean_box[7])
    assert len(can["parsed"]["averaged_frames"]) == 40 and sum(can["parsed"]["averaged_frames"].values()) == 100

    # one KEY written twice with different boxes is another matter: which box it means cannot be known, so
    # the canonical parser refuses the track (a documented decision), while the release keeps the later box
    twice = answer + ", <TEMP-000>:" + files.box_tokens(12, 12, 42, 48)
    can2 = bench.score_sample(sample, twice, "canonical", 100)
    assert can2["scores"]["siou"] == 0.0 and can2["scores"]["viou"] == 0.0 and not can2["readable"]
    assert any("given twice" in p for p in can2["problems"])
    pub2 = bench.score_sample(sample, twice, "published", 100)
    assert pub2["readable"] and pub2["scores"]["siou"] > 0.9
