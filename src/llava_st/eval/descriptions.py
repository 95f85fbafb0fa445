"""REG and TR: describe a given region of an image or span of a video, scored with caption metrics.

The release has no scorer for either task (EVAL-PROTOCOL), so both are
scored in canonical mode only, as the literature scores them: the answer is
the description (``<|im_end|>`` removed), compared with the reference
description(s) by the COCO caption toolkit (:mod:`.captions`: PTB tokens,
BLEU-1..4, METEOR, ROUGE-L, CIDEr; CIDEr's document frequencies come from the
evaluated set). METEOR and CIDEr are the region-captioning literature's
headline numbers (GRiT, Kosmos-2, GLaMM on RefCOCOg). An empty answer is a
miss: it is scored as an empty caption (0 on every metric).

Sources of samples:

* REG on **RefCOCOg** (``refcocog-reg``): the release's RefCOCOg evaluation
  files (:mod:`llava_st.data.formats.refcoco`). A region is an object of an
  image: the entries with the same image and the same box are one sample,
  whose references are all their expressions (region-captioning practice);
  samples keep the order of their first entry. The model is asked our REG
  prompt (:func:`llava_st.protocol.prompts.reg`) with the box normalised to the
  image ``[x/W, y/H, (x+w)/W, (y+h)/H]``, clipped to [0, 1];
* TR on **ActivityNet Captions** (``activitynet-tr``; :mod:`.activitynet`):
  one sample per event, the span in seconds normalised by the video's duration
  (clipped to [0, 1]); on **Charades-STA** (``charades-tr``): one sample per
  query, its normalised span. The model is asked our TR prompt
  (:func:`llava_st.protocol.prompts.tr`) over the whole video;
* both on **release-format files** (``synth-reg``, ``synth-tr``: ST-Synth's
  ``test/reg.json``, ``test/tr.json``, or any such file;
  :mod:`.release_format`): the file's own question and answer, the video
  sampled over ``meta.split``.

A span that is empty once written with 3 decimals (``{0.5, 0.5}``) cannot be
asked (the coordinate protocol needs start < end): it is widened to the
smallest span that can, 0.001 long, and the record says so.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..data.formats.charades import read_charades
from ..data.formats.refcoco import read_refcoco
from ..errors import ConfigError
from ..protocol import prompts
from ..protocol.answers import ParseFailure, parse_answer
from ..protocol.coords import round3
from ..protocol.tokens import BinCounts
from .activitynet import read_activitynet_captions, video_path
from .base import Benchmark, MediaRequest, Request
from .captions import attach_caption_scores, canonical_caption_metrics, caption_scores
from .charades import video_file
from .release_format import read_question_answers

#: The smallest span the coordinate protocol can express (values are written with 3 decimals).
MIN_SPAN = 0.001


@dataclass(frozen=True)
class RegionDescription:
    """A region to describe: the image, the normalised ``xyxy`` box and its reference descriptions.

    ``question``: the file's own question, its box inside (release format; ``box``
    is then ``None``), else ``None`` (our REG prompt on ``box``); ``entries``: the
    positions in the source file this region gathers (RefCOCOg: one per expression).
    """

    image: str
    box: tuple[float, float, float, float] | None
    references: tuple[str, ...]
    question: str | None = None
    entries: tuple[int, ...] = ()
    index: int = field(default=0, compare=False)


@dataclass(frozen=True)
class SpanDescription:
    """A span of a video to describe: the video, the span normalised to the sampled clip, the reference.

    ``video`` is a path under the media folder, or an ActivityNet video id
    (``source == "activitynet"``, looked up by :func:`.activitynet.video_path`);
    ``split`` the frame range the clip is sampled over (``None``: the whole
    video); ``question``: the file's own question, its span inside (release
    format; ``span`` is then ``None``); ``widened``: the span was widened to
    :data:`MIN_SPAN` to be askable.
    """

    video: str
    span: tuple[float, float] | None
    reference: str
    source: Literal["activitynet", "charades", "release"] = "release"
    split: tuple[int, int] | None = None
    question: str | None = None
    widened: bool = False
    index: int = field(default=0, compare=False)


def askable_span(start: float, end: float) -> tuple[float, float, bool]:
    """``(start, end, widened)``: the span clipped to [0, 1] and, when it is empty with 3 decimals, widened to
    :data:`MIN_SPAN` (forward, or backward at the end of the clip).

    Example: ``askable_span(0.5, 0.5)`` -> ``(0.5, 0.501, True)``; ``askable_span(1.0, 1.0)`` -> ``(0.999, 1.0, True)``.
    """
    s, e = min(max(start, 0.0), 1.0), min(max(end, 0.0), 1.0)
    if round3(e) > round3(s):
        return s, e, False
    s = round3(s)
    if s + MIN_SPAN <= 1.0:
        return s, round3(s + MIN_SPAN), True
    return round3(1.0 - MIN_SPAN), 1.0, True


def _clip01(v: float) -> float:
    return min(max(v, 0.0), 1.0)


def read_refcocog_regions(path: str | Path) -> list[RegionDescription]:
    """The regions of a RefCOCO-family file: entries with the same image and box gathered, expressions as references."""
    groups: dict[tuple, list] = {}
    for s in read_refcoco(path):
        groups.setdefault((s.file_name, tuple(s.bbox)), []).append(s)
    out = []
    for i, entries in enumerate(groups.values()):
        s = entries[0]
        x, y, w, h = s.bbox
        box = (_clip01(x / s.width), _clip01(y / s.height), _clip01((x + w) / s.width), _clip01((y + h) / s.height))
        refs = tuple(e.caption.replace("<image>", "").strip() for e in entries)
        out.append(RegionDescription(s.file_name, box, refs, None, tuple(e.index for e in entries), index=i))
    return out


def read_release_regions(path: str | Path) -> list[RegionDescription]:
    """REG samples of a release-format file: the file's question, its answer as the one reference."""
    out = []
    for qa in read_question_answers(path, "reg"):
        out.append(RegionDescription(qa.media, None, (qa.answer.strip(),), qa.question, (qa.index,), index=qa.index))
    return out


def read_activitynet_spans(path: str | Path) -> list[SpanDescription]:
    """One TR sample per event of an ActivityNet Captions file (videos in order, events in order)."""
    out: list[SpanDescription] = []
    for video in read_activitynet_captions(path):
        for (s, e), sentence in zip(video.spans, video.sentences):
            a, b, widened = askable_span(s / video.duration, e / video.duration)
            out.append(SpanDescription(video.video_id, (a, b), sentence.strip(), "activitynet", widened=widened, index=len(out)))
    return out


def read_charades_spans(path: str | Path) -> list[SpanDescription]:
    """One TR sample per query of a Charades-STA file: describe the query's span."""
    out = []
    for t in read_charades(path):
        a, b, widened = askable_span(*t.span)
        out.append(SpanDescription(t.video, (a, b), t.caption.strip(), "charades", widened=widened, index=t.index))
    return out


def read_release_spans(path: str | Path) -> list[SpanDescription]:
    """TR samples of a release-format file: the file's question (its span inside), its answer as the reference."""
    out = []
    for qa in read_question_answers(path, "tr"):
        out.append(SpanDescription(qa.media, None, qa.answer.strip(), "release", qa.split, qa.question, index=qa.index))
    return out


class _Description(Benchmark):
    """Shared scoring of REG and TR: one caption answer per sample, corpus caption metrics."""

    published_scorer = False
    sources: tuple[str, ...] = ()

    def __init__(self, name: str, source: str, *, bins: BinCounts):
        if source not in self.sources:
            raise ConfigError(f"unknown {self.task.upper()} source {source!r}; expected one of {self.sources}")
        self.name = name
        self.source = source
        self.bins = bins

    def references(self, sample) -> tuple[str, ...]:
        raise NotImplementedError

    def score_sample(self, sample, answer: str, mode: str, num_frames: int) -> dict:
        parsed = parse_answer(answer, self.task, bins=self.bins)
        record: dict[str, Any] = {"id": sample.index, "references": list(self.references(sample)), "scores": {}}
        if isinstance(parsed, ParseFailure):
            record.update(parsed=parsed.to_dict(), readable=False, hypothesis="")
        else:
            record.update(parsed={"caption": parsed.caption}, readable=True, hypothesis=parsed.caption)
        return record

    def aggregate(self, samples: list, records: list[dict], mode: str) -> dict:
        if not records:
            return {}
        scores = caption_scores([r["references"] for r in records], [r["hypothesis"] for r in records])
        attach_caption_scores(records, scores.per_sample)
        return canonical_caption_metrics(scores.aggregate)

    def notes(self, mode: str) -> list[str]:
        return [
            "the release has no scorer for this task; canonical scoring as the captioning literature does it "
            "(region captioning on RefCOCOg: GRiT, Kosmos-2, GLaMM report METEOR and CIDEr)",
            "COCO caption toolkit: PTB tokens, BLEU-1..4, METEOR 1.5, ROUGE-L, CIDEr (document frequencies from this "
            "set); all numbers x100",
            "hypothesis = the answer without <|im_end|>; an empty answer is scored as an empty caption (0)",
        ]


class RegionCaptioning(_Description):
    """REG: ``refcocog-reg`` (RefCOCOg regions) or ``synth-reg`` (release-format files)."""

    task = "reg"
    sources = ("refcocog", "release")

    def load(self, path: str | Path) -> list[RegionDescription]:
        return read_refcocog_regions(path) if self.source == "refcocog" else read_release_regions(path)

    def references(self, sample: RegionDescription) -> tuple[str, ...]:
        return sample.references

    def request(self, sample: RegionDescription, mode: str, rng: random.Random, media_root, num_frames: int) -> Request:
        prompt = sample.question if sample.question is not None else "<image>\n" + prompts.reg(sample.box)
        return Request(sample.index, prompt, MediaRequest("image", str(Path(media_root) / sample.image), None, 1))

    def notes(self, mode: str) -> list[str]:
        extra = (
            ["a region = the entries of one image with one box; all their expressions are its references; "
             "asked with our REG prompt and the box normalised to the image"]
            if self.source == "refcocog"
            else ["samples, questions and reference answers as the release-format file holds them"]
        )
        return super().notes(mode) + extra


class SpanCaptioning(_Description):
    """TR: ``activitynet-tr``, ``charades-tr`` or ``synth-tr`` (release-format files)."""

    task = "tr"
    sources = ("activitynet", "charades", "release")

    def load(self, path: str | Path) -> list[SpanDescription]:
        reader = {"activitynet": read_activitynet_spans, "charades": read_charades_spans, "release": read_release_spans}
        return reader[self.source](path)

    def references(self, sample: SpanDescription) -> tuple[str, ...]:
        return (sample.reference,)

    def request(self, sample: SpanDescription, mode: str, rng: random.Random, media_root, num_frames: int) -> Request:
        if sample.source == "activitynet":
            path = str(video_path(media_root, sample.video))
        elif sample.source == "charades":
            path = video_file(sample.video, media_root, "canonical")
        else:
            path = str(Path(media_root) / sample.video)
        prompt = sample.question if sample.question is not None else "<video>\n" + prompts.tr(*sample.span)
        return Request(sample.index, prompt, MediaRequest("video", path, sample.split, num_frames))

    def score_sample(self, sample: SpanDescription, answer: str, mode: str, num_frames: int) -> dict:
        record = super().score_sample(sample, answer, mode, num_frames)
        if sample.widened:
            record["widened_span"] = list(sample.span)
        return record

    def notes(self, mode: str) -> list[str]:
        extra = {
            "activitynet": "one sample per event; span = seconds / duration (clipped to [0, 1]); whole video sampled; "
            "our TR prompt",
            "charades": "one sample per query; its normalised span; whole video sampled; our TR prompt",
            "release": "samples, questions and reference answers as the release-format file holds them; "
            "videos sampled over meta.split",
        }[self.source]
        return super().notes(mode) + [extra, f"a span empty at 3 decimals is widened to {MIN_SPAN} to be askable"]


__all__ = [
    "MIN_SPAN",
    "RegionCaptioning",
    "RegionDescription",
    "SpanCaptioning",
    "SpanDescription",
    "askable_span",
    "read_activitynet_spans",
    "read_charades_spans",
    "read_refcocog_regions",
    "read_release_regions",
    "read_release_spans",
]
