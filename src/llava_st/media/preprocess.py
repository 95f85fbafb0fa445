"""RGB uint8 frames -> the vision tower's pixel tensor, bit-exact with the release (SPEC §2.2).

Per frame: ``PIL.Image.fromarray(frame).resize((S, S), BICUBIC)`` on the uint8
image (aspect ratio not kept, no crop, no padding; the result stays uint8).
Then, per value: ``x * (1/255)`` in float64 cast to float32, then
``(x - mean) / std`` in float32 per channel, channel first ->
float32 ``[T, 3, S, S]``.

After the resize every output value depends only on its uint8 input ``v`` and
its channel ``c``, so the float steps are evaluated once per ``(c, v)`` into a
``[3, 256]`` float32 table with exactly the release's operations, and the
stacked frames are mapped through it. The result is bit-identical to running
the arithmetic on every pixel, by construction, and needs no float64 copy of
the frames (100 frames at 384 px would be 350 MB).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image

from .errors import UnsupportedMediaError


def normalization_table(mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """float32 ``[3, 256]``: entry ``[c, v]`` is ``(float32(v * (1/255)) - mean[c]) / std[c]`` in float32."""
    mean32 = np.asarray(mean, dtype=np.float32).reshape(3, 1)
    std32 = np.asarray(std, dtype=np.float32).reshape(3, 1)
    scaled = (np.arange(256, dtype=np.float64) * (1 / 255)).astype(np.float32).reshape(1, 256)
    return (scaled - mean32) / std32


def _check_stats(values, name: str) -> tuple[float, float, float]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        out = ()
    if len(out) != 3 or not all(math.isfinite(v) for v in out):
        raise ValueError(f"{name} must be three finite numbers (one per RGB channel), got {values!r}")
    if name == "std" and any(v == 0 for v in out):
        raise ValueError(f"std must not contain 0, got {values!r}")
    return out  # type: ignore[return-value]


def _as_frame_list(frames) -> list[np.ndarray]:
    """``[T, H, W, 3]`` array, one ``[H, W, 3]`` array, or a sequence of them -> list of ``[H, W, 3]``."""
    if isinstance(frames, np.ndarray):
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4:
            raise UnsupportedMediaError(f"frames must be [T, H, W, 3] or [H, W, 3], got shape {list(frames.shape)}")
        items = list(frames)
    elif isinstance(frames, Sequence) and not isinstance(frames, (str, bytes)):
        items = list(frames)
    else:
        raise UnsupportedMediaError(
            f"frames must be a numpy array or a sequence of arrays, got {type(frames).__name__}"
        )
    if not items:
        raise UnsupportedMediaError("frames is empty: there is nothing to preprocess")
    for t, frame in enumerate(items):
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            desc = f"{list(frame.shape)} {frame.dtype}" if isinstance(frame, np.ndarray) else type(frame).__name__
            raise UnsupportedMediaError(
                f"frame {t} must be RGB uint8 [H, W, 3], got {desc}; load_image converts other inputs"
            )
    return items


def resize_frame(frame: np.ndarray, image_size: int) -> np.ndarray:
    """uint8 ``[H, W, 3]`` -> uint8 ``[S, S, 3]`` with Pillow's bicubic filter (the release's call)."""
    return np.asarray(Image.fromarray(frame).resize((image_size, image_size), Image.BICUBIC))


def preprocess_frames(
    frames,
    image_size: int = 384,
    mean: Sequence[float] = (0.5, 0.5, 0.5),
    std: Sequence[float] = (0.5, 0.5, 0.5),
    *,
    num_threads: int | None = None,
) -> torch.Tensor:
    """RGB uint8 frames -> float32 ``[T, 3, S, S]`` pixels, ``S = image_size`` (SPEC §2.2).

    ``frames``: uint8 ``[T, H, W, 3]``, one ``[H, W, 3]`` image (``T = 1``), or a
    sequence of ``[H, W, 3]`` arrays whose sizes may differ. ``image_size``,
    ``mean`` and ``std`` come from the model's ``VisionConfig`` (``image_size``,
    ``image_mean``, ``image_std``). Frames are resized in a pool of
    ``num_threads`` threads (Pillow releases the GIL while resampling; 1.9x on
    2 cores in bench/video_sampling.py); the default is the usable cores, at
    most 4. Pass 1 inside multi-process data loaders. The result does not
    depend on it.
    """
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 1:
        raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
    if num_threads is None:
        num_threads = min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(f"num_threads must be a positive integer, got {num_threads!r}")
    table = normalization_table(_check_stats(mean, "mean"), _check_stats(std, "std"))
    items = _as_frame_list(frames)
    size = int(image_size)
    resized = np.empty((len(items), size, size, 3), dtype=np.uint8)  # [T, S, S, 3]

    def resize_into(t: int) -> None:
        resized[t] = resize_frame(items[t], size)

    if num_threads > 1 and len(items) > 1:
        with ThreadPoolExecutor(max_workers=min(num_threads, len(items))) as pool:
            list(pool.map(resize_into, range(len(items))))
    else:
        for t in range(len(items)):
            resize_into(t)
    channels_first = resized.transpose(0, 3, 1, 2)  # [T, 3, S, S] view
    pixels = np.empty(channels_first.shape, dtype=np.float32)  # [T, 3, S, S]
    for c in range(3):  # one table lookup over all frames per channel
        np.take(table[c], channels_first[:, c], out=pixels[:, c])
    return torch.from_numpy(pixels)
