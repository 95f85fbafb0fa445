"""Typed results of media input: what a probe learns and what sampling returns.

Conventions shared by every source (video file or folder of frames):

* frame index ``i`` is the ``i``-th frame in presentation order, ``0 .. N-1``;
* times are seconds from the first frame: ``timestamps[0] == 0``; a frame is on
  screen from its timestamp until the next frame's (the last until ``duration``);
* ``width`` x ``height`` is the displayed size (rotation metadata applied);
* pixels are RGB uint8, channel last.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .orientation import Orientation


@dataclass(frozen=True)
class VideoInfo:
    """A video's frames and timing, learnt without decoding any frame.

    ``timestamps`` float64 ``[num_frames]``: presentation time of every frame,
    seconds from the first frame (non-decreasing, ``timestamps[0] == 0``; exact
    per-frame times, so variable frame rate is represented as it is).
    ``fps`` is the average rate ``num_frames / duration``. ``start_time`` is the
    first frame's time on the file's own clock (seconds), which some containers
    offset from zero. ``orientation`` is the display transform applied to the
    stored frames (identity when the file asks for none);
    ``sample_aspect_ratio`` is reported but not applied (frames keep their
    stored pixel grid; ``None`` = unknown, i.e. square). ``nominal_rate`` is the
    stream's declared average rate as an exact fraction (``30000/1001``), when
    the container gives one.
    """

    path: str
    num_frames: int
    timestamps: np.ndarray
    fps: float
    duration: float
    width: int
    height: int
    start_time: float = 0.0
    orientation: Orientation = Orientation()
    sample_aspect_ratio: Fraction | None = None
    codec: str = ""
    container_format: str = ""
    nominal_rate: Fraction | None = None

    def __post_init__(self):
        if self.timestamps.shape != (self.num_frames,):
            raise ValueError(f"VideoInfo of {self.path}: timestamps {self.timestamps.shape} != ({self.num_frames},)")


@dataclass(frozen=True)
class VideoClip:
    """``T`` frames sampled from a video.

    ``frames`` uint8 ``[T, H, W, 3]`` RGB, upright; ``indices`` int64 ``[T]``
    the frame indices they are (non-decreasing; repeats when ``T`` exceeds the
    range); ``timestamps`` float64 ``[T]`` their presentation times in seconds
    from the video's first frame; ``frame_range`` the inclusive ``(a, b)`` they
    were sampled over. ``fps``, ``duration`` (seconds), ``total_frames``,
    ``width`` and ``height`` describe the whole video.
    """

    frames: np.ndarray
    indices: np.ndarray
    timestamps: np.ndarray
    frame_range: tuple[int, int]
    fps: float
    duration: float
    total_frames: int
    width: int
    height: int
    path: str

    def __post_init__(self):
        t = len(self.indices)
        if self.frames.shape != (t, self.height, self.width, 3) or self.frames.dtype != np.uint8:
            raise ValueError(
                f"VideoClip of {self.path}: frames {self.frames.shape} {self.frames.dtype} "
                f"!= ({t}, {self.height}, {self.width}, 3) uint8"
            )
        if self.timestamps.shape != (t,):
            raise ValueError(f"VideoClip of {self.path}: timestamps {self.timestamps.shape} != ({t},)")

    @property
    def num_frames(self) -> int:
        """``T``, the number of sampled frames."""
        return len(self.indices)
