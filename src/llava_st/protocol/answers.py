"""The answer parser: generated text -> typed spans, boxes and tracks (SPEC §1, §3).

The model answers in text whose coordinates are bin tokens (``<TEMP-012>``,
``<WIDTH-036>``, ``<HEIGHT-037>``; bin ``k`` of ``n`` means ``k / (n - 1)``).
The release rewrites them to decimals (``{<TEMP-012><TEMP-045>}`` ->
``{0.12121,0.45455}``, :func:`llava_st.protocol.bins.release_rewrite`). This
module reads either form and returns one typed result per task grammar (the
result classes are :mod:`llava_st.protocol.results`, re-exported here):

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

Bin counts: every reader takes ``bins``, a :class:`~llava_st.protocol.tokens.BinCounts`
(the model's ``config.coords.bins``); a bin token reads with its own axis'
count and there is no default. With a :class:`Timeline`, results carry
seconds, pixels and frame indices too (see :mod:`llava_st.protocol.results`).

A malformed answer gives a :class:`ParseFailure` holding the raw text and the
reason: parsing never raises and never guesses. What counts as malformed:
no element of the grammar, a plain number outside [0, 1], a bin outside
``0..n - 1``, a span or box that ends before it starts, and two
different boxes for one frame key. Separators between the numbers of one
span or box may be commas and/or whitespace (``{<TEMP-012>, <TEMP-045>}``,
``[<WIDTH-036> <HEIGHT-037> ...]``). The axis of a bin token is not checked:
the decimal form cannot carry it, and both forms must read the same.

Both forms read the same because the text is first normalised, once per
answer: the decimal form is turned back into bin tokens
(:func:`llava_st.protocol.bins.to_token_form`: a number written with exactly
five decimals that equals ``k / (n - 1)`` and is followed by the rewrite's
comma, or by ``]``/``}`` where the release closed the comma up, is bin ``k``)
and ``<|im_end|>`` is removed. :func:`parse_answer` normalises once and hands
the result to every component reader; each public ``find_*`` function
normalises the text it is given and calls the same reader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from .bins import bin_to_value, to_token_form
from .coords import CoordinateError
from . import results
from .results import (  # re-exported: callers read results next to the parser
    TASKS, Answer, Box, Caption, DenseEvents, Event, EventLocalization, GroundedCaption, Grounding, ParseFailure,
    Phrase, Span, SpatialGrounding, SpatioTemporalGrounding, Task, TemporalGrounding, TimePoint, Track, TrackFrame,
)
from .timebase import OutOfRangeError, Timeline
from .tokens import BIN_TOKEN, END_OF_TURN, BinCounts, read_bin_token

# ----------------------------------------------------------------- grammar

_PLAIN = r"(?<![\w.+-])\d+(?:\.\d+)?(?![\w.])"
_COORD = f"(?:{BIN_TOKEN}|{_PLAIN})"
_SEP = r"[\s,]*"
_SPAN_RE = re.compile(r"\{\s*(" + _COORD + ")" + _SEP + "(" + _COORD + r")\s*\}")
_BOX_BODY = r"\[\s*(" + _COORD + ")" + _SEP + "(" + _COORD + ")" + _SEP + "(" + _COORD + ")" + _SEP + "(" + _COORD + r")\s*\]"
_BOX_RE = re.compile(_BOX_BODY)
_PAIR_RE = re.compile(r"(" + BIN_TOKEN + r")\s*,?\s*:\s*" + _BOX_BODY)
_END_RE = re.compile(r"Ends in\s*(" + _COORD + ")")
_OBJECT_RE = re.compile(r"Object bounding box", re.IGNORECASE)
_PHRASE_STRIP = " \t\n,.;:"


@dataclass(frozen=True)
class _Text:
    """One answer, normalised once: ``raw`` as given, ``tokens`` in token form, with its bin counts.

    Example with 100 bins: raw ``"{0.12121,0.45455}<|im_end|>"`` has tokens
    ``"{<TEMP-012><TEMP-045>}"``. Failures quote ``raw``; readers search ``tokens``.
    """

    raw: str
    tokens: str
    bins: BinCounts


def _normalise(text: str, bins: BinCounts) -> _Text:
    return _Text(text, to_token_form(text, bins), bins)


# ----------------------------------------------------------------- values


def _value(raw: str, bins: BinCounts) -> float | str:
    """A coordinate (bin token or plain number) -> value in [0, 1], or the reason it is not one."""
    token = read_bin_token(raw)
    if token is not None:
        try:
            return bin_to_value(token[0], token[1], bins)
        except CoordinateError as exc:
            return str(exc)
    v = float(raw)
    if not 0.0 <= v <= 1.0:
        return f"value {raw} is outside [0, 1]"
    return v


def _values(raws: Iterable[str], bins: BinCounts) -> list[float] | str:
    out = []
    for raw in raws:
        v = _value(raw, bins)
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


def _box_from_match(groups: Sequence[str], bins: BinCounts, timeline: Timeline | None) -> Box | str:
    vals = _values(groups, bins)
    if isinstance(vals, str):
        return vals
    x1, y1, x2, y2 = vals
    if x2 < x1 or y2 < y1:
        return f"box [{', '.join(groups)}] ends before it starts (xyxy needs x1 <= x2 and y1 <= y2)"
    return _make_box(vals, timeline)


# ----------------------------------------------------------------- component readers (normalised text)


def _span(t: _Text, task: str, timeline: Timeline | None) -> Span | ParseFailure:
    m = _SPAN_RE.search(t.tokens)
    if m is None:
        return ParseFailure(task, t.raw, "no {start, end} span found")
    vals = _values(m.groups(), t.bins)
    if isinstance(vals, str):
        return ParseFailure(task, t.raw, vals)
    s, e = vals
    if e < s:
        return ParseFailure(task, t.raw, f"span {m.group(0)} ends before it starts")
    return _make_span(s, e, timeline)


def _box(t: _Text, task: str, timeline: Timeline | None) -> Box | ParseFailure:
    m = _BOX_RE.search(t.tokens)
    if m is None:
        return ParseFailure(task, t.raw, "no [x1, y1, x2, y2] box found")
    box = _box_from_match(m.groups(), t.bins, timeline)
    return ParseFailure(task, t.raw, box) if isinstance(box, str) else box


def _spans(t: _Text, task: str, timeline: Timeline | None) -> tuple[Span, ...] | ParseFailure:
    spans = []
    for m in _SPAN_RE.finditer(t.tokens):
        vals = _values(m.groups(), t.bins)
        if isinstance(vals, str):
            return ParseFailure(task, t.raw, vals)
        if vals[1] < vals[0]:
            return ParseFailure(task, t.raw, f"span {m.group(0)} ends before it starts")
        spans.append(_make_span(vals[0], vals[1], timeline))
    return tuple(spans)


def _boxes(t: _Text, task: str, timeline: Timeline | None) -> tuple[Box, ...] | ParseFailure:
    boxes = []
    for m in _BOX_RE.finditer(t.tokens):
        box = _box_from_match(m.groups(), t.bins, timeline)
        if isinstance(box, str):
            return ParseFailure(task, t.raw, box)
        boxes.append(box)
    return tuple(boxes)


def _track(t: _Text, task: str, timeline: Timeline | None) -> Track | ParseFailure:
    nt = t.bins.time
    by_key: dict[int, TrackFrame] = {}
    for m in _PAIR_RE.finditer(t.tokens):
        key_raw = m.group(1)
        _, k = read_bin_token(key_raw)  # type: ignore[misc]  # the pattern matched a bin token; read as a time bin
        if k >= nt:
            return ParseFailure(task, t.raw, f"frame key {key_raw} is outside 0..{nt - 1}")
        box = _box_from_match(m.groups()[1:], t.bins, timeline)
        if isinstance(box, str):
            return ParseFailure(task, t.raw, f"frame key {key_raw}: {box}")
        if k in by_key:
            if by_key[k].box.xyxy != box.xyxy:
                return ParseFailure(task, t.raw, f"frame key {key_raw} is given twice with different boxes")
            continue
        frame = frame_id = seconds = None
        if timeline is not None:
            frame = timeline.frame_index(k, t.bins)
            frame_id = timeline.frame_ids[frame] if timeline.frame_ids is not None else None
            seconds = timeline.frame_seconds(frame) if timeline.timestamps is not None else None
        by_key[k] = TrackFrame(k, bin_to_value("TEMP", k, t.bins), box, frame, frame_id, seconds)
    return Track(tuple(by_key[k] for k in sorted(by_key)))


def _end(t: _Text, task: str, timeline: Timeline | None) -> TimePoint | ParseFailure:
    m = _END_RE.search(t.tokens)
    if m is None:
        return ParseFailure(task, t.raw, "no 'Ends in <time>' found")
    v = _value(m.group(1), t.bins)
    if isinstance(v, str):
        return ParseFailure(task, t.raw, v)
    seconds = None
    if timeline is not None and timeline.timestamps is not None:
        seconds = float(timeline.to_seconds(v))
    return TimePoint(v, seconds)


def _elc_caption(t: _Text, task: str) -> str | ParseFailure:
    m = _END_RE.search(t.tokens)
    rest = t.tokens[m.end() :] if m else t.tokens
    rest = rest.lstrip(" \t\n,")
    cut = len(rest)
    for pattern in (_OBJECT_RE, _PAIR_RE):
        hit = pattern.search(rest)
        if hit is not None:
            cut = min(cut, hit.start())
    caption = rest[:cut].strip()
    if not caption:
        return ParseFailure(task, t.raw, "no event caption found")
    return caption


def _events(t: _Text, task: str, timeline: Timeline | None) -> tuple[Event, ...] | ParseFailure:
    tokens = t.tokens
    matches = list(_SPAN_RE.finditer(tokens))
    if not matches:
        return ParseFailure(task, t.raw, "no {start, end} span found")
    events = []
    for i, m in enumerate(matches):
        vals = _values(m.groups(), t.bins)
        if isinstance(vals, str):
            return ParseFailure(task, t.raw, f"event {i}: {vals}")
        if vals[1] < vals[0]:
            return ParseFailure(task, t.raw, f"event {i}: span {m.group(0)} ends before it starts")
        stop = matches[i + 1].start() if i + 1 < len(matches) else len(tokens)
        caption = tokens[m.end() : stop].strip().lstrip(",:").strip()
        if not caption:
            return ParseFailure(task, t.raw, f"event {i}: span {m.group(0)} has no caption")
        events.append(Event(_make_span(vals[0], vals[1], timeline), caption))
    return tuple(events)


def _phrases(t: _Text, task: str, timeline: Timeline | None) -> GroundedCaption | ParseFailure:
    tokens = t.tokens
    matches = list(_BOX_RE.finditer(tokens))
    if not matches:
        return ParseFailure(task, t.raw, "no [x1, y1, x2, y2] box found")
    phrases = []
    pieces = []
    pos = 0
    for i, m in enumerate(matches):
        box = _box_from_match(m.groups(), t.bins, timeline)
        if isinstance(box, str):
            return ParseFailure(task, t.raw, f"box {i}: {box}")
        before = tokens[pos : m.start()]
        pieces.append(before)
        phrase = before.strip(_PHRASE_STRIP)
        if not phrase:
            return ParseFailure(task, t.raw, f"box {i} {m.group(0)} follows no phrase")
        phrases.append(Phrase(phrase, box))
        pos = m.end()
    pieces.append(tokens[pos:])
    caption = re.sub(r"\s+", " ", "".join(pieces)).strip()
    caption = re.sub(r"\s+([,.;:!?])", r"\1", caption)
    return GroundedCaption(text=t.raw, caption=caption, phrases=tuple(phrases), task=task)


# ----------------------------------------------------------------- public component readers


def find_span(text: str, task: str = "tvg", *, bins: BinCounts, timeline: Timeline | None = None) -> Span | ParseFailure:
    """The first ``{s, e}`` span of an answer (either text form)."""
    return _span(_normalise(text, bins), task, timeline)


def find_box(text: str, task: str = "rec", *, bins: BinCounts, timeline: Timeline | None = None) -> Box | ParseFailure:
    """The first ``[x1, y1, x2, y2]`` box of an answer (either text form)."""
    return _box(_normalise(text, bins), task, timeline)


def find_spans(
    text: str, task: str = "tvg", *, bins: BinCounts, timeline: Timeline | None = None
) -> tuple[Span, ...] | ParseFailure:
    """Every ``{s, e}`` span of an answer, in order (empty when there is none)."""
    return _spans(_normalise(text, bins), task, timeline)


def find_boxes(
    text: str, task: str = "rec", *, bins: BinCounts, timeline: Timeline | None = None
) -> tuple[Box, ...] | ParseFailure:
    """Every ``[x1, y1, x2, y2]`` box of an answer, in order, those of ``key: [box]`` pairs included."""
    return _boxes(_normalise(text, bins), task, timeline)


def find_track(text: str, task: str = "stvg", *, bins: BinCounts, timeline: Timeline | None = None) -> Track | ParseFailure:
    """Every ``key: [x1, y1, x2, y2]`` pair of an answer, as a track in key order.

    A key is a time bin ``k`` (``0 <= k < bins.time``). An empty track (no
    pair) is a valid, empty :class:`Track`; a key written twice with the same
    box counts once, with two different boxes it is a failure (which box is
    meant cannot be known).
    """
    return _track(_normalise(text, bins), task, timeline)


def find_end(text: str, task: str = "elc", *, bins: BinCounts, timeline: Timeline | None = None) -> TimePoint | ParseFailure:
    """The time after ``Ends in`` (ELC)."""
    return _end(_normalise(text, bins), task, timeline)


def find_elc_caption(text: str, task: str = "elc", *, bins: BinCounts) -> str | ParseFailure:
    """The event caption of an ELC answer.

    The text after ``Ends in <time>`` (its comma dropped), or from the start when
    there is no ``Ends in``, up to ``Object bounding box`` or the first
    ``key: [box]`` pair, stripped. Empty -> failure.
    """
    return _elc_caption(_normalise(text, bins), task)


# ----------------------------------------------------------------- one entry point


def parse_answer(
    text: str,
    task: str,
    *,
    bins: BinCounts,
    timeline: Timeline | None = None,
    start: float | None = None,
) -> Answer | ParseFailure:
    """Read a generated answer into the typed result of ``task`` (see the module table).

    Args:
        text: the decoded answer, with bin tokens or after the release's decimal rewrite.
        task: one of :data:`TASKS`.
        bins: the model's bins per axis (``config.coords.bins``).
        timeline: the sampled frames' timestamps / ids and the frame size; with
            it, results carry seconds, pixels and frame indices too.
        start: ELC only: the normalised start time given in the prompt; the
            result's ``span`` is then ``[start, end]``.

    Returns:
        The typed answer, or :class:`ParseFailure` (never raises for a bad answer).

    Raises:
        ValueError: an unknown ``task`` (a programming error).
        CoordinateError: an ELC ``start`` outside [0, 1].
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    if not isinstance(text, str):
        return ParseFailure(task, repr(text), f"answer is not text but {type(text).__name__}")
    if task in ("reg", "tr"):
        caption = text.replace(END_OF_TURN, "").strip()
        if not caption:
            return ParseFailure(task, text, "empty answer")
        return Caption(text=text, caption=caption, task=task)
    try:
        return _parse(_normalise(text, bins), task, timeline, start)
    except OutOfRangeError as exc:  # a box or time that the timeline cannot place
        return ParseFailure(task, text, str(exc))


def _parse(t: _Text, task: str, timeline: Timeline | None, start: float | None) -> Answer | ParseFailure:
    text = t.raw
    if task == "tvg":
        span = _span(t, task, timeline)
        return span if isinstance(span, ParseFailure) else TemporalGrounding(text=text, span=span)
    if task == "rec":
        box = _box(t, task, timeline)
        return box if isinstance(box, ParseFailure) else Grounding(text=text, box=box)
    if task == "dvc":
        events = _events(t, task, timeline)
        return events if isinstance(events, ParseFailure) else DenseEvents(text=text, events=events)
    if task == "dgc":
        return _phrases(t, task, timeline)
    # stvg, svg, elc: a per-frame track first
    track = _track(t, task, timeline)
    if isinstance(track, ParseFailure):
        return track
    if not track.frames:
        return ParseFailure(task, text, "no 'key: [x1, y1, x2, y2]' frame boxes found")
    if task == "svg":
        return SpatialGrounding(text=text, track=track)
    if task == "stvg":
        span = _span(t, task, timeline)
        return span if isinstance(span, ParseFailure) else SpatioTemporalGrounding(text=text, span=span, track=track)
    end = _end(t, task, timeline)
    if isinstance(end, ParseFailure):
        return end
    caption = _elc_caption(t, task)
    if isinstance(caption, ParseFailure):
        return caption
    span = None
    if start is not None:
        if not 0.0 <= start <= 1.0:
            raise CoordinateError(f"ELC start {start} is outside [0, 1]")
        if end.value < start:
            return ParseFailure(task, text, f"end time {end.value:.5f} is before the given start {start}")
        span = _make_span(start, end.value, timeline)
    return EventLocalization(text=text, end=end, caption=caption, track=track, span=span)


__all__ = [
    "END_OF_TURN",
    "OutOfRangeError",
    "Timeline",
    "find_box",
    "find_boxes",
    "find_elc_caption",
    "find_end",
    "find_span",
    "find_spans",
    "find_track",
    "parse_answer",
    *results.__all__,
]
