"""Backgrounds: solid colours, linear gradients and smooth noise textures.

A background is a "world" image at least as large as the frame; a camera pan
shows a moving window of it. Colours are muted (HSV value and saturation from
:class:`~llava_st.synth.config.SceneSettings`) so that the saturated objects
stand out. Everything is computed with whole-array numpy and Pillow resizing.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .config import SceneSettings


@dataclass(frozen=True)
class Background:
    """A world-sized texture ``pixels`` ``[Hw, Ww, 3]`` uint8 and how to talk about it."""

    kind: str
    pixels: np.ndarray
    description: str
    colours: tuple[tuple[int, int, int], ...]


def _muted_colour(rng: np.random.Generator, settings: SceneSettings) -> tuple[int, int, int]:
    h = float(rng.random())
    s = float(rng.uniform(*settings.background_saturation))
    v = float(rng.uniform(*settings.background_value))
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return int(round(r * 255)), int(round(g * 255)), int(round(b * 255))


def _tone_word(rgb: tuple[int, int, int]) -> str:
    return "dark" if sum(rgb) / 3 < 70 else "dim"


def _blend(weight: np.ndarray, c0: tuple[int, int, int], c1: tuple[int, int, int]) -> np.ndarray:
    """``(1 - w) * c0 + w * c1`` per pixel; ``weight`` ``[H, W]`` in [0, 1] -> ``[H, W, 3]`` uint8."""
    a = np.asarray(c0, dtype=np.float32)
    b = np.asarray(c1, dtype=np.float32)
    out = a + weight[..., None].astype(np.float32) * (b - a)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _smooth_noise(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Two octaves of bilinear value noise, ``[height, width]`` float32 rescaled to [0, 1]."""
    total = np.zeros((height, width), dtype=np.float32)
    for cells, weight in ((int(rng.integers(3, 6)), 1.0), (int(rng.integers(8, 14)), 0.4)):
        gw, gh = cells + 1, max(2, int(round(cells * height / width)) + 1)
        grid = rng.random((gh, gw), dtype=np.float32)
        layer = np.asarray(Image.fromarray(grid).resize((width, height), Image.BILINEAR))
        total += weight * layer
    lo, hi = float(total.min()), float(total.max())
    return (total - lo) / max(hi - lo, 1e-6)


def make_background(rng: np.random.Generator, kind: str, width: int, height: int, settings: SceneSettings) -> Background:
    """A ``kind`` background of ``width`` x ``height`` world pixels."""
    if kind == "solid":
        c = _muted_colour(rng, settings)
        pixels = np.empty((height, width, 3), dtype=np.uint8)
        pixels[:] = np.asarray(c, dtype=np.uint8)
        return Background(kind, pixels, f"a plain {_tone_word(c)} background", (c,))
    if kind == "gradient":
        c0, c1 = _muted_colour(rng, settings), _muted_colour(rng, settings)
        theta = float(rng.uniform(0, 2 * np.pi))
        xs = np.arange(width, dtype=np.float32)[None, :]
        ys = np.arange(height, dtype=np.float32)[:, None]
        t = xs * np.float32(np.cos(theta)) + ys * np.float32(np.sin(theta))  # [H, W] projection on the direction
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        return Background(kind, _blend(t, c0, c1), "a softly shaded gradient background", (c0, c1))
    if kind == "noise":
        c0, c1 = _muted_colour(rng, settings), _muted_colour(rng, settings)
        return Background(kind, _blend(_smooth_noise(rng, width, height), c0, c1), "a blotchy textured background", (c0, c1))
    raise ValueError(f"unknown background kind {kind!r}")
