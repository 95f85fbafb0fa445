"""DVC: dense video captioning, scored with the ActivityNet Captions protocol and SODA_c.

The release has no DVC scorer (EVAL-PROTOCOL); canonical mode scores as
:mod:`.dense_captioning` describes: event precision and recall at tIoU 0.3,
0.5, 0.7 and 0.9, caption scores (METEOR, CIDEr, BLEU, ROUGE-L) of the
predictions paired with the events they overlap, averaged over those
thresholds, and SODA_c. Every number is a percentage.

Samples (one per video):

* ``activitynet-dvc``: an ActivityNet Captions file (:mod:`.activitynet`);
  truth in seconds; the model sees the whole video and answers times
  normalised to it, read as ``seconds = time * duration``;
* ``synth-dvc``: a release-format file (ST-Synth's ``test/dvc.json``, or any
  such file; :mod:`.release_format`): the file's question, the truth read from
  its answer with the DVC grammar, times normalised to ``meta.split``.

An answer is read with the canonical DVC grammar (``{s, e}, caption.``
repeated; :func:`llava_st.protocol.answers.parse_answer`); an answer it cannot
read is a miss (no predicted event: precision, recall and caption scores 0
for that video), and so is an answer with no event.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..data.formats import AnnotationError
from ..errors import ConfigError
from ..protocol import prompts
from ..protocol.answers import DenseEvents, ParseFailure, parse_answer
from ..protocol.tokens import RELEASE_BINS, BinCounts
from . import dense_captioning as protocol
from .activitynet import read_activitynet_captions, video_path
from .base import Benchmark, MediaRequest, Request
from .captions import CANONICAL_NAMES
from .release_format import read_question_answers


@dataclass(frozen=True)
class DenseVideo:
    """One video's events: spans in ``duration`` units (seconds, or 1 for times normalised to the clip) and captions.

    ``video``: a path under the media folder, or an ActivityNet video id
    (``source == "activitynet"``); ``question``: the file's own question
    (release format), else ``None`` (our DVC prompt).
    """

    video: str
    duration: float
    spans: tuple[tuple[float, float], ...]
    captions: tuple[str, ...]
    source: Literal["activitynet", "release"] = "release"
    split: tuple[int, int] | None = None
    question: str | None = None
    index: int = field(default=0, compare=False)

    def events(self) -> protocol.Events:
        return protocol.Events.of(self.spans, self.captions)


def read_activitynet_videos(path: str | Path) -> list[DenseVideo]:
    """The videos of an ActivityNet Captions file; a video without events is an error (recall needs one)."""
    out = []
    for v in read_activitynet_captions(path):
        if not v.spans:
            raise AnnotationError(path, v.index, f"{v.video_id}.timestamps", "a dense-captioning video needs at least one event")
        out.append(DenseVideo(v.video_id, v.duration, v.spans, v.sentences, "activitynet", index=v.index))
    return out


def read_release_videos(path: str | Path) -> list[DenseVideo]:
    """DVC samples of a release-format file: the truth is its answer, read with the DVC grammar."""
    out = []
    for qa in read_question_answers(path, "dvc"):
        truth = parse_answer(qa.answer, "dvc", bins=RELEASE_BINS)
        if isinstance(truth, ParseFailure):
            raise AnnotationError(path, qa.index, "conversations[1].value", f"not a DVC answer ({truth.reason}): {qa.answer!r}")
        spans = tuple((e.span.start, e.span.end) for e in truth.events)
        captions = tuple(e.caption for e in truth.events)
        out.append(DenseVideo(qa.media, 1.0, spans, captions, "release", qa.split, qa.question, index=qa.index))
    return out


class DenseVideoCaptioning(Benchmark):
    """DVC: ``activitynet-dvc`` or ``synth-dvc`` (release-format files)."""

    task = "dvc"
    published_scorer = False
    sources = ("activitynet", "release")

    def __init__(self, name: str, source: str, *, bins: BinCounts):
        if source not in self.sources:
            raise ConfigError(f"unknown DVC source {source!r}; expected one of {self.sources}")
        self.name = name
        self.source = source
        self.bins = bins

    def load(self, path: str | Path) -> list[DenseVideo]:
        return read_activitynet_videos(path) if self.source == "activitynet" else read_release_videos(path)

    def request(self, sample: DenseVideo, mode: str, rng: random.Random, media_root, num_frames: int) -> Request:
        if sample.source == "activitynet":
            path = str(video_path(media_root, sample.video))
        else:
            path = str(Path(media_root) / sample.video)
        prompt = sample.question if sample.question is not None else "<video>\n" + prompts.DVC
        return Request(sample.index, prompt, MediaRequest("video", path, sample.split, num_frames))

    def score_sample(self, sample: DenseVideo, answer: str, mode: str, num_frames: int) -> dict:
        parsed = parse_answer(answer, "dvc", bins=self.bins)
        record: dict[str, Any] = {"id": sample.index}
        if isinstance(parsed, ParseFailure):
            record.update(parsed=parsed.to_dict(), readable=False)
            events: list[dict[str, Any]] = []
        else:
            assert isinstance(parsed, DenseEvents)
            events = [
                {"span": [e.span.start * sample.duration, e.span.end * sample.duration], "caption": e.caption}
                for e in parsed.events
            ]
            record.update(parsed={"events": events}, readable=True)
        pred = _events(events)
        precision, recall = protocol.detection(pred, sample.events())
        record["scores"] = {
            **{f"Precision@{t}": float(v) * 100 for t, v in zip(protocol.THRESHOLDS, precision)},
            **{f"Recall@{t}": float(v) * 100 for t, v in zip(protocol.THRESHOLDS, recall)},
        }
        return record

    def aggregate(self, samples: list[DenseVideo], records: list[dict], mode: str) -> dict:
        if not records:
            return {}
        videos = [(_events(_parsed_events(r)), s.events()) for s, r in zip(samples, records)]
        result = protocol.evaluate(videos)
        for r, per_video in zip(records, result.per_video):
            r["scores"].update({k: v * 100 for k, v in per_video.items() if k not in ("Precision", "Recall")})
        return {CANONICAL_NAMES.get(k, k): v * 100 for k, v in result.metrics.items()}

    def notes(self, mode: str) -> list[str]:
        out = [
            "the release has no DVC scorer; canonical scoring with the ActivityNet Captions protocol "
            "(densevid_eval, 2018 version) and SODA_c (Fujita et al. 2020); all numbers x100",
            "tIoU = overlap / (min(hull, sum of lengths) + 1e-8); precision and recall count tIoU > t at "
            "t = 0.3, 0.5, 0.7, 0.9, per video, then averaged over videos and thresholds; F1 of the two means",
            "captions: each prediction is paired with every event it overlaps with tIoU >= t (else with a "
            "reference sharing no word); BLEU-1..4, METEOR, ROUGE-L, CIDEr per video, averaged over videos "
            "and thresholds",
            "SODA_c: order-preserving matching maximising tIoU x METEOR, F-measure per video, averaged",
            "an unreadable answer, or one with no event, scores 0 for its video",
        ]
        if self.source == "activitynet":
            out.append("predicted times are normalised to the whole video: seconds = time x duration")
        else:
            out.append("truth read from the release-format answers; times normalised to meta.split")
        return out


def _parsed_events(record: dict) -> list[dict[str, Any]]:
    parsed = record.get("parsed") or {}
    return list(parsed.get("events") or [])


def _events(events: list[dict[str, Any]]) -> protocol.Events:
    spans = np.asarray([e["span"] for e in events], dtype=np.float64).reshape(-1, 2)
    return protocol.Events(spans, tuple(e["caption"] for e in events))


__all__ = ["DenseVideo", "DenseVideoCaptioning", "read_activitynet_videos", "read_release_videos"]
