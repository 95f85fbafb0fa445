"""REC on RefCOCO, RefCOCO+ and RefCOCOg (EVAL-PROTOCOL §1).

Annotation file (``refcoco/refcoco_val.json`` ...): read by
:mod:`llava_st.data.formats.refcoco` (images and annotations paired by
position; pixel boxes ``[x, y, w, h]``). A prediction's ``id`` is the
position ``i``.

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
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..data.formats.refcoco import RefSample, read_refcoco
from ..protocol.answers import ParseFailure, find_box
from ..protocol.prompts import REC_TEMPLATES
from ..protocol.tokens import RELEASE_BINS, BinCounts
from . import metrics
from .base import Benchmark, MediaRequest, Request
from .parsing import release_box, release_texts

#: The release's four REC prompt templates (SPEC §3); ``{x}`` is the expression.
PROMPTS = REC_TEMPLATES

#: The eight released evaluation files, by benchmark and split.
SPLITS = {
    "refcoco": ("val", "testA", "testB"),
    "refcoco+": ("val", "testA", "testB"),
    "refcocog": ("val", "test"),
}


def gt_box(sample: RefSample, mode: str) -> list[float]:
    """Normalised ``xyxy`` ground truth ``[x/W, y/H, (x+w)/W, (y+h)/H]`` as each mode compares it.

    published: each value rounded to 3 decimals, then clipped to [0, 1];
    canonical: exact, clipped to [0, 1].
    """
    x, y, w, h = sample.bbox
    raw = [x / sample.width, y / sample.height, (x + w) / sample.width, (y + h) / sample.height]
    if mode == "published":
        return [_clip01(round(v, 3)) for v in raw]
    return [_clip01(v) for v in raw]


def _clip01(v: float) -> float:
    return v if 0 <= v <= 1 else (0 if v < 0 else 1)


class RefCOCO(Benchmark):
    """REC scoring for one of ``refcoco``, ``refcoco+``, ``refcocog``."""

    task = "rec"

    def __init__(self, name: str = "refcoco", *, bins: BinCounts):
        if name not in SPLITS:
            raise ConfigError(f"unknown REC benchmark {name!r}; expected one of {sorted(SPLITS)}")
        self.name = name
        self.bins = bins

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
        gt = gt_box(sample, mode)
        if mode == "published":
            pred = release_box(release_texts(answer, RELEASE_BINS).converted)
            if pred is None:
                return {"id": sample.index, "parsed": {"box": None}, "readable": False, "counted": False, "scores": {"iou": None}}
            iou = float(metrics.box_iou(gt, pred))
            return {"id": sample.index, "parsed": {"box": pred}, "readable": True, "counted": True, "scores": {"iou": iou}}
        box = find_box(answer, "rec", bins=self.bins)
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


__all__ = ["PROMPTS", "RefCOCO", "SPLITS", "gt_box"]
