"""The coordinate protocol on the text side (SPEC §1, §3).

Two directions:

* **text -> model**: markup in prompts and training answers (plain ``{0.2, 0.6}``
  spans and ``[0.1, 0.2, 0.5, 0.7]`` boxes, ``Starts in 0.4``, the short tags
  ``<t0.4>``/``<w0.1>``/``<h0.2>``, and placeholder-with-value tokens such as
  ``<TEMP-INPUT0.2>``) becomes text with bare placeholders (``<TEMP-INPUT>``)
  plus six ordered value lists (:class:`Variables`).
* **model -> text**: bin tokens ``<TEMP-012>`` decode to numbers ``k / (n - 1)``;
  :func:`release_rewrite` reproduces the release's rewrite of an answer to
  decimals (``{<TEMP-012><TEMP-056>}`` -> ``{0.12121,0.56566}``).

Conventions: every value is normalised to [0, 1]; time 0 is the first sampled
frame and 1 the last; boxes are ``[x1, y1, x2, y2]`` over the frame width and
height. Values are rounded like the release (Python ``round(v, 3)`` on the
float, ties to even on the exact binary value: 0.3125 -> 0.312).

Unlike the release, which clips box values and writes ``{<error>}`` for an
empty span, we raise :class:`CoordinateError` naming the text: nothing is
silently changed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Iterable, Literal, Mapping, Sequence

from .tokens import AXES, PLACEHOLDERS, PLACEHOLDER_TO_KEY, VARIABLE_KEYS

IO = Literal["INPUT", "OUTPUT"]

_NUM = r"(\d+(?:\.\d+)?)"
# The release's grammar: a number is digits with an optional ".digits" part.
_BOX_RE = re.compile(r"\[\s*" + _NUM + r",\s*" + _NUM + r",\s*" + _NUM + r",\s*" + _NUM + r"\s*\]")
_SPAN_RE = re.compile(r"{\s*" + _NUM + r"\,\s*" + _NUM + r"\s*}")
_STARTS_RE = re.compile(r"Starts in " + _NUM)
_SHORT_RE = re.compile(r"<([twh])([^<>]*)>")
_SHORT_AXIS = {"t": "TEMP", "h": "HEIGHT", "w": "WIDTH"}
# Placeholder tokens, bare or carrying a value: <TEMP-INPUT>, <WIDTH-OUTPUT0.25>.
_PLACEHOLDER_RE = re.compile(r"<(TEMP|HEIGHT|WIDTH)-(INPUT|OUTPUT)([^<>]*)>")
_BIN_RE = re.compile(r"<(TEMP|HEIGHT|WIDTH)-(\d+)>")
_VALUE_RE = re.compile(r"\d+(?:\.\d+)?\Z")


class CoordinateError(ValueError):
    """Malformed coordinate markup or a value outside [0, 1]; the message names the text."""


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def round3(value: float) -> float:
    """The release's rounding of a coordinate: ``round(v, 3)`` on the Python float."""
    return round(float(value), 3)


def _check_unit(value: float, what: str, text: str) -> float:
    if not (0.0 <= value <= 1.0) or math.isnan(value):
        raise CoordinateError(f"{what} value {value} is outside [0, 1] in text {_short(text)!r}")
    return value


def _fmt(value: float) -> str:
    # str() of the rounded float, as the release writes it: 0.5 -> "0.5", 0.0 -> "0.0".
    return str(round3(value))


@dataclass
class Variables:
    """The six ordered value lists of one sample (release key names in :data:`VARIABLE_KEYS`)."""

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
        data = data or {}
        unknown = set(data) - set(VARIABLE_KEYS)
        if unknown:
            raise CoordinateError(f"unknown variables keys {sorted(unknown)}; expected {list(VARIABLE_KEYS)}")
        return cls(**{key: [float(v) for v in data.get(key, [])] for key in VARIABLE_KEYS})

    def extend(self, other: "Variables") -> None:
        for key in VARIABLE_KEYS:
            getattr(self, key).extend(getattr(other, key))

    def __len__(self) -> int:
        return sum(len(getattr(self, key)) for key in VARIABLE_KEYS)


def format_coordinates(text: str, io: IO) -> str:
    """Rewrite coordinate markup into placeholder-with-value tokens, as the release's helpers do.

    ``io`` is ``"INPUT"`` for user turns and ``"OUTPUT"`` for assistant turns.

    * ``<t0.4>``, ``<h0.2>``, ``<w0.1>`` -> ``<TEMP-IO0.4>`` ... (value rounded to 3 decimals);
    * ``[a, b, c, d]`` -> `` [<WIDTH-IOa><HEIGHT-IOb><WIDTH-IOc><HEIGHT-IOd>]`` (a space before);
    * ``{s, e}`` -> `` {<TEMP-IOs><TEMP-IOe>} `` (spaces around);
    * ``Starts in v`` -> `` Starts in <TEMP-IOv> ``.

    Example::

        >>> format_coordinates("during {0.2, 0.6}?", "INPUT")
        'during  {<TEMP-INPUT0.2><TEMP-INPUT0.6>} ?'

    Raises:
        CoordinateError: a value outside [0, 1], a span whose start is not
            before its end, or a short tag without a number.
    """
    if io not in ("INPUT", "OUTPUT"):
        raise ValueError(f"io must be 'INPUT' or 'OUTPUT', got {io!r}")

    def short(m: re.Match) -> str:
        raw = m.group(2)
        if not _VALUE_RE.match(raw):
            raise CoordinateError(f"coordinate tag {m.group(0)!r} does not hold a number in text {_short(text)!r}")
        value = _check_unit(float(raw), m.group(0), text)
        return f"<{_SHORT_AXIS[m.group(1)]}-{io}{_fmt(value)}>"

    def box(m: re.Match) -> str:
        a, b, c, d = (_check_unit(float(g), "box", text) for g in m.groups())
        return f" [<WIDTH-{io}{_fmt(a)}><HEIGHT-{io}{_fmt(b)}><WIDTH-{io}{_fmt(c)}><HEIGHT-{io}{_fmt(d)}>]"

    def span(m: re.Match) -> str:
        s, e = (_check_unit(float(g), "span", text) for g in m.groups())
        if s >= e:
            raise CoordinateError(f"span {m.group(0)!r} does not start before it ends, in text {_short(text)!r}")
        return f" {{<TEMP-{io}{_fmt(s)}><TEMP-{io}{_fmt(e)}>}} "

    def starts(m: re.Match) -> str:
        v = _check_unit(float(m.group(1)), "start time", text)
        return f" Starts in <TEMP-{io}{_fmt(v)}> "

    out = _SHORT_RE.sub(short, text)
    out = _BOX_RE.sub(box, out)
    out = _SPAN_RE.sub(span, out)
    out = _STARTS_RE.sub(starts, out)
    return out


def extract_variables(text: str) -> tuple[str, Variables]:
    """Strip the values out of placeholder-with-value tokens.

    Returns the text with bare placeholders and the values in order of
    appearance per placeholder kind. Bare placeholders (no value) are left as
    they are and contribute nothing: their values must come from elsewhere
    (training data carries them in ``variables``).

    Example::

        >>> extract_variables("{<TEMP-INPUT0.2><TEMP-INPUT0.6>}")
        ('{<TEMP-INPUT><TEMP-INPUT>}', Variables(temporal_input_locations=[0.2, 0.6], ...))

    Raises:
        CoordinateError: a placeholder value that is not a number in [0, 1].
    """
    found = Variables()

    def strip(m: re.Match) -> str:
        axis, io, raw = m.groups()
        name = f"<{axis}-{io}>"
        if raw == "":
            return name
        if not _VALUE_RE.match(raw):
            raise CoordinateError(f"placeholder {m.group(0)!r} does not hold a number, in text {_short(text)!r}")
        value = _check_unit(float(raw), name, text)
        getattr(found, PLACEHOLDER_TO_KEY[name]).append(value)
        return name

    return _PLACEHOLDER_RE.sub(strip, text), found


def to_placeholders(text: str, io: IO) -> tuple[str, Variables]:
    """:func:`format_coordinates` then :func:`extract_variables` on one turn."""
    return extract_variables(format_coordinates(text, io))


def count_placeholders(text: str) -> dict[str, int]:
    """How many bare or valued placeholders of each kind the text holds."""
    counts = {key: 0 for key in VARIABLE_KEYS}
    for m in _PLACEHOLDER_RE.finditer(text):
        counts[PLACEHOLDER_TO_KEY[f"<{m.group(1)}-{m.group(2)}>"]] += 1
    return counts


def convert_conversation(
    turns: Iterable[Mapping[str, str]], variables: Mapping[str, Sequence[float]] | None = None
) -> tuple[list[dict[str, str]], Variables]:
    """Turn a LLaVA-style conversation into placeholder text plus :class:`Variables`.

    Each turn is ``{"from": "human" | "gpt" | "system", "value": text}``; human
    (and system) turns use ``INPUT`` and assistant turns ``OUTPUT``
    placeholders. Values written in the text are collected turn after turn.
    Values given in ``variables`` (training data with bare placeholders) are
    used as they are; a conversation may not mix both ways for one kind.

    Raises:
        CoordinateError: malformed markup, or value counts that do not match the
            placeholders (the message names the kind and both counts).
    """
    out_turns: list[dict[str, str]] = []
    found = Variables()
    bare = {key: 0 for key in VARIABLE_KEYS}
    for i, turn in enumerate(turns):
        if "value" not in turn or "from" not in turn:
            raise CoordinateError(f"turn {i} must have 'from' and 'value' keys, got {sorted(turn)}")
        value = turn["value"]
        if value is None:
            out_turns.append(dict(turn))
            continue
        io: IO = "OUTPUT" if turn["from"] in ("gpt", "assistant") else "INPUT"
        text, vals = to_placeholders(value, io)
        after = count_placeholders(text)
        for key in VARIABLE_KEYS:
            # placeholders that came without a value: theirs must be given in ``variables``
            bare[key] += after[key] - len(getattr(vals, key))
        found.extend(vals)
        new_turn = dict(turn)
        new_turn["value"] = text
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
        if from_given and len(from_given) != n_bare:
            raise CoordinateError(
                f"{key}: the conversation has {n_bare} bare placeholder(s) but variables holds {len(from_given)} value(s)"
            )
        if n_bare and not from_given:
            raise CoordinateError(f"{key}: the conversation has {n_bare} placeholder(s) without a value")
        for v in from_given:
            _check_unit(v, key, str(list(from_given)))
        getattr(total, key).extend(from_text or from_given)
    return out_turns, total


# ------------------------------------------------------------ model -> text


def bin_to_value(k: int, num_bins: int) -> float:
    """Bin ``k`` of an axis with ``num_bins`` bins means ``k / (num_bins - 1)``."""
    if not 0 <= k < num_bins:
        raise CoordinateError(f"bin {k} is outside 0..{num_bins - 1}")
    return k / (num_bins - 1)


def value_to_bin(value: float, num_bins: int) -> int:
    """The nearest bin of a normalised value (the inverse of :func:`bin_to_value` on bin centres)."""
    if not 0.0 <= value <= 1.0:
        raise CoordinateError(f"value {value} is outside [0, 1]")
    return int(round(value * (num_bins - 1)))


def find_bins(text: str) -> list[tuple[str, int, int, int]]:
    """Every bin token in ``text`` as ``(axis, k, start, end)`` (character offsets)."""
    return [(m.group(1), int(m.group(2)), m.start(), m.end()) for m in _BIN_RE.finditer(text)]


def release_rewrite(text: str, num_bins: int = 100, integer: bool = False) -> str:
    """The release's rewrite of generated text: each bin token becomes ``k / (n - 1)``
    with 5 decimals followed by a comma (or the integer ``k,`` when ``integer``), then
    ``,]`` -> ``]`` and ``,}`` -> ``}``.

    Example::

        >>> release_rewrite("{<TEMP-012><TEMP-056>}")
        '{0.12121,0.56566}'

    The axis of a token is not checked, as in the release.
    """

    def sub(m: re.Match) -> str:
        k = int(m.group(2))
        return f"{k:d}," if integer else f"{k / (num_bins - 1):.5f},"

    return _BIN_RE.sub(sub, text).replace(",]", "]").replace(",}", "}")


__all__ = [
    "AXES",
    "PLACEHOLDERS",
    "CoordinateError",
    "Variables",
    "bin_to_value",
    "convert_conversation",
    "count_placeholders",
    "extract_variables",
    "find_bins",
    "format_coordinates",
    "release_rewrite",
    "round3",
    "to_placeholders",
    "value_to_bin",
]
