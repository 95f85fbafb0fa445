"""Words about scenes: referring phrases, event captions, scene descriptions and prompt templates.

Referring phrases are unambiguous by construction: a phrase names a subset of
the object's attributes (always its shape), and is used only when no other
object of the scene ever matches it at any frame (an object matches a colour
word when it shows that colour on some frame). Colour words in a phrase are
the object's own (first) colour.

Every template here is our own wording, except the benchmark prompts and task
suffixes that SPEC §3 and EVAL-PROTOCOL quote (REC templates, the Charades-STA
query, the ST-Align span phrases and suffixes), which must match the release.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..protocol.prompts import CHARADES_TEMPLATE
from .scene import Scene, SceneEvent, SceneObject

# ----------------------------------------------------------------- benchmark wording (release)
# REC templates, the Charades-STA query, the ST-Align span phrases and task suffixes
# live in llava_st.protocol.prompts (one copy for evaluation, inference and ST-Synth).

# ----------------------------------------------------------------- our own prompt wording

TVG_TEMPLATES = (
    CHARADES_TEMPLATE,
    "In which part of the video does this happen: '{x}'? Answer with the start and end times.",
    "Find the moment when {x}. Reply with its start and end timestamps.",
)
TR_TEMPLATES = (
    "What happens in the video during {span}?",
    "Describe the event that takes place in {span}.",
    "Tell me what goes on between the timestamps {span}.",
)
DVC_TEMPLATES = (
    "Find every event in this video, and give each one with its start and end times.",
    "List the events of the video in order, each with its time span and a short description.",
    "Describe the video event by event, giving the span of each event.",
)
STVG_TEMPLATES = (
    "When and where does this happen: {x}? ",
    "Locate this event in time and space: {x}. ",
    "Find the object in the event '{x}' and the time it happens. ",
)
SVG_TEMPLATES = (
    "{span_phrase} {span}, where is {x}? ",
    "{span_phrase} {span}, follow {x}. ",
    "{span_phrase} {span}, track {x} across the frames. ",
)
ELC_TEMPLATES = (
    "Watch the object inside {box}. Starts in {t}. ",
    "Follow the object at {box}. Starts in {t}. ",
)
VIDEO_CAPTION_TEMPLATES = (
    "Describe this video.",
    "What happens in this video? Describe it in a few sentences.",
    "Give a short description of the video.",
)
REG_TEMPLATES = (
    "What is the object in the region {box}?",
    "Describe the object inside {box} in a few words.",
    "Which shape occupies {box}? Answer briefly.",
)
REG_ANSWERS = ("A {d}.", "It is a {d}.", "That region holds a {d}.")
DGC_TEMPLATES = (
    "Describe this image in detail, and give the bounding box of every object you mention.",
    "Describe the image, following each object you name with its box.",
    "Give a grounded description of the picture: name each object and add its bounding box.",
)
IMAGE_CAPTION_TEMPLATES = (
    "Describe this image.",
    "What does this picture show?",
    "Give a short caption for this image.",
)

# ----------------------------------------------------------------- event captions

EVENT_CAPTIONS = {
    "appear": ("{o} appears", "{o} pops up and grows to full size", "{o} shows up in the scene"),
    "disappear": ("{o} disappears", "{o} shrinks until it is gone", "{o} vanishes from the scene"),
    "recolour": ("{o} turns {c} for a while", "{o} briefly changes its colour to {c}", "{o} glows {c} for a moment"),
    "move": ("{o} moves {d}", "{o} slides {d} and stops", "{o} travels {d}"),
    "start_moving": ("{o} starts moving {d}", "{o} sets off {d}", "{o} begins to drift {d}"),
    "stop_moving": ("{o} slows down and stops", "{o} comes to a halt", "{o} stops moving"),
    "enter": ("{o} enters from the {s}", "{o} comes into view from the {s}", "{o} slides in from the {s} edge"),
    "leave": ("{o} leaves the frame on the {s}", "{o} exits to the {s}", "{o} moves out of view on the {s}"),
}

MOTION_NOTES = {
    "linear": "{o} drifts steadily",
    "bouncing": "{o} keeps bouncing around",
    "circular": "{o} circles around",
}


def pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def direction_words(dx: float, dy: float) -> str:
    """A direction phrase for a screen displacement (y down), e.g. ``to the left``, ``toward the upper right``."""
    angle = math.degrees(math.atan2(-dy, dx)) % 360  # 0 = right, 90 = up
    names = (
        "to the right",
        "toward the upper right",
        "upward",
        "toward the upper left",
        "to the left",
        "toward the lower left",
        "downward",
        "toward the lower right",
    )
    return names[int(((angle + 22.5) % 360) // 45)]


def _matches(obj: SceneObject, scene: Scene, size: str | None, colour: str | None, shape: str) -> bool:
    if obj.shape != shape or (size is not None and obj.size != size):
        return False
    return colour is None or colour in scene.colour_names_of(obj)


def phrase_options(obj: SceneObject, scene: Scene) -> list[str]:
    """Every unambiguous phrase for ``obj`` (without article), the full ``size colour shape`` last."""
    options = []
    for size, colour in ((None, None), (None, obj.colour), (obj.size, None), (obj.size, obj.colour)):
        if all(not _matches(o, scene, size, colour, obj.shape) for o in scene.objects if o is not obj):
            words = [w for w in (size, colour, obj.shape) if w is not None]
            options.append(" ".join(words))
    return options


def assign_phrases(scene: Scene, rng: np.random.Generator) -> None:
    """Give every object a referring phrase ("the red star"); raises if one has none (duplicate attributes)."""
    for obj in scene.objects:
        options = phrase_options(obj, scene)
        if not options:
            raise ValueError(f"object {obj.index} ({obj.description}) cannot be told apart from another object")
        obj.phrase = "the " + pick(rng, options)


def event_caption(event: SceneEvent, obj: SceneObject, rng: np.random.Generator) -> str:
    """A sentence for the event, lower-case start, no final period: ``the small red circle moves to the left``."""
    template = pick(rng, EVENT_CAPTIONS[event.kind])
    return template.format(
        o=obj.phrase,
        c=event.detail.get("colour", ""),
        d=event.detail.get("direction", ""),
        s=event.detail.get("side", ""),
    )


def sentence(text: str) -> str:
    """Capitalised, with a final period."""
    return capitalise(text.rstrip(".")) + "."


def count_word(n: int) -> str:
    words = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
    return words[n] if n < len(words) else str(n)


def video_caption(scene: Scene, events: Sequence[SceneEvent], pan: str | None, rng: np.random.Generator) -> str:
    """A paragraph without coordinates: the setting, the events in time order, ongoing motion."""
    parts = [f"The video shows {count_word(len(scene.objects))} shapes on {scene.background.description}."]
    if pan:
        parts.append(f"The camera pans slowly {pan}.")
    ordered = sorted(events, key=lambda e: (e.start, e.end, e.object))
    for n, ev in enumerate(ordered):
        text = ev.caption
        if len(ordered) > 1:
            link = "First," if n == 0 else ("Finally," if n == len(ordered) - 1 else pick(rng, ("Then", "After that,", "Next,")))
            text = f"{link} {text}"
        parts.append(sentence(text))
    busy = {ev.object for ev in events}
    for obj in scene.objects:
        if obj.index not in busy and obj.motion in MOTION_NOTES:
            parts.append(sentence(MOTION_NOTES[obj.motion].format(o=obj.phrase)))
    return " ".join(parts)


def list_phrases(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def article(description: str) -> str:
    return ("an " if description[:1] in "aeiou" else "a ") + description


def image_caption(scene: Scene, shown: Sequence[SceneObject]) -> str:
    """One sentence naming every visible object (no coordinates)."""
    names = [article(o.description) for o in shown]
    return sentence(f"The image shows {list_phrases(names)} on {scene.background.description}")
