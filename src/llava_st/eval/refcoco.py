"""REC on RefCOCO, RefCOCO+ and RefCOCOg (EVAL-PROTOCOL §1).

Annotation file (``refcoco/refcoco_val.json`` ...): one object with
``images`` and ``annotations``, two lists paired BY POSITION (their ``id``
must agree). ``images[i]`` holds ``file_name``, ``width``, ``height`` and the
referring expression ``caption``; ``annotations[i]["bbox"]`` is ``[x, y, w, h]``
in pixels. A prediction's ``id`` is the position ``i``.

Scores: box IoU in normalised coordinates against the ground truth
``[x/W, y/H, (x+w)/W, (y+h)/H]``; accuracy at IoU >= 0.5.

* published: the ground truth is rounded to 3 decimals then clipped to [0, 1];
  the answer is read by the release's parser (spaces deleted, first
  ``[n,n,n,n]``) and an unreadable answer is DROPPED from both numbers;
  keys ``miou`` (fraction) and ``R1@(0.5)`` (percent).
* canonical: exact ground truth clipped to [0, 1]; an unreadable answer
  scores IoU 0 and every sample counts; keys ``mIoU`` and ``Acc@0.5`` (percent).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..protocol.answers import ParseFailure, find_box
from ..protocol.prompts import REC_TEMPLATES
from . import metrics
from .base import (
    AnnotationError,
    Benchmark,
    MediaRequest,
    Request,
    as_positive,
    as_text,
    as_xywh,
    load_json,
    need,
)
from .parsing import release_box, release_texts

#: The release's four REC prompt templates (SPEC §3); ``{x}`` is the expression.
PROMPTS = REC_TEMPLATES

#: The eight released evaluation files, by benchmark and split.
SPLITS = {
    "refcoco": ("val", "testA", "testB"),
    "refcoco+": ("val", "testA", "testB"),
    "refcocog": ("val", "test"),
}


@dataclass(frozen=True)
class RefSample:
    """One referring expression: the image, its size, the expression and the pixel box ``[x, y, w, h]``."""

    index: int
    id: object
    file_name: str
    width: float
    height: float
    caption: str
    bbox: tuple[float, float, float, float]

    def gt_box(self, mode: str) -> list[float]:
        """Normalised ``xyxy`` ground truth as each mode compares it."""
        x, y, w, h = self.bbox
        raw = [x / self.width, y / self.height, (x + w) / self.width, (y + h) / self.height]
        if mode == "published":
            return [_clip01(round(v, 3)) for v in raw]
        return [_clip01(v) for v in raw]


def _clip01(v: float) -> float:
    return v if 0 <= v <= 1 else (0 if v < 0 else 1)


def read_refcoco(path: str | Path) -> list[RefSample]:
    """Read a RefCOCO-family evaluation file (format above).

    Raises:
        AnnotationError: naming the file, the position and the field.
    """
    p = Path(path)
    data = load_json(p)
    if not isinstance(data, dict):
        raise AnnotationError(p, None, "<file>", "must be an object with 'images' and 'annotations'")
    images = need(data, "images", p, None)
    anns = need(data, "annotations", p, None)
    if not isinstance(images, list) or not isinstance(anns, list):
        raise AnnotationError(p, None, "images/annotations", "must both be lists")
    if len(images) != len(anns):
        raise AnnotationError(
            p, None, "images/annotations", f"must pair by position but have {len(images)} and {len(anns)} entries"
        )
    out = []
    for i, (img, ann) in enumerate(zip(images, anns)):
        file_name = as_text(need(img, "file_name", p, i, "images[i]."), p, i, "images[i].file_name")
        width = as_positive(need(img, "width", p, i, "images[i]."), p, i, "images[i].width")
        height = as_positive(need(img, "height", p, i, "images[i]."), p, i, "images[i].height")
        caption = as_text(need(img, "caption", p, i, "images[i]."), p, i, "images[i].caption")
        img_id = need(img, "id", p, i, "images[i].")
        ann_id = need(ann, "id", p, i, "annotations[i].")
        if ann_id != img_id:
            raise AnnotationError(p, i, "annotations[i].id", f"{ann_id!r} differs from images[i].id {img_id!r}")
        bbox = as_xywh(need(ann, "bbox", p, i, "annotations[i]."), p, i, "annotations[i].bbox")
        out.append(RefSample(i, img_id, file_name, width, height, caption, bbox))
    return out


class RefCOCO(Benchmark):
    """REC scoring for one of ``refcoco``, ``refcoco+``, ``refcocog``."""

    task = "rec"

    def __init__(self, name: str = "refcoco"):
        if name not in SPLITS:
            raise ValueError(f"unknown REC benchmark {name!r}; expected one of {sorted(SPLITS)}")
        self.name = name

    def load(self, path: str | Path) -> list[RefSample]:
        return read_refcoco(path)

    def request(self, sample: RefSample, mode: str, rng: random.Random, media_root, num_frames: int) -> Request:
        """``<image>\\n`` + a template, or the expression itself when it already holds ``<image>``."""
        if "<image>" in sample.caption:
            prompt = sample.caption
        else:
            prompt = "<image>\n" + rng.choice(PROMPTS).format(x=sample.caption)
        path = str(Path(media_root) / sample.file_name)
        return Request(sample.index, prompt, MediaRequest("image", path, None, 1))

    def score_sample(self, sample: RefSample, answer: str, mode: str, num_frames: int) -> dict:
        gt = sample.gt_box(mode)
        if mode == "published":
            pred = release_box(release_texts(answer).converted)
            if pred is None:
                return {"id": sample.index, "parsed": {"box": None}, "readable": False, "counted": False, "scores": {"iou": None}}
            iou = float(metrics.box_iou(gt, pred))
            return {"id": sample.index, "parsed": {"box": pred}, "readable": True, "counted": True, "scores": {"iou": iou}}
        box = find_box(answer, "rec")
        if isinstance(box, ParseFailure):
            return {"id": sample.index, "parsed": box.to_dict(), "readable": False, "scores": {"iou": 0.0}}
        iou = float(metrics.box_iou(gt, box.xyxy))
        return {"id": sample.index, "parsed": {"box": list(box.xyxy)}, "readable": True, "scores": {"iou": iou}}

    def aggregate(self, samples: list[RefSample], records: list[dict], mode: str) -> dict:
        if mode == "published":
            ious = [r["scores"]["iou"] for r in records if r["counted"]]
            n = len(ious) or 1
            return {
                "miou": metrics.sequential_sum(ious) / n,
                "R1@(0.5)": metrics.hits(ious, 0.5, strict=False) / n * 100,
            }
        ious = np.array([r["scores"]["iou"] for r in records], dtype=np.float64)
        n = len(ious)
        return {
            "mIoU": float(ious.mean() * 100) if n else 0.0,
            "Acc@0.5": metrics.hits(ious, 0.5, strict=False) / n * 100 if n else 0.0,
        }

    def notes(self, mode: str) -> list[str]:
        if mode == "published":
            return [
                "answers the release's parser cannot read are dropped from both numbers (canonical: IoU 0, counted)",
                "ground truth rounded to 3 decimals before clipping to [0, 1] (canonical: exact, clipped)",
                "miou is a fraction, R1@(0.5) a percentage (release keys)",
                "the release's padding copies of sample 0 (chunking over GPUs) are not reproduced: each sample once",
            ]
        return [
            "every sample counts: an unreadable answer scores IoU 0 (the release drops it from the denominator)",
            "ground truth exact (not rounded to 3 decimals), clipped to [0, 1]",
            "answers read by the canonical parser: commas and/or spaces between the four values, "
            "no sign; a box ending before it starts is unreadable",
            "mIoU and Acc@0.5 in percent; hit when IoU >= 0.5 (as the release)",
            "prompt templates chosen with a per-sample seed (the release draws unseeded)",
        ]


__all__ = ["PROMPTS", "RefCOCO", "RefSample", "SPLITS", "read_refcoco"]
