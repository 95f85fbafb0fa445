"""Every annotation file passes its schema, and every coordinate in it is the ground truth seen
through the model's sampler (recomputed here from SPEC §2.1, independently of the generator)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

VIDEO_TASKS = ("tvg", "tr", "dvc", "stvg", "svg", "elc", "video_caption")
IMAGE_TASKS = ("rec", "reg", "dgc", "image_caption")
PLACEHOLDER = re.compile(r"<(TEMP|HEIGHT|WIDTH)-(INPUT|OUTPUT)>")
KEY_OF = {
    ("TEMP", "INPUT"): "temporal_input_locations",
    ("TEMP", "OUTPUT"): "temporal_output_locations",
    ("HEIGHT", "INPUT"): "spatial_height_input_locations",
    ("HEIGHT", "OUTPUT"): "spatial_height_output_locations",
    ("WIDTH", "INPUT"): "spatial_width_input_locations",
    ("WIDTH", "OUTPUT"): "spatial_width_output_locations",
}
NUM = r"(\d+(?:\.\d+)?)"
SPAN = re.compile(r"\{" + NUM + "," + NUM + r"\}")
BOX = re.compile(r"\[" + NUM + "," + NUM + "," + NUM + "," + NUM + r"\]")
PAIR = re.compile(NUM + r",:\s*\[" + NUM + "," + NUM + "," + NUM + "," + NUM + r"\]")


def fill(turns: list[dict], variables: dict) -> list[str]:
    """Each placeholder becomes ``value,`` (then ``,]`` and ``,}`` close up), as the release writes answers."""
    queues = {k: list(v) for k, v in variables.items()}
    out = []
    for t in turns:
        text = PLACEHOLDER.sub(lambda m: f"{queues[KEY_OF[(m.group(1), m.group(2))]].pop(0)},", t["value"])
        out.append(text.replace(",]", "]").replace(",}", "}"))
    assert all(not q for q in queues.values())
    return out


def sampled(a: int, b: int, T: int) -> list[int]:
    return [a + round(i / (T - 1) * (b - a)) for i in range(T)]


def r3(v: float) -> float:
    return round(v, 3)


def norm(box, W, H) -> list[float]:
    return [r3(box[0] / W), r3(box[1] / H), r3(box[2] / W), r3(box[3] / H)]


def sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


class Truth:
    def __init__(self, root: Path):
        self.items = {}
        for kind in ("videos", "images"):
            for line in (root / f"ground_truth/{kind}.jsonl").read_text().splitlines():
                gt = json.loads(line)
                self.items[gt["name"]] = gt

    def __getitem__(self, name: str) -> dict:
        return self.items[name]


def expected_track(gt, obj, idx, T, i_s, i_e):
    W, H = gt["width"], gt["height"]
    out = {}
    for i in range(i_s, i_e + 1):
        box = gt["objects"][obj]["boxes_xyxy"][idx[i]]
        if box is not None:
            out[r3(i / (T - 1))] = norm(box, W, H)
    return out


def parse_track(text: str) -> dict[float, list[float]]:
    text = text.replace(" ", "")
    pairs = {}
    for m in PAIR.finditer(text):
        t = float(m.group(1))
        assert t not in pairs, f"frame key {t} repeated"
        pairs[t] = [float(g) for g in m.groups()[1:]]
    return pairs


def span_indices(idx: list[int], start: int, end: int) -> tuple[int, int]:
    inside = [i for i, f in enumerate(idx) if start <= f <= end]
    return inside[0], inside[-1]


def test_every_file_passes_its_schema(tiny_dataset, schema):
    root = tiny_dataset
    total = 0
    for subset in ("train", "test"):
        for task in VIDEO_TASKS + IMAGE_TASKS:
            records = schema.check_training_file(root / subset / f"{task}.json", root)
            assert all(r["meta"]["task"] == task and r["meta"]["subset"] == subset for r in records)
            total += len(records)
    assert total > 60
    assert schema.check_refcoco(root / "eval/refcoco_style_rec.json", root)
    assert schema.check_charades(root / "eval/charades_sta_style_tvg.json", root / "videos")
    for task in ("stvg", "svg", "elc"):
        assert schema.check_st_align(root / f"eval/st_align_{task}.json", root, task)
    for stage in ("stage1", "stage2", "stage3"):
        assert schema.check_mix(root / f"{stage}.yaml")


def test_every_file_reads_through_its_format_reader(tiny_dataset, tmp_path):
    """The project's readers take every file ST-Synth writes, and their writers give the same files back."""
    from llava_st.data.formats import (
        read_charades,
        read_refcoco,
        read_release_sft,
        read_st_align,
        write_charades,
        write_refcoco,
        write_release_sft,
        write_st_align,
    )

    root = tiny_dataset
    formats = {f"{subset}/{task}.json": (read_release_sft, write_release_sft) for subset in ("train", "test") for task in VIDEO_TASKS + IMAGE_TASKS}
    formats["eval/refcoco_style_rec.json"] = (read_refcoco, write_refcoco)
    formats["eval/charades_sta_style_tvg.json"] = (read_charades, write_charades)
    formats.update({f"eval/st_align_{t}.json": (read_st_align, write_st_align) for t in ("stvg", "svg", "elc")})
    for name, (read, write) in formats.items():
        samples = read(root / name)
        assert samples, name
        again = write(tmp_path / name, samples)
        assert again.read_bytes() == (root / name).read_bytes(), name
        if read is read_release_sft:
            media = {"video": "videos/", "image": "images/"}
            assert all(s.media.startswith(media[s.media_kind]) for s in samples), name
            assert all(s.split is not None for s in samples if s.media_kind == "video"), name


def test_the_schema_check_rejects_broken_records(tiny_dataset, schema, tmp_path):
    """The checks are not vacuous: a dropped value, a value outside [0, 1] or a frame key outside the span fail."""
    rec = json.loads((tiny_dataset / "train/stvg.json").read_text())[0]
    for breakage in ("drop", "range"):
        bad = json.loads(json.dumps(rec))
        values = bad["variables"]["spatial_width_output_locations"]
        if breakage == "drop":
            values.pop()
        else:
            values[0] = 1.5
        path = tmp_path / f"{breakage}.json"
        path.write_text(json.dumps([bad]))
        with pytest.raises(AssertionError):
            schema.check_training_file(path, tiny_dataset)
    st = json.loads((tiny_dataset / "eval/st_align_stvg.json").read_text())[0]
    st["meta"]["spatial_token"]["<bboxes>"][str(st["meta"]["time_token"]["<e>"] + 1)] = [1, 1, 2, 2]
    path = tmp_path / "st.json"
    path.write_text(json.dumps([st]))
    with pytest.raises(AssertionError, match="outside"):
        schema.check_st_align(path, tiny_dataset, "stvg")


def test_video_answers_are_built_from_the_sampled_frames(tiny_dataset):
    truth = Truth(tiny_dataset)
    checked = {t: 0 for t in VIDEO_TASKS}
    subclips = 0
    for subset in ("train", "test"):
        for task in VIDEO_TASKS:
            for r in json.loads((tiny_dataset / subset / f"{task}.json").read_text()):
                meta = r["meta"]
                gt = truth[meta["scene"]]
                assert r["video"] == gt["media"] and meta["num_frames"] == gt["num_frames"]
                T = meta["sample_frames"]
                a, b = meta["split"]
                subclips += (a, b) != (0, gt["num_frames"] - 1)
                idx = sampled(a, b, T)
                human, gpt = fill(r["conversations"], r["variables"])
                if "event" in meta:
                    ev = gt["events"][meta["event"]]
                    assert ev["object"] == meta["object"]
                    assert a <= ev["start_frame"] and ev["end_frame"] <= b, "the clip holds the event"
                    i_s, i_e = span_indices(idx, ev["start_frame"], ev["end_frame"])
                    span = [r3(i_s / (T - 1)), r3(i_e / (T - 1))]
                if task == "tvg":
                    assert [float(v) for v in SPAN.search(gpt).groups()] == span
                    assert ev["caption"] in human
                elif task == "tr":
                    assert [float(v) for v in SPAN.search(human).groups()] == span
                    assert gpt == sentence(ev["caption"])
                elif task == "dvc":
                    assert (a, b) == (0, gt["num_frames"] - 1)
                    events = sorted(gt["events"], key=lambda e: (e["start_frame"], e["end_frame"]))
                    found = re.findall(r"\{" + NUM + "," + NUM + r"\}\s*,\s*([^.]+)\.", gpt)
                    assert len(found) == len(events)
                    for (s, e, cap), ev2 in zip(found, events):
                        i_s2, i_e2 = span_indices(idx, ev2["start_frame"], ev2["end_frame"])
                        assert [float(s), float(e)] == [r3(i_s2 / (T - 1)), r3(i_e2 / (T - 1))]
                        assert cap == ev2["caption"]
                elif task == "stvg":
                    assert gpt.startswith("During the span of")
                    assert [float(v) for v in SPAN.search(gpt).groups()] == span
                    assert parse_track(gpt.split("Object bounding box:")[1]) == expected_track(gt, meta["object"], idx, T, i_s, i_e)
                    assert ev["caption"] in human and human.endswith("in the time period.")
                elif task == "svg":
                    s, e = (float(v) for v in SPAN.search(human).groups())
                    i_s, i_e = round(s * (T - 1)), round(e * (T - 1))
                    assert gpt.startswith("Object bounding box:")
                    track = parse_track(gpt)
                    assert len(track) >= 1
                    assert track == expected_track(gt, meta["object"], idx, T, i_s, i_e)
                    assert gt["objects"][meta["object"]]["phrase"] in human
                elif task == "elc":
                    start = re.search(r"Starts in\s*" + NUM, human)
                    assert float(start.group(1)) == span[0]
                    first_box = gt["objects"][meta["object"]]["boxes_xyxy"][idx[i_s]]
                    assert [float(v) for v in BOX.search(human.replace(" ", "")).groups()] == norm(first_box, gt["width"], gt["height"])
                    # the filled answer reads "Ends in 0.8,, caption." as the release's rewrite makes it
                    end = re.match(r"Ends in\s*" + NUM + r",,\s*(.+?)\. Object bounding box:(.*)$", gpt)
                    assert float(end.group(1)) == span[1]
                    assert end.group(2) == ev["caption"]
                    assert parse_track(end.group(3)) == expected_track(gt, meta["object"], idx, T, i_s, i_e)
                else:
                    assert not any(r["variables"].values())
                    assert all(e["caption"] in gpt for e in gt["events"])
                checked[task] += 1
    assert all(n > 0 for n in checked.values()), checked
    assert subclips > 0, "some samples should use a sub-range of the video as their split"


def test_image_answers_are_the_ground_truth_boxes(tiny_dataset):
    truth = Truth(tiny_dataset)
    for subset in ("train", "test"):
        for task in IMAGE_TASKS:
            for r in json.loads((tiny_dataset / subset / f"{task}.json").read_text()):
                gt = truth[r["meta"]["scene"]]
                W, H = gt["width"], gt["height"]
                human, gpt = fill(r["conversations"], r["variables"])
                if task in ("rec", "reg"):
                    obj = gt["objects"][r["meta"]["object"]]
                    box = norm(obj["boxes_xyxy"][0], W, H)
                if task == "rec":
                    assert [float(v) for v in BOX.search(gpt.replace(" ", "")).groups()] == box
                    assert obj["phrase"] in human
                elif task == "reg":
                    assert [float(v) for v in BOX.search(human.replace(" ", "")).groups()] == box
                    assert f"{obj['size']} {obj['colour']} {obj['shape']}" in gpt
                elif task == "dgc":
                    shown = [o for o in gt["objects"] if o["boxes_xyxy"][0] is not None]
                    found = re.findall(r"an? (\w+ \w+ \w+)\s*\[" + ",".join([NUM] * 4) + r"\]", gpt)
                    assert len(found) == len(shown)
                    for desc, *values in found:
                        size, colour, shape = desc.split()
                        obj = next(o for o in shown if (o["size"], o["colour"], o["shape"]) == (size, colour, shape))
                        assert [float(v) for v in values] == norm(obj["boxes_xyxy"][0], W, H)
                else:
                    assert not any(r["variables"].values())


def test_eval_files_hold_absolute_frames_and_pixel_boxes(tiny_dataset):
    """Each evaluation record pairs, in order, with its test-split training record; its numbers are the truth."""
    truth = Truth(tiny_dataset)
    root = tiny_dataset
    for task in ("stvg", "svg", "elc"):
        evals = json.loads((root / f"eval/st_align_{task}.json").read_text())
        trains = json.loads((root / f"test/{task}.json").read_text())
        assert len(evals) == len(trains) > 0
        for e, r in zip(evals, trains):
            gt = truth[r["meta"]["scene"]]
            obj = gt["objects"][r["meta"]["object"]]
            assert e["video_path"] == r["video"] and e["meta"]["split"] == r["meta"]["split"]
            s, t_e = e["meta"]["time_token"]["<s>"], e["meta"]["time_token"]["<e>"]
            if "event" in r["meta"]:
                ev = gt["events"][r["meta"]["event"]]
                assert (s, t_e) == (ev["start_frame"], ev["end_frame"])
            want = {
                str(f): [b[0], b[1], b[2] - b[0], b[3] - b[1]]
                for f in range(s, t_e + 1)
                if (b := obj["boxes_xyxy"][f]) is not None
            }
            assert e["meta"]["spatial_token"]["<bboxes>"] == want
            if task == "elc":
                b = obj["boxes_xyxy"][s]
                assert e["meta"]["spatial_token"]["<box>"] == [b[0], b[1], b[2] - b[0], b[3] - b[1]]
                assert ev["caption"] in e["conversations"][1]["value"]
            if task == "svg":
                assert obj["phrase"] in e["conversations"][0]["value"]
    charades = json.loads((root / "eval/charades_sta_style_tvg.json").read_text())
    tvg = json.loads((root / "test/tvg.json").read_text())
    assert len(charades) == len(tvg) > 0
    for c, r in zip(charades, tvg):
        gt = truth[r["meta"]["scene"]]
        ev = gt["events"][r["meta"]["event"]]
        last = gt["num_frames"] - 1
        assert c["image_id"] == Path(gt["media"]).name
        assert c["timestamp"] == [ev["start_frame"] / last, ev["end_frame"] / last]
        assert c["caption"] == sentence(ev["caption"])
    ref = json.loads((root / "eval/refcoco_style_rec.json").read_text())
    rec = json.loads((root / "test/rec.json").read_text())
    assert len(ref["images"]) == len(rec) > 0
    for im, an, r in zip(ref["images"], ref["annotations"], rec):
        gt = truth[r["meta"]["scene"]]
        obj = gt["objects"][r["meta"]["object"]]
        b = obj["boxes_xyxy"][0]
        assert im["file_name"] == r["image"] and im["caption"] == obj["phrase"]
        assert an["bbox"] == [b[0], b[1], b[2] - b[0], b[3] - b[1]]
        assert (im["width"], im["height"]) == (gt["width"], gt["height"])


def test_training_mixes_follow_the_stages(tiny_dataset, schema):
    stage = {s: {d["json_path"] for d in schema.check_mix(tiny_dataset / f"{s}.yaml")} for s in ("stage1", "stage2", "stage3")}
    assert stage["stage1"] == {"train/video_caption.json", "train/image_caption.json"}
    assert stage["stage2"] == {f"train/{t}.json" for t in ("tvg", "dvc", "tr", "rec", "dgc", "reg")}
    assert {f"train/{t}.json" for t in ("rec", "reg", "dgc", "tvg", "tr", "dvc", "stvg", "svg", "elc")} <= stage["stage3"]
    assert all(p.startswith("train/") for paths in stage.values() for p in paths), "mixes never train on the test split"


def test_manifest_counts_match_the_files(tiny_dataset):
    manifest = json.loads((tiny_dataset / "manifest.json").read_text())
    assert manifest["complete"] is True
    for name, count in manifest["records"].items():
        path = tiny_dataset / name
        if name.endswith(".jsonl"):
            n = len(path.read_text().splitlines())
        elif "refcoco" in name:
            n = len(json.loads(path.read_text())["images"])
        else:
            n = len(json.loads(path.read_text()))
        assert n == count, name
    assert manifest["subsets"]["test"] == {"videos": 2, "images": 2}
