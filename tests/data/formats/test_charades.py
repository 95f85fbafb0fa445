"""Charades-STA format: reader, its errors, and write-then-read round trips."""

from __future__ import annotations

import json

import pytest

from llava_st.data.formats import AnnotationError, TVGSample, read_charades, write_charades

ITEMS = [
    {"image_id": "v_AB12C.mp4", "caption": "Person opens the door.", "timestamp": [0.25, 0.75]},
    {"image_id": "XY34Z.mp4", "caption": "a person sits", "timestamp": [0, 1], "duration": 31.2},
]


def test_reader(tmp_path, build):
    samples = read_charades(build.write_json(tmp_path / "test.json", ITEMS))
    assert samples[0] == TVGSample("v_AB12C.mp4", "Person opens the door.", (0.25, 0.75))
    assert samples[1].span == (0, 1) and samples[1].extra == {"duration": 31.2} and samples[1].index == 1


def test_round_trip(tmp_path, build):
    path = build.write_json(tmp_path / "test.json", ITEMS)
    samples = read_charades(path)
    out = write_charades(tmp_path / "out.json", samples)
    assert read_charades(out) == samples
    assert json.loads(out.read_text()) == ITEMS
    made = [TVGSample("a.mp4", "x", (0.1, 0.2)), TVGSample("b.mp4", "y", (0.0, 0.0), {"source": "s"})]
    assert read_charades(write_charades(tmp_path / "made.json", made)) == made


@pytest.mark.parametrize(
    "item,field,problem",
    [
        ({"image_id": "a.mp4", "caption": "x", "timestamp": [3.2, 8.1]}, "timestamp", "not normalised"),
        ({"image_id": "a.mp4", "caption": "x", "timestamp": [0.5, 0.2]}, "timestamp", "ends before it starts"),
        ({"image_id": "a.mp4", "caption": "x", "timestamp": [0.5]}, "timestamp", "[start, end]"),
        ({"image_id": "a.mp4", "caption": "x", "timestamp": [0.1, None]}, "timestamp", "finite number"),
        ({"image_id": "a.mp4", "timestamp": [0.1, 0.2]}, "caption", "missing"),
        ({"image_id": 5, "caption": "x", "timestamp": [0.1, 0.2]}, "image_id", "must be text"),
        ("a.mp4", "<item>", "must be an object"),
    ],
)
def test_reader_errors(tmp_path, build, item, field, problem):
    path = build.write_json(tmp_path / "t.json", [ITEMS[0], item])
    with pytest.raises(AnnotationError) as err:
        read_charades(path)
    msg = str(err.value)
    assert str(path) in msg and "sample 1" in msg and repr(field) in msg and problem in msg
    assert (err.value.index, err.value.field) == (1, field)


def test_not_a_list(tmp_path, build):
    path = build.write_json(tmp_path / "t.json", {"image_id": "a.mp4"})
    with pytest.raises(AnnotationError, match="JSON list"):
        read_charades(path)
