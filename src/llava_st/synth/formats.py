"""ST-Synth's records in the real benchmarks' formats, and its training-mix YAML.

The formats themselves (schema, reader, writer) live in
:mod:`llava_st.data.formats`; this module builds their records from a
rendered item, for the test split:

* RefCOCO style (REC): a :class:`~llava_st.data.formats.refcoco.RefSample` per
  referring expression (the writer numbers them: ``id = i`` in both lists,
  ``image_id`` the image's first entry);
* Charades-STA style (TVG): a :class:`~llava_st.data.formats.charades.TVGSample`
  whose span is normalised to the whole video (frame / (num_frames - 1)), with
  the data folder being ``videos/``;
* ST-Align style (STVG, SVG, ELC): an
  :class:`~llava_st.data.formats.st_align.STSample` with absolute frame
  numbers and pixel boxes; ``<bboxes>`` holds every frame of ``[<s>, <e>]`` on
  which the object is visible (the reader keeps the sampled ones). The human
  text ends with a space because the benchmark appends the task suffix
  without one.

Training samples (SPEC §4) are built by :mod:`.tasks` and written by
:func:`llava_st.data.formats.release_sft.write_release_sft`.

Pixel boxes ``[x, y, w, h]`` come from the exclusive-end xyxy boxes of the
renderer: ``w = x2 - x1`` pixels.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

import yaml

from ..data.formats.charades import TVGSample
from ..data.formats.refcoco import RefSample
from ..data.formats.st_align import STSample
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


def xywh(box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """Pixel xyxy (exclusive end) -> pixel ``(x, y, w, h)``."""
    x1, y1, x2, y2 = box
    return (x1, y1, x2 - x1, y2 - y1)


def _track_pixels(item: Item, obj: int, start: int, end: int) -> dict[str, tuple[int, int, int, int]]:
    out = {}
    for f in range(start, end + 1):
        box = item.raster.box(obj, f)
        if box is not None:
            out[str(f)] = xywh(box)
    return out


def _st_align(
    item: Item, choice: Choice, human: str, gpt: str, extra_boxes: dict[str, tuple[int, int, int, int]] | None = None
) -> STSample:
    return STSample(
        video_path=item.media,
        width=item.scene.width,
        height=item.scene.height,
        split=(choice.split[0], choice.split[1]),
        time_tokens={"<s>": choice.start, "<e>": choice.end},
        track=_track_pixels(item, choice.object, choice.start, choice.end),
        boxes=dict(extra_boxes or {}),
        human="<video>\n" + human,
        gpt=gpt,
    )


def st_align_stvg(item: Item, choice: Choice) -> STSample:
    caption = item.events[choice.event].caption
    return _st_align(item, choice, choice.template.format(x=caption), "From <s> to <e>. Object bounding box: <bboxes>")


def st_align_svg(item: Item, choice: Choice) -> STSample:
    phrase = item.scene.objects[choice.object].phrase
    human = choice.template.format(span_phrase="From", span="<s> to <e>", x=phrase)
    return _st_align(item, choice, human, "Object bounding box: <bboxes>")


def st_align_elc(item: Item, choice: Choice) -> STSample:
    first = item.raster.box(choice.object, choice.start)
    if first is None:
        raise ValueError(f"object {choice.object} is not visible on the first frame of its event")
    caption = item.events[choice.event].caption
    human = choice.template.format(box="<box>", t="<s>")
    gpt = f"Ends in <e>, {caption}. Object bounding box: <bboxes>"
    return _st_align(item, choice, human, gpt, {"<box>": xywh(first)})


def charades_tvg(item: Item, choice: Choice) -> TVGSample:
    """A Charades-STA entry; the span is the event's frames over the whole video."""
    ev = item.events[choice.event]
    last = item.scene.num_frames - 1
    return TVGSample(video=Path(item.media).name, caption=lang.sentence(ev.caption), span=(ev.start / last, ev.end / last))


def refcoco_pair(item: Item, obj: int) -> RefSample:
    """The ``images``/``annotations`` pair of one referring expression (ids set by :func:`number_refcoco`)."""
    box = item.raster.box(obj, 0)
    if box is None:
        raise ValueError(f"object {obj} is not visible in image {item.name}")
    b = xywh(box)
    o = item.scene.objects[obj]
    coco = {"area": b[2] * b[3], "category_id": SHAPES.index(o.shape) + 1, "iscrowd": 0}
    return RefSample(None, item.media, item.scene.width, item.scene.height, o.phrase, b, annotation_extra=coco)


def number_refcoco(samples: Sequence[RefSample]) -> list[RefSample]:
    """Entry i gets ``id = i``; its annotation's ``image_id`` is the id of the image file's first entry."""
    first_entry: dict[str, int] = {}
    out = []
    for i, s in enumerate(samples):
        first_entry.setdefault(s.file_name, i)
        coco = {"image_id": first_entry[s.file_name], **s.annotation_extra}
        out.append(replace(s, id=i, annotation_extra=coco, index=i))
    return out


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
