"""ST-Align format: reader, its errors, and write-then-read round trips."""

from __future__ import annotations

import copy
import json

import pytest

from llava_st.data.formats import AnnotationError, STSample, read_st_align, write_st_align


def test_reader(tmp_path, build):
    item = build.st_item(boxes={"<obj>": [1, 2, 3, 4]})
    item["meta"]["spatial_token"]["<other>"] = {"15": [0, 0, 1, 1]}  # a second per-frame dict
    item["meta"]["time_token"]["<t1>"] = 50
    item["meta"]["fps"] = 25
    item["source"] = "vidstg"
    (s,) = read_st_align(build.write_json(tmp_path / "stvg.json", [item]))
    assert (s.video_path, s.width, s.height, s.split) == ("clips/a.mp4", 198, 99, (0, 198))
    assert s.time_tokens == {"<s>": 20, "<e>": 100, "<t1>": 50}
    assert s.track == {"10": (10, 10, 20, 20), "12": (11.5, 10, 20, 20)}
    assert s.boxes == {"<obj>": (1, 2, 3, 4)} and s.other_tracks == {"<other>": {"15": (0, 0, 1, 1)}}
    assert s.spatial_order == ("<bboxes>", "<obj>", "<other>")
    assert s.meta_extra == {"fps": 25} and s.extra == {"source": "vidstg"}
    assert s.human.startswith("<video>\n") and s.gpt.startswith("During")


def test_round_trip(tmp_path, build):
    first = build.st_item(boxes={"<obj>": [1, 2, 3, 4]})
    first["meta"]["spatial_token"] = {"<obj>": [1, 2, 3, 4], **first["meta"]["spatial_token"]}  # <bboxes> second
    second = build.st_item(split=(5, 5), s=5, e=5, track={"5": [0, 0, 1, 1]}, gpt="")
    second["meta"]["spatial_token"]["<more>"] = {"5": [1, 1, 2, 2]}
    second["id"] = 17
    path = build.write_json(tmp_path / "in.json", [first, second])
    samples = read_st_align(path)
    out = write_st_align(tmp_path / "out.json", samples)
    assert read_st_align(out) == samples
    assert json.loads(out.read_text()) == json.loads(path.read_text())  # key order of spatial_token kept too
    assert list(json.loads(out.read_text())[0]["meta"]["spatial_token"]) == ["<obj>", "<bboxes>"]


def test_round_trip_of_built_records(tmp_path):
    made = STSample(
        video_path="videos/000001.mp4",
        width=128,
        height=96,
        split=(0, 23),
        time_tokens={"<s>": 3, "<e>": 9},
        track={"3": (1, 2, 3, 4), "4": (2, 2, 3, 4)},
        boxes={"<box>": (1, 2, 3, 4)},
        human="<video>\nWatch <box>. Starts in <s>. ",
        gpt="Ends in <e>, it stops. Object bounding box: <bboxes>",
    )
    assert made.spatial_order == ("<bboxes>", "<box>")
    (back,) = read_st_align(write_st_align(tmp_path / "elc.json", [made]))
    assert back == made


def _mutations():
    return [
        (lambda d: d["meta"].pop("split"), "meta.split", "missing"),
        (lambda d: d["meta"].update(split=[50, 10]), "meta.split", "ends before it starts"),
        (lambda d: d["meta"].update(split=[0.5, 10]), "meta.split", "whole frame"),
        (lambda d: d["meta"].update(split=[0]), "meta.split", "[first, last]"),
        (lambda d: d["meta"]["time_token"].update({"<e>": 500}), "meta.time_token.<e>", "outside the split"),
        (lambda d: d["meta"]["time_token"].pop("<s>"), "meta.time_token.<s>", "missing"),
        (lambda d: d["meta"]["time_token"].update({"<s>": 90, "<e>": 80}), "meta.time_token", "before"),
        (lambda d: d["meta"]["spatial_token"]["<bboxes>"].update({"12.0": [1, 2, 3, 4]}), "<bboxes>.12.0", "whole frame"),
        (lambda d: d["meta"]["spatial_token"]["<bboxes>"].update({"12": [1, 2, -3, 4]}), "<bboxes>.12", "negative size"),
        (lambda d: d["meta"]["spatial_token"].update({"<box>": [1, 2]}), "meta.spatial_token.<box>", "[x, y, w, h]"),
        (lambda d: d["meta"]["spatial_token"].pop("<bboxes>"), "meta.spatial_token.<bboxes>", "missing"),
        (lambda d: d["meta"].update(width="640"), "meta.width", "finite number"),
        (lambda d: d["meta"].update(height=0), "meta.height", "positive"),
        (lambda d: d.update(meta=[]), "meta", "must be an object"),
        (lambda d: d.update(conversations=[]), "conversations", "[human, gpt]"),
        (lambda d: d["conversations"][0].update(value=""), "conversations[0].value", "empty"),
        (lambda d: d.pop("video_path"), "video_path", "missing"),
    ]


@pytest.mark.parametrize("mutate,field,problem", _mutations())
def test_reader_errors_name_file_sample_field(tmp_path, build, mutate, field, problem):
    good = build.st_item()
    bad = copy.deepcopy(good)
    mutate(bad)
    path = build.write_json(tmp_path / "stvg.json", [good, bad])
    with pytest.raises(AnnotationError) as err:
        read_st_align(path)
    msg = str(err.value)
    assert str(path) in msg and "sample 1" in msg and field in msg and problem in msg
    assert err.value.index == 1 and field in err.value.field


def test_the_reader_does_not_judge_the_answer_text(tmp_path, build):
    """Whether the gpt text fits a task is the benchmark's business (ELC checks it), not the format's."""
    path = build.write_json(tmp_path / "elc.json", [build.st_item(gpt="It ends at <e>: a dog runs.")])
    assert read_st_align(path)[0].gpt == "It ends at <e>: a dog runs."
