"""Still images through Pillow -> upright RGB uint8 ``[H, W, 3]`` (SPEC §2.2, "convert to RGB").

Accepted sources: a path, a ``PIL.Image.Image``, or a numpy array (uint8
``[H, W, 3]`` RGB, ``[H, W]`` or ``[H, W, 1]`` grey, ``[H, W, 4]`` RGBA).

* **Orientation**: the EXIF orientation tag is applied (files and PIL images),
  so a phone photo comes out upright.
* **Modes**: every Pillow mode with a defined meaning becomes RGB: ``1``,
  ``L``, ``P``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``, ``RGBX`` through Pillow's
  own conversion; 16-bit grey (``I;16`` and its byte orders) is scaled to 8 bit
  as ``round(v * 255 / 65535)`` (Pillow's own conversion would clip every value
  above 255 to white). 32-bit ``I`` and ``F`` images carry no defined value
  range and are refused.
* **Alpha** (``RGBA``, ``LA``, ``PA``, ``RGBa``, ``La``, palette or grey images
  with a transparency key): by default the alpha channel is dropped and the
  stored colour kept, exactly what ``Image.convert("RGB")`` does in the
  release's data pipeline, so training and inference see the same pixels.
  Pass ``background=(r, g, b)`` to composite over a solid colour instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import CorruptMediaError, MediaNotFoundError, UnsupportedMediaError

_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_SIXTEEN_BIT_GREY = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_NO_RANGE = frozenset({"I", "F"})


def open_image(path: str | os.PathLike) -> Image.Image:
    """Open and fully decode an image file (no conversion), or raise a MediaError naming it."""
    p = Path(path)
    if not p.exists():
        raise MediaNotFoundError(f"image file not found: {p}")
    if p.is_dir():
        raise UnsupportedMediaError(f"{p} is a folder, not an image file")
    try:
        img = Image.open(p)
    except UnidentifiedImageError as exc:
        raise UnsupportedMediaError(f"Pillow cannot identify {p} as an image") from exc
    try:
        img.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise CorruptMediaError(f"{p} could not be decoded as {img.format} ({exc})") from exc
    return img


def _check_background(background) -> tuple[int, int, int] | None:
    if background is None:
        return None
    try:
        rgb = tuple(int(v) for v in background)
    except (TypeError, ValueError):
        rgb = ()
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise ValueError(f"background must be an (r, g, b) triple of 0..255 integers, got {background!r}")
    return rgb  # type: ignore[return-value]


def pil_to_rgb(img: Image.Image, source: str, background=None) -> np.ndarray:
    """A PIL image (EXIF orientation applied first) -> RGB uint8 ``[H, W, 3]``.

    See the module docstring for each mode; ``source`` names the input in errors.
    """
    bg = _check_background(background)
    img = ImageOps.exif_transpose(img)
    mode = img.mode
    if mode in _NO_RANGE:
        raise UnsupportedMediaError(
            f"{source}: mode {mode!r} (32-bit {'integer' if mode == 'I' else 'float'}) has no defined value range; "
            "convert it to 8-bit RGB first"
        )
    if mode in _SIXTEEN_BIT_GREY:
        grey16 = np.asarray(img).astype(np.uint32)  # native byte order whatever the mode's
        grey = ((grey16 * 255 + 32767) // 65535).astype(np.uint8)  # round(v * 255 / 65535)
        return np.repeat(grey[:, :, None], 3, axis=2)
    has_alpha = mode in _ALPHA_MODES or (mode in ("P", "L", "RGB") and "transparency" in img.info)
    if has_alpha and bg is not None:
        rgba = img.convert("RGBA")
        base = Image.new("RGBA", rgba.size, bg + (255,))
        return np.array(Image.alpha_composite(base, rgba).convert("RGB"))
    if mode == "La":
        # Pillow has no La -> RGB path; un-premultiply through LA first.
        img = img.convert("LA")
    if mode == "RGB":
        return np.array(img)
    try:
        return np.array(img.convert("RGB"))
    except ValueError as exc:
        raise UnsupportedMediaError(f"{source}: Pillow cannot convert mode {mode!r} to RGB ({exc})") from exc


def array_to_rgb(array: np.ndarray, source: str = "numpy array", background=None) -> np.ndarray:
    """uint8 ``[H, W, 3]`` / ``[H, W]`` / ``[H, W, 1]`` / ``[H, W, 4]`` -> a new RGB uint8 ``[H, W, 3]``."""
    if not isinstance(array, np.ndarray):
        raise UnsupportedMediaError(f"{source}: expected a numpy array, got {type(array).__name__}")
    if array.dtype != np.uint8:
        raise UnsupportedMediaError(
            f"{source}: expected uint8 pixels, got {array.dtype}; scale and cast to uint8 first "
            "(there is no single right way to map other ranges to 0..255)"
        )
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 1):
        return np.repeat(array.reshape(array.shape[0], array.shape[1], 1), 3, axis=2)
    if array.ndim == 3 and array.shape[2] == 3:
        return np.array(array, copy=True, order="C")
    if array.ndim == 3 and array.shape[2] == 4:
        return pil_to_rgb(Image.fromarray(np.ascontiguousarray(array), mode="RGBA"), source, background)
    raise UnsupportedMediaError(
        f"{source}: expected an image of shape [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], got {list(array.shape)}"
    )


def load_image(source, background=None) -> np.ndarray:
    """An image as upright RGB uint8 ``[H, W, 3]``.

    ``source``: a path (str or PathLike), a ``PIL.Image.Image`` or a numpy array
    (see :func:`array_to_rgb`). ``background``: ``None`` drops alpha (the
    release's behaviour), an ``(r, g, b)`` triple composites over that colour.
    The result never shares memory with ``source``.

    Raises :class:`MediaNotFoundError`, :class:`UnsupportedMediaError` or
    :class:`CorruptMediaError`, naming the input.
    """
    if isinstance(source, (str, os.PathLike)):
        return pil_to_rgb(open_image(source), str(source), background)
    if isinstance(source, Image.Image):
        return pil_to_rgb(source, f"PIL image ({source.mode}, {source.size[0]}x{source.size[1]})", background)
    if isinstance(source, np.ndarray):
        return array_to_rgb(source, f"numpy array {list(source.shape)} {source.dtype}", background)
    raise UnsupportedMediaError(
        f"cannot load an image from a {type(source).__name__}; give a path, a PIL image or a numpy array"
    )
