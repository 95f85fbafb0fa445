"""Shape outlines in screen pixels, and drawing them with Pillow.

A shape is placed by its centre ``(cx, cy)`` (float pixels, x right, y down),
its circumradius ``r`` (pixels: every point of the shape is within ``r`` of the
centre) and a rotation ``angle`` (radians; with y pointing down, a positive
angle turns the shape clockwise as seen on screen). Drawing is hard-edged
(no antialiasing): a pixel belongs to exactly one object or to the background,
which is what lets the ground-truth boxes be read from the drawn pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import ImageDraw

#: Inner radius of the star relative to its tips.
STAR_INNER = 0.45
#: Half width of the cross arms relative to the arm length.
CROSS_HALF_WIDTH = 0.32
#: Thickness of the ring as a fraction of its radius (at least 2 pixels).
RING_THICKNESS = 0.35


def _unit_polygons() -> dict[str, np.ndarray]:
    """Vertices ``[N, 2]`` of each polygon shape with circumradius 1 at angle 0."""
    k4 = np.arange(4)
    square = np.stack([np.cos(np.pi / 4 + k4 * np.pi / 2), np.sin(np.pi / 4 + k4 * np.pi / 2)], 1)
    k3 = np.arange(3)
    triangle = np.stack([np.cos(-np.pi / 2 + k3 * 2 * np.pi / 3), np.sin(-np.pi / 2 + k3 * 2 * np.pi / 3)], 1)
    k10 = np.arange(10)
    rr = np.where(k10 % 2 == 0, 1.0, STAR_INNER)
    a10 = -np.pi / 2 + k10 * np.pi / 5
    star = np.stack([rr * np.cos(a10), rr * np.sin(a10)], 1)
    w = CROSS_HALF_WIDTH
    cross = np.array(
        [(-w, -1), (w, -1), (w, -w), (1, -w), (1, w), (w, w), (w, 1), (-w, 1), (-w, w), (-1, w), (-1, -w), (-w, -w)],
        dtype=np.float64,
    ) / math.hypot(1.0, w)
    return {"square": square, "triangle": triangle, "star": star, "cross": cross}


UNIT_POLYGONS = _unit_polygons()
ROUND_SHAPES = ("circle", "ring")


@dataclass(frozen=True)
class Outline:
    """One drawable primitive: a polygon (``points`` ``[N, 2]``) or a filled/outlined ellipse.

    ``extent`` is ``(x0, y0, x1, y1)`` in float pixels: the smallest axis-aligned
    rectangle holding the ideal shape (not the rasterised pixels).
    """

    kind: str  # "polygon" | "disc" | "ring"
    points: np.ndarray | None = None
    box: tuple[float, float, float, float] | None = None
    width: int = 0

    @property
    def extent(self) -> tuple[float, float, float, float]:
        if self.kind == "polygon":
            assert self.points is not None
            lo, hi = self.points.min(0), self.points.max(0)
            return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])
        assert self.box is not None
        return self.box


def outline(shape: str, cx: float, cy: float, r: float, angle: float) -> Outline:
    """The outline of ``shape`` centred at ``(cx, cy)`` with circumradius ``r`` px, rotated by ``angle``."""
    if shape in UNIT_POLYGONS:
        c, s = math.cos(angle), math.sin(angle)
        rot = np.array([[c, s], [-s, c]])
        pts = UNIT_POLYGONS[shape] @ rot * r + np.array([cx, cy])
        return Outline("polygon", points=pts)
    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "circle":
        return Outline("disc", box=box)
    if shape == "ring":
        return Outline("ring", box=box, width=max(2, int(round(RING_THICKNESS * r))))
    raise ValueError(f"unknown shape {shape!r}")


def half_resolution(shape: Outline) -> Outline:
    """The outline on a grid of half the resolution (the chroma planes of 4:2:0 video).

    Full-resolution pixel x has its centre at x; chroma sample j covers full
    pixels 2j and 2j + 1, centre 2j + 0.5, so a full-resolution coordinate X maps
    to ``(X - 0.5) / 2``.
    """
    if shape.kind == "polygon":
        assert shape.points is not None
        return Outline("polygon", points=(shape.points - 0.5) / 2)
    assert shape.box is not None
    x0, y0, x1, y1 = ((v - 0.5) / 2 for v in shape.box)
    return Outline(shape.kind, box=(x0, y0, x1, y1), width=max(1, int(round(shape.width / 2))))


def draw_outline(draw: ImageDraw.ImageDraw, shape: Outline, fill: int | tuple[int, int, int]) -> None:
    """Paint ``shape`` with ``fill`` (hard edges)."""
    if shape.kind == "polygon":
        assert shape.points is not None
        draw.polygon(shape.points.ravel().tolist(), fill=fill)  # flat [x0, y0, x1, y1, ...]
    elif shape.kind == "disc":
        draw.ellipse(shape.box, fill=fill)
    elif shape.kind == "ring":
        draw.ellipse(shape.box, outline=fill, width=shape.width)
    else:  # pragma: no cover - Outline is built only by outline()
        raise ValueError(f"unknown outline kind {shape.kind!r}")
