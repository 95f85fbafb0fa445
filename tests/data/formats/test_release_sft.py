"""The release training format: typed reading, coordinate checks, writing, round trips and errors."""

from __future__ import annotations

import copy
import json

import pytest

from llava_st.data.formats import (
    AnnotationError,
    SFTSample,
    Turn,
    iter_release_sft,
    parse_sft_sample,
    read_release_sft,
    write_release_sft,
)
from llava_st.protocol.coords import Variables


def test_reader_types_every_field(tmp_path, build):
    path = build.write_json(tmp_path / "stvg.json", [build.sft_video(), build.sft_image()])
    video, image = read_release_sft(path)
    assert (video.id, video.media_kind, video.media, video.split, video.index) == ("src/stvg/v1/0", "video", "videos/000001.mp4", (0, 23), 0)
    assert video.conversations[0] == Turn("human", build.sft_video()["conversations"][0]["value"])
    assert video.variables.temporal_output_locations == [0.25, 0.5, 0.3]
    assert video.meta == {"split": [0, 23], "task": "stvg"} and video.extra == {}
    assert (image.id, image.media_kind, image.split, image.index) == (7, "image", None, 1)
    assert image.variables == Variables(spatial_height_output_locations=[0.25, 0.75], spatial_width_output_locations=[0.125, 0.5])


@pytest.mark.parametrize("name", ["train.json", "train.jsonl"])
def test_round_trip(tmp_path, build, name):
    text_only = {"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello."}]}
    records = [build.sft_video(), build.sft_image(source="x"), text_only]
    samples = read_release_sft(build.write_json(tmp_path / "in.json", records))
    out = write_release_sft(tmp_path / name, samples)
    assert out.read_text().startswith("[") == (name == "train.json")
    again = read_release_sft(out)
    assert again == samples and [s.index for s in again] == [0, 1, 2]
    assert again[1].extra == {"source": "x"} and again[2].media_kind is None and again[2].id is None
    back = [json.loads(line.rstrip(",")) for line in out.read_text().splitlines() if line.startswith("{")]
    assert back[0] == records[0]  # a file in the bare-placeholder form is written back as it was


def test_jsonl_is_recognised_without_its_suffix(tmp_path, build):
    path = build.write_jsonl(tmp_path / "train.data", [build.sft_image(), build.sft_video()])
    assert [s.media_kind for s in iter_release_sft(path)] == ["image", "video"]


def test_markup_in_the_text_is_converted_as_the_release_does(tmp_path, build):
    rec = {
        "video": "a.mp4",
        "conversations": [
            {"from": "human", "value": "<video>\nWhat happens during {0.2, 0.6}?"},
            {"from": "gpt", "value": "A dog runs at [0.1, 0.2, 0.5, 0.7]. Ends in <t0.9>."},
        ],
    }
    (s,) = read_release_sft(build.write_json(tmp_path / "m.json", [rec]))
    assert s.conversations[0].text == "<video>\nWhat happens during  {<TEMP-INPUT><TEMP-INPUT>} ?"
    assert s.conversations[1].text == "A dog runs at  [<WIDTH-OUTPUT><HEIGHT-OUTPUT><WIDTH-OUTPUT><HEIGHT-OUTPUT>]. Ends in <TEMP-OUTPUT>."
    assert s.variables == Variables(
        temporal_input_locations=[0.2, 0.6],
        temporal_output_locations=[0.9],
        spatial_height_output_locations=[0.2, 0.7],
        spatial_width_output_locations=[0.1, 0.5],
    )
    assert read_release_sft(write_release_sft(tmp_path / "w.json", [s])) == [s]


def test_writer_checks_dicts_before_writing(tmp_path, build):
    bad = build.sft_video()
    bad["variables"]["temporal_input_locations"] = [0.2]
    out = tmp_path / "o.jsonl"
    with pytest.raises(AnnotationError) as err:
        write_release_sft(out, [build.sft_image(), bad])
    assert (err.value.path, err.value.index, err.value.field) == (str(out), 1, "variables.temporal_input_locations")
    assert not out.exists()
    built = SFTSample((Turn("human", "Hi"), Turn("gpt", "Hello")))
    assert read_release_sft(write_release_sft(tmp_path / "b.json", [built])) == [built]


def _turn(i, role=None, value=None):
    def mutate(d):
        if role is not None:
            d["conversations"][i]["from"] = role
        if value is not None:
            d["conversations"][i]["value"] = value

    return mutate


def _vars(key, values):
    return lambda d: d["variables"].__setitem__(key, values)


MALFORMED = [
    (lambda d: d.pop("conversations"), "conversations", "missing"),
    (lambda d: d.update(conversations=d["conversations"][:1]), "conversations", "at least two turns"),
    (lambda d: d["conversations"].append({"from": "human", "value": "More?"}), "conversations", "end with a gpt turn"),
    (_turn(1, role="assistant"), "conversations[1].from", "must be one of"),
    (_turn(0, role="gpt"), "conversations[0].from", "where 'human' was expected"),
    (_turn(1, value=" "), "conversations[1].value", "empty"),
    (lambda d: d["conversations"][1].pop("value"), "conversations[1].value", "missing"),
    (lambda d: d.update(image="x.png"), "video/image", "not both"),
    (lambda d: d.update(video=""), "video", "empty"),
    (_turn(0, value="<image>\nWhere is the dog during  {<TEMP-INPUT><TEMP-INPUT>} ?"), "conversations[0].value", "<image>"),
    (_turn(0, value="Where is the dog during  {<TEMP-INPUT><TEMP-INPUT>} ?"), "conversations", "exactly one <video>, found 0"),
    (_turn(0, value="<video><video>\nWhere during  {<TEMP-INPUT><TEMP-INPUT>} ?"), "conversations", "found 2"),
    (lambda d: d["conversations"][1].update(value="<video> " + d["conversations"][1]["value"])
        or d["conversations"][0].update(value=d["conversations"][0]["value"].replace("<video>", "")),
        "conversations[1].value", "human turn"),
    (lambda d: d["variables"].update(box=[0.1]), "variables", "unknown keys"),
    (lambda d: d.update(variables=[0.1]), "variables", "must be an object"),
    (_vars("spatial_width_output_locations", [0.1, 1.5]), "variables.spatial_width_output_locations", "[0, 1]"),
    (_vars("spatial_width_output_locations", [0.1, "0.5"]), "variables.spatial_width_output_locations", "[0, 1]"),
    (_vars("spatial_width_output_locations", [0.1, True]), "variables.spatial_width_output_locations", "[0, 1]"),
    (_vars("spatial_width_output_locations", 0.1), "variables.spatial_width_output_locations", "list of numbers"),
    (_vars("spatial_width_output_locations", [0.1]), "variables.spatial_width_output_locations", "1 value(s)"),
    (_vars("temporal_output_locations", [0.25, 0.5, 0.3, 0.4]), "variables.temporal_output_locations", "4 value(s)"),
    (_turn(0, value="<video>\nWhere is it at [0.1, 0.2, 1.5, 0.7] during  {<TEMP-INPUT><TEMP-INPUT>} ?"),
        "conversations[0].value", "outside [0, 1]"),
    (_turn(0, value="<video>\nWhere is it during {0.6, 0.2}, after  {<TEMP-INPUT><TEMP-INPUT>} ?"),
        "conversations[0].value", "does not start before it ends"),
    (_turn(0, value="<video>\nWhere during  {<TEMP-INPUT><TEMP-INPUT>} ? <TEMP-INPT0.2>"), "conversations[0].value", "malformed"),
    (_turn(0, value="<video>\nWhere during {0.1, 0.3}?"), "variables.temporal_input_locations", "given in variables"),
    (lambda d: d["variables"].update(temporal_input_locations=[], temporal_output_locations=[0.2, 0.6, 0.25, 0.5, 0.3])
        or d["conversations"][0].update(value=d["conversations"][0]["value"].replace("INPUT", "OUTPUT")),
        "conversations[0].value", "OUTPUT placeholders"),
    (lambda d: d["meta"].update(split=[9, 3]), "meta.split", "ends before it starts"),
    (lambda d: d["meta"].update(split=[0, 2.5]), "meta.split", "whole frame"),
    (lambda d: d.update(meta="stvg"), "meta", "must be an object"),
    (lambda d: d.update(id=True), "id", "text or a whole number"),
]


@pytest.mark.parametrize("mutate,field,problem", MALFORMED)
@pytest.mark.parametrize("name", ["train.json", "train.jsonl"])
def test_reader_errors_name_file_sample_field(tmp_path, build, mutate, field, problem, name):
    bad = copy.deepcopy(build.sft_video())
    mutate(bad)
    records = [build.sft_video(), build.sft_image(), bad]
    path = (build.write_jsonl if name.endswith("l") else build.write_json)(tmp_path / name, records)
    with pytest.raises(AnnotationError) as err:
        read_release_sft(path)
    msg = str(err.value)
    assert str(path) in msg and "sample 2" in msg and repr(field) in msg and problem in msg, msg
    assert (err.value.index, err.value.field) == (2, field)


def test_bad_jsonl_line_names_sample_and_line(tmp_path, build):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(build.sft_image()) + "\n\n" + '{"id": 1, "conversations": [\n')
    with pytest.raises(AnnotationError, match="line 3 is not valid JSON") as err:
        read_release_sft(path)
    assert err.value.index == 1 and str(path) in str(err.value)


def test_parse_one_record_in_memory(build):
    s = parse_sft_sample(build.sft_image(), "mix.yaml:rec", 41)
    assert s.index == 41 and s.media_kind == "image"
    with pytest.raises(AnnotationError, match="mix.yaml:rec: sample 41, field '<item>'"):
        parse_sft_sample(["not", "a", "sample"], "mix.yaml:rec", 41)
