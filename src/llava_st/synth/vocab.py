"""The words ST-Synth speaks: named colours (with their RGB), shapes and size classes.

A scene object is described by three attributes, ``size colour shape`` ("small
red circle"). The colour names and shapes here are the defaults; a
:class:`~llava_st.synth.config.SceneSettings` may carry its own palette (the
tests use one whose colours have well separated luma).
"""

from __future__ import annotations

from dataclasses import dataclass

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Colour:
    """A named object colour; ``rgb`` is what the renderer paints (uint8 per channel)."""

    name: str
    rgb: RGB

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("-", "").isalpha() or self.name != self.name.lower():
            raise ValueError(f"colour name must be a lower-case word, got {self.name!r}")
        if len(self.rgb) != 3 or any((not isinstance(c, int)) or not 0 <= c <= 255 for c in self.rgb):
            raise ValueError(f"colour {self.name!r}: rgb must be three integers in 0..255, got {self.rgb!r}")


@dataclass(frozen=True)
class SizeClass:
    """A size word and the circumradius range it stands for, as a fraction of ``min(width, height)``."""

    name: str
    radius: tuple[float, float]

    def __post_init__(self) -> None:
        lo, hi = self.radius
        if not 0 < lo <= hi < 0.5:
            raise ValueError(f"size {self.name!r}: radius range must satisfy 0 < lo <= hi < 0.5, got {self.radius}")


#: Saturated colours that stand out from the muted backgrounds.
DEFAULT_COLOURS: tuple[Colour, ...] = (
    Colour("red", (225, 45, 45)),
    Colour("orange", (245, 145, 30)),
    Colour("yellow", (245, 220, 50)),
    Colour("green", (50, 185, 75)),
    Colour("cyan", (60, 210, 220)),
    Colour("blue", (50, 95, 235)),
    Colour("purple", (150, 70, 200)),
    Colour("white", (245, 245, 245)),
)

#: Every shape the renderer can draw (see :mod:`llava_st.synth.geometry`).
SHAPES: tuple[str, ...] = ("square", "circle", "triangle", "star", "ring", "cross")

#: Size classes with gaps between them, so that "small" and "large" are never confused.
DEFAULT_SIZES: tuple[SizeClass, ...] = (
    SizeClass("small", (0.045, 0.055)),
    SizeClass("medium", (0.075, 0.09)),
    SizeClass("large", (0.12, 0.145)),
)

#: Background kinds the generator knows.
BACKGROUND_KINDS: tuple[str, ...] = ("solid", "gradient", "noise")
