"""Coordinate markup -> placeholders and values, for the model's input (SPEC §1, §3).

This module owns the coordinate *markup* (what people and data files write),
reading and writing:

* **reading it**: markup in prompts and training answers becomes text with
  bare placeholders (``<TEMP-INPUT>``) plus six ordered value lists
  (:class:`Variables`). The markup understood:

  ======================================  ===========================================================
  written                                 becomes (``IO`` = INPUT in user/system turns, OUTPUT in answers)
  ======================================  ===========================================================
  ``{0.2, 0.6}`` (span)                   `` {<TEMP-IO0.2><TEMP-IO0.6>} `` (spaces around)
  ``[0.1, 0.2, 0.5, 0.7]`` (box x1y1x2y2)  `` [<WIDTH-IO0.1><HEIGHT-IO0.2><WIDTH-IO0.5><HEIGHT-IO0.7>]``
  ``Starts in 0.4``                       `` Starts in <TEMP-IO0.4> ``
  ``<t0.4>``, ``<h0.2>``, ``<w0.1>``       ``<TEMP-IO0.4>``, ``<HEIGHT-IO0.2>``, ``<WIDTH-IO0.1>`` in place
  ``<TEMP-INPUT0.2>`` (placeholder+value)  kept, then split into ``<TEMP-INPUT>`` and the value 0.2
  ======================================  ===========================================================

  The first three are the release's data helpers (the spaces they insert are
  kept, as the release keeps them); the short tags are the release demo's
  (the commas of ``{<t0.4>,<t0.6>}`` stay, as in the demo). Values written as
  plain numbers or short tags are rounded like the release (Python
  ``round(v, 3)`` on the float, ties to even on the exact binary value:
  0.3125 -> 0.312); a value written directly in a placeholder is taken as is.

* **writing it**: :func:`format_value`, :func:`format_span` and
  :func:`format_box` are the one formatter of values as markup text
  (``str(round3(v))``: 0.3125 -> ``0.312``, 0.5 -> ``0.5``), used here for
  placeholder values, by :mod:`llava_st.protocol.prompts` and by ST-Synth.

What the model writes back (bin tokens ``<TEMP-012>``, their values and the
release's decimal text ``{0.12121,0.56566}``) is the other direction:
:mod:`llava_st.protocol.bins`.

Conventions: every value is normalised to [0, 1]; time 0 is the first sampled
frame and 1 the last; boxes are ``[x1, y1, x2, y2]`` over the frame width and
height.

Where we differ from the release on purpose (nothing is silently changed):

* a value outside [0, 1] raises :class:`CoordinateError` (the release clips
  boxes to [0, 1] and passes other values on unchecked);
* a span whose start is not before its end raises (the release writes
  ``{<error>}`` into the text), for plain spans and for spans written with
  ``<t..>`` tags or placeholders alike;
* a malformed coordinate token (``<TEMP-INPT0.2>``, ``<t0.4s>``,
  ``<WIDTH-OUTPUTabc>``) raises instead of reaching the tokenizer as text;
* numbers may carry a sign or start with a dot (``-0.1``, ``.5``), so such
  values are recognised (and rejected or converted) instead of being left in
  the text as plain characters, and whitespace before a comma is accepted.

Every error message quotes the offending text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Iterable, Literal, Mapping, Sequence

from .tokens import AXES, BIN_TOKEN_RE, PLACEHOLDERS, PLACEHOLDER_TO_KEY, VARIABLE_KEYS
from ..errors import ProtocolError

IO = Literal["INPUT", "OUTPUT"]

# A number of the markup grammar: the release's ``\d+(\.\d+)?``, widened by an
# optional sign and a bare fraction (``.5``) so that such values are seen and
# checked rather than left in the text unnoticed.
_NUM = r"([-+]?(?:\d+(?:\.\d+)?|\.\d+))"
_SEP = r"\s*,\s*"
_BOX_RE = re.compile(r"\[\s*" + _NUM + _SEP + _NUM + _SEP + _NUM + _SEP + _NUM + r"\s*\]")
_SPAN_RE = re.compile(r"\{\s*" + _NUM + _SEP + _NUM + r"\s*\}")
_STARTS_RE = re.compile(r"Starts in " + _NUM)
# Short tags: ``<t0.4>``; only a tag whose body starts like a number is taken
# (so ``<think>`` or ``<td>`` are left alone), and its body must then be one.
_SHORT_RE = re.compile(r"<([twh])([-+.\d][^<>]*)>")
_SHORT_AXIS = {"t": "TEMP", "h": "HEIGHT", "w": "WIDTH"}
# Every token of the coordinate family: placeholders (bare or with a value) and bins
# (which BIN_TOKEN_RE of .tokens tells apart).
_AXIS_TOKEN_RE = re.compile(r"<(TEMP|HEIGHT|WIDTH)-([^<>]*)>")
_PLACEHOLDER_BODY_RE = re.compile(r"(INPUT|OUTPUT)(.*)\Z", re.S)
_PLACEHOLDER_RE = re.compile(r"<(TEMP|HEIGHT|WIDTH)-(INPUT|OUTPUT)([^<>]*)>")
_BARE_PLACEHOLDER_RE = re.compile(r"<(TEMP|HEIGHT|WIDTH)-(INPUT|OUTPUT)>")
# A value written inside a placeholder: a decimal number, optionally signed, with an exponent.
_VALUE_RE = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?\Z")
# A span written with two time placeholders carrying values, optionally comma-separated.
_VALUED_SPAN_RE = re.compile(
    r"\{\s*<TEMP-(?:INPUT|OUTPUT)([^<>]*)>\s*,?\s*<TEMP-(?:INPUT|OUTPUT)([^<>]*)>\s*\}"
)


class CoordinateError(ProtocolError):
    """Malformed coordinate markup or a value outside [0, 1]; the message names the text."""


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def round3(value: float) -> float:
    """The release's rounding of a coordinate: ``round(v, 3)`` on the Python float.

    Ties go to even on the exact binary value: ``round3(0.3125) == 0.312``
    (0.3125 is exact in binary), ``round3(0.0005) == 0.001`` (0.0005 is stored
    slightly above the tie).
    """
    return round(float(value), 3)


def _check_unit(value: float, what: str, text: str) -> float:
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise CoordinateError(f"{what} value {value} is outside [0, 1] in text {_short(text)!r}")
    return value


def _parse_value(raw: str, what: str, text: str) -> float:
    """A number written in markup, checked to lie in [0, 1]."""
    if not _VALUE_RE.match(raw):
        raise CoordinateError(f"{what} does not hold a number, in text {_short(text)!r}")
    return _check_unit(float(raw), what, text)


# ------------------------------------------------------------ values -> markup


def format_value(value: float) -> str:
    """A normalised value as markup text, the one way values are written.

    ``str`` of :func:`round3` of the value, as the release writes it:
    0.5 -> ``"0.5"``, 0.0 -> ``"0.0"``, 0.3125 -> ``"0.312"``, 1 -> ``"1.0"``.
    The value is not checked here; reading the markup back checks it.
    """
    return str(round3(value))


def format_span(start: float, end: float) -> str:
    """``{s, e}`` markup of a normalised span: ``format_span(0.2, 0.6) == "{0.2, 0.6}"``."""
    return "{" + f"{format_value(start)}, {format_value(end)}" + "}"


def format_box(box: Sequence[float]) -> str:
    """``[x1, y1, x2, y2]`` markup of a normalised box: ``[0.1, 0.2, 0.5, 0.7]``."""
    return "[" + ", ".join(format_value(v) for v in box) + "]"


@dataclass
class Variables:
    """The six ordered value lists of one sample (release key names in :data:`VARIABLE_KEYS`).

    The i-th value of a list belongs to the i-th placeholder of that kind in
    the token sequence (e.g. ``temporal_input_locations[1]`` to the second
    ``<TEMP-INPUT>``).
    """

    temporal_input_locations: list[float] = field(default_factory=list)
    temporal_output_locations: list[float] = field(default_factory=list)
    spatial_height_input_locations: list[float] = field(default_factory=list)
    spatial_height_output_locations: list[float] = field(default_factory=list)
    spatial_width_input_locations: list[float] = field(default_factory=list)
    spatial_width_output_locations: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[float]]:
        return {key: list(getattr(self, key)) for key in VARIABLE_KEYS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[float]] | None) -> "Variables":
        """Read a release ``variables`` dict (missing keys are empty lists); values must be in [0, 1]."""
        data = data or {}
        unknown = set(data) - set(VARIABLE_KEYS)
        if unknown:
            raise CoordinateError(f"unknown variables keys {sorted(unknown)}; expected {list(VARIABLE_KEYS)}")
        out = cls()
        for key in VARIABLE_KEYS:
            values = data.get(key) or []
            if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
                raise CoordinateError(f"variables[{key!r}] must be a list of numbers, got {values!r}")
            for v in values:
                try:
                    number = float(v)
                except (TypeError, ValueError):
                    raise CoordinateError(f"variables[{key!r}] holds {v!r}, which is not a number") from None
                getattr(out, key).append(_check_unit(number, f"variables[{key!r}]", str(list(values))))
        return out

    def extend(self, other: "Variables") -> None:
        for key in VARIABLE_KEYS:
            getattr(self, key).extend(getattr(other, key))

    def __len__(self) -> int:
        return sum(len(getattr(self, key)) for key in VARIABLE_KEYS)


# ------------------------------------------------------------ text -> model


def format_coordinates(text: str, io: IO) -> str:
    """Rewrite coordinate markup into placeholder-with-value tokens, as the release's helpers do.

    ``io`` is ``"INPUT"`` for user (and system) turns and ``"OUTPUT"`` for
    assistant turns. The rewrites, applied in this order (see the module
    docstring for the table): short tags in place; boxes (a space before);
    spans (spaces around); ``Starts in v`` (spaces around). Text already in the
    placeholder-with-value form passes through unchanged.

    Example::

        >>> format_coordinates("during {0.2, 0.6}?", "INPUT")
        'during  {<TEMP-INPUT0.2><TEMP-INPUT0.6>} ?'
        >>> format_coordinates("at [0.3125, 0.25, 0.5, 0.5].", "OUTPUT")
        'at  [<WIDTH-OUTPUT0.312><HEIGHT-OUTPUT0.25><WIDTH-OUTPUT0.5><HEIGHT-OUTPUT0.5>].'

    Raises:
        CoordinateError: a value outside [0, 1], a span (plain, short tags or
            valued placeholders) whose start is not before its end, or a short
            tag whose body is not a number. The message quotes the text.
            Malformed placeholder tokens are caught by :func:`extract_variables`.
    """
    if io not in ("INPUT", "OUTPUT"):
        raise ValueError(f"io must be 'INPUT' or 'OUTPUT', got {io!r}")
    if not isinstance(text, str):
        raise CoordinateError(f"turn text must be a string, got {type(text).__name__}: {text!r}")

    def short(m: re.Match) -> str:
        value = _parse_value(m.group(2), f"coordinate tag {m.group(0)!r}", text)
        return f"<{_SHORT_AXIS[m.group(1)]}-{io}{format_value(value)}>"

    def box(m: re.Match) -> str:
        a, b, c, d = (_check_unit(float(g), f"box {m.group(0)!r}", text) for g in m.groups())
        return f" [<WIDTH-{io}{format_value(a)}><HEIGHT-{io}{format_value(b)}><WIDTH-{io}{format_value(c)}><HEIGHT-{io}{format_value(d)}>]"

    def span(m: re.Match) -> str:
        s, e = (_check_unit(float(g), f"span {m.group(0)!r}", text) for g in m.groups())
        if s >= e:
            raise CoordinateError(f"span {m.group(0)!r} does not start before it ends, in text {_short(text)!r}")
        return f" {{<TEMP-{io}{format_value(s)}><TEMP-{io}{format_value(e)}>}} "

    def starts(m: re.Match) -> str:
        v = _check_unit(float(m.group(1)), f"start time {m.group(0)!r}", text)
        return f" Starts in <TEMP-{io}{format_value(v)}> "

    out = _SHORT_RE.sub(short, text)
    out = _BOX_RE.sub(box, out)
    out = _SPAN_RE.sub(span, out)
    out = _STARTS_RE.sub(starts, out)
    _check_valued_spans(out, text)
    return out


def _check_valued_spans(formatted: str, text: str) -> None:
    """Spans written with valued time placeholders must start before they end."""
    for m in _VALUED_SPAN_RE.finditer(formatted):
        raw_s, raw_e = m.groups()
        if raw_s == "" or raw_e == "":
            continue  # bare placeholders: the values come from ``variables``
        s = _parse_value(raw_s, f"span {m.group(0)!r}", text)
        e = _parse_value(raw_e, f"span {m.group(0)!r}", text)
        if s >= e:
            raise CoordinateError(f"span {m.group(0)!r} does not start before it ends, in text {_short(text)!r}")


def extract_variables(text: str) -> tuple[str, Variables]:
    """Strip the values out of placeholder-with-value tokens.

    Returns the text with bare placeholders and the values in order of
    appearance per placeholder kind. Bare placeholders (no value) are left as
    they are and contribute nothing: their values must come from elsewhere
    (training data carries them in ``variables``, see
    :func:`convert_conversation`). Bin tokens (``<TEMP-012>``) are left as
    they are.

    Example::

        >>> extract_variables("{<TEMP-INPUT0.2><TEMP-INPUT0.6>}")
        ('{<TEMP-INPUT><TEMP-INPUT>}', Variables(temporal_input_locations=[0.2, 0.6], ...))

    Raises:
        CoordinateError: a placeholder value that is not a number in [0, 1],
            or a ``<TEMP-...>``/``<HEIGHT-...>``/``<WIDTH-...>`` token that is
            neither a placeholder nor a bin token.
    """
    found = Variables()

    def strip(m: re.Match) -> str:
        axis, body = m.groups()
        if BIN_TOKEN_RE.fullmatch(m.group(0)):
            return m.group(0)  # a bin token such as <TEMP-012>
        ph = _PLACEHOLDER_BODY_RE.match(body)
        if ph is None:
            raise CoordinateError(
                f"malformed coordinate token {m.group(0)!r}: expected <{axis}-INPUT>, <{axis}-OUTPUT> "
                f"(optionally followed by a value) or a bin token <{axis}-NNN>, in text {_short(text)!r}"
            )
        io, raw = ph.groups()
        name = f"<{axis}-{io}>"
        if raw == "":
            return name
        value = _parse_value(raw, f"placeholder {m.group(0)!r}", text)
        getattr(found, PLACEHOLDER_TO_KEY[name]).append(value)
        return name

    return _AXIS_TOKEN_RE.sub(strip, text), found


def to_placeholders(text: str, io: IO) -> tuple[str, Variables]:
    """:func:`format_coordinates` then :func:`extract_variables` on one turn."""
    return extract_variables(format_coordinates(text, io))


def count_placeholders(text: str) -> dict[str, int]:
    """How many bare or valued placeholders of each kind the text holds (release key names)."""
    counts = {key: 0 for key in VARIABLE_KEYS}
    for m in _PLACEHOLDER_RE.finditer(text):
        counts[PLACEHOLDER_TO_KEY[f"<{m.group(1)}-{m.group(2)}>"]] += 1
    return counts


def insert_values(text: str, variables: Variables | Mapping[str, Sequence[float]]) -> str:
    """Inverse of :func:`extract_variables`: write each value into its bare placeholder.

    The i-th bare placeholder of a kind receives the i-th value of that kind's
    list, written with ``repr`` of the float (``<TEMP-INPUT0.2>``), so that
    extracting again gives the same floats.

    Raises:
        CoordinateError: a list's length differs from the number of its bare placeholders.
    """
    if not isinstance(variables, Variables):
        variables = Variables.from_dict(variables)
    queues = {key: list(getattr(variables, key)) for key in VARIABLE_KEYS}
    counts = {key: 0 for key in VARIABLE_KEYS}
    for m in _BARE_PLACEHOLDER_RE.finditer(text):
        counts[PLACEHOLDER_TO_KEY[m.group(0)]] += 1
    for key in VARIABLE_KEYS:
        if counts[key] != len(queues[key]):
            raise CoordinateError(
                f"{key}: the text has {counts[key]} bare placeholder(s) but {len(queues[key])} value(s) "
                f"are given, in text {_short(text)!r}"
            )

    def fill(m: re.Match) -> str:
        value = queues[PLACEHOLDER_TO_KEY[m.group(0)]].pop(0)
        return f"{m.group(0)[:-1]}{float(value)!r}>"

    return _BARE_PLACEHOLDER_RE.sub(fill, text)


def _plain(value: float) -> str:
    """A value as a plain decimal, exactly (``repr`` of the float, never an exponent): 0.2 -> ``0.2``, 1e-05 -> ``0.00001``."""
    text = repr(float(value))
    if "e" in text or "E" in text:
        text = f"{float(value):.20f}".rstrip("0")
        text = text + "0" if text.endswith(".") else text
    return text


def to_markup(text: str, variables: Variables | Mapping[str, Sequence[float]], io: IO) -> str:
    """Inverse of :func:`to_placeholders` for one kind of turn: bare placeholders + values -> markup.

    The ``io`` placeholders of ``text`` take the ``io`` lists of ``variables``
    in order of appearance and become the markup they came from: a span
    ``{<TEMP-IO><TEMP-IO>}`` -> ``{s, e}``, a box ``[<WIDTH-IO><HEIGHT-IO><WIDTH-IO><HEIGHT-IO>]``
    -> ``[x1, y1, x2, y2]``, ``Starts in <TEMP-IO>`` -> ``Starts in t``, and any
    other placeholder a short tag (``<t0.4>``). The spaces that
    :func:`format_coordinates` puts around spans and ``Starts in`` and before
    boxes are taken out again (one on each side where it put one), so
    formatting the result gives back ``text`` with the values. Values are
    written exactly (``repr`` of the float, as plain decimals), not rounded.

    Example::

        >>> to_markup("During  {<TEMP-OUTPUT><TEMP-OUTPUT>} , a dog runs.",
        ...           {"temporal_output_locations": [0.2, 0.625]}, "OUTPUT")
        'During {0.2, 0.625}, a dog runs.'

    Raises:
        CoordinateError: the ``io`` lists do not hold exactly one value per ``io``
            placeholder of the text (the message names the list and both counts).
    """
    if io not in ("INPUT", "OUTPUT"):
        raise ValueError(f"io must be 'INPUT' or 'OUTPUT', got {io!r}")
    if not isinstance(variables, Variables):
        variables = Variables.from_dict(variables)
    keys = {axis: PLACEHOLDER_TO_KEY[f"<{axis}-{io}>"] for axis in AXES}
    queues = {axis: list(getattr(variables, keys[axis])) for axis in AXES}
    t, h, w = (re.escape(f"<{axis}-{io}>") for axis in ("TEMP", "HEIGHT", "WIDTH"))
    pattern = re.compile(
        rf"(?P<span> ?\{{{t}{t}\}} ?)|(?P<box> ?\[{w}{h}{w}{h}\])|(?P<starts> ?Starts in {t} ?)"
        rf"|(?P<one><(?P<axis>TEMP|HEIGHT|WIDTH)-{io}>)"
    )
    counts = {axis: 0 for axis in AXES}
    for m in _BARE_PLACEHOLDER_RE.finditer(text):
        if m.group(2) == io:
            counts[m.group(1)] += 1
    for axis in AXES:
        if counts[axis] != len(queues[axis]):
            raise CoordinateError(
                f"{keys[axis]}: the text has {counts[axis]} <{axis}-{io}> placeholder(s) but {len(queues[axis])} "
                f"value(s) are given, in text {_short(text)!r}"
            )

    def take(axis: str) -> str:
        return _plain(queues[axis].pop(0))

    def write(m: re.Match) -> str:
        if m.group("span") is not None:
            return "{" + f"{take('TEMP')}, {take('TEMP')}" + "}"
        if m.group("box") is not None:
            return "[" + ", ".join(take(a) for a in ("WIDTH", "HEIGHT", "WIDTH", "HEIGHT")) + "]"
        if m.group("starts") is not None:
            return f"Starts in {take('TEMP')}"
        axis = m.group("axis")
        return f"<{axis[0].lower()}{take(axis)}>"

    return pattern.sub(write, text)


def _turn_io(role: str) -> IO:
    return "OUTPUT" if role in ("gpt", "assistant") else "INPUT"


def convert_conversation(
    turns: Iterable[Mapping[str, str]], variables: Mapping[str, Sequence[float]] | None = None
) -> tuple[list[dict[str, str]], Variables]:
    """Turn a LLaVA-style conversation into placeholder text plus :class:`Variables`.

    Each turn is ``{"from": "human" | "gpt" | "system", "value": text}`` (or
    ``{"role": "user" | "assistant" | "system", "content": text}``; the keys
    are kept as given). Human and system turns use ``INPUT`` placeholders,
    assistant turns ``OUTPUT``. Values written in the text are collected turn
    after turn, in order of appearance. Values given in ``variables`` (training
    data with bare placeholders) are used as they are; for one placeholder
    kind the values come either all from the text or all from ``variables``.
    A turn whose text is ``None`` (the release's "answer to be generated") is
    passed through.

    Example::

        >>> turns, v = convert_conversation([
        ...     {"from": "human", "value": "<video>\\nWhen? {0.2, 0.6}"},
        ...     {"from": "gpt", "value": "At {<TEMP-OUTPUT><TEMP-OUTPUT>}."}],
        ...     variables={"temporal_output_locations": [0.25, 0.5]})
        >>> v.temporal_input_locations, v.temporal_output_locations
        ([0.2, 0.6], [0.25, 0.5])

    Raises:
        CoordinateError: malformed markup, values given both ways for one
            kind, or value counts that do not match the placeholders (the
            message names the kind and both counts).
    """
    out_turns: list[dict[str, str]] = []
    found = Variables()
    bare = {key: 0 for key in VARIABLE_KEYS}
    for i, turn in enumerate(turns):
        if "from" in turn and "value" in turn:
            role_key, text_key = "from", "value"
        elif "role" in turn and "content" in turn:
            role_key, text_key = "role", "content"
        else:
            raise CoordinateError(
                f"turn {i} must have 'from' and 'value' (or 'role' and 'content') keys, got {sorted(turn)}"
            )
        value = turn[text_key]
        if value is None:
            out_turns.append(dict(turn))
            continue
        text, vals = to_placeholders(value, _turn_io(turn[role_key]))
        after = count_placeholders(text)
        for key in VARIABLE_KEYS:
            # placeholders that came without a value: theirs must be given in ``variables``
            bare[key] += after[key] - len(getattr(vals, key))
        found.extend(vals)
        new_turn = dict(turn)
        new_turn[text_key] = text
        out_turns.append(new_turn)

    given = Variables.from_dict(variables)
    total = Variables()
    for key in VARIABLE_KEYS:
        from_text = getattr(found, key)
        from_given = getattr(given, key)
        n_bare = bare[key]
        if from_text and from_given:
            raise CoordinateError(
                f"{key}: values are written in the text ({len(from_text)}) and also given in variables "
                f"({len(from_given)}); give them one way only"
            )
        if len(from_given) != n_bare and (from_given or n_bare):
            raise CoordinateError(
                f"{key}: the conversation has {n_bare} placeholder(s) without a value but variables holds "
                f"{len(from_given)} value(s)"
            )
        getattr(total, key).extend(from_text or from_given)
    return out_turns, total


__all__ = [
    "AXES",
    "PLACEHOLDERS",
    "CoordinateError",
    "Variables",
    "convert_conversation",
    "count_placeholders",
    "extract_variables",
    "format_box",
    "format_coordinates",
    "format_span",
    "format_value",
    "insert_values",
    "round3",
    "to_markup",
    "to_placeholders",
]
