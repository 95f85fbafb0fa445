"""The shared reading helpers and writers of the formats."""

from __future__ import annotations

import json
import pickle

import pytest

from llava_st.data.formats import AnnotationError, load_records, write_json_list, write_jsonl
from llava_st.data.formats._io import as_frame, as_number, is_jsonl
from llava_st.errors import DataError


def test_writers_put_one_record_per_line_and_read_back(tmp_path):
    records = [{"a": 1, "t": "é"}, {"b": [0.5, 2]}]
    listed = write_json_list(tmp_path / "deep" / "x.json", records)
    assert listed.read_text(encoding="utf-8").splitlines() == ["[", '{"a": 1, "t": "é"},', '{"b": [0.5, 2]}', "]"]
    lines = write_jsonl(tmp_path / "x.jsonl", records)
    assert load_records(listed) == load_records(lines) == records
    assert write_json_list(tmp_path / "e.json", []).read_text() == "[]\n" and load_records(tmp_path / "e.json") == []
    with pytest.raises(ValueError):
        write_jsonl(tmp_path / "nan.jsonl", [{"v": float("nan")}])


def test_jsonl_detection(tmp_path):
    (tmp_path / "a.json").write_text('  \n{"x": 1}\n{"x": 2}\n')
    (tmp_path / "b.jsonl").write_text('[1]\n')
    (tmp_path / "c.json").write_text('\n [{"x": 1}]')
    assert is_jsonl(tmp_path / "a.json") and is_jsonl(tmp_path / "b.jsonl") and not is_jsonl(tmp_path / "c.json")
    assert load_records(tmp_path / "a.json") == [{"x": 1}, {"x": 2}]


def test_number_checks_keep_whole_numbers():
    assert as_number(3, "f", 0, "x") == 3 and isinstance(as_number(3, "f", 0, "x"), int)
    assert as_frame(12.0, "f", 0, "x") == 12 and isinstance(as_frame(12.0, "f", 0, "x"), int)
    for bad in (True, "1", float("inf"), None):
        with pytest.raises(AnnotationError, match="finite number"):
            as_number(bad, "f", 0, "x")


def test_error_is_a_data_error_and_pickles():
    err = AnnotationError("a/b.json", 3, "meta.split", "missing")
    assert isinstance(err, DataError) and str(err) == "a/b.json: sample 3, field 'meta.split': missing"
    back = pickle.loads(pickle.dumps(err))
    assert (back.path, back.index, back.field, str(back)) == ("a/b.json", 3, "meta.split", str(err))


def test_file_level_errors(tmp_path):
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe[")
    with pytest.raises(AnnotationError, match="UTF-8") as err:
        load_records(tmp_path / "bin.json")
    assert err.value.index == 0 and "after line 0" in str(err.value)
    (tmp_path / "bin2.json").write_bytes(b"[\xff]")
    with pytest.raises(AnnotationError, match="UTF-8") as err:
        load_records(tmp_path / "bin2.json")
    assert err.value.index is None
    with pytest.raises(AnnotationError, match="no such file"):
        load_records(tmp_path / "none.jsonl")
    (tmp_path / "obj.json").write_text(json.dumps({"a": 1}, indent=1))
    with pytest.raises(AnnotationError, match="line 1 is not valid JSON"):
        load_records(tmp_path / "obj.json")  # an indented object reads as (broken) JSONL


def test_the_formats_stand_alone():
    """Reading training data or annotation files needs neither the evaluation nor the generator nor the model."""
    import subprocess
    import sys

    code = (
        "import sys, llava_st.data.formats\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('llava_st.eval', 'llava_st.synth', 'llava_st.model')))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
