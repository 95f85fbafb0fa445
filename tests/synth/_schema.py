"""Schema checks of the ST-Synth files, written from SPEC §4 and EVAL-PROTOCOL alone.

These stand in for the training and evaluation readers of the other issues
until those exist; each function raises AssertionError naming the file and
the record, and returns the parsed records for further checks. The checks
use no code of ``llava_st.synth``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

VARIABLE_KEYS = (
    "temporal_input_locations",
    "temporal_output_locations",
    "spatial_height_input_locations",
    "spatial_height_output_locations",
    "spatial_width_input_locations",
    "spatial_width_output_locations",
)
PLACEHOLDER_OF = {
    "temporal_input_locations": "<TEMP-INPUT>",
    "temporal_output_locations": "<TEMP-OUTPUT>",
    "spatial_height_input_locations": "<HEIGHT-INPUT>",
    "spatial_height_output_locations": "<HEIGHT-OUTPUT>",
    "spatial_width_input_locations": "<WIDTH-INPUT>",
    "spatial_width_output_locations": "<WIDTH-OUTPUT>",
}
# anything that still looks like a coordinate after conversion is an error
LEFTOVER = re.compile(r"\{\s*\d|\[\s*\d|<[twh][\d.]|<(TEMP|HEIGHT|WIDTH)-(INPUT|OUTPUT)[^>]")
STRATEGY = re.compile(r"^(all|(first|end|random):\d+%?)$")


def _where(path: Path, i: int) -> str:
    return f"{path.name}[{i}]"


def load_json(path: Path):
    text = path.read_text(encoding="utf-8")
    return json.loads(text)


def check_training_file(path: Path, root: Path) -> list[dict]:
    """SPEC §4 training samples: id, video|image, conversations, variables (six lists), meta.split for videos."""
    records = load_json(path)
    assert isinstance(records, list), f"{path.name}: a training file is a JSON list"
    ids = set()
    for i, r in enumerate(records):
        w = _where(path, i)
        assert isinstance(r.get("id"), str) and r["id"], f"{w}: id"
        assert r["id"] not in ids, f"{w}: duplicate id {r['id']}"
        ids.add(r["id"])
        media = [k for k in ("video", "image") if k in r]
        assert len(media) == 1, f"{w}: exactly one of video/image, got {media}"
        rel = r[media[0]]
        assert isinstance(rel, str) and not rel.startswith("/"), f"{w}: media path must be relative"
        assert (root / rel).is_file(), f"{w}: media file {rel} is missing"
        conv = r["conversations"]
        assert isinstance(conv, list) and len(conv) >= 2, f"{w}: conversations"
        for t, turn in enumerate(conv):
            assert set(turn) == {"from", "value"}, f"{w}: turn {t} keys {sorted(turn)}"
            assert turn["from"] == ("human" if t % 2 == 0 else "gpt"), f"{w}: turn {t} role"
            assert isinstance(turn["value"], str) and turn["value"].strip(), f"{w}: turn {t} text"
            assert not LEFTOVER.search(turn["value"]), f"{w}: unconverted coordinate in {turn['value']!r}"
        tag = "<video>" if media[0] == "video" else "<image>"
        assert conv[0]["value"].startswith(tag + "\n"), f"{w}: human turn must start with {tag}"
        assert sum(t["value"].count(tag) for t in conv) == 1, f"{w}: one {tag} tag"
        variables = r["variables"]
        assert set(variables) == set(VARIABLE_KEYS), f"{w}: variables keys {sorted(variables)}"
        for key in VARIABLE_KEYS:
            values = variables[key]
            assert isinstance(values, list), f"{w}: {key} is a list"
            assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in values), f"{w}: {key} values in [0, 1]"
            io_turns = [t for t in conv if (t["from"] == "gpt") == key.endswith("output_locations")]
            placeholders = sum(t["value"].count(PLACEHOLDER_OF[key]) for t in io_turns)
            total = sum(t["value"].count(PLACEHOLDER_OF[key]) for t in conv)
            assert placeholders == total, f"{w}: {PLACEHOLDER_OF[key]} in the wrong role's turn"
            assert placeholders == len(values), f"{w}: {placeholders} {PLACEHOLDER_OF[key]} but {len(values)} values"
        meta = r["meta"]
        assert isinstance(meta, dict) and isinstance(meta.get("task"), str), f"{w}: meta.task"
        if media[0] == "video":
            a, b = meta["split"]
            assert isinstance(a, int) and isinstance(b, int), f"{w}: meta.split holds frame numbers"
            assert 0 <= a < b < meta["num_frames"], f"{w}: meta.split {meta['split']} outside 0..{meta['num_frames'] - 1}"
    return records


def check_refcoco(path: Path, root: Path) -> list[tuple[dict, dict]]:
    """RefCOCO style: images and annotations paired by position with equal ids; bbox [x, y, w, h] pixels."""
    data = load_json(path)
    assert set(data) >= {"images", "annotations"}, f"{path.name}: images and annotations"
    images, anns = data["images"], data["annotations"]
    assert len(images) == len(anns), f"{path.name}: {len(images)} images but {len(anns)} annotations"
    for i, (im, an) in enumerate(zip(images, anns)):
        w = _where(path, i)
        assert im["id"] == an["id"], f"{w}: ids differ"
        assert (root / im["file_name"]).is_file(), f"{w}: {im['file_name']} missing"
        assert isinstance(im["caption"], str) and im["caption"], f"{w}: caption"
        assert "<image>" not in im["caption"], f"{w}: caption holds the image tag"
        W, H = im["width"], im["height"]
        x, y, bw, bh = an["bbox"]
        assert bw > 0 and bh > 0 and x >= 0 and y >= 0 and x + bw <= W and y + bh <= H, f"{w}: bbox {an['bbox']} in {W}x{H}"
    return list(zip(images, anns))


def check_charades(path: Path, videos_dir: Path) -> list[dict]:
    """Charades-STA style: image_id (video file under the data folder), caption, timestamp normalised to [0, 1]."""
    records = load_json(path)
    assert isinstance(records, list), f"{path.name}: a list"
    for i, r in enumerate(records):
        w = _where(path, i)
        assert set(r) == {"image_id", "caption", "timestamp"}, f"{w}: keys {sorted(r)}"
        assert (videos_dir / r["image_id"]).is_file(), f"{w}: {r['image_id']} missing under {videos_dir}"
        assert not r["image_id"].startswith("v_"), f"{w}: the release strips a leading v_"
        s, e = r["timestamp"]
        assert 0.0 <= s < e <= 1.0, f"{w}: timestamp {r['timestamp']} must be a normalised span"
        assert r["caption"].strip(". ").strip(), f"{w}: caption"
    return records


def check_st_align(path: Path, root: Path, task: str) -> list[dict]:
    """ST-Align STVG/SVG/ELC style (EVAL-PROTOCOL §3): absolute frames, [x, y, w, h] pixels, keys in the text."""
    records = load_json(path)
    assert isinstance(records, list), f"{path.name}: a list"
    for i, r in enumerate(records):
        w = _where(path, i)
        assert set(r) == {"video_path", "meta", "conversations"}, f"{w}: keys {sorted(r)}"
        assert (root / r["video_path"]).is_file(), f"{w}: {r['video_path']} missing"
        meta = r["meta"]
        W, H = meta["width"], meta["height"]
        a, b = meta["split"]
        assert isinstance(a, int) and isinstance(b, int) and 0 <= a < b, f"{w}: split {meta['split']}"
        s, e = meta["time_token"]["<s>"], meta["time_token"]["<e>"]
        assert set(meta["time_token"]) == {"<s>", "<e>"}, f"{w}: time tokens"
        assert isinstance(s, int) and isinstance(e, int) and a <= s < e <= b, f"{w}: <s>={s}, <e>={e} not inside {a}..{b}"
        boxes = meta["spatial_token"]["<bboxes>"]
        assert isinstance(boxes, dict) and boxes, f"{w}: <bboxes> must be a non-empty frame -> box dict"
        for key, box in boxes.items():
            assert key.isdigit() and s <= int(key) <= e, f"{w}: frame key {key} outside [<s>, <e>] = [{s}, {e}]"
            assert len(box) == 4 and box[2] > 0 and box[3] > 0, f"{w}: box {box}"
            assert box[0] >= 0 and box[1] >= 0 and box[0] + box[2] <= W and box[1] + box[3] <= H, f"{w}: box {box} outside the frame"
        human, gpt = r["conversations"]
        assert human["from"] == "human" and gpt["from"] == "gpt", f"{w}: roles"
        assert human["value"].startswith("<video>\n"), f"{w}: human turn starts with <video>"
        assert human["value"].endswith(" "), f"{w}: the reader appends the task suffix without a space"
        extra = [k for k in meta["spatial_token"] if k != "<bboxes>"]
        for k in extra:
            assert k in human["value"], f"{w}: spatial key {k} not used in the prompt"
            assert len(meta["spatial_token"][k]) == 4, f"{w}: {k} is one [x, y, w, h] box"
        if task == "stvg":
            assert "<s>" not in human["value"] and "<e>" not in human["value"], f"{w}: STVG must not give the span"
            assert gpt["value"] == "From <s> to <e>. Object bounding box: <bboxes>", f"{w}: gpt {gpt['value']!r}"
        elif task == "svg":
            assert "From <s> to <e>" in human["value"], f"{w}: SVG gives the span as 'From <s> to <e>'"
            assert gpt["value"] == "Object bounding box: <bboxes>", f"{w}: gpt {gpt['value']!r}"
        elif task == "elc":
            assert "Starts in <s>" in human["value"] and "<e>" not in human["value"], f"{w}: ELC gives the start only"
            assert extra, f"{w}: ELC gives the object's box"
            g = gpt["value"]
            assert g.startswith("Ends in <e>, ") and g.endswith(" Object bounding box: <bboxes>"), f"{w}: gpt {g!r}"
            caption = g.replace("Ends in <e>, ", "").replace(" Object bounding box: <bboxes>", "")
            assert caption.endswith(".") and len(caption) > 3, f"{w}: caption {caption!r}"
        else:
            raise ValueError(task)
    return records


def check_mix(path: Path) -> list[dict]:
    """A SPEC §4 training mix; paths relative to the YAML's folder must exist."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert set(data) == {"datasets"}, f"{path.name}: only 'datasets'"
    for i, d in enumerate(data["datasets"]):
        w = _where(path, i)
        assert set(d) == {"json_path", "data_folder", "source", "sampling_strategy"}, f"{w}: keys {sorted(d)}"
        assert (path.parent / d["json_path"]).is_file(), f"{w}: {d['json_path']} missing"
        assert (path.parent / d["data_folder"]).is_dir(), f"{w}: {d['data_folder']} missing"
        assert STRATEGY.match(d["sampling_strategy"]), f"{w}: strategy {d['sampling_strategy']!r}"
    return data["datasets"]
