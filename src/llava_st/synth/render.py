"""Rendering: an id map per frame, boxes read from it, and the RGB frames.

Two steps keep the ground truth exact:

1. :func:`rasterise` draws every object, in ``z`` order, into a one-channel id
   map (``index + 1`` per object, 0 = background) with Pillow, and reads each
   object's box from the pixels that carry its id, i.e. the pixels that are
   visible in the frame after occlusion and clipping.
2. :func:`compose` paints the frame from the id map: the background window
   where the id is 0, the object's colour of that frame elsewhere. The RGB
   frame therefore shows exactly the pixels the boxes were read from.

Boxes are pixel ``[x1, y1, x2, y2]`` with ``x2``/``y2`` exclusive (one past the
last column/row), so ``x2 - x1`` is the width in pixels; ``-1`` everywhere
marks a frame on which the object has no visible pixel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
from PIL import Image, ImageDraw

from .geometry import Outline, draw_outline, half_resolution, outline
from .scene import Scene, SceneObject

#: Objects smaller than this radius (pixels) after scaling are not drawn.
MIN_DRAWN_RADIUS = 0.75
#: Extra pixels around an outline's extent searched for its rasterised pixels.
SEARCH_MARGIN = 2


@dataclass
class Raster:
    """What the renderer measured.

    ``ids``: ``[F, H, W]`` uint8 id maps. ``boxes``: ``[K, F, 4]`` int32 pixel
    xyxy (exclusive end), -1 where absent. ``inside``: ``[K, F]`` bool, the
    whole ideal shape lies within the frame on that frame (for enter/leave).
    ``area``: ``[K, F]`` int32 visible pixel count. ``drawn``: per frame, the
    ``(object index, outline)`` pairs in drawing order (screen pixels), reused
    to paint the video frames with the very same primitives.
    """

    ids: np.ndarray
    boxes: np.ndarray
    inside: np.ndarray
    area: np.ndarray
    drawn: list[list[tuple[int, Outline]]]

    def box(self, obj: int, frame: int) -> tuple[int, int, int, int] | None:
        b = self.boxes[obj, frame]
        return None if b[0] < 0 else (int(b[0]), int(b[1]), int(b[2]), int(b[3]))

    def visible(self, obj: int) -> np.ndarray:
        """``[F]`` bool: the object has at least one visible pixel."""
        return self.boxes[obj, :, 0] >= 0


def object_outline(scene: Scene, obj: SceneObject, frame: int) -> Outline | None:
    """The object's outline in SCREEN pixels on ``frame``; None when it is not drawn."""
    r = obj.radius * float(obj.scale[frame])
    if r < MIN_DRAWN_RADIUS:
        return None
    cx, cy = obj.centre[frame] - scene.camera[frame]
    return outline(obj.shape, float(cx), float(cy), r, float(obj.angle[frame]))


def _box_of(ids: np.ndarray, value: int, region: tuple[int, int, int, int]) -> tuple[np.ndarray | None, int]:
    """Box (full-frame pixel xyxy, exclusive end) of pixels equal to ``value`` inside ``region``."""
    x0, y0, x1, y1 = region
    if x1 <= x0 or y1 <= y0:
        return None, 0
    mask = ids[y0:y1, x0:x1] == value  # [h, w] bool
    rows = np.flatnonzero(mask.any(1))
    if rows.size == 0:
        return None, 0
    cols = np.flatnonzero(mask.any(0))
    return np.array([x0 + cols[0], y0 + rows[0], x0 + cols[-1] + 1, y0 + rows[-1] + 1], dtype=np.int32), int(mask.sum())


def rasterise(scene: Scene) -> Raster:
    """Draw the id maps of every frame and measure every object's visible box."""
    W, H, F, K = scene.width, scene.height, scene.num_frames, len(scene.objects)
    if K > 254:
        raise ValueError(f"a scene holds at most 254 objects, got {K}")
    ids = np.zeros((F, H, W), dtype=np.uint8)
    boxes = np.full((K, F, 4), -1, dtype=np.int32)
    inside = np.zeros((K, F), dtype=bool)
    area = np.zeros((K, F), dtype=np.int32)
    order = sorted(scene.objects, key=lambda o: o.z)
    drawn: list[list[tuple[int, Outline]]] = []
    canvas = Image.new("L", (W, H), 0)
    draw = ImageDraw.Draw(canvas)
    for f in range(F):
        draw.rectangle((0, 0, W - 1, H - 1), fill=0)
        regions: dict[int, tuple[int, int, int, int]] = {}
        drawn.append([])
        for obj in order:
            shape = object_outline(scene, obj, f)
            if shape is None:
                continue
            draw_outline(draw, shape, obj.index + 1)
            drawn[f].append((obj.index, shape))
            x0, y0, x1, y1 = shape.extent
            inside[obj.index, f] = x0 >= 0 and y0 >= 0 and x1 <= W - 1 and y1 <= H - 1
            regions[obj.index] = (
                max(0, int(np.floor(x0)) - SEARCH_MARGIN),
                max(0, int(np.floor(y0)) - SEARCH_MARGIN),
                min(W, int(np.ceil(x1)) + SEARCH_MARGIN + 1),
                min(H, int(np.ceil(y1)) + SEARCH_MARGIN + 1),
            )
        frame_ids = np.asarray(canvas)
        ids[f] = frame_ids
        for k, region in regions.items():
            b, n = _box_of(frame_ids, k + 1, region)
            if b is not None:
                boxes[k, f] = b
                area[k, f] = n
    return Raster(ids=ids, boxes=boxes, inside=inside, area=area, drawn=drawn)


def colour_table(scene: Scene, frame: int) -> np.ndarray:
    """``[K + 1, 3]`` uint8: row ``k + 1`` is object k's colour on ``frame`` (row 0 unused)."""
    palette = np.asarray(scene.palette, dtype=np.uint8)
    table = np.zeros((len(scene.objects) + 1, 3), dtype=np.uint8)
    for obj in scene.objects:
        table[obj.index + 1] = palette[int(obj.colour_track[frame])]
    return table


def compose(scene: Scene, raster: Raster, frame: int) -> np.ndarray:
    """The RGB frame ``[H, W, 3]`` uint8: background window plus the objects' pixels."""
    cx, cy = (int(v) for v in scene.camera[frame])
    out = scene.background.pixels[cy : cy + scene.height, cx : cx + scene.width].copy()
    ids = raster.ids[frame]
    mask = ids > 0
    out[mask] = colour_table(scene, frame)[ids[mask]]
    return out


def solo_area(scene: Scene, obj: SceneObject, frame: int) -> int:
    """Pixels the object would cover on ``frame`` with nothing in front of it (clipped to the frame)."""
    shape = object_outline(scene, obj, frame)
    if shape is None:
        return 0
    canvas = Image.new("L", (scene.width, scene.height), 0)
    draw_outline(ImageDraw.Draw(canvas), shape, 1)
    return int(np.count_nonzero(np.asarray(canvas)))


# ---------------------------------------------------------------- 4:2:0 frames for the encoder

#: RGB -> Y'CbCr, ITU-R BT.601 with limited ("TV") range, as H.264 decoders assume by default.
_BT601 = np.array(
    [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]], dtype=np.float64
) / 255.0
_BT601_OFFSET = np.array([16.0, 128.0, 128.0])


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """``[..., 3]`` uint8 RGB -> ``[..., 3]`` uint8 Y'CbCr (BT.601, limited range)."""
    out = rgb.astype(np.float64) @ _BT601.T + _BT601_OFFSET
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def yuv420_frames(scene: Scene, raster: Raster) -> Iterator[np.ndarray]:
    """The video's frames as planar 4:2:0 arrays ``[H * 3 / 2, W]`` uint8 (Y plane, then Cb, then Cr).

    The luma plane is drawn with the outlines :func:`rasterise` drew into the id
    maps, in the same order, so its object pixels are exactly the ones
    the boxes were read from. Chroma planes are drawn at half resolution (the
    4:2:0 grid). The background's planes are converted once per video (chroma
    as the mean of each 2x2 block); camera offsets are even, so a window of the
    world chroma planes lines up with the frame.

    Drawing straight into 4:2:0 planes spares the encoder an RGB -> YUV
    conversion per frame, which costs more than the drawing.
    """
    W, H = scene.width, scene.height
    if W % 2 or H % 2:
        raise ValueError(f"4:2:0 frames need an even size, got {W}x{H}")
    world = rgb_to_ycbcr(scene.background.pixels)  # [Hw, Ww, 3]
    hw, ww = world.shape[0] // 2 * 2, world.shape[1] // 2 * 2
    blocks = world[:hw, :ww, 1:].astype(np.uint16).reshape(hw // 2, 2, ww // 2, 2, 2).sum((1, 3))
    chroma = ((blocks + 2) // 4).astype(np.uint8)  # [Hw/2, Ww/2, 2]
    planes = [Image.fromarray(np.ascontiguousarray(world[..., 0]))] + [
        Image.fromarray(np.ascontiguousarray(chroma[..., c])) for c in range(2)
    ]
    ycc = rgb_to_ycbcr(np.asarray(scene.palette, dtype=np.uint8))  # [P, 3]
    for f in range(scene.num_frames):
        cx, cy = (int(v) for v in scene.camera[f])
        if cx % 2 or cy % 2:
            raise ValueError(f"camera offset ({cx}, {cy}) on frame {f} is odd; 4:2:0 frames need even offsets")
        y = planes[0].crop((cx, cy, cx + W, cy + H))
        cb = planes[1].crop((cx // 2, cy // 2, cx // 2 + W // 2, cy // 2 + H // 2))
        cr = planes[2].crop((cx // 2, cy // 2, cx // 2 + W // 2, cy // 2 + H // 2))
        dy, dcb, dcr = ImageDraw.Draw(y), ImageDraw.Draw(cb), ImageDraw.Draw(cr)
        for index, shape in raster.drawn[f]:
            colour = ycc[int(scene.objects[index].colour_track[f])]
            draw_outline(dy, shape, int(colour[0]))
            half = half_resolution(shape)
            draw_outline(dcb, half, int(colour[1]))
            draw_outline(dcr, half, int(colour[2]))
        yield np.frombuffer(y.tobytes() + cb.tobytes() + cr.tobytes(), dtype=np.uint8).reshape(H * 3 // 2, W)
