"""Drawing on uint8 RGB frames: box outlines, borders, text, and the colours of the pictures.

Everything here works in place on ``uint8 [H, W, 3]`` arrays (RGB, channel
last) and uses numpy slices, never a Python loop over pixels; text goes
through Pillow's ImageDraw on the small crop it covers.

Pixel convention: a box is ``xyxy`` in pixels with continuous coordinates,
pixel column ``c`` covering ``[c, c + 1)`` and row ``r`` covering
``[r, r + 1)``. A box touches columns ``floor(x1) .. ceil(x2) - 1`` and rows
``floor(y1) .. ceil(y2) - 1`` (:func:`box_edges`); its outline is drawn
*inside* those pixels, ``line_width`` pixels thick, so it never leaves the box
or the frame.

Example: ``[10.2, 5.0, 20.0, 15.7]`` on a 32x32 frame touches columns 10..19
and rows 5..15; with ``line_width=2`` the left edge fills columns 10-11, the
right edge 18-19, the top rows 5-6 and the bottom rows 14-15.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence

import numpy as np
from ..protocol.timebase import check_box

#: Outline colour of predicted boxes (RGB).
PREDICTION_RGB: tuple[int, int, int] = (230, 40, 40)
#: Outline colour of ground-truth boxes (RGB).
GROUND_TRUTH_RGB: tuple[int, int, int] = (40, 200, 80)
#: Border colour of frames inside a predicted span (RGB).
SPAN_RGB: tuple[int, int, int] = (255, 190, 0)
#: Text and panel colours of labels.
TEXT_RGB: tuple[int, int, int] = (20, 20, 20)
PANEL_RGB: tuple[int, int, int] = (255, 255, 255)
FAILURE_RGB: tuple[int, int, int] = (180, 0, 0)


def check_image(image: np.ndarray, name: str) -> np.ndarray:
    """``image`` must be a uint8 ``[H, W, 3]`` array with ``H, W >= 1``; returns it."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name} must be a numpy uint8 array [H, W, 3], got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{name} must have shape [H, W, 3] (RGB, channel last), got {list(image.shape)}")
    if image.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 RGB, got dtype {image.dtype}")
    return image


def check_frames(frames: np.ndarray, name: str = "frames") -> np.ndarray:
    """Frames ``[T, H, W, 3]`` or one image ``[H, W, 3]`` (uint8 RGB) -> ``[T, H, W, 3]`` (a view)."""
    if not isinstance(frames, np.ndarray):
        raise TypeError(f"{name} must be a numpy uint8 array [T, H, W, 3] or [H, W, 3], got {type(frames).__name__}")
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[3] != 3 or min(frames.shape[:3]) < 1:
        raise ValueError(
            f"{name} must have shape [T, H, W, 3] or [H, W, 3] (RGB, channel last, non-empty), got {list(frames.shape)}"
        )
    if frames.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 RGB, got dtype {frames.dtype}")
    return frames


def check_box_pixels(box: Sequence[float], width: int, height: int, name: str) -> tuple[float, float, float, float]:
    """A pixel ``xyxy`` box inside a ``width x height`` frame (:func:`~llava_st.protocol.timebase.check_box`
    with a thousandth of a pixel of margin for the float rounding of ``normalised * size``)."""
    return check_box(box, width, height, name, tol=1e-3)


def box_edges(box: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    """Inclusive pixel bounds ``(c1, r1, c2, r2)`` that a pixel ``xyxy`` box touches.

    ``c1 = floor(x1)``, ``c2 = ceil(x2) - 1`` (at least ``c1``), likewise rows,
    all within the frame. Example: ``[10.2, 5.0, 20.0, 15.7]`` -> ``(10, 5, 19, 15)``.
    """
    x1, y1, x2, y2 = check_box_pixels(box, width, height, "box")
    c1 = min(int(math.floor(x1)), width - 1)
    r1 = min(int(math.floor(y1)), height - 1)
    c2 = min(max(int(math.ceil(x2)) - 1, c1), width - 1)
    r2 = min(max(int(math.ceil(y2)) - 1, r1), height - 1)
    return c1, r1, c2, r2


def draw_box(image: np.ndarray, box: Sequence[float], color: Sequence[int], line_width: int) -> None:
    """Draw the outline of pixel ``xyxy`` ``box`` on ``image`` (uint8 ``[H, W, 3]``, in place).

    The outline is ``line_width`` pixels thick, inside the pixels the box
    touches (:func:`box_edges`); a box thinner than two lines is filled.
    """
    if line_width < 1:
        raise ValueError(f"line_width must be >= 1 pixel, got {line_width}")
    height, width = image.shape[:2]
    c1, r1, c2, r2 = box_edges(box, width, height)
    rgb = np.asarray(color, dtype=np.uint8)
    image[r1 : min(r1 + line_width, r2 + 1), c1 : c2 + 1] = rgb  # top
    image[max(r2 - line_width + 1, r1) : r2 + 1, c1 : c2 + 1] = rgb  # bottom
    image[r1 : r2 + 1, c1 : min(c1 + line_width, c2 + 1)] = rgb  # left
    image[r1 : r2 + 1, max(c2 - line_width + 1, c1) : c2 + 1] = rgb  # right


def draw_border(image: np.ndarray, color: Sequence[int], width: int) -> None:
    """Paint a ``width``-pixel frame along the inside of ``image``'s edges (in place)."""
    rgb = np.asarray(color, dtype=np.uint8)
    image[:width] = rgb
    image[-width:] = rgb
    image[:, :width] = rgb
    image[:, -width:] = rgb


def default_line_width(height: int, width: int) -> int:
    """Outline thickness for a frame of this size: ``max(2, round(min(H, W) / 120))`` pixels."""
    return max(2, int(round(min(height, width) / 120)))


def default_font_size(height: int, width: int) -> int:
    """Label text height for a frame of this size: ``max(10, round(min(H, W) / 14))`` pixels."""
    return max(10, int(round(min(height, width) / 14)))


@lru_cache(maxsize=16)
def font(size: int):
    """Pillow's bundled font at ``size`` pixels (a scalable font when Pillow has FreeType)."""
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def text_size(text: str, size: int) -> tuple[int, int]:
    """``(width, height)`` in pixels of (possibly multi-line) ``text`` at font ``size``."""
    from PIL import Image, ImageDraw

    left, top, right, bottom = ImageDraw.Draw(Image.new("RGB", (1, 1))).multiline_textbbox(
        (0, 0), text, font=font(size), spacing=max(1, size // 5)
    )
    return int(math.ceil(right)), int(math.ceil(bottom))


def draw_text(
    image: np.ndarray,
    xy: tuple[int, int],
    text: str,
    color: Sequence[int] = TEXT_RGB,
    size: int = 12,
    background: Sequence[int] | None = None,
    pad: int = 2,
) -> tuple[int, int, int, int]:
    """Write ``text`` with its top-left corner at pixel ``xy = (x, y)`` on ``image`` (in place).

    With ``background``, a filled rectangle ``pad`` pixels larger than the text
    goes under it. Text running past the image edge is cut. Returns the
    rectangle ``(x1, y1, x2, y2)`` (pixels, exclusive end, clipped to the image)
    that was painted.
    """
    from PIL import Image, ImageDraw

    if not text:
        return (0, 0, 0, 0)
    height, width = image.shape[:2]
    tw, th = text_size(text, size)
    x, y = int(xy[0]), int(xy[1])
    x1, y1 = max(x - pad, 0), max(y - pad, 0)
    x2, y2 = min(x + tw + pad, width), min(y + th + pad, height)
    if x2 <= x1 or y2 <= y1:
        return (0, 0, 0, 0)
    # Only the covered crop goes through Pillow.
    crop = Image.fromarray(image[y1:y2, x1:x2])
    draw = ImageDraw.Draw(crop)
    if background is not None:
        draw.rectangle((0, 0, x2 - x1, y2 - y1), fill=tuple(int(v) for v in background))
    draw.multiline_text((x - x1, y - y1), text, fill=tuple(int(v) for v in color), font=font(size), spacing=max(1, size // 5))
    image[y1:y2, x1:x2] = np.asarray(crop)
    return (x1, y1, x2, y2)


def wrap_text(text: str, size: int, max_width: int) -> str:
    """``text`` broken into lines no wider than ``max_width`` pixels at font ``size`` (words kept whole
    unless one word alone is wider, which is then cut into pieces)."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}" if line else word
            if text_size(candidate, size)[0] <= max_width:
                line = candidate
                continue
            if line:
                lines.append(line)
            while text_size(word, size)[0] > max_width and len(word) > 1:
                cut = len(word) - 1
                while cut > 1 and text_size(word[:cut], size)[0] > max_width:
                    cut -= 1
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        lines.append(line)
    return "\n".join(lines)
