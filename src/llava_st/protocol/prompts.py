"""Prompt wording: the release's benchmark prompts and our task prompts (SPEC §3).

Two kinds of text live here:

* the release's own wording, which must match it character for character
  (REC templates, the Charades-STA TVG prompt, the ST-Align span phrases and
  task suffixes), used by evaluation and by ST-Synth;
* our default prompt for each task, used by the inference helpers
  (:class:`llava_st.infer.LlavaST`) and among ST-Synth's training templates,
  so that a model trained on ST-Synth understands what the API asks.

Coordinates in the task prompts are written in the plain markup of SPEC §3
(``{s, e}`` spans, ``[x1, y1, x2, y2]`` boxes, ``Starts in t``), normalised to
[0, 1], written by the one markup formatter
(:func:`llava_st.protocol.coords.format_value` and its span/box forms); the
processor turns them into placeholders.
"""

from __future__ import annotations

from typing import Sequence

from .coords import format_box, format_span, format_value

# ----------------------------------------------------------------- the release's wording

#: REC prompts of the release; ``{x}`` is the referring expression.
REC_TEMPLATES = (
    "Where can I find {x} in this image?",
    "What part of this image contains {x}?",
    "Where does {x} appear in this image?",
    "Where is {x} situated within this image?",
)

#: The Charades-STA TVG prompt of the release; ``{x}`` is the query.
CHARADES_TEMPLATE = (
    "Give you a textual query: '{x}'. When does the described content occur in the video? "
    "Please return the start and end timestamps."
)

#: Phrases the ST-Align reader puts in front of a ``{s, e}`` span.
SPAN_PHRASES = (
    "During the span of",
    "In the time range",
    "During the period",
    "Within the time frame of",
    "In the time period",
    "During",
    "Between",
    "At",
)

#: ST-Align task suffixes, appended to the user turn.
STVG_SUFFIX = (
    "Please firstly give the timestamps, and then give the spatial bounding box corresponding to each "
    "timestamp in the time period."
)
SVG_SUFFIX = "Please give the spatial bounding box corresponding to each timestamp in the time period."
ELC_SUFFIX = (
    "Please firstly give the end timestamp, then give the event associated with the object/subject, finally "
    "give the spatial bounding box corresponding to each timestamp in the time period."
)

# ----------------------------------------------------------------- our task prompts


def _query(text: str) -> str:
    return text.strip().rstrip(".?! ").strip()


def tvg(query: str) -> str:
    """Temporal video grounding: when does ``query`` happen (the Charades-STA prompt)."""
    return CHARADES_TEMPLATE.format(x=_query(query))


def rec(expression: str) -> str:
    """Referring expression comprehension: where is ``expression`` in the image."""
    return REC_TEMPLATES[0].format(x=_query(expression))


def stvg(query: str) -> str:
    """Spatio-temporal video grounding: the span of ``query`` and a box per frame in it."""
    return f"When and where does this happen: {_query(query)}? " + STVG_SUFFIX


def svg(query: str, start: float, end: float) -> str:
    """Spatial video grounding: boxes of ``query`` on each frame of the normalised span."""
    return f"{SPAN_PHRASES[0]} {format_span(start, end)}, where is {_query(query)}? " + SVG_SUFFIX


def elc(start: float, box: Sequence[float]) -> str:
    """Event localisation and captioning from a normalised start time and box."""
    return f"Watch the object inside {format_box(box)}. Starts in {format_value(start)}. " + ELC_SUFFIX


def reg(box: Sequence[float]) -> str:
    """Region description: what is inside the normalised box."""
    return f"What is the object in the region {format_box(box)}?"


def tr(start: float, end: float) -> str:
    """Temporal referring: what happens during the normalised span."""
    return f"What happens in the video during {format_span(start, end)}?"


DVC = "Find every event in this video, and give each one with its start and end times."
DGC = "Describe this image in detail, and give the bounding box of every object you mention."
