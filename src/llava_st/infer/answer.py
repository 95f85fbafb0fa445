"""One answer of the model, read into structure, and its one JSON form.

:class:`Answer` is what :class:`~llava_st.infer.LlavaST` returns;
:meth:`Answer.to_dict` is the JSON object that ``llava-st ask --json`` prints
and the REST server sends, :meth:`Answer.from_dict` reads it back, and
:func:`format_answer` is the text ``llava-st ask`` prints.

JSON schema (``schema_version`` 1). Normalised values lie in [0, 1]: time 0
is the first sampled frame and 1 the last; boxes are ``[x1, y1, x2, y2]``
over the frame's width and height. ``*_s`` and ``seconds`` fields are seconds
on the video's own clock (0 = its first frame); ``pixels`` are ``[x1, y1, x2,
y2]`` in pixels of the displayed frame (rotation applied). A value that cannot
be known (seconds of an array given without a frame rate) is ``null``.

==================  =============================================================
field               meaning
==================  =============================================================
``schema_version``  1
``question``        the question as asked (before the media tag was added)
``answer``          the generated text, bin tokens kept (``<TEMP-012>``)
``task``            the task it was read as (``tvg``, ``rec`` ...), ``null``: free
``ok``              false when the text does not follow the task's grammar
``media``           ``kind`` (image | video), ``source`` (path or ``null``),
                    ``width``, ``height`` (pixels), ``frame_ids`` (the sampled
                    frames' numbers in the video), ``timestamps`` (their seconds)
``spans``           every ``{s, e}`` span: ``start``, ``end`` (normalised),
                    ``start_s``, ``end_s`` (seconds)
``boxes``           every box: ``xyxy`` (normalised), ``pixels``
``track``           the ``key: [box]`` pairs: ``key`` (time bin), ``time``
                    (normalised), ``frame`` (sampled frame 0..T-1), ``frame_id``
                    (frame number in the video), ``seconds``, ``box`` (as above)
``events``          ``span`` (as above) and ``caption`` of each event (DVC, ELC)
``result``          the typed answer of :mod:`llava_st.protocol.answers` with its
                    ``type`` (``TemporalGrounding``, ``ParseFailure`` ...), or
                    ``null`` for a free question
``failures``        why parts of a free question's answer could not be read
``num_tokens``      tokens generated, the end-of-turn token included
==================  =============================================================
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import MediaError, ProtocolError
from ..media.load import LoadedMedia
from ..protocol import answers as A
from ..protocol.timebase import Timeline
from ..protocol.tokens import BinCounts

SCHEMA_VERSION = 1


@dataclass
class Answer:
    """What the model said, read into structure.

    Attributes:
        text: the generated answer, bin tokens kept (``<TEMP-012>``).
        question: the question as asked (before the media tag and markup conversion).
        task: the task the answer was read as (``None``: a free question).
        result: the typed answer of :mod:`llava_st.protocol.answers` for ``task``
            (a :class:`~llava_st.protocol.answers.ParseFailure` when the text does not
            follow the task's grammar), or ``None`` for a free question.
        spans: every ``{s, e}`` span in the text (normalised and seconds).
        boxes: every box in the text (normalised and pixels, xyxy).
        track: the ``key: [box]`` pairs (each key's sampled frame, its time in seconds).
        events: spans with captions (DVC answers; ELC's event).
        media: the media the question was about (frames, timeline, source).
        num_tokens: tokens generated, the end-of-turn token included.
        failures: for a free question, why spans, boxes or a track could not be read.
    """

    text: str
    question: str
    task: str | None
    result: Any
    spans: tuple[A.Span, ...]
    boxes: tuple[A.Box, ...]
    track: A.Track
    events: tuple[A.Event, ...]
    media: LoadedMedia
    num_tokens: int = 0
    failures: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """False when the answer does not follow its task's grammar."""
        return not isinstance(self.result, A.ParseFailure) and not self.failures

    @property
    def timeline(self) -> Timeline:
        return self.media.timeline

    # ---------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """The JSON object of the module docstring's schema."""
        tl = self.timeline
        return {
            "schema_version": SCHEMA_VERSION,
            "question": self.question,
            "answer": self.text,
            "task": self.task,
            "ok": self.ok,
            "media": {
                "kind": self.media.kind,
                "source": self.media.source,
                "width": tl.width,
                "height": tl.height,
                "frame_ids": list(tl.frame_ids) if tl.frame_ids is not None else None,
                "timestamps": list(tl.timestamps) if tl.timestamps is not None else None,
            },
            "spans": [_span_json(s) for s in self.spans],
            "boxes": [_box_json(b) for b in self.boxes],
            "track": [
                {"key": f.key, "time": f.time, "frame": f.frame, "frame_id": f.frame_id, "seconds": f.seconds,
                 "box": _box_json(f.box)}
                for f in self.track.frames
            ],
            "events": [{"span": _span_json(e.span), "caption": e.caption} for e in self.events],
            "result": None if self.result is None else self.result.to_dict(),
            "failures": list(self.failures),
            "num_tokens": self.num_tokens,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Answer":
        """An answer read back from :meth:`to_dict`'s JSON object. It carries no pixels
        (``media.frames`` is ``None``), so it can be printed and saved as JSON but not drawn."""
        version = data.get("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise ProtocolError(f"answer JSON has schema_version {version!r}; this version reads {SCHEMA_VERSION}")
        try:
            m = data["media"]
            timeline = Timeline(
                int(m["width"]), int(m["height"]),
                timestamps=None if m.get("timestamps") is None else tuple(m["timestamps"]),
                frame_ids=None if m.get("frame_ids") is None else tuple(m["frame_ids"]),
            )
            track = A.Track(tuple(
                A.TrackFrame(key=f["key"], time=f["time"], box=_box_of_json(f["box"]), frame=f.get("frame"),
                             frame_id=f.get("frame_id"), seconds=f.get("seconds"))
                for f in data.get("track", ())
            ))
            return cls(
                text=data["answer"],
                question=data["question"],
                task=data.get("task"),
                result=None if data.get("result") is None else _result_of_json(data["result"]),
                spans=tuple(A.Span(**s) for s in data.get("spans", ())),
                boxes=tuple(_box_of_json(b) for b in data.get("boxes", ())),
                track=track,
                events=tuple(A.Event(A.Span(**e["span"]), e["caption"]) for e in data.get("events", ())),
                media=LoadedMedia(m["kind"], None, timeline, m.get("source")),
                num_tokens=int(data.get("num_tokens", 0)),
                failures=tuple(data.get("failures", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"not an answer JSON object of schema_version {SCHEMA_VERSION}: {exc!r}") from exc

    # ---------------------------------------------------------------- output
    def plot(self, ground_truth: Any = None):
        """A matplotlib figure: the sampled frames with the boxes, and a timeline of the spans."""
        from .. import viz

        return viz.figure(self._frames(), self._drawable(), self.timeline, ground_truth=ground_truth)

    def save(self, path: str | os.PathLike, ground_truth: Any = None) -> Path:
        """Write the answer: ``.json`` (:meth:`to_dict`), ``.mp4`` (the video with the track
        drawn on it; needs a video read from a file) or a picture (``.png``, ``.pdf``, ...)."""
        from .. import viz

        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".json":
            path.write_text(self.to_json() + "\n")
        elif suffix == ".mp4":
            if self.media.kind != "video" or self.media.source is None or not Path(self.media.source).is_file():
                raise MediaError(f"{path}: an annotated video needs a question about a video file")
            viz.write_annotated_video(self.media.source, self._drawable(), self.timeline, path, ground_truth=ground_truth)
        else:
            viz.save_picture(path, self._frames(), self._drawable(), self.timeline, ground_truth=ground_truth)
        return path

    def _frames(self):
        if self.media.frames is None:
            raise MediaError("this answer was read back from JSON and holds no frames to draw on")
        return self.media.frames

    def _drawable(self):
        """The typed result to draw; for a free question, the track or the first box/span found."""
        if self.result is not None:
            return self.result
        if len(self.track):
            return A.SpatialGrounding(text=self.text, track=self.track)
        if self.boxes:
            return A.Grounding(text=self.text, box=self.boxes[0])
        if self.spans:
            return A.TemporalGrounding(text=self.text, span=self.spans[0])
        return A.Caption(text=self.text, caption=self.text)

    def __str__(self) -> str:
        return format_answer(self)


# ----------------------------------------------------------------- JSON parts


def _span_json(s: A.Span) -> dict:
    return {"start": s.start, "end": s.end, "start_s": s.start_s, "end_s": s.end_s}


def _box_json(b: A.Box) -> dict:
    return {"xyxy": list(b.xyxy), "pixels": list(b.pixels) if b.pixels is not None else None}


def _box_of_json(d: Mapping[str, Any]) -> A.Box:
    return A.Box(*d["xyxy"], pixels=None if d.get("pixels") is None else tuple(d["pixels"]))


# ``result`` holds a protocol answer as ``dataclasses.asdict`` wrote it: its parts
# are rebuilt by field name, everything else is kept as it is.
def _asdict_box(d):
    return A.Box(d["x1"], d["y1"], d["x2"], d["y2"], None if d.get("pixels") is None else tuple(d["pixels"]))


def _asdict_span(d):
    return None if d is None else A.Span(**d)


def _asdict_track(d):
    return A.Track(tuple(A.TrackFrame(**{**f, "box": _asdict_box(f["box"])}) for f in d["frames"]))


_PARTS = {
    "span": _asdict_span,
    "box": _asdict_box,
    "track": _asdict_track,
    "end": lambda d: A.TimePoint(**d),
    "events": lambda es: tuple(A.Event(_asdict_span(e["span"]), e["caption"]) for e in es),
    "phrases": lambda ps: tuple(A.Phrase(p["text"], _asdict_box(p["box"])) for p in ps),
}
_RESULTS = {cls.__name__: cls for cls in (
    A.TemporalGrounding, A.Grounding, A.SpatioTemporalGrounding, A.SpatialGrounding, A.EventLocalization,
    A.DenseEvents, A.GroundedCaption, A.Caption, A.ParseFailure,
)}


def _result_of_json(d: Mapping[str, Any]):
    fields = dict(d)
    cls = _RESULTS[fields.pop("type")]
    return cls(**{k: _PARTS[k](v) if k in _PARTS else v for k, v in fields.items()})


# ----------------------------------------------------------------- reading text


def read_answer(
    text: str, question: str, task: str | None, media: LoadedMedia, bins: BinCounts, num_tokens: int = 0,
    start: float | None = None,
) -> Answer:
    """Read generated text about ``media`` into an :class:`Answer` (never raises for a bad answer).

    ``bins``: the model's bin counts (``config.coords.bins``); ``start``: the
    normalised start an ELC prompt gave, so the event's span is ``[start, end]``.
    """
    tl = media.timeline
    failures = []
    spans = A.find_spans(text, task or "tvg", bins=bins, timeline=tl)
    if isinstance(spans, A.ParseFailure):
        failures.append(spans.reason)
        spans = ()
    boxes = A.find_boxes(text, task or "rec", bins=bins, timeline=tl)
    if isinstance(boxes, A.ParseFailure):
        failures.append(boxes.reason)
        boxes = ()
    track = A.find_track(text, task or "stvg", bins=bins, timeline=tl)
    if isinstance(track, A.ParseFailure):
        failures.append(track.reason)
        track = A.Track()
    result = None
    events: tuple[A.Event, ...] = ()
    if task is not None:
        result = A.parse_answer(text, task, bins=bins, timeline=tl, start=start)
        if isinstance(result, A.DenseEvents):
            events = result.events
        elif isinstance(result, A.EventLocalization) and result.span is not None:
            events = (A.Event(result.span, result.caption),)
    # a task's own grammar decides ``ok``; the loose search only matters for a free question
    return Answer(text=text, question=question, task=task, result=result, spans=tuple(spans), boxes=tuple(boxes),
                  track=track, events=events, media=media, num_tokens=num_tokens,
                  failures=tuple(failures) if task is None else ())


# ----------------------------------------------------------------- text output


def format_answer(answer: Answer) -> str:
    """Human-readable text of an answer (what ``llava-st ask`` prints)."""
    lines = [answer.text.strip() or "(empty answer)"]
    if isinstance(answer.result, A.ParseFailure):
        lines.append(f"  (could not read it as {answer.task}: {answer.result.reason})")
    for f in answer.failures:
        lines.append(f"  (could not read: {f})")
    for s in answer.spans:
        when = f"{s.start_s:.2f}s - {s.end_s:.2f}s" if s.start_s is not None else "seconds unknown"
        lines.append(f"  span  {when}  (normalised {s.start:.3f} - {s.end:.3f})")
    for e in answer.events:
        lines.append(f"  event {_fmt_span(e.span)}: {e.caption}")
    track_boxes = {f.box for f in answer.track.frames}
    for b in answer.boxes:
        if b not in track_boxes:
            lines.append(f"  box   {_fmt_box(b)}")
    for f in answer.track.frames:
        t = f"{f.seconds:.2f}s" if f.seconds is not None else f"t={f.time:.3f}"
        lines.append(f"  track {t} (frame {f.frame_id if f.frame_id is not None else f.frame}): {_fmt_box(f.box)}")
    return "\n".join(lines)


def _fmt_span(s: A.Span) -> str:
    return f"{s.start_s:.2f}s - {s.end_s:.2f}s" if s.start_s is not None else f"{s.start:.3f} - {s.end:.3f}"


def _fmt_box(b: A.Box) -> str:
    if b.pixels is not None:
        return "[" + ", ".join(f"{v:.1f}" for v in b.pixels) + "] px"
    return "[" + ", ".join(f"{v:.3f}" for v in b.xyxy) + "]"


__all__ = ["SCHEMA_VERSION", "Answer", "format_answer", "read_answer"]
