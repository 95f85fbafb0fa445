"""Typed results of a generated answer: spans, boxes, tracks and one class per task (SPEC §1, §3).

These are what :func:`llava_st.protocol.answers.parse_answer` returns; the
parser itself (text -> results) is :mod:`llava_st.protocol.answers`.

Conventions (every result states them in its fields):

* normalised values lie in [0, 1]; time 0 is the first sampled frame and 1 the
  last; boxes are ``xyxy`` (x1, y1, x2, y2) over the frame width and height;
* ``*_s`` fields are seconds, ``pixels`` fields are ``xyxy`` in pixels; both are
  filled only when the parser is given a :class:`~llava_st.protocol.timebase.Timeline`;
* a track key is a time bin ``k`` of ``n = bins.time`` bins: normalised time
  ``k / (n - 1)``, sampled frame ``round(k / (n - 1) * (T - 1))``.

Every result has ``ok = True`` and ``to_dict()``; a malformed answer is a
:class:`ParseFailure` (``ok = False``) holding the raw text and the reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, Union

Task = Literal["tvg", "rec", "stvg", "svg", "elc", "dvc", "dgc", "reg", "tr"]
TASKS: tuple[str, ...] = ("tvg", "rec", "stvg", "svg", "elc", "dvc", "dgc", "reg", "tr")


@dataclass(frozen=True)
class Span:
    """A time span, normalised to the sampled clip; ``start_s``/``end_s`` in seconds when known."""

    start: float
    end: float
    start_s: float | None = None
    end_s: float | None = None


@dataclass(frozen=True)
class Box:
    """A box ``xyxy`` normalised to the frame; ``pixels`` is ``xyxy`` in pixels when the size is known."""

    x1: float
    y1: float
    x2: float
    y2: float
    pixels: tuple[float, float, float, float] | None = None

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)


@dataclass(frozen=True)
class TrackFrame:
    """One ``key: [box]`` pair of a per-frame track.

    Attributes:
        key: the time bin written in the answer.
        time: ``key / (n - 1)`` with ``n = bins.time``, normalised time.
        box: the box on that frame.
        frame: index of the sampled frame (0..T-1) when a timeline is known.
        frame_id: absolute frame number when the timeline has frame ids.
        seconds: presentation time of that frame when the timeline has timestamps.
    """

    key: int
    time: float
    box: Box
    frame: int | None = None
    frame_id: int | None = None
    seconds: float | None = None


@dataclass(frozen=True)
class Track:
    """Per-frame boxes, one per distinct key, in key order."""

    frames: tuple[TrackFrame, ...] = ()

    @property
    def keys(self) -> tuple[int, ...]:
        return tuple(f.key for f in self.frames)

    def __len__(self) -> int:
        return len(self.frames)


@dataclass(frozen=True)
class TimePoint:
    """A single time, normalised; ``seconds`` when known."""

    value: float
    seconds: float | None = None


@dataclass(frozen=True)
class Event:
    span: Span
    caption: str


@dataclass(frozen=True)
class Phrase:
    """A phrase of a grounded caption and the box that follows it.

    ``text`` is what precedes the box back to the previous box (or the start),
    stripped of surrounding spaces and punctuation.
    """

    text: str
    box: Box


@dataclass(frozen=True)
class _Answer:
    text: str

    ok = True

    def to_dict(self) -> dict[str, Any]:
        out = {"type": type(self).__name__}
        out.update(asdict(self))
        return out


@dataclass(frozen=True)
class TemporalGrounding(_Answer):
    """TVG: when does the query happen."""

    span: Span
    task: str = "tvg"


@dataclass(frozen=True)
class Grounding(_Answer):
    """REC: where is the referred object in the image."""

    box: Box
    task: str = "rec"


@dataclass(frozen=True)
class SpatioTemporalGrounding(_Answer):
    """STVG: when it happens and where the object is on each frame of that span."""

    span: Span
    track: Track
    task: str = "stvg"


@dataclass(frozen=True)
class SpatialGrounding(_Answer):
    """SVG: where the object is on each frame of the given span."""

    track: Track
    task: str = "svg"


@dataclass(frozen=True)
class EventLocalization(_Answer):
    """ELC: from a given start and box, when the event ends, what it is, and the track.

    ``span`` is ``[start, end]`` when the start (given in the prompt) is passed
    to the parser, else ``None``.
    """

    end: TimePoint
    caption: str
    track: Track
    span: Span | None = None
    task: str = "elc"


@dataclass(frozen=True)
class DenseEvents(_Answer):
    """DVC: several events, each a span and its caption."""

    events: tuple[Event, ...]
    task: str = "dvc"


@dataclass(frozen=True)
class GroundedCaption(_Answer):
    """DGC: a caption whose phrases are each followed by a box.

    ``caption`` is the text with the boxes removed.
    """

    caption: str
    phrases: tuple[Phrase, ...]
    task: str = "dgc"


@dataclass(frozen=True)
class Caption(_Answer):
    """REG / TR: a description."""

    caption: str
    task: str = "reg"


@dataclass(frozen=True)
class ParseFailure:
    """An answer that does not follow its task's grammar: the raw text and why."""

    task: str
    text: str
    reason: str

    ok = False

    def to_dict(self) -> dict[str, Any]:
        return {"type": "ParseFailure", "task": self.task, "text": self.text, "reason": self.reason}


Answer = Union[
    TemporalGrounding,
    Grounding,
    SpatioTemporalGrounding,
    SpatialGrounding,
    EventLocalization,
    DenseEvents,
    GroundedCaption,
    Caption,
]


__all__ = [
    "Answer",
    "Box",
    "Caption",
    "DenseEvents",
    "Event",
    "EventLocalization",
    "GroundedCaption",
    "Grounding",
    "ParseFailure",
    "Phrase",
    "Span",
    "SpatialGrounding",
    "SpatioTemporalGrounding",
    "TASKS",
    "Task",
    "TemporalGrounding",
    "TimePoint",
    "Track",
    "TrackFrame",
]
