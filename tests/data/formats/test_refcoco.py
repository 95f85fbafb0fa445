"""RefCOCO-family format: reader, its errors, and write-then-read round trips."""

from __future__ import annotations

import json

import pytest

from llava_st.data.formats import AnnotationError, RefSample, read_refcoco, write_refcoco
from llava_st.errors import DataError


def test_reader_pairs_by_position_and_keeps_other_keys(tmp_path, build):
    path = build.write_json(tmp_path / "refcoco_val.json", build.refcoco_data(3))
    samples = read_refcoco(path)
    assert [s.index for s in samples] == [0, 1, 2]
    s = samples[2]
    assert (s.id, s.file_name, s.width, s.height, s.caption, s.bbox) == (102, "COCO_2.jpg", 102, 80, "the dog number 2", (1, 2, 30.5, 40))
    assert s.annotation_extra == {"image_id": 7, "area": 1220.0} and s.image_extra == {}
    assert isinstance(s.width, int)  # whole numbers stay whole, so the file is written back the same


def test_round_trip(tmp_path, build):
    path = build.write_json(tmp_path / "in.json", build.refcoco_data(4))
    samples = read_refcoco(path)
    out = write_refcoco(tmp_path / "sub" / "out.json", samples)
    again = read_refcoco(out)
    assert again == samples
    assert [s.index for s in again] == [0, 1, 2, 3]
    assert json.loads(out.read_text()) == json.loads(path.read_text())  # nothing lost or changed


def test_round_trip_of_built_records(tmp_path):
    made = [
        RefSample("a", "x.jpg", 640, 480, "the cat", (0.5, 1.0, 20.0, 30.0)),
        RefSample(3, "y.jpg", 10, 10, "<image>\nWhere is it?", (0, 0, 10, 10), {"coco_url": "u"}, {"iscrowd": 0}),
    ]
    assert read_refcoco(write_refcoco(tmp_path / "r.json", made)) == made


def test_empty_file_round_trips(tmp_path):
    assert read_refcoco(write_refcoco(tmp_path / "r.json", [])) == []


@pytest.mark.parametrize(
    "mutate,field,problem",
    [
        (lambda d: d["annotations"].pop(), "images/annotations", "pair by position"),
        (lambda d: d["annotations"][1].update(id=999), "annotations[i].id", "differs"),
        (lambda d: d["annotations"][1].update(bbox=[1, 2, 3]), "annotations[i].bbox", "[x, y, w, h]"),
        (lambda d: d["annotations"][1].update(bbox=[1, 2, -3, 4]), "annotations[i].bbox", "negative size"),
        (lambda d: d["annotations"][1].pop("bbox"), "annotations[i].bbox", "missing"),
        (lambda d: d["images"][1].pop("caption"), "images[i].caption", "missing"),
        (lambda d: d["images"][1].update(caption="  "), "images[i].caption", "empty"),
        (lambda d: d["images"][1].update(width=0), "images[i].width", "positive"),
        (lambda d: d["images"][1].update(height="80"), "images[i].height", "finite number"),
        (lambda d: d["images"].__setitem__(1, "COCO_1.jpg"), "images[i]", "must be an object"),
    ],
)
def test_reader_errors_name_file_sample_field(tmp_path, build, mutate, field, problem):
    data = build.refcoco_data(3)
    mutate(data)
    path = build.write_json(tmp_path / "refcoco_val.json", data)
    with pytest.raises(AnnotationError) as err:
        read_refcoco(path)
    msg = str(err.value)
    assert str(path) in msg and repr(field) in msg and problem in msg
    assert err.value.field == field and err.value.path == str(path)
    if field != "images/annotations":
        assert err.value.index == 1 and "sample 1" in msg
    assert isinstance(err.value, DataError) and isinstance(err.value, ValueError)


@pytest.mark.parametrize("text,problem", [("[]", "'images' and 'annotations'"), ("{", "not valid JSON"), ('{"images": []}', "missing")])
def test_whole_file_errors(tmp_path, text, problem):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(AnnotationError, match=problem) as err:
        read_refcoco(path)
    assert err.value.index is None and str(path) in str(err.value)
    with pytest.raises(AnnotationError, match="no such file"):
        read_refcoco(tmp_path / "missing.json")
