"""TVG on Charades-STA (EVAL-PROTOCOL §2).

Annotation file (``charades/test.json``): read by
:mod:`llava_st.data.formats.charades` (``image_id`` = the video file,
``caption`` = the query, ``timestamp`` ``[s, e]`` already normalised to [0, 1]
of the video). The whole video is sampled.

Scores: temporal IoU with the hull as denominator; recall at 0.3 / 0.5 / 0.7
counts IoU STRICTLY above the threshold (the release's rule, kept in both
modes); mean IoU.

* published: the release's span parser (first ``{ n , n }``, no space before
  the comma); an unreadable answer becomes ``[0, 0]``, and a ``[0, 0]`` result
  is skipped (scores 0, still counted); two identical zero-length spans crash
  the release (no numbers); keys ``miou`` (fraction), ``R1@(0.3)`` ... (percent).
* canonical: the canonical parser; unreadable -> IoU 0; the same instant
  predicted for a zero-length truth scores 1; keys ``mIoU``, ``R@0.3`` ... (percent).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from ..data.formats.charades import TVGSample, read_charades
from ..protocol.answers import ParseFailure, find_span
from ..protocol.prompts import CHARADES_TEMPLATE
from ..protocol.tokens import RELEASE_BINS, BinCounts
from . import metrics
from .base import Benchmark, MediaRequest, ReleaseCrash, Request
from .parsing import release_span, release_texts

#: The release's single TVG template (SPEC §3); ``{x}`` is the processed query.
PROMPT = CHARADES_TEMPLATE
THRESHOLDS = (0.3, 0.5, 0.7)


def query_text(caption: str) -> str:
    """The release's query clean-up: strip ``.`` at both ends, then spaces, then lower-case."""
    return caption.strip(".").strip(" ").lower()


def video_file(video: str, media_root: str | Path, mode: str) -> str:
    """Where the video of a sample is: the release removes ``v_`` unless the folder is ActivityNet's.

    The release removes EVERY ``v_`` of the name (``str.replace``); canonical
    mode removes only a leading one.
    """
    if "activitynet" not in str(media_root).lower():
        if mode == "published":
            video = video.replace("v_", "")
        elif video.startswith("v_"):
            video = video[2:]
    return str(Path(media_root) / video)


class CharadesSTA(Benchmark):
    name = "charades-sta"
    task = "tvg"

    def __init__(self, *, bins: BinCounts):
        self.bins = bins

    def load(self, path: str | Path) -> list[TVGSample]:
        return read_charades(path)

    def request(self, sample: TVGSample, mode: str, rng: random.Random, media_root, num_frames: int) -> Request:
        prompt = "<video>\n" + PROMPT.format(x=query_text(sample.caption))
        return Request(sample.index, prompt, MediaRequest("video", video_file(sample.video, media_root, mode), None, num_frames))

    def score_sample(self, sample: TVGSample, answer: str, mode: str, num_frames: int) -> dict:
        if mode == "published":
            span, found = release_span(release_texts(answer, RELEASE_BINS).converted)
            if span == [0, 0]:
                return {"id": sample.index, "parsed": {"span": span}, "readable": found, "skipped": True, "scores": {"iou": 0.0}}
            try:
                iou = float(metrics.temporal_iou(span, sample.span, zero_hull="raise"))
            except metrics.ZeroHullError:
                raise ReleaseCrash(sample.index, f"temporal IoU of the zero-length spans {span} and {list(sample.span)}") from None
            return {"id": sample.index, "parsed": {"span": span}, "readable": True, "skipped": False, "scores": {"iou": iou}}
        got = find_span(answer, "tvg", bins=self.bins)
        if isinstance(got, ParseFailure):
            return {"id": sample.index, "parsed": got.to_dict(), "readable": False, "scores": {"iou": 0.0}}
        iou = float(metrics.temporal_iou([got.start, got.end], sample.span, zero_hull="one"))
        return {"id": sample.index, "parsed": {"span": [got.start, got.end]}, "readable": True, "scores": {"iou": iou}}

    def aggregate(self, samples: list[TVGSample], records: list[dict], mode: str) -> dict:
        ious = [r["scores"]["iou"] for r in records]
        n = len(ious)
        if n == 0:
            return {}
        if mode == "published":
            out = {"miou": metrics.sequential_sum(ious) / n}
            for x in THRESHOLDS:
                out[f"R1@({x})"] = metrics.hits(ious, x, strict=True) / (n / 100)
            return out
        arr = np.asarray(ious)
        out = {"mIoU": float(arr.mean() * 100)}
        for x in THRESHOLDS:
            out[f"R@{x}"] = metrics.hits(arr, x, strict=True) / n * 100
        return out

    def notes(self, mode: str) -> list[str]:
        if mode == "published":
            return [
                "the release's span parser: an answer without '{n, n}' (or with a space before the comma) becomes [0, 0]",
                "a [0, 0] result is skipped: it scores 0 but stays in the denominator",
                "recall counts IoU strictly greater than the threshold",
                "two identical zero-length spans crash the release (no numbers are given then)",
                "miou is a fraction, R1@(x) percentages (release keys)",
            ]
        return [
            "answers read by the canonical parser: commas and/or spaces between the two values; a span ending "
            "before it starts is unreadable and scores 0",
            "a zero-length hull scores 1 when prediction and truth are the same instant (the release crashes)",
            "recall counts IoU strictly greater than the threshold (the release's rule, kept)",
            "mIoU and R@x in percent",
        ]


__all__ = ["CharadesSTA", "PROMPT", "query_text", "video_file"]
