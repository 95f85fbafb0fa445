"""Typed answers: generated text -> bins -> numbers -> spans, boxes and tracks (SPEC §1, §3).

The model answers in text whose coordinates are bin tokens (``<TEMP-012>``,
``<WIDTH-036>``, ``<HEIGHT-037>``; bin ``k`` of ``n`` means ``k / (n - 1)``).
The release rewrites them to decimals (``{<TEMP-012><TEMP-045>}`` ->
``{0.12121,0.45455}``, :func:`llava_st.protocol.coords.release_rewrite`). This module
reads either form and returns one typed result per task grammar:

==========  ===========================================  =========================
task        answer grammar (after decoding)              result
==========  ===========================================  =========================
``tvg``     ``{s, e}``                                   :class:`TemporalGrounding`
``rec``     ``[x1, y1, x2, y2]``                         :class:`Grounding`
``stvg``    ``{s, e}`` then ``k: [x1, y1, x2, y2], ...``  :class:`SpatioTemporalGrounding`
``svg``     ``k: [x1, y1, x2, y2], ...``                 :class:`SpatialGrounding`
``elc``     ``Ends in e, caption. k: [...], ...``        :class:`EventLocalization`
``dvc``     ``{s, e}, caption. {s, e}, caption. ...``    :class:`DenseEvents`
``dgc``     ``phrase [x1, y1, x2, y2] phrase [...] ...``  :class:`GroundedCaption`
``reg``     free text                                    :class:`Caption`
``tr``      free text                                    :class:`Caption`
==========  ===========================================  =========================

Conventions (every result states them in its fields):

* normalised values lie in [0, 1]; time 0 is the first sampled frame and 1 the
  last; boxes are ``xyxy`` (x1, y1, x2, y2) over the frame width and height;
* ``*_s`` fields are seconds, ``pixels`` fields are ``xyxy`` in pixels; both are
  filled only when a :class:`Timeline` is given, through it;
* ``num_bins`` is the bins per axis: one count, or ``(time bins, space bins)``;
  a bin token reads with its own axis' count;
* a track key is a time bin ``k`` (of ``n`` time bins); it names sampled frame
  ``round(k / (n - 1) * (T - 1))`` (Python ``round``).

A malformed answer gives a :class:`ParseFailure` holding the raw text and the
reason: parsing never raises and never guesses. What counts as malformed:
no element of the grammar, a plain number outside [0, 1], a bin outside
``0..n - 1``, a span or box that ends before it starts, and two
different boxes for one frame key. Separators between the numbers of one
span or box may be commas and/or whitespace (``{<TEMP-012>, <TEMP-045>}``,
``[<WIDTH-036> <HEIGHT-037> ...]``). The axis of a bin token is not checked:
the decimal form cannot carry it, and both forms must read the same.

Both forms read the same because the decimal form is first turned back into
bin tokens (:func:`to_token_form`): a number written with exactly five
decimals that equals ``k / (n - 1)`` and is followed by the rewrite's comma
(or by ``]``/``}``, where the release closed the comma up) is bin ``k``.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Literal, Sequence, Union

import numpy as np
from .timebase import OutOfRangeError, Timeline

Task = Literal["tvg", "rec", "stvg", "svg", "elc", "dvc", "dgc", "reg", "tr"]
TASKS: tuple[str, ...] = ("tvg", "rec", "stvg", "svg", "elc", "dvc", "dgc", "reg", "tr")

#: Text the release removes from a decoded answer before anything else.
END_OF_TURN = "<|im_end|>"


# ----------------------------------------------------------------- results


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
        time: ``key / (num_bins - 1)``, normalised time.
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

# ----------------------------------------------------------------- text forms

_BIN = r"<(?:TEMP|HEIGHT|WIDTH)-\d+>"
_PLAIN = r"(?<![\w.+-])\d+(?:\.\d+)?(?![\w.])"
_COORD = f"(?:{_BIN}|{_PLAIN})"
_SEP = r"[\s,]*"
_BIN_VALUE_RE = re.compile(r"<(TEMP|HEIGHT|WIDTH)-(\d+)>")

#: Bins per axis: one count for every axis, or ``(time bins, space bins)``.
Bins = Union[int, tuple[int, int]]


def _counts(num_bins: Bins) -> tuple[int, int]:
    """``(time bins, space bins)`` of a :data:`Bins` value."""
    nt, ns = (num_bins, num_bins) if isinstance(num_bins, int) else num_bins
    if nt < 2 or ns < 2:
        raise ValueError(f"every axis needs at least 2 bins, got {num_bins!r}")
    return int(nt), int(ns)
_SPAN_RE = re.compile(r"\{\s*(" + _COORD + ")" + _SEP + "(" + _COORD + r")\s*\}")
_BOX_BODY = r"\[\s*(" + _COORD + ")" + _SEP + "(" + _COORD + ")" + _SEP + "(" + _COORD + ")" + _SEP + "(" + _COORD + r")\s*\]"
_BOX_RE = re.compile(_BOX_BODY)
_PAIR_RE = re.compile(r"(" + _BIN + r")\s*,?\s*:\s*" + _BOX_BODY)
_END_RE = re.compile(r"Ends in\s*(" + _COORD + ")")
_OBJECT_RE = re.compile(r"Object bounding box", re.IGNORECASE)
# A decimal the release's rewrite produced: five decimals, then its comma (or a closing bracket).
_DECIMAL_BIN_RE = re.compile(r"(?<![\w.+-])(\d+\.\d{5})(?:,|(?=[\]}]))")


def _decimal_table(num_bins: int) -> dict[str, int]:
    return {f"{k / (num_bins - 1):.5f}": k for k in range(num_bins)}


_TABLES: dict[int, dict[str, int]] = {}


def to_token_form(text: str, num_bins: Bins = 100) -> str:
    """Undo the release's decimal rewrite: ``{0.12121,0.45455}`` -> ``{<TEMP-012><TEMP-045>}``.

    Also removes every ``<|im_end|>`` (as the release does). Text that already
    holds bin tokens keeps them. A decimal becomes bin ``k`` only when it is
    written with exactly five decimals, equals ``k / (n - 1)`` (``n`` the bins of its axis) to those
    decimals and carries the rewrite's comma (or is followed by ``]`` or ``}``,
    where the rewrite closed the comma up). The axis is inferred from the
    position: inside ``[...]`` the values alternate WIDTH, HEIGHT, elsewhere
    TEMP. ``release_rewrite(to_token_form(d)) == d`` for every rewritten ``d``.

    Example::

        >>> to_token_form("Ends in 0.80808,, a dog. 0.12121,:[0.36364,0.37374,0.63636,0.54545]")
        'Ends in <TEMP-080>, a dog. <TEMP-012>:[<WIDTH-036><HEIGHT-037><WIDTH-063><HEIGHT-054>]'
    """
    text = text.replace(END_OF_TURN, "")
    nt, ns = _counts(num_bins)
    time_table = _TABLES.get(nt) or _TABLES.setdefault(nt, _decimal_table(nt))
    space_table = _TABLES.get(ns) or _TABLES.setdefault(ns, _decimal_table(ns))
    out: list[str] = []
    pos = 0
    depth = 0  # inside [...]?
    slot = 0  # position of the value inside the current [...]
    for m in _DECIMAL_BIN_RE.finditer(text):
        between = text[pos : m.start()]
        for ch in between:
            if ch == "[":
                depth, slot = 1, 0
            elif ch == "]":
                depth = 0
        out.append(between)
        k = (space_table if depth else time_table).get(m.group(1))
        if k is None:
            out.append(m.group(0))
        else:
            axis = ("WIDTH", "HEIGHT")[slot % 2] if depth else "TEMP"
            out.append(f"<{axis}-{k:03d}>")
            slot += 1
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)


# ----------------------------------------------------------------- components


def _value(raw: str, num_bins: Bins) -> float | str:
    """A coordinate (bin token or plain number) -> value in [0, 1], or the reason it is not one."""
    m = _BIN_VALUE_RE.fullmatch(raw)
    if m:
        nt, ns = _counts(num_bins)
        n = nt if m.group(1) == "TEMP" else ns
        k = int(m.group(2))
        if k >= n:
            return f"bin token {raw} is outside 0..{n - 1}"
        return k / (n - 1)
    v = float(raw)
    if not 0.0 <= v <= 1.0:
        return f"value {raw} is outside [0, 1]"
    return v


def _values(raws: Iterable[str], num_bins: Bins) -> list[float] | str:
    out = []
    for raw in raws:
        v = _value(raw, num_bins)
        if isinstance(v, str):
            return v
        out.append(v)
    return out


def _make_span(s: float, e: float, timeline: Timeline | None) -> Span:
    if timeline is not None and timeline.timestamps is not None:
        return Span(s, e, float(timeline.to_seconds(s)), float(timeline.to_seconds(e)))
    return Span(s, e)


def _make_box(vals: Sequence[float], timeline: Timeline | None) -> Box:
    px = timeline.box_to_pixels(vals) if timeline is not None else None
    return Box(vals[0], vals[1], vals[2], vals[3], px)


def _box_from_match(groups: Sequence[str], num_bins: Bins, timeline: Timeline | None) -> Box | str:
    vals = _values(groups, num_bins)
    if isinstance(vals, str):
        return vals
    x1, y1, x2, y2 = vals
    if x2 < x1 or y2 < y1:
        return f"box [{', '.join(groups)}] ends before it starts (xyxy needs x1 <= x2 and y1 <= y2)"
    return _make_box(vals, timeline)


def find_span(text: str, task: str = "tvg", num_bins: Bins = 100, timeline: Timeline | None = None) -> Span | ParseFailure:
    """The first ``{s, e}`` span of an answer (either text form)."""
    tokens = to_token_form(text, num_bins)
    m = _SPAN_RE.search(tokens)
    if m is None:
        return ParseFailure(task, text, "no {start, end} span found")
    vals = _values(m.groups(), num_bins)
    if isinstance(vals, str):
        return ParseFailure(task, text, vals)
    s, e = vals
    if e < s:
        return ParseFailure(task, text, f"span {m.group(0)} ends before it starts")
    return _make_span(s, e, timeline)


def find_box(text: str, task: str = "rec", num_bins: Bins = 100, timeline: Timeline | None = None) -> Box | ParseFailure:
    """The first ``[x1, y1, x2, y2]`` box of an answer (either text form)."""
    tokens = to_token_form(text, num_bins)
    m = _BOX_RE.search(tokens)
    if m is None:
        return ParseFailure(task, text, "no [x1, y1, x2, y2] box found")
    box = _box_from_match(m.groups(), num_bins, timeline)
    return ParseFailure(task, text, box) if isinstance(box, str) else box


def find_spans(text: str, task: str = "tvg", num_bins: Bins = 100, timeline: Timeline | None = None) -> tuple[Span, ...] | ParseFailure:
    """Every ``{s, e}`` span of an answer, in order (empty when there is none)."""
    tokens = to_token_form(text, num_bins)
    spans = []
    for m in _SPAN_RE.finditer(tokens):
        vals = _values(m.groups(), num_bins)
        if isinstance(vals, str):
            return ParseFailure(task, text, vals)
        if vals[1] < vals[0]:
            return ParseFailure(task, text, f"span {m.group(0)} ends before it starts")
        spans.append(_make_span(vals[0], vals[1], timeline))
    return tuple(spans)


def find_boxes(text: str, task: str = "rec", num_bins: Bins = 100, timeline: Timeline | None = None) -> tuple[Box, ...] | ParseFailure:
    """Every ``[x1, y1, x2, y2]`` box of an answer, in order, those of ``key: [box]`` pairs included."""
    tokens = to_token_form(text, num_bins)
    boxes = []
    for m in _BOX_RE.finditer(tokens):
        box = _box_from_match(m.groups(), num_bins, timeline)
        if isinstance(box, str):
            return ParseFailure(task, text, box)
        boxes.append(box)
    return tuple(boxes)


def find_track(text: str, task: str = "stvg", num_bins: Bins = 100, timeline: Timeline | None = None) -> Track | ParseFailure:
    """Every ``key: [x1, y1, x2, y2]`` pair of an answer, as a track in key order.

    An empty track (no pair) is a valid, empty :class:`Track`; a key written
    twice with the same box counts once, with two different boxes it is a
    failure (which box is meant cannot be known).
    """
    tokens = to_token_form(text, num_bins)
    nt, _ = _counts(num_bins)
    by_key: dict[int, TrackFrame] = {}
    for m in _PAIR_RE.finditer(tokens):
        key_raw = m.group(1)
        k = int(_BIN_VALUE_RE.fullmatch(key_raw).group(2))  # type: ignore[union-attr]  # a time bin
        if k >= nt:
            return ParseFailure(task, text, f"frame key {key_raw} is outside 0..{nt - 1}")
        box = _box_from_match(m.groups()[1:], num_bins, timeline)
        if isinstance(box, str):
            return ParseFailure(task, text, f"frame key {key_raw}: {box}")
        if k in by_key:
            if by_key[k].box.xyxy != box.xyxy:
                return ParseFailure(task, text, f"frame key {key_raw} is given twice with different boxes")
            continue
        frame = frame_id = seconds = None
        if timeline is not None:
            frame = timeline.frame_index(k, nt)
            frame_id = timeline.frame_ids[frame] if timeline.frame_ids is not None else None
            seconds = timeline.frame_seconds(frame) if timeline.timestamps is not None else None
        by_key[k] = TrackFrame(k, k / (nt - 1), box, frame, frame_id, seconds)
    return Track(tuple(by_key[k] for k in sorted(by_key)))


def find_end(text: str, task: str = "elc", num_bins: Bins = 100, timeline: Timeline | None = None) -> TimePoint | ParseFailure:
    """The time after ``Ends in`` (ELC)."""
    tokens = to_token_form(text, num_bins)
    m = _END_RE.search(tokens)
    if m is None:
        return ParseFailure(task, text, "no 'Ends in <time>' found")
    v = _value(m.group(1), num_bins)
    if isinstance(v, str):
        return ParseFailure(task, text, v)
    seconds = None
    if timeline is not None and timeline.timestamps is not None:
        seconds = float(timeline.to_seconds(v))
    return TimePoint(v, seconds)


def find_elc_caption(text: str, task: str = "elc", num_bins: Bins = 100) -> str | ParseFailure:
    """The event caption of an ELC answer.

    The text after ``Ends in <time>`` (its comma dropped), or from the start when
    there is no ``Ends in``, up to ``Object bounding box`` or the first
    ``key: [box]`` pair, stripped. Empty -> failure.
    """
    tokens = to_token_form(text, num_bins)
    m = _END_RE.search(tokens)
    rest = tokens[m.end() :] if m else tokens
    rest = rest.lstrip(" \t\n,")
    cut = len(rest)
    for pattern in (_OBJECT_RE, _PAIR_RE):
        hit = pattern.search(rest)
        if hit is not None:
            cut = min(cut, hit.start())
    caption = rest[:cut].strip()
    if not caption:
        return ParseFailure(task, text, "no event caption found")
    return caption


def _find_events(text: str, task: str, num_bins: Bins, timeline: Timeline | None) -> tuple[Event, ...] | ParseFailure:
    tokens = to_token_form(text, num_bins)
    matches = list(_SPAN_RE.finditer(tokens))
    if not matches:
        return ParseFailure(task, text, "no {start, end} span found")
    events = []
    for i, m in enumerate(matches):
        vals = _values(m.groups(), num_bins)
        if isinstance(vals, str):
            return ParseFailure(task, text, f"event {i}: {vals}")
        if vals[1] < vals[0]:
            return ParseFailure(task, text, f"event {i}: span {m.group(0)} ends before it starts")
        stop = matches[i + 1].start() if i + 1 < len(matches) else len(tokens)
        caption = tokens[m.end() : stop].strip().lstrip(",:").strip()
        if not caption:
            return ParseFailure(task, text, f"event {i}: span {m.group(0)} has no caption")
        events.append(Event(_make_span(vals[0], vals[1], timeline), caption))
    return tuple(events)


_PHRASE_STRIP = " \t\n,.;:"


def _find_phrases(text: str, task: str, num_bins: Bins, timeline: Timeline | None) -> GroundedCaption | ParseFailure:
    tokens = to_token_form(text, num_bins)
    matches = list(_BOX_RE.finditer(tokens))
    if not matches:
        return ParseFailure(task, text, "no [x1, y1, x2, y2] box found")
    phrases = []
    pieces = []
    pos = 0
    for i, m in enumerate(matches):
        box = _box_from_match(m.groups(), num_bins, timeline)
        if isinstance(box, str):
            return ParseFailure(task, text, f"box {i}: {box}")
        before = tokens[pos : m.start()]
        pieces.append(before)
        phrase = before.strip(_PHRASE_STRIP)
        if not phrase:
            return ParseFailure(task, text, f"box {i} {m.group(0)} follows no phrase")
        phrases.append(Phrase(phrase, box))
        pos = m.end()
    pieces.append(tokens[pos:])
    caption = re.sub(r"\s+", " ", "".join(pieces)).strip()
    caption = re.sub(r"\s+([,.;:!?])", r"\1", caption)
    return GroundedCaption(text=text, caption=caption, phrases=tuple(phrases), task=task)


# ----------------------------------------------------------------- one entry point


def parse_answer(
    text: str,
    task: str,
    *,
    timeline: Timeline | None = None,
    num_bins: Bins = 100,
    start: float | None = None,
) -> Answer | ParseFailure:
    """Read a generated answer into the typed result of ``task`` (see the module table).

    Args:
        text: the decoded answer, with bin tokens or after the release's decimal rewrite.
        task: one of :data:`TASKS`.
        timeline: the sampled frames' timestamps / ids and the frame size; with
            it, results carry seconds, pixels and frame indices too.
        num_bins: bins per axis (100 in the release): one count, or ``(time bins, space bins)``.
        start: ELC only: the normalised start time given in the prompt; the
            result's ``span`` is then ``[start, end]``.

    Returns:
        The typed answer, or :class:`ParseFailure` (never raises for a bad answer;
        an unknown ``task`` is a programming error and raises ``ValueError``).
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    if not isinstance(text, str):
        return ParseFailure(task, repr(text), f"answer is not text but {type(text).__name__}")
    try:
        return _parse(text, task, timeline, num_bins, start)
    except OutOfRangeError as exc:  # a box or time that the timeline cannot place
        return ParseFailure(task, text, str(exc))


def _parse(text: str, task: str, timeline: Timeline | None, num_bins: Bins, start: float | None) -> Answer | ParseFailure:
    if task == "tvg":
        span = find_span(text, task, num_bins, timeline)
        return span if isinstance(span, ParseFailure) else TemporalGrounding(text=text, span=span)
    if task == "rec":
        box = find_box(text, task, num_bins, timeline)
        return box if isinstance(box, ParseFailure) else Grounding(text=text, box=box)
    if task in ("stvg", "svg", "elc"):
        track = find_track(text, task, num_bins, timeline)
        if isinstance(track, ParseFailure):
            return track
        if not track.frames:
            return ParseFailure(task, text, "no 'key: [x1, y1, x2, y2]' frame boxes found")
        if task == "svg":
            return SpatialGrounding(text=text, track=track)
        if task == "stvg":
            span = find_span(text, task, num_bins, timeline)
            return span if isinstance(span, ParseFailure) else SpatioTemporalGrounding(text=text, span=span, track=track)
        end = find_end(text, task, num_bins, timeline)
        if isinstance(end, ParseFailure):
            return end
        caption = find_elc_caption(text, task, num_bins)
        if isinstance(caption, ParseFailure):
            return caption
        span = None
        if start is not None:
            if not 0.0 <= start <= 1.0:
                raise ValueError(f"ELC start {start} is outside [0, 1]")
            if end.value < start:
                return ParseFailure(task, text, f"end time {end.value:.5f} is before the given start {start}")
            span = _make_span(start, end.value, timeline)
        return EventLocalization(text=text, end=end, caption=caption, track=track, span=span)
    if task == "dvc":
        events = _find_events(text, task, num_bins, timeline)
        return events if isinstance(events, ParseFailure) else DenseEvents(text=text, events=events)
    if task == "dgc":
        return _find_phrases(text, task, num_bins, timeline)
    caption = text.replace(END_OF_TURN, "").strip()
    if not caption:
        return ParseFailure(task, text, "empty answer")
    return Caption(text=text, caption=caption, task=task)


__all__ = [
    "Answer",
    "Box",
    "Caption",
    "DenseEvents",
    "END_OF_TURN",
    "Event",
    "EventLocalization",
    "GroundedCaption",
    "Grounding",
    "OutOfRangeError",
    "ParseFailure",
    "Phrase",
    "Span",
    "SpatialGrounding",
    "SpatioTemporalGrounding",
    "TASKS",
    "TemporalGrounding",
    "TimePoint",
    "Timeline",
    "Track",
    "TrackFrame",
    "find_box",
    "find_boxes",
    "find_elc_caption",
    "find_end",
    "find_span",
    "find_spans",
    "find_track",
    "parse_answer",
    "to_token_form",
]
