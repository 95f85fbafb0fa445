"""The release's answer parsers, reproduced for published-compatible scoring (EVAL-PROTOCOL §0-§3).

These functions read answers exactly as the authors' evaluation code does,
quirks included; :mod:`llava_st.protocol.answers` is the canonical reader. Each parser
works on one of the three texts the release keeps per answer, all derived
here from the prediction by :func:`release_texts` so that an answer given
with bin tokens and the same answer after the decimal rewrite read the same:

* ``outputs``: decoded text with bin tokens (``<TEMP-012>``), ``<|im_end|>`` removed;
* ``converted``: ``outputs`` after the decimal rewrite (``{0.12121,0.45455}``);
* ``integer``: ``outputs`` after the integer rewrite (``{12,45}``), ST-Align boxes.

The number grammar of every release parser: digits with an optional
``.digits`` part (no sign, no exponent, no leading dot).

The bin counts are a parameter like everywhere else; published-compatible
scoring passes :data:`llava_st.protocol.tokens.RELEASE_BINS` (100 per axis),
the counts the release's parsers assume.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..protocol.bins import release_rewrite, to_token_form
from ..protocol.tokens import BinCounts

_N = r"(\d+(?:\.\d+)?)"
# span: whitespace may follow "{" and the comma and precede "}", not precede the comma
_SPAN_RE = re.compile(r"{\s*" + _N + r"\,\s*" + _N + r"\s*}")
# box: searched after every space character is deleted
_BOX_RE = re.compile(r"\[" + _N + r",\s*" + _N + r",\s*" + _N + r",\s*" + _N + r"\]")
# per-frame pair on the integer rewrite, spaces deleted: "12,:[36,37,63,54]"
_PAIR_RE = re.compile(_N + r"\,\:\s*\[" + _N + r",\s*" + _N + r",\s*" + _N + r",\s*" + _N + r"\]")


@dataclass(frozen=True)
class ReleaseTexts:
    """The three texts the release derives from one generated answer."""

    outputs: str
    converted: str
    integer: str


def release_texts(answer: str, bins: BinCounts) -> ReleaseTexts:
    """``outputs`` / ``converted_outputs`` / integer rewrite of an answer in either form.

    Example with 100 bins: ``"{0.12121,0.45455}"`` and ``"{<TEMP-012><TEMP-045>}"``
    both give outputs ``{<TEMP-012><TEMP-045>}``, converted ``{0.12121,0.45455}``
    and integer ``{12,45}``.
    """
    outputs = to_token_form(answer, bins)
    return ReleaseTexts(
        outputs=outputs,
        converted=release_rewrite(outputs, bins),
        integer=release_rewrite(outputs, bins, integer=True),
    )


def release_span(converted: str) -> tuple[list[float], bool]:
    """The release's span parser: the first ``{ n , n }``; ``([0, 0], False)`` when none."""
    m = _SPAN_RE.search(converted)
    if m is None:
        return [0, 0], False
    return [float(m.group(1)), float(m.group(2))], True


def release_box(converted: str) -> list[float] | None:
    """The release's REC parser: delete spaces, take the first ``[n,n,n,n]``; ``None`` when none."""
    m = _BOX_RE.search(converted.replace(" ", ""))
    if m is None:
        return None
    return [float(g) for g in m.groups()]


def release_pairs(integer: str) -> dict[float, list[float]]:
    """The release's per-frame parser on the integer rewrite: ``{key: [four bins]}``, a later key overwrites."""
    out: dict[float, list[float]] = {}
    for m in _PAIR_RE.finditer(integer.replace(" ", "")):
        out[float(m.group(1))] = [float(g) for g in m.groups()[1:]]
    return out


def release_end_caption(outputs: str) -> str:
    """The release's ELC caption hypothesis: ``outputs`` up to its first ``.``, then after its last ``,``."""
    return outputs.split(".")[0].split(",")[-1]


__all__ = [
    "ReleaseTexts",
    "release_box",
    "release_end_caption",
    "release_pairs",
    "release_span",
    "release_texts",
]
