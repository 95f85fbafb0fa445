"""Model -> text: what bin tokens mean, and the release's decimal text (SPEC §1, §2.9, §3).

The model writes every coordinate as a bin token (``<TEMP-012>``,
``<HEIGHT-037>``, ``<WIDTH-036>``). This module is the one place that turns
bins into numbers and into the release's decimal text, and back again::

    bin  <TEMP-012>              -- bin_to_value -->     12 / 99 = 0.121212...  (value_to_bin: back)
    text {<TEMP-012><TEMP-056>}  -- release_rewrite -->  {0.12121,0.56566}      (to_token_form: back)

Rules:

* bin ``k`` of an axis with ``n`` bins means ``k / (n - 1)``: bin 0 is 0.0 and
  bin ``n - 1`` is 1.0. Time bins use ``bins.time``, height and width bins
  ``bins.space``;
* every function takes the counts as a :class:`~llava_st.protocol.tokens.BinCounts`
  (a model's are ``config.coords.bins``); there is no default count;
* the release's rewrite writes each bin as ``k / (n - 1)`` with 5 decimals and
  a comma, then closes ``,]`` and ``,}`` up; :func:`to_token_form` undoes it,
  so an answer reads the same in either form.

The other direction (coordinate markup in prompts and training text ->
placeholders and values, and values written as markup) is
:mod:`llava_st.protocol.coords`; the bin-token names, their pattern and
:class:`BinCounts` are :mod:`llava_st.protocol.tokens`.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

from .coords import CoordinateError
from .tokens import BIN_TOKEN_RE, END_OF_TURN, BinCounts, bin_token


def bin_to_value(axis: str, k: int, bins: BinCounts) -> float:
    """The value of bin ``k`` of ``axis``: ``k / (n - 1)`` with ``n = bins.of(axis)``.

    Example: ``bin_to_value("TEMP", 12, BinCounts(100, 100)) == 12 / 99``;
    ``bin_to_value("WIDTH", 19, BinCounts(50, 20)) == 1.0``.

    Raises:
        CoordinateError: ``k`` outside ``0 .. n - 1`` (the message names the token).
    """
    n = bins.of(axis)
    if not 0 <= k < n:
        raise CoordinateError(f"bin token {bin_token(axis, k)} is outside 0..{n - 1}")
    return k / (n - 1)


def value_to_bin(axis: str, value: float, bins: BinCounts) -> int:
    """The nearest bin of a normalised value: ``round(value * (n - 1))`` (Python ``round``).

    The inverse of :func:`bin_to_value` on bin values. Example with 100 bins:
    0.5 -> 49.5 -> bin 50 (ties to even), 0.2 -> 19.8 -> bin 20.

    Raises:
        CoordinateError: a value outside [0, 1] (or NaN).
    """
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise CoordinateError(f"value {value} is outside [0, 1]")
    return int(round(value * (bins.of(axis) - 1)))


def find_bins(text: str) -> list[tuple[str, int, int, int]]:
    """Every bin token in ``text`` as ``(axis, k, start, end)`` (character offsets).

    Example: ``find_bins("{<TEMP-003><TEMP-009>}")`` ->
    ``[("TEMP", 3, 1, 11), ("TEMP", 9, 11, 21)]``.
    """
    return [(m.group(1), int(m.group(2)), m.start(), m.end()) for m in BIN_TOKEN_RE.finditer(text)]


def bin_values(text: str, bins: BinCounts) -> list[tuple[str, float]]:
    """The bin tokens of ``text`` in order, as ``(axis, value)``.

    Example with ``BinCounts(10, 20)``: ``"{<TEMP-000><TEMP-009>} [<WIDTH-019>"``
    -> ``[("TEMP", 0.0), ("TEMP", 1.0), ("WIDTH", 1.0)]``.

    Raises:
        CoordinateError: a bin index outside its axis' range.
    """
    return [(axis, bin_to_value(axis, k, bins)) for axis, k, _, _ in find_bins(text)]


# ------------------------------------------------------------ the release's decimal text


def _decimal(k: int, n: int) -> str:
    """How the release writes bin ``k`` of ``n``: ``k / (n - 1)`` with 5 decimals (12 of 100 -> "0.12121")."""
    return f"{k / (n - 1):.5f}"


def release_rewrite(text: str, bins: BinCounts, *, integer: bool = False) -> str:
    """The release's rewrite of generated text.

    Each bin token becomes its value with 5 decimals followed by a comma (or
    its index ``k,`` when ``integer``), then ``,]`` -> ``]`` and ``,}`` -> ``}``.
    The index is not checked against the count, as in the release.

    Example with 100 bins::

        {<TEMP-012><TEMP-056>}                 -> {0.12121,0.56566}
        {<TEMP-012><TEMP-056>}, integer=True   -> {12,56}
        <TEMP-003>:[<WIDTH-036><HEIGHT-037>,   -> 0.03030,:[0.36364,0.37374,,
    """

    def sub(m: re.Match) -> str:
        k = int(m.group(2))
        return f"{k:d}," if integer else _decimal(k, bins.of(m.group(1))) + ","

    return BIN_TOKEN_RE.sub(sub, text).replace(",]", "]").replace(",}", "}")


# A decimal the release's rewrite produced: five decimals, then its comma (or a closing bracket).
_RELEASE_DECIMAL_RE = re.compile(r"(?<![\w.+-])(\d+\.\d{5})(?:,|(?=[\]}]))")


@lru_cache(maxsize=None)
def _decimal_table(n: int) -> dict[str, int]:
    """``{"0.12121": 12, ...}``: the decimal text of every bin of an axis with ``n`` bins."""
    return {_decimal(k, n): k for k in range(n)}


def to_token_form(text: str, bins: BinCounts) -> str:
    """Undo :func:`release_rewrite`: ``{0.12121,0.45455}`` -> ``{<TEMP-012><TEMP-045>}``.

    Also removes every ``<|im_end|>`` (as the release does). Text that already
    holds bin tokens keeps them. A decimal becomes bin ``k`` only when it is
    written with exactly five decimals, equals ``k / (n - 1)`` (``n`` the bins
    of its axis) to those decimals and carries the rewrite's comma (or is
    followed by ``]`` or ``}``, where the rewrite closed the comma up). The
    axis comes from the position: inside ``[...]`` the values alternate WIDTH,
    HEIGHT; elsewhere they are TEMP. ``release_rewrite(to_token_form(d, b), b) == d``
    for every rewritten ``d``.

    Example with 100 bins::

        >>> to_token_form("Ends in 0.80808,, a dog. 0.12121,:[0.36364,0.37374,0.63636,0.54545]", RELEASE_BINS)
        'Ends in <TEMP-080>, a dog. <TEMP-012>:[<WIDTH-036><HEIGHT-037><WIDTH-063><HEIGHT-054>]'
    """
    text = text.replace(END_OF_TURN, "")
    time_table = _decimal_table(bins.time)
    space_table = _decimal_table(bins.space)
    out: list[str] = []
    pos = 0
    inside = False  # inside [...]?
    slot = 0  # position of the value inside the current [...]: even WIDTH, odd HEIGHT
    for m in _RELEASE_DECIMAL_RE.finditer(text):
        between = text[pos : m.start()]
        for ch in between:
            if ch == "[":
                inside, slot = True, 0
            elif ch == "]":
                inside = False
        out.append(between)
        k = (space_table if inside else time_table).get(m.group(1))
        if k is None:
            out.append(m.group(0))
        else:
            axis = ("WIDTH", "HEIGHT")[slot % 2] if inside else "TEMP"
            out.append(bin_token(axis, k))
            slot += 1
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)


__all__ = [
    "bin_to_value",
    "bin_values",
    "find_bins",
    "release_rewrite",
    "to_token_form",
    "value_to_bin",
]
