"""Decoded media -> ``pixel_values`` for one sample (SPEC §2.2).

The processor takes media that are already decoded (files are read by
:mod:`llava_st.media`): an image as a uint8 array ``[H, W, 3]`` (or
``[1, H, W, 3]``, or a PIL image), a video as uint8 frames ``[T, H, W, 3]``
(or anything holding them in a ``frames`` attribute, such as
:class:`llava_st.media.VideoClip`), or pixels that are already preprocessed, float32 ``[T, 3, S, S]``. The pixel
arithmetic itself is :func:`llava_st.media.preprocess_frames`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..config import VisionConfig
from ..media.errors import MediaError  # media that do not fit the sample's modality or the model's input


def _describe(media: Any) -> str:
    shape = getattr(media, "shape", None)
    dtype = getattr(media, "dtype", None)
    if shape is not None:
        return f"{type(media).__name__} of shape {tuple(shape)} and dtype {dtype}"
    return type(media).__name__


def _unwrap(media: Any) -> Any:
    """The frames of a sampled clip (an object with a ``frames`` array); anything else as given."""
    frames = getattr(media, "frames", None)
    return frames if isinstance(frames, np.ndarray) else media


def media_pixels(media: Any, modality: str, vision: VisionConfig, num_threads: int | None = None) -> torch.Tensor:
    """Pixels ``[T, 3, S, S]`` float32 of one image (T = 1) or video, S = ``vision.image_size``.

    ``num_threads``: resize threads of :func:`llava_st.media.preprocess_frames`
    (its default when None; 1 inside a pool of loading threads).

    Raises:
        MediaError: a shape or dtype that is not one of the accepted forms, or
            an image given as several frames.
    """
    if modality not in ("image", "video"):
        raise MediaError(f"modality must be 'image' or 'video', got {modality!r}")
    size = vision.image_size
    media = _unwrap(media)
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a core dependency
        Image = None
    if Image is not None and isinstance(media, Image.Image):
        if modality != "image":
            raise MediaError(f"a PIL image was given for a {modality} sample")
        media = np.asarray(media.convert("RGB"))
    if isinstance(media, torch.Tensor) and media.is_floating_point():
        if media.dtype != torch.float32 or media.dim() != 4 or tuple(media.shape[1:]) != (3, size, size):
            raise MediaError(
                f"preprocessed pixels must be float32 [T, 3, {size}, {size}], got {_describe(media)}"
            )
        if modality == "image" and media.shape[0] != 1:
            raise MediaError(f"an image sample takes one frame of pixels, got {_describe(media)}")
        return media
    if isinstance(media, torch.Tensor):
        media = media.numpy()
    if not isinstance(media, np.ndarray):
        raise MediaError(
            f"media must be a uint8 array, a PIL image or float32 pixels [T, 3, {size}, {size}]; got {_describe(media)}"
        )
    if media.dtype != np.uint8:
        raise MediaError(f"decoded media must be uint8 RGB, got {_describe(media)}")
    if modality == "image" and media.ndim == 3:
        media = media[None]
    if media.ndim != 4 or media.shape[-1] != 3 or 0 in media.shape:
        expected = "[H, W, 3] or [1, H, W, 3]" if modality == "image" else "[T, H, W, 3]"
        raise MediaError(f"{modality} frames must be uint8 {expected} with T, H, W >= 1, got {_describe(media)}")
    if modality == "image" and media.shape[0] != 1:
        raise MediaError(f"an image sample takes one frame, got {_describe(media)}")
    from ..media import preprocess_frames

    pixels = preprocess_frames(media, size, vision.image_mean, vision.image_std, num_threads=num_threads)
    expected_shape = (media.shape[0], 3, size, size)
    if tuple(pixels.shape) != expected_shape or pixels.dtype != torch.float32:
        raise MediaError(
            f"preprocess_frames returned {_describe(pixels)}, expected float32 {list(expected_shape)}"
        )
    return pixels


def num_frames(media: Any, modality: str) -> int:
    """Frames ``T`` of media in any accepted form (1 for an image), without preprocessing them.

    Raises:
        MediaError: as :func:`media_pixels` for forms it does not accept.
    """
    if modality == "image":
        return 1
    shape = getattr(_unwrap(media), "shape", None)
    if shape is None or len(shape) != 4:
        raise MediaError(f"video frames must be [T, H, W, 3] (or pixels [T, 3, S, S]), got {_describe(media)}")
    if shape[0] < 1:
        raise MediaError(f"a video needs at least one frame, got {_describe(media)}")
    return int(shape[0])


__all__ = ["MediaError", "media_pixels", "num_frames"]
