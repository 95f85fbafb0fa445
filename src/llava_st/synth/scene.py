"""What a scene is: objects with per-frame state, events with frame spans, camera and background.

Coordinates: object centres are WORLD pixels (float, x right, y down); the
camera offset ``camera[f]`` (integer pixels) is subtracted to get screen
pixels, and the background is the world texture seen through the frame-sized
window at that offset. An image is a scene of one frame.

Frame spans are inclusive absolute frame ids ``[start, end]``; seconds are
``frame / fps`` (the presentation time of the frame).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .background import Background

#: Event kinds, with what their span means.
EVENT_KINDS = {
    "appear": "grows from a quarter of its size at the start to full size at the end; invisible before",
    "disappear": "shrinks from full size at the start to a quarter at the end; invisible after",
    "recolour": "shows another colour on every frame of the span, its own colour before and after",
    "move": "at rest at the start, moving on every later frame of the span, at rest after",
    "start_moving": "at rest at the start, speeding up through the span, moving on after",
    "stop_moving": "moving before, slowing down through the span, at rest after the end",
    "enter": "from the first visible frame to the first frame on which it lies wholly inside the frame",
    "leave": "from the last frame on which it lies wholly inside the frame to the last visible frame",
}


@dataclass
class SceneObject:
    """One shape and its state on every frame.

    ``index`` is the object's id (its pixels carry ``index + 1`` in the id map);
    ``colour`` is its own (first) colour, the one its referring phrase uses;
    ``colour_track`` ``[F]`` holds the palette index shown on each frame;
    ``scale`` ``[F]`` multiplies ``radius`` (0 = not drawn); ``angle`` ``[F]`` in
    radians; ``centre`` ``[F, 2]`` world pixels; ``z`` orders drawing (higher on top).
    """

    index: int
    shape: str
    colour: str
    size: str
    radius: float
    role: str  # "target" | "distractor" | "extra" | "occluder"
    z: int
    motion: str
    centre: np.ndarray
    angle: np.ndarray
    scale: np.ndarray
    colour_track: np.ndarray
    phrase: str = ""

    @property
    def description(self) -> str:
        """``size colour shape`` without an article, e.g. ``small red circle``."""
        return f"{self.size} {self.colour} {self.shape}"


@dataclass
class SceneEvent:
    """Something that happens to one object over the inclusive frame span ``[start, end]``.

    ``detail`` holds the words the caption needs (``colour``, ``direction``,
    ``side``). Spans of ``appear``, ``disappear``, ``enter`` and ``leave`` are
    read from the rendered pixels (see :mod:`llava_st.synth.truth`).
    """

    kind: str
    object: int
    start: int
    end: int
    detail: dict[str, str] = field(default_factory=dict)
    caption: str = ""


@dataclass
class Scene:
    """A video (``num_frames`` > 1) or an image (one frame) before rendering."""

    media: str  # "video" | "image"
    width: int
    height: int
    num_frames: int
    fps: float
    split: str  # "train" | "test"
    background: Background
    camera: np.ndarray  # [F, 2] int, world offset of the frame's top-left corner
    objects: list[SceneObject]
    events: list[SceneEvent]
    palette: tuple[tuple[int, int, int], ...]
    palette_names: tuple[str, ...]

    def colour_names_of(self, obj: SceneObject) -> list[str]:
        """Every colour the object shows in the scene, its own first."""
        seen = [obj.colour]
        for k in np.unique(obj.colour_track):
            name = self.palette_names[int(k)]
            if name not in seen:
                seen.append(name)
        return seen
