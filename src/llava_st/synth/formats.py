"""Evaluation files in the real benchmarks' formats, training-mix YAML, and the JSON writers.

Evaluation formats (EVAL-PROTOCOL.md), built for the test split:

* RefCOCO style (REC): one JSON object ``{"images": [...], "annotations": [...]}``,
  paired by position with equal ``id``; ``images[i]`` has ``file_name``,
  ``width``, ``height``, ``caption`` (the referring expression), ``id``;
  ``annotations[i].bbox`` is ``[x, y, w, h]`` in pixels.
* Charades-STA style (TVG): a list of ``{"image_id": video file name,
  "caption", "timestamp": [s, e]}``, the span normalised to the whole video
  (frame / (num_frames - 1)), with the data folder being ``videos/``.
* ST-Align style (STVG, SVG, ELC): a list of ``{"video_path", "meta": {"width",
  "height", "split": [a, b], "time_token": {"<s>": frame, "<e>": frame},
  "spatial_token": {"<bboxes>": {"frame": [x, y, w, h]}, "<box>": [x, y, w, h]}},
  "conversations": [human, gpt]}`` with absolute frame numbers and pixel
  boxes; ``<bboxes>`` holds every frame of ``[<s>, <e>]`` on which the object
  is visible (the reader keeps the sampled ones). The human text ends with a
  space because the reader appends the task suffix without one.

Pixel boxes ``[x, y, w, h]`` come from the exclusive-end xyxy boxes of the
renderer: ``w = x2 - x1`` pixels.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml

from . import language as lang
from .tasks import Choice, Item
from .vocab import SHAPES

# ---------------------------------------------------------------- file names (relative to the dataset folder)

EVAL_FILES = {
    "rec": "eval/refcoco_style_rec.json",
    "tvg": "eval/charades_sta_style_tvg.json",
    "stvg": "eval/st_align_stvg.json",
    "svg": "eval/st_align_svg.json",
    "elc": "eval/st_align_elc.json",
}


def xywh(box: tuple[int, int, int, int]) -> list[int]:
    """Pixel xyxy (exclusive end) -> pixel ``[x, y, w, h]``."""
    x1, y1, x2, y2 = box
    return [x1, y1, x2 - x1, y2 - y1]


def _track_pixels(item: Item, obj: int, start: int, end: int) -> dict[str, list[int]]:
    out = {}
    for f in range(start, end + 1):
        box = item.raster.box(obj, f)
        if box is not None:
            out[str(f)] = xywh(box)
    return out


def _st_align(item: Item, choice: Choice, human: str, gpt: str, extra_boxes: dict[str, list[int]] | None = None) -> dict:
    spatial: dict[str, Any] = {"<bboxes>": _track_pixels(item, choice.object, choice.start, choice.end)}
    spatial.update(extra_boxes or {})
    return {
        "video_path": item.media,
        "meta": {
            "width": item.scene.width,
            "height": item.scene.height,
            "split": [choice.split[0], choice.split[1]],
            "time_token": {"<s>": choice.start, "<e>": choice.end},
            "spatial_token": spatial,
        },
        "conversations": [{"from": "human", "value": "<video>\n" + human}, {"from": "gpt", "value": gpt}],
    }


def st_align_stvg(item: Item, choice: Choice) -> dict:
    caption = item.events[choice.event].caption
    return _st_align(item, choice, choice.template.format(x=caption), "From <s> to <e>. Object bounding box: <bboxes>")


def st_align_svg(item: Item, choice: Choice) -> dict:
    phrase = item.scene.objects[choice.object].phrase
    human = choice.template.format(span_phrase="From", span="<s> to <e>", x=phrase)
    return _st_align(item, choice, human, "Object bounding box: <bboxes>")


def st_align_elc(item: Item, choice: Choice) -> dict:
    first = item.raster.box(choice.object, choice.start)
    if first is None:
        raise ValueError(f"object {choice.object} is not visible on the first frame of its event")
    caption = item.events[choice.event].caption
    human = choice.template.format(box="<box>", t="<s>")
    gpt = f"Ends in <e>, {caption}. Object bounding box: <bboxes>"
    return _st_align(item, choice, human, gpt, {"<box>": xywh(first)})


def charades_tvg(item: Item, choice: Choice) -> dict:
    """A Charades-STA entry; the span is the event's frames over the whole video."""
    ev = item.events[choice.event]
    last = item.scene.num_frames - 1
    return {
        "image_id": Path(item.media).name,
        "caption": lang.sentence(ev.caption),
        "timestamp": [ev.start / last, ev.end / last],
    }


def refcoco_pair(item: Item, obj: int) -> tuple[dict, dict]:
    """The ``images`` and ``annotations`` entries of one referring expression (ids set by the writer)."""
    box = item.raster.box(obj, 0)
    if box is None:
        raise ValueError(f"object {obj} is not visible in image {item.name}")
    b = xywh(box)
    o = item.scene.objects[obj]
    image = {"file_name": item.media, "width": item.scene.width, "height": item.scene.height, "caption": o.phrase}
    ann = {"bbox": b, "area": b[2] * b[3], "category_id": SHAPES.index(o.shape) + 1, "iscrowd": 0}
    return image, ann


# ---------------------------------------------------------------- writers


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def write_json_list(path: Path, records: Sequence[Any]) -> None:
    """A JSON list with one record per line (valid JSON, easy to grep and diff)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = ",\n".join(dumps(r) for r in records)
    path.write_text("[\n" + body + "\n]\n" if records else "[]\n", encoding="utf-8")


def write_jsonl(path: Path, records: Iterable[Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(dumps(r) + "\n" for r in records), encoding="utf-8")


def write_refcoco(path: Path, pairs: Sequence[tuple[dict, dict]]) -> None:
    """RefCOCO-style object; entry i gets ``id = i`` in both lists, ``image_id`` names the image file's entry."""
    images, annotations = [], []
    first_entry: dict[str, int] = {}
    for i, (image, ann) in enumerate(pairs):
        first_entry.setdefault(image["file_name"], i)
        images.append({**image, "id": i})
        annotations.append({"id": i, "image_id": first_entry[image["file_name"]], **ann})
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "{\n" + '"images": ' + _list_lines(images) + ",\n" + '"annotations": ' + _list_lines(annotations) + "\n}\n"
    path.write_text(text, encoding="utf-8")


def _list_lines(records: Sequence[Any]) -> str:
    return "[\n" + ",\n".join(dumps(r) for r in records) + "\n]" if records else "[]"


# ---------------------------------------------------------------- training mixes (SPEC §4, §8)

#: Which training files each stage uses, with the sampling strategy (SPEC §8: stage 1 aligns content
#: with captions; stage 2 aligns coordinates with TVG, DVC, TR, REC, DGC and region captions (REG);
#: stage 3 tunes on every task, captions included at a lower rate).
STAGES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "stage1": ("content alignment: video and image captions", [("video_caption", "all"), ("image_caption", "all")]),
    "stage2": (
        "coordinate alignment: TVG, DVC, TR, REC, DGC, region captions (REG)",
        [("tvg", "all"), ("dvc", "all"), ("tr", "all"), ("rec", "all"), ("dgc", "all"), ("reg", "all")],
    ),
    "stage3": (
        "multi-task instruction tuning: all nine tasks plus a share of the captions",
        [
            ("rec", "all"),
            ("reg", "all"),
            ("dgc", "all"),
            ("tvg", "all"),
            ("tr", "all"),
            ("dvc", "all"),
            ("stvg", "all"),
            ("svg", "all"),
            ("elc", "all"),
            ("video_caption", "random:20%"),
            ("image_caption", "random:20%"),
        ],
    ),
}


def training_file(subset: str, task: str) -> str:
    return f"{subset}/{task}.json"


def mix_yaml(stage: str) -> str:
    """The YAML of a stage's mix; paths are relative to the folder holding the YAML (the dataset folder)."""
    title, entries = STAGES[stage]
    datasets = [
        {
            "json_path": training_file("train", task),
            "data_folder": ".",
            "source": f"st-synth/{task}",
            "sampling_strategy": strategy,
        }
        for task, strategy in entries
    ]
    header = (
        f"# ST-Synth training mix, {stage}: {title}.\n"
        "# json_path and data_folder are relative to the folder holding this file.\n"
    )
    return header + yaml.safe_dump({"datasets": datasets}, sort_keys=False)
