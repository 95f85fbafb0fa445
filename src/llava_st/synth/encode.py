"""Media files: H.264 MP4 through PyAV (libx264, yuv420p, a real frame rate) and PNG images.

The encoder runs with one thread: the generator parallelises over videos, and
a single-threaded x264 is deterministic.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image

from .._optional import require


def frame_rate(fps: float) -> Fraction:
    """The stream rate as an exact fraction (10.0 -> 10, 29.97 -> 2997/100)."""
    return Fraction(str(float(fps))).limit_denominator(100_000)


#: H.264 colour description written into the stream: BT.601 matrix (SMPTE 170M), limited range.
COLORSPACE_SMPTE170M = 6
COLOR_RANGE_LIMITED = 1


def write_mp4(
    path: Path,
    frames: Iterable[np.ndarray],
    width: int,
    height: int,
    fps: float,
    crf: int,
    preset: str,
    pixel_format: str = "yuv420p",
) -> int:
    """Encode frames to an H.264 MP4 (yuv420p); returns the number of frames written.

    ``pixel_format`` says what the frames are: ``"yuv420p"`` planar arrays
    ``[H * 3 / 2, W]`` uint8 (BT.601 limited range, as
    :func:`llava_st.synth.render.yuv420_frames` makes them) or ``"rgb24"``
    arrays ``[H, W, 3]`` uint8 (converted by FFmpeg).
    """
    av = require("av")
    shapes = {"yuv420p": (height * 3 // 2, width), "rgb24": (height, width, 3)}
    if pixel_format not in shapes:
        raise ValueError(f"pixel_format must be one of {sorted(shapes)}, got {pixel_format!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=frame_rate(fps))
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": preset}
        stream.codec_context.thread_count = 1
        stream.codec_context.colorspace = COLORSPACE_SMPTE170M
        stream.codec_context.color_range = COLOR_RANGE_LIMITED
        for array in frames:
            if array.shape != shapes[pixel_format] or array.dtype != np.uint8:
                raise ValueError(
                    f"frame {count} has shape {array.shape} {array.dtype}; expected {shapes[pixel_format]} uint8"
                )
            frame = av.VideoFrame.from_ndarray(array, format=pixel_format)
            for packet in stream.encode(frame):
                container.mux(packet)
            count += 1
        for packet in stream.encode(None):
            container.mux(packet)
    return count


def write_png(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, format="PNG")
