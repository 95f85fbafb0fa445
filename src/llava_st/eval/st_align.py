"""ST-Align: STVG (task 0), SVG (task 1) and ELC (task 2) (EVAL-PROTOCOL §3).

Annotation file (``st-align/{stvg,svg,elc}.json``; ST-Synth's evaluation files
use the same format): read by :mod:`llava_st.data.formats.st_align`
(absolute frame numbers, pixel boxes ``[x, y, w, h]``, the human text with
``<video>`` and the token names; the gpt text is used for the ELC caption only).

Sampled frames: ``T`` frames over the split (SPEC §2.1); a ground-truth box
counts only on a sampled frame. An answer's track key ``k`` (time bin of
100) names sampled frame ``round(k / 99 * (T - 1))``.

Per-sample scores: temporal IoU of the span (hull denominator), and per-frame
box IoU in pixels summarised two ways: sIoU (mean over the frames present in
both tracks) and vIoU (sum over those frames divided by the frames present in
either). Recall counts ``>=`` the threshold.

Published mode (the release's ``eval_stvg``): first 2000 items only; span by
the release's parser on the decimal text (failure -> ``[0, 0]``); ELC's span
too, which the ``Ends in`` answer never has (tIoU 0: the release's bug); SVG
tIoU defined as 0; boxes from the integer rewrite, rounded to integer pixels,
against float, unclipped truth, keyed by frame-number strings; keys
``mtiou``, ``tiou@x``, ``msiou``, ``siou@x`` (sIoU), ``mstiou``, ``viou@x`` (vIoU),
``caption_score`` (ELC, rounded to 3 decimals).

Canonical mode: every item; canonical parser; ELC span = [start given in the
prompt, time after ``Ends in``]; float pixels against truth clipped to the
frame, per sampled frame NUMBER; SVG reports no temporal score; an empty truth
track with an empty prediction scores 1; keys ``m_tIoU``, ``tIoU@x``,
``m_sIoU``, ``sIoU@x``, ``m_vIoU``, ``vIoU@x`` and caption scores, all in percent.

Short splits (fewer frames than the ``T`` sampled, e.g. T = 100 on 40 frames):
several sampled times are the same frame, and a model that answers one box
per sampled time gives that frame several slightly different boxes under
different keys. Canonical mode scores the frame once, with the MEAN of its
boxes (:func:`frame_boxes`); the release keeps the last key's box. One key
written twice with different boxes stays unreadable (the parser's rule:
which box the key means cannot be known).
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..data.formats import AnnotationError
from ..data.formats.st_align import STSample, read_st_align
from ..protocol.answers import ParseFailure, Track, find_elc_caption, find_end, find_span, find_track
from ..protocol.timebase import Timeline, sample_frame_indices
from ..protocol.prompts import ELC_SUFFIX, SPAN_PHRASES, STVG_SUFFIX, SVG_SUFFIX
from ..protocol.tokens import BinCounts
from . import metrics
from .base import Benchmark, MediaRequest, ReleaseCrash, Request
from .captions import attach_caption_scores, canonical_caption_metrics, caption_scores, release_caption_scores
from .parsing import release_end_caption, release_pairs, release_span, release_texts

TASK_IDS = {"stvg": 0, "svg": 1, "elc": 2}

#: Appended to the human text, without a separating space (SPEC §3).
SUFFIXES = {"stvg": STVG_SUFFIX, "svg": SVG_SUFFIX, "elc": ELC_SUFFIX}

#: The release scores only this many items of each file.
PUBLISHED_LIMIT = 2000
#: The release samples this many frames.
RELEASE_FRAMES = 100
#: Time bins of the release: a track key k means k / (BINS - 1).
BINS = 100
THRESHOLDS = (0.3, 0.5, 0.7)
_SPAN_TEXT_RE = re.compile(r"{\s*(\d+(?:\.\d+)?)\,\s*(\d+(?:\.\d+)?)\s*}")


def norm_time(sample: STSample, frame: int) -> float:
    """An absolute frame as a time of the clip: ``round((f - a) / (b - a), 3)`` over the split ``[a, b]``.

    A one-frame split (a = b) has the single time 0 (the release divides by zero).
    """
    a, b = sample.split
    if b == a:
        return 0.0
    return round((frame - a) / (b - a), 3)


def gt_span(sample: STSample) -> list[float]:
    """The truth span ``[<s>, <e>]`` as clip times (:func:`norm_time`)."""
    return [norm_time(sample, sample.time_tokens["<s>"]), norm_time(sample, sample.time_tokens["<e>"])]


def _xyxy(b: tuple[float, float, float, float]) -> list[float]:
    return [b[0], b[1], b[0] + b[2], b[1] + b[3]]


# ----------------------------------------------------------------- prompt


def build_prompt(sample: STSample, task: str, phrase: str) -> str:
    """The release's human text for an ST-Align item (before placeholder formatting).

    ``From <s> to <e>`` -> ``<phrase> {<s>,<e>}``; each other spatial token ->
    its normalised ``xyxy`` list ``[x1/W, y1/H, x2/W, y2/H]`` (3 decimals,
    clipped to [0, 1] as the release's formatter clips it); each time token ->
    its normalised time (3 decimals); then the task suffix without a space. A
    span that does not start before it ends becomes ``{<error>}``, as the
    release's formatter writes it (our processor refuses such spans).
    """
    text = sample.human.replace("From <s> to <e>", phrase + " {<s>,<e>}")
    for key in sample.spatial_order:
        if key in sample.boxes and key in text:
            x1, y1, x2, y2 = _xyxy(sample.boxes[key])
            vals = [round(x1 / sample.width, 3), round(y1 / sample.height, 3), round(x2 / sample.width, 3), round(y2 / sample.height, 3)]
            text = text.replace(key, str([min(max(v, 0.0), 1.0) for v in vals]))
    for key, frame in sample.time_tokens.items():
        if key in text:
            text = text.replace(key, str(norm_time(sample, frame)))
    text += SUFFIXES[task]

    def error_if_empty(m: re.Match) -> str:
        return "{<error>}" if float(m.group(1)) >= float(m.group(2)) else m.group(0)

    return _SPAN_TEXT_RE.sub(error_if_empty, text)


# ----------------------------------------------------------------- scoring


class STAlign(Benchmark):
    """One ST-Align task: ``stvg``, ``svg`` or ``elc``."""

    def __init__(self, task: str, *, bins: BinCounts):
        if task not in TASK_IDS:
            raise ConfigError(f"unknown ST-Align task {task!r}; expected one of {sorted(TASK_IDS)}")
        self.name = task
        self.task = task
        self.bins = bins

    def load(self, path: str | Path) -> list[STSample]:
        samples = read_st_align(path)
        if self.task == "elc":
            for s in samples:
                ref = canonical_reference(s)
                if not ref or any(tok in ref for tok in ("<e>", "<s>", "<bboxes>")):
                    raise AnnotationError(
                        path,
                        s.index,
                        "conversations[1].value",
                        "an ELC answer must read 'Ends in <e>, <caption>. Object bounding box: <bboxes>', "
                        f"got {s.gpt!r}",
                    )
        return samples

    def evaluated_ids(self, num_samples: int, mode: str) -> list[int]:
        if mode == "published":
            return list(range(min(num_samples, PUBLISHED_LIMIT)))
        return list(range(num_samples))

    def request(self, sample: STSample, mode: str, rng: random.Random, media_root, num_frames: int) -> Request:
        prompt = build_prompt(sample, self.task, rng.choice(SPAN_PHRASES))
        media = MediaRequest("video", str(Path(media_root) / sample.video_path), sample.split, num_frames)
        return Request(sample.index, prompt, media)

    # -- one sample

    def score_sample(self, sample: STSample, answer: str, mode: str, num_frames: int) -> dict:
        if mode == "published":
            return self._score_published(sample, answer)
        return self._score_canonical(sample, answer, num_frames)

    def _score_published(self, s: STSample, answer: str) -> dict:
        a, b = s.split
        d = b - a + 1
        if d == 1:
            raise ReleaseCrash(s.index, "one-frame split: the release divides by zero while building the sample")
        frame_idx = set(sample_frame_indices(a, b, RELEASE_FRAMES).tolist())
        texts = release_texts(answer, BinCounts.uniform(BINS))
        span, found = release_span(texts.converted)
        pairs = release_pairs(texts.integer)
        for k in pairs:
            f = a + round(k / (RELEASE_FRAMES - 1) * (d - 1))
            if int(f) not in frame_idx:
                raise ReleaseCrash(s.index, f"track key {k:g} names frame {f}, not a sampled frame (assertion)")
        pred: dict[str, list[int]] = {}
        for k, v in pairs.items():
            t = str(round(a + k / (RELEASE_FRAMES - 1) * (d - 1)))
            v = [x / (BINS - 1) for x in v]
            pred[t] = [round(x) for x in (v[0] * s.width, v[1] * s.height, v[2] * s.width, v[3] * s.height)]
        gt = {k: _xyxy(box) for k, box in s.track.items() if int(k) in frame_idx}
        readable = bool(pred) and (found or self.task == "svg")
        record: dict[str, Any] = {"id": s.index, "parsed": {"span": span, "span_found": found, "boxes": pred}, "readable": readable}
        if self.task == "svg":
            tiou = 0.0
        else:
            g = [round((t - a) / (d - 1), 3) for t in (s.time_tokens["<s>"], s.time_tokens["<e>"])]
            try:
                tiou = float(metrics.temporal_iou(g, span, zero_hull="raise"))
            except metrics.ZeroHullError:
                raise ReleaseCrash(s.index, f"temporal IoU of the zero-length spans {g} and {span}") from None
        siou, viou, _ = metrics.track_scores(gt, pred, empty_both=0.0)
        record["scores"] = {"tiou": tiou, "siou": siou, "viou": viou}
        if self.task == "elc":
            record["reference"] = s.gpt.replace("Ends in <e>, ", "").replace(" Object bounding box: <bboxes>", "")
            record["hypothesis"] = release_end_caption(texts.outputs)
        return record

    def _score_canonical(self, s: STSample, answer: str, num_frames: int) -> dict:
        tl = Timeline.from_split(s.split, num_frames, s.width, s.height)
        parsed: dict[str, Any] = {}
        problems: list[str] = []
        scores: dict[str, float] = {}
        # time
        if self.task != "svg":
            g = gt_span(s)
            if self.task == "stvg":
                got = find_span(answer, "stvg", bins=self.bins)
                pred_span = None if isinstance(got, ParseFailure) else [got.start, got.end]
                if isinstance(got, ParseFailure):
                    problems.append(got.reason)
            else:
                end = find_end(answer, "elc", bins=self.bins)
                start = norm_time(s, s.time_tokens["<s>"])
                pred_span = None if isinstance(end, ParseFailure) else [start, end.value]
                if isinstance(end, ParseFailure):
                    problems.append(end.reason)
            parsed["span"] = pred_span
            if pred_span is None or pred_span[1] < pred_span[0]:
                scores["tiou"] = 0.0
            else:
                scores["tiou"] = float(metrics.temporal_iou(pred_span, g, zero_hull="one"))
        # space: per sampled frame NUMBER (a short split samples a frame several times; it
        # counts once, see frame_boxes), truth clipped to the frame, prediction in float pixels
        by_frame = {int(k): box for k, box in s.track.items()}
        gt = {}
        for f in sorted(set(tl.frame_ids or ())):
            box = by_frame.get(f)
            if box is not None:
                x1, y1, x2, y2 = _xyxy(box)
                gt[f] = [min(max(x1, 0.0), s.width), min(max(y1, 0.0), s.height), min(max(x2, 0.0), s.width), min(max(y2, 0.0), s.height)]
        track = find_track(answer, self.task, bins=self.bins, timeline=tl)
        if isinstance(track, ParseFailure):
            problems.append(track.reason)
            parsed["boxes"] = None
            scores["siou"] = scores["viou"] = 0.0
        else:
            pred, averaged = frame_boxes(track)
            parsed["boxes"] = {str(k): v for k, v in pred.items()}
            if averaged:
                parsed["averaged_frames"] = averaged
            siou, viou, _ = metrics.track_scores(gt, pred, empty_both=1.0)
            scores["siou"], scores["viou"] = siou, viou
        if parsed.get("boxes") == {}:
            problems.append("no 'key: [x1, y1, x2, y2]' frame boxes found")
        hypothesis = None
        if self.task == "elc":
            cap = find_elc_caption(answer, "elc", bins=self.bins)
            if isinstance(cap, ParseFailure):
                problems.append(cap.reason)
                hypothesis = ""
            else:
                hypothesis = cap
        record: dict[str, Any] = {"id": s.index, "parsed": parsed, "readable": not problems, "scores": scores}
        if problems:
            record["problems"] = problems
        if self.task == "elc":
            record["reference"] = canonical_reference(s)
            record["hypothesis"] = hypothesis
        return record

    # -- aggregate

    def aggregate(self, samples: list[STSample], records: list[dict], mode: str) -> dict:
        n = len(records)
        if n == 0:
            return {}
        col = {k: np.array([r["scores"].get(k, 0.0) for r in records], dtype=np.float64) for k in ("tiou", "siou", "viou")}
        out: dict[str, Any] = {}
        if mode == "published":
            out["mtiou"] = metrics.sequential_sum(col["tiou"]) / n
            for x in THRESHOLDS:
                out[f"tiou@{x}"] = metrics.hits(col["tiou"], x, strict=False) / (n / 100)
            out["msiou"] = metrics.sequential_sum(col["siou"]) / n
            for x in THRESHOLDS:
                out[f"siou@{x}"] = metrics.hits(col["siou"], x, strict=False) / (n / 100)
            out["mstiou"] = metrics.sequential_sum(col["viou"]) / n
            for x in THRESHOLDS:
                out[f"viou@{x}"] = metrics.hits(col["viou"], x, strict=False) / (n / 100)
            out["caption_score"] = {}
            if self.task == "elc":
                scores = caption_scores([r["reference"] for r in records], [r["hypothesis"] for r in records])
                out["caption_score"] = release_caption_scores(scores)
                attach_caption_scores(records, scores.per_sample, scale=1.0)
            return out
        if self.task != "svg":
            out["m_tIoU"] = float(col["tiou"].mean() * 100)
            for x in THRESHOLDS:
                out[f"tIoU@{x}"] = metrics.hits(col["tiou"], x, strict=False) / n * 100
        out["m_sIoU"] = float(col["siou"].mean() * 100)
        for x in THRESHOLDS:
            out[f"sIoU@{x}"] = metrics.hits(col["siou"], x, strict=False) / n * 100
        out["m_vIoU"] = float(col["viou"].mean() * 100)
        for x in THRESHOLDS:
            out[f"vIoU@{x}"] = metrics.hits(col["viou"], x, strict=False) / n * 100
        if self.task == "elc":
            scores = caption_scores([r["reference"] for r in records], [r["hypothesis"] for r in records])
            out.update(canonical_caption_metrics(scores.aggregate))
            attach_caption_scores(records, scores.per_sample, scale=100.0)
        return out

    def notes(self, mode: str) -> list[str]:
        if mode == "published":
            out = [
                f"only the first {PUBLISHED_LIMIT} items of the file are scored (the release's rule)",
                "span read by the release's parser on the decimal text; unreadable -> [0, 0]",
                "boxes from the release's integer rewrite ('k,:[a,b,c,d]', spaces deleted, a later key wins), "
                "rounded to integer pixels, against unclipped float truth keyed by the file's frame strings",
                "sIoU = msiou/siou@x (mean over frames in both tracks); vIoU = mstiou/viou@x (divided by the union)",
                "recall counts values >= the threshold; mtiou/msiou/mstiou are fractions, the @x keys percentages",
                "the frame IoUs are summed in sorted key order (the release sums over a set: last-bit differences)",
                "a one-frame split or identical zero-length spans crash the release (no numbers are given then)",
                "prompts: the release leaves a box with a negative value as plain text; ours clips it to [0, 1]",
            ]
            if self.task == "elc":
                out += [
                    "ELC tIoU uses the span parser, which the released 'Ends in' answer never satisfies: 0 (release bug)",
                    "caption hypothesis = the answer up to its first '.', then after its last ','; scores rounded to 3 "
                    "decimals; Bleu_n lists BLEU-1..n",
                ]
            if self.task == "svg":
                out.append("SVG tIoU is defined as 0 (release keys kept)")
            return out
        out = [
            "every item of the file is scored (the release: the first 2000)",
            "answers read by the canonical parser (commas and/or spaces between values; one key written twice "
            "with different boxes makes the track unreadable)",
            "boxes compared in float pixels (not rounded) against truth clipped to the frame, per sampled frame "
            "number: a frame sampled several times (a split shorter than the sampled count) counts once, and "
            "when different keys give it different boxes their mean box is scored (the release: the last key's box)",
            "m_sIoU / sIoU@x: mean IoU over the frames present in both tracks (the release's msiou / siou@x); "
            "m_vIoU / vIoU@x: the IoU sum divided by the frames present in either (the release's mstiou / viou@x)",
            "an empty truth track (no ground-truth box on a sampled frame) with an empty prediction scores 1, "
            "with a predicted box 0 (the release: always 0)",
            "recall counts values >= the threshold; all numbers in percent",
            "a one-frame split has the single time 0 (the release crashes)",
            "span phrases drawn with a per-sample seed; a box in the prompt is clipped to [0, 1]",
        ]
        if self.task == "elc":
            out += [
                "ELC tIoU uses [start given in the prompt, time after 'Ends in'] (the release scores 0 for every "
                "'Ends in' answer)",
                "caption hypothesis = the text after 'Ends in <time>,' up to 'Object bounding box' or the first "
                "frame box; caption scores x100",
            ]
        if self.task == "svg":
            out.append("SVG has no temporal score (the span is given in the prompt)")
        return out


def frame_boxes(track: Track) -> tuple[dict[int, list[float]], dict[str, int]]:
    """One pixel box per sampled frame NUMBER of a canonical track, and the frames whose boxes were averaged.

    A split shorter than the sampled count (T = 100 on a 40-frame clip)
    samples a frame several times, and the model answers one box per sampled
    time, so different keys name the same frame, usually with slightly
    different boxes. Canonical scoring keeps the frame as the unit (a frame of
    truth counts once in sIoU and vIoU) and takes the MEAN of the boxes given
    for it, coordinate by coordinate (equal boxes stay as they are). Returns
    ``({frame: [x1, y1, x2, y2]}, {"frame": number of boxes averaged})``.

    Example (T = 100 over frames 0..39): keys 2 and 3 both name frame 1;
    ``[10, 10, 20, 20]`` and ``[12, 10, 22, 20]`` give frame 1 the box
    ``[11, 10, 21, 20]``. (One key written twice with different boxes is not
    this case: the parser refuses such a track.)
    """
    given: dict[int, list[tuple[float, float, float, float]]] = {}
    for fr in track.frames:
        given.setdefault(fr.frame_id, []).append(tuple(fr.box.pixels))  # type: ignore[arg-type]
    pred: dict[int, list[float]] = {}
    averaged: dict[str, int] = {}
    for frame, boxes in given.items():
        if len(set(boxes)) == 1:
            pred[frame] = list(boxes[0])
        else:
            pred[frame] = [float(v) for v in np.mean(np.asarray(boxes, dtype=np.float64), axis=0)]
            averaged[str(frame)] = len(boxes)
    return pred, averaged


_END_PREFIX_RE = re.compile(r"^\s*Ends in <e>\s*,?\s*")
_OBJECT_SUFFIX_RE = re.compile(r"\s*Object bounding box:\s*<bboxes>\s*")


def canonical_reference(s: STSample) -> str:
    """The ELC reference caption: the gpt text without ``Ends in <e>,`` and ``Object bounding box: <bboxes>``."""
    text = _OBJECT_SUFFIX_RE.sub(" ", _END_PREFIX_RE.sub("", s.gpt)).strip()
    return text


__all__ = [
    "PUBLISHED_LIMIT",
    "SPAN_PHRASES",
    "STAlign",
    "SUFFIXES",
    "TASK_IDS",
    "build_prompt",
    "canonical_reference",
    "frame_boxes",
    "gt_span",
    "norm_time",
]
