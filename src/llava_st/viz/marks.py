"""What a typed answer asks a picture to show: spans, boxes on sampled frames, a track, text.

:func:`read_marks` turns any result of :mod:`llava_st.protocol.answers` (or a
:class:`~llava_st.protocol.answers.ParseFailure`) into :class:`Marks`, checked against
the frames it will be drawn on: ``T`` sampled frames of ``width x height``
pixels. Every picture (grid, timeline, video) draws from marks, so the rules
live here once:

* times stay normalised to the sampled clip (0 = first sampled frame,
  1 = last); sampled frame ``i`` sits at ``i / (T - 1)`` (an image at 0);
* boxes are pixel ``xyxy`` on the drawn frames: a box's ``pixels`` when the
  answer carries them (they must lie inside the frame and agree with the
  normalised box times the frame size within one pixel, else the answer was
  read for another frame size), otherwise normalised ``xyxy`` times the size;
* a track frame's sampled index is its ``frame`` when known, otherwise
  ``round(time * (T - 1))``, the same frame its key names
  (:meth:`llava_st.protocol.answers.Timeline.frame_index`);
* REC and DGC boxes belong to the image: on a video's frames they are drawn
  on every frame shown (``frame`` is ``None``).

Bad inputs (a result or ground truth of the wrong type, a box outside the
frame, a track frame past the last sampled frame) raise errors that name the
input (``result`` or ``ground_truth``); a :class:`ParseFailure` result is not
an error: its marks carry the reason and nothing else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..protocol import answers as A
from ..protocol.timebase import Timeline, nearest_sampled_frame
from .draw import check_box_pixels

#: Answer type of each task, to check that a ground truth matches a parse failure's task.
TASK_TYPES: dict[str, type] = {
    "tvg": A.TemporalGrounding,
    "rec": A.Grounding,
    "stvg": A.SpatioTemporalGrounding,
    "svg": A.SpatialGrounding,
    "elc": A.EventLocalization,
    "dvc": A.DenseEvents,
    "dgc": A.GroundedCaption,
    "reg": A.Caption,
    "tr": A.Caption,
}

_ANSWER_TYPES = tuple(set(TASK_TYPES.values()))


@dataclass(frozen=True)
class SpanMark:
    """A span in normalised time, with its caption (DVC) or ``""``."""

    start: float
    end: float
    caption: str = ""
    start_s: float | None = None
    end_s: float | None = None


@dataclass(frozen=True)
class BoxMark:
    """A box to draw: pixel ``xyxy`` on sampled frame ``frame`` (``None``: every frame).

    ``time`` is the normalised time of a track frame (its key's time), ``label``
    a DGC phrase, ``seconds`` the track frame's time when the answer knows it.
    """

    pixels: tuple[float, float, float, float]
    frame: int | None = None
    time: float | None = None
    label: str = ""
    seconds: float | None = None


@dataclass(frozen=True)
class Marks:
    """Everything one answer draws.

    ``spans``: predicted spans (TVG, STVG, ELC with a start, DVC events).
    ``boxes``: REC/DGC boxes (``frame=None``) or track frames (``frame`` set),
    track frames in key order. ``track``: whether ``boxes`` is a per-frame
    track. ``end``: the ELC end time (normalised) and ``end_s`` its seconds.
    ``text``: a caption to show (REG/TR/DGC/ELC). ``failure``: the reason of a
    :class:`ParseFailure` (everything else is then empty). ``track_times`` and
    ``track_seconds``: each track frame's key time (normalised) and its
    seconds when the answer knows them (``None`` entries otherwise); these
    are read even when no frames are known (``boxes`` is then empty).
    """

    task: str
    spans: tuple[SpanMark, ...] = ()
    boxes: tuple[BoxMark, ...] = ()
    track: bool = False
    end: float | None = None
    end_s: float | None = None
    text: str = ""
    failure: str | None = None
    track_times: tuple[float, ...] = ()
    track_seconds: tuple[float | None, ...] = ()

    @property
    def has_times(self) -> bool:
        """Whether anything here sits on a time axis (a span, an end time or a track)."""
        return bool(self.spans) or self.end is not None or self.track

    def in_spans(self, times: np.ndarray) -> np.ndarray:
        """Boolean mask: which normalised ``times`` lie inside at least one span (ends included)."""
        times = np.asarray(times, dtype=np.float64)
        inside = np.zeros(times.shape, dtype=bool)
        for s in self.spans:
            # 1e-9 absorbs float error of i / (T - 1) against a span end that is a sampled frame.
            inside |= (times >= s.start - 1e-9) & (times <= s.end + 1e-9)
        return inside


def frame_times(num_frames: int) -> np.ndarray:
    """Normalised time of each sampled frame: ``i / (T - 1)``, ``[0.]`` for one frame."""
    if num_frames == 1:
        return np.zeros(1)
    return np.arange(num_frames, dtype=np.float64) / (num_frames - 1)


def check_result(result, name: str = "result") -> None:
    """``result`` must be a typed answer or a :class:`ParseFailure`."""
    if not isinstance(result, _ANSWER_TYPES + (A.ParseFailure,)):
        raise TypeError(
            f"{name} must be a typed answer of llava_st.protocol.answers (TemporalGrounding, Grounding, ...) "
            f"or a ParseFailure, got {type(result).__name__}"
        )


def check_ground_truth(result, ground_truth) -> None:
    """A ground truth must be a typed answer of the same kind as ``result`` (not a parse failure)."""
    if ground_truth is None:
        return
    if isinstance(ground_truth, A.ParseFailure):
        raise TypeError("ground_truth is a ParseFailure; a ground truth must be a typed answer")
    check_result(ground_truth, "ground_truth")
    expected = TASK_TYPES.get(result.task) if isinstance(result, A.ParseFailure) else type(result)
    if expected is not None and not isinstance(ground_truth, expected):
        raise TypeError(
            f"ground_truth is a {type(ground_truth).__name__} but result is a "
            f"{type(result).__name__ if not isinstance(result, A.ParseFailure) else f'ParseFailure of task {result.task!r}'}; "
            f"they must be answers of the same kind ({expected.__name__})"
        )


def check_timeline(timeline, num_frames: int | None, width: int | None, height: int | None, name: str = "timeline") -> None:
    """``timeline`` (or ``None``) must describe ``num_frames`` frames of ``width x height`` pixels."""
    if timeline is None:
        return
    if not isinstance(timeline, Timeline):
        raise TypeError(f"{name} must be a llava_st.protocol.answers.Timeline or None, got {type(timeline).__name__}")
    if num_frames is not None and timeline.num_frames != num_frames:
        raise ValueError(f"{name} describes {timeline.num_frames} sampled frames but {num_frames} frames were given")
    if width is not None and (timeline.width, timeline.height) != (width, height):
        raise ValueError(
            f"{name} is for {timeline.width}x{timeline.height} frames but the frames are {width}x{height}"
        )


def _box_pixels(box: A.Box, width: int, height: int, name: str) -> tuple[float, float, float, float]:
    scaled = (box.x1 * width, box.y1 * height, box.x2 * width, box.y2 * height)
    if not all(math.isfinite(v) and 0.0 <= v0 <= 1.0 for v, v0 in zip(scaled, box.xyxy)):
        raise ValueError(f"{name} {list(box.xyxy)} (normalised xyxy) is not inside [0, 1]")
    if box.pixels is None:
        return check_box_pixels(scaled, width, height, name)
    pixels = check_box_pixels(box.pixels, width, height, f"{name} pixels")
    if max(abs(a - b) for a, b in zip(pixels, scaled)) > 1.0:
        raise ValueError(
            f"{name} pixels {list(box.pixels)} do not match its normalised box {list(box.xyxy)} on a "
            f"{width}x{height} frame (it was read for a frame of another size)"
        )
    return pixels


def _track_boxes(track: A.Track, num_frames: int | None, width: int | None, height: int | None, name: str) -> tuple[BoxMark, ...]:
    if num_frames is None or width is None or height is None:
        return ()
    out = []
    for tf in track.frames:
        if tf.frame is not None:
            frame = int(tf.frame)
        else:
            frame = nearest_sampled_frame(tf.time, num_frames)
        if not 0 <= frame < num_frames:
            raise ValueError(
                f"{name} track key {tf.key} names sampled frame {frame} but only {num_frames} frames were given"
            )
        pixels = _box_pixels(tf.box, width, height, f"{name} box of track key {tf.key}")
        out.append(BoxMark(pixels, frame=frame, time=float(tf.time), seconds=tf.seconds))
    return tuple(out)


def _span(span: A.Span, caption: str = "") -> SpanMark:
    return SpanMark(float(span.start), float(span.end), caption, span.start_s, span.end_s)


def read_marks(
    result, num_frames: int | None = None, width: int | None = None, height: int | None = None, name: str = "result"
) -> Marks:
    """The marks of ``result`` on ``num_frames`` sampled frames of ``width x height`` pixels.

    Without the frames (``None``), only the times are read and ``boxes`` is empty.
    """
    check_result(result, name)
    marks = _read(result, num_frames, width, height, name)
    track = getattr(result, "track", None)
    if track is None:
        return marks
    return replace(
        marks,
        track_times=tuple(float(tf.time) for tf in track.frames),
        track_seconds=tuple(tf.seconds for tf in track.frames),
    )


def _read(result, num_frames: int | None, width: int | None, height: int | None, name: str) -> Marks:
    frames_known = num_frames is not None and width is not None and height is not None
    if isinstance(result, A.ParseFailure):
        return Marks(task=result.task, failure=result.reason)
    task = result.task
    if isinstance(result, A.TemporalGrounding):
        return Marks(task, spans=(_span(result.span),))
    if isinstance(result, A.Grounding):
        if not frames_known:
            return Marks(task)
        return Marks(task, boxes=(BoxMark(_box_pixels(result.box, width, height, f"{name} box")),))
    if isinstance(result, A.SpatioTemporalGrounding):
        return Marks(
            task, spans=(_span(result.span),), boxes=_track_boxes(result.track, num_frames, width, height, name), track=True
        )
    if isinstance(result, A.SpatialGrounding):
        return Marks(task, boxes=_track_boxes(result.track, num_frames, width, height, name), track=True)
    if isinstance(result, A.EventLocalization):
        spans = (_span(result.span),) if result.span is not None else ()
        return Marks(
            task, spans=spans, boxes=_track_boxes(result.track, num_frames, width, height, name), track=True,
            end=float(result.end.value), end_s=result.end.seconds, text=result.caption,
        )
    if isinstance(result, A.DenseEvents):
        return Marks(task, spans=tuple(_span(e.span, e.caption) for e in result.events))
    if isinstance(result, A.GroundedCaption):
        if not frames_known:
            return Marks(task, text=result.caption)
        boxes = tuple(
            BoxMark(_box_pixels(p.box, width, height, f"{name} box of phrase {i} ({p.text!r})"), label=p.text)
            for i, p in enumerate(result.phrases)
        )
        return Marks(task, boxes=boxes, text=result.caption)
    return Marks(task, text=result.caption)  # Caption (REG / TR)
