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
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..protocol.answers import to_token_form
from ..protocol.coords import release_rewrite

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


def release_texts(answer: str, num_bins: int = 100) -> ReleaseTexts:
    """``outputs`` / ``converted_outputs`` / integer rewrite of an answer in either form."""
    outputs = to_token_form(answer, num_bins)
    return ReleaseTexts(
        outputs=outputs,
        converted=release_rewrite(outputs, num_bins=num_bins),
        integer=release_rewrite(outputs, num_bins=num_bins, integer=True),
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
