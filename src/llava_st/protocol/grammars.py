"""The answer grammar of each task, as text (SPEC §3): what a well-formed answer writes, piece by piece.

These are the answers the model is trained to write (ST-Synth's answer
wording, with the coordinate markup rewritten by the one formatter,
:func:`llava_st.protocol.coords.format_coordinates`, so every space and
bracket is the one training put there). Written with bin tokens::

    tvg   " {<TEMP-s><TEMP-e>} "
    rec   " [<WIDTH-x1><HEIGHT-y1><WIDTH-x2><HEIGHT-y2>]"
    stvg  "During the span of  {<TEMP-s><TEMP-e>} . Object bounding box: " TRACK
    svg   "Object bounding box: " TRACK
    elc   "Ends in <TEMP-e>," CAPTION ". Object bounding box: " TRACK
    dvc   " {<TEMP-s><TEMP-e>} ," CAPTION "."  then again "  {...} ," CAPTION "." ...
    dgc   PHRASE "  [<W><H><W><H>]"  PHRASE "  [...]" ... [TEXT]
    reg, tr   CAPTION

    TRACK = "<TEMP-k>:  [<W><H><W><H>]" for each sampled frame k of the span, joined by ", "

and each answer ends with the end-of-turn token. A grammar is a tuple of
items (:class:`Text`, :class:`Coord`, :class:`Caption`, :class:`Track`,
:class:`Repeat`, :class:`Phrases`); :mod:`llava_st.infer.constrain` compiles
it with a tokenizer into a token-level program. Everything here is what the
parser (:mod:`.answers`) reads back, so an answer that follows its grammar
parses: spans and boxes are ordered (``e >= s``, ``x2 >= x1``, ``y2 >= y1``),
a track holds at least one frame, captions hold at least one word.

Which frames a track lists: the sampled frames whose time bin lies in the
span (:func:`frame_keys` gives the bin of each sampled frame, the bin
nearest its time as training rounds it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .bins import value_to_bin
from .coords import format_box, format_coordinates, format_span, round3
from .tokens import BinCounts

#: Words of ST-Synth's answers (synth/tasks.py) that the parser also reads.
SPAN_LEAD = "During the span of"
TRACK_LEAD = "Object bounding box:"
END_LEAD = "Ends in"
#: ST-Synth joins the ``key: [box]`` pairs of a track, and the events of a DVC answer, with these.
TRACK_SEPARATOR = ", "
EVENT_SEPARATOR = " "

_CAPTION = "\x00"  # stands for a caption in a markup template (the formatter leaves it alone)
_PLACEHOLDER_RE = re.compile(r"<(TEMP|HEIGHT|WIDTH)-OUTPUT[^<>]*>|" + _CAPTION)


@dataclass(frozen=True)
class Text:
    """Literal text, written as is."""

    text: str


@dataclass(frozen=True)
class Coord:
    """One coordinate bin of ``axis`` (``"TEMP"``, ``"HEIGHT"``, ``"WIDTH"``), named ``name``.

    ``at_least``: the name of an earlier coordinate (or of a given value,
    ``"start"`` for ELC) this one may not be below. ``frames``: at least one
    sampled frame lies between ``at_least`` and this value (a track over it is
    never empty). ``frame_max``: at most the last sampled frame's bin.
    """

    axis: str
    name: str
    at_least: str | None = None
    frames: bool = False
    frame_max: bool = False


@dataclass(frozen=True)
class Caption:
    """Free text holding at least one letter or digit; it ends where the next :class:`Text` begins."""


@dataclass(frozen=True)
class Track:
    """One ``key:  [box]`` pair per sampled frame from ``start`` to ``end`` (coordinate names,
    or ``None``: the span given in the prompt), joined by :data:`TRACK_SEPARATOR`."""

    start: str | None
    end: str | None
    pair: tuple = ()
    separator: str = TRACK_SEPARATOR


@dataclass(frozen=True)
class Repeat:
    """``body`` one or more times, ``separator`` between repetitions (DVC events)."""

    body: tuple
    separator: str


@dataclass(frozen=True)
class Phrases:
    """Free text with ``box`` after each phrase (at least one), and free text after the last box (DGC)."""

    box: tuple


@dataclass(frozen=True)
class AnswerGrammar:
    """The answer of ``task``: its items in order, then the end of the turn."""

    task: str
    items: tuple


def pieces(markup: str, names: tuple[str, ...] = ()) -> tuple:
    """Items of an answer template written in markup: literal text, coordinates and captions.

    ``markup`` is answer text as ST-Synth writes it, with any values and
    :data:`_CAPTION` where a caption goes; each coordinate becomes a
    :class:`Coord` named from ``names`` in order (unnamed ones get ``""``).

    Example: ``pieces("{0.1, 0.5}", ("s", "e"))`` is
    ``(Text(" {"), Coord("TEMP", "s"), Coord("TEMP", "e"), Text("} "))``.
    """
    text = format_coordinates(markup, "OUTPUT")
    out: list = []
    pos = 0
    names = list(names)
    for m in _PLACEHOLDER_RE.finditer(text):
        if m.start() > pos:
            out.append(Text(text[pos : m.start()]))
        if m.group(0) == _CAPTION:
            out.append(Caption())
        else:
            out.append(Coord(m.group(1), names.pop(0) if names else ""))
        pos = m.end()
    if pos < len(text):
        out.append(Text(text[pos:]))
    return tuple(out)


def _ordered(items: tuple, rules: dict[str, Coord]) -> tuple:
    """Replace named coordinates by the ones in ``rules`` (with their constraints)."""
    return tuple(rules.get(i.name, i) if isinstance(i, Coord) else i for i in items)


_BOX_RULES = {
    "x2": Coord("WIDTH", "x2", at_least="x1"),
    "y2": Coord("HEIGHT", "y2", at_least="y1"),
}
_BOX_NAMES = ("x1", "y1", "x2", "y2")


def _track(start: str | None, end: str | None) -> Track:
    pair = _ordered(pieces("<t0.1>: " + format_box((0.1, 0.2, 0.3, 0.4)), ("key",) + _BOX_NAMES), _BOX_RULES)
    return Track(start, end, pair=pair)


def build_grammars() -> dict[str, AnswerGrammar]:
    """Every task's :class:`AnswerGrammar`, from the formatter and ST-Synth's answer wording."""
    span = _ordered(pieces(format_span(0.1, 0.5), ("s", "e")), {"e": Coord("TEMP", "e", at_least="s")})
    box = _ordered(pieces(format_box((0.1, 0.2, 0.3, 0.4)), _BOX_NAMES), _BOX_RULES)
    stvg_span = {"s": Coord("TEMP", "s", frame_max=True), "e": Coord("TEMP", "e", at_least="s", frames=True)}
    stvg = _ordered(pieces(f"{SPAN_LEAD} {format_span(0.1, 0.5)}. {TRACK_LEAD} ", ("s", "e")), stvg_span)
    elc = _ordered(pieces(f"{END_LEAD} <t0.5>, {_CAPTION}. {TRACK_LEAD} ", ("e",)),
                   {"e": Coord("TEMP", "e", at_least="start", frames=True)})
    event = _ordered(pieces(f"{format_span(0.1, 0.5)}, {_CAPTION}.", ("s", "e")), {"e": Coord("TEMP", "e", at_least="s")})
    # a box after a phrase ("a" stands for the phrase): the text from the end of the phrase on
    after_phrase = _ordered(pieces(f"a {format_box((0.1, 0.2, 0.3, 0.4))}", _BOX_NAMES), _BOX_RULES)
    phrase_box = (Text(after_phrase[0].text[1:]),) + after_phrase[1:]
    grammars = [
        AnswerGrammar("tvg", span),
        AnswerGrammar("rec", box),
        AnswerGrammar("stvg", stvg + (_track("s", "e"),)),
        AnswerGrammar("svg", (Text(f"{TRACK_LEAD} "), _track(None, None))),
        AnswerGrammar("elc", elc + (_track("start", "e"),)),
        AnswerGrammar("dvc", (Repeat(event, EVENT_SEPARATOR),)),
        AnswerGrammar("dgc", (Phrases(phrase_box),)),
        AnswerGrammar("reg", (Caption(),)),
        AnswerGrammar("tr", (Caption(),)),
    ]
    return {g.task: g for g in grammars}


def frame_keys(num_frames: int, bins: BinCounts) -> tuple[int, ...]:
    """The time bin that names each sampled frame, in frame order (distinct, ascending).

    Frame ``i`` of ``T`` sits at time ``i / (T - 1)``; training writes it
    rounded to 3 decimals and the model answers the nearest bin of that value.
    Example with 100 time bins: ``T = 100`` gives ``0, 1, ..., 99``; ``T = 12`` gives
    ``0, 9, 18, ..., 99``. Frames that share a bin (``T > bins.time``) share a key.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if num_frames == 1:
        return (0,)
    keys = [value_to_bin("TEMP", round3(i / (num_frames - 1)), bins) for i in range(num_frames)]
    return tuple(sorted(set(keys)))


def span_keys(keys: tuple[int, ...], start: float, end: float, bins: BinCounts) -> tuple[int, ...]:
    """The frame keys inside the normalised span ``[start, end]`` (SVG's given span).

    The span's ends are read as the bins the model sees them as; when no frame
    lies inside, the frame nearest the span's middle stands for it (a track is
    never empty).
    """
    lo, hi = value_to_bin("TEMP", start, bins), value_to_bin("TEMP", end, bins)
    inside = tuple(k for k in keys if lo <= k <= hi)
    if inside:
        return inside
    mid = (lo + hi) / 2
    return (min(keys, key=lambda k: (abs(k - mid), k)),)


GRAMMARS = build_grammars()

__all__ = [
    "AnswerGrammar", "Caption", "Coord", "END_LEAD", "EVENT_SEPARATOR", "GRAMMARS", "Phrases", "Repeat", "SPAN_LEAD",
    "TRACK_LEAD", "TRACK_SEPARATOR", "Text", "Track", "build_grammars", "frame_keys", "pieces", "span_keys",
]
