"""The time base of a clip: which frames the model sees, and where they are (SPEC §1, §2.1).

A video is sampled at ``T`` frames spread uniformly over an inclusive frame
range ``[a, b]`` (the "split"; by default the whole video)::

    idx_i = a + round(i / (T - 1) * (b - a)),   i = 0 .. T-1

with Python ``round`` (ties to the even integer), and ``[a]`` for ``T = 1``.
Normalised time ``i / (T - 1)`` is sampled frame ``i``: 0 is the first sampled
frame and 1 the last. :func:`sample_frame_indices` is the one implementation of
this rule: media loading, answers, ST-Synth, evaluation and pictures all use it.

:class:`Timeline` holds the sampled frames' timestamps, frame numbers and the
frame size, and converts normalised times and boxes to seconds and pixels and
back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..errors import ProtocolError

if TYPE_CHECKING:
    from .tokens import BinCounts


class OutOfRangeError(ProtocolError):
    """A value given in seconds or pixels lies outside the video or the frame."""


def sample_frame_indices(start: int, end: int, num_frames: int) -> np.ndarray:
    """``num_frames`` frame indices spread uniformly over the inclusive range ``[start, end]``.

    ``idx_i = start + round(i / (num_frames - 1) * (end - start))`` for
    ``i = 0 .. num_frames-1``, with Python's ``round`` (ties to even); a single
    frame is ``[start]``. Indices repeat when ``num_frames`` exceeds the range's
    length, and never leave ``[start, end]``; both ends are always included.

    Worked examples (``x`` = ``i / (T - 1) * (end - start)`` before rounding)::

        sample_frame_indices(0, 9, 4)    x = 0, 3, 6, 9           -> [0, 3, 6, 9]
        sample_frame_indices(0, 5, 3)    x = 0, 2.5, 5            -> [0, 2, 5]   (2.5 -> 2, ties to even)
        sample_frame_indices(0, 7, 3)    x = 0, 3.5, 7            -> [0, 4, 7]   (3.5 -> 4, ties to even)
        sample_frame_indices(0, 3, 5)    x = 0, .75, 1.5, 2.25, 3 -> [0, 1, 2, 2, 3]
        sample_frame_indices(10, 20, 1)                            -> [10]

    Returns an int64 array ``[num_frames]``.

    Raises:
        ValueError: ``num_frames < 1`` or ``end < start``. Callers that know
            where the numbers come from (a video file, a data sample) check
            them first and raise their own error naming the input.
    """
    a, b, t = int(start), int(end), int(num_frames)
    if t < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if b < a:
        raise ValueError(f"frame range [{a}, {b}] ends before it starts")
    if t == 1:
        return np.array([a], dtype=np.int64)
    # The same float64 operations, in the same order, as the Python expression
    # i / (T - 1) * (b - a); np.rint rounds half to even like Python's round.
    offsets = np.rint(np.arange(t, dtype=np.float64) / (t - 1) * (b - a))
    return a + offsets.astype(np.int64)


def nearest_sampled_frame(t: float, num_frames: int) -> int:
    """Index of the sampled frame nearest to normalised time ``t``: ``round(t * (T - 1))`` (Python ``round``).

    Example: ``t = 0.5`` of T = 4 frames is position 1.5, which rounds (ties to even) to frame 2.
    """
    return 0 if num_frames == 1 else int(round(float(t) * (num_frames - 1)))


def interpolate_sampled(t: float | np.ndarray, values: np.ndarray) -> float | np.ndarray:
    """A quantity known at each sampled frame (``values [T]``, e.g. timestamps), at normalised time(s) ``t``.

    Normalised time ``t`` is position ``t * (T - 1)`` on the sampled frames;
    the value there is linear between the two neighbouring frames. Example:
    values ``[0.0, 1.0, 4.0]`` at ``t = 0.75`` (position 1.5) give 2.5.
    """
    v = np.asarray(values, dtype=np.float64)
    arr = np.asarray(t, dtype=np.float64)
    if len(v) == 1:
        out = np.full(arr.shape, v[0])
    else:
        out = np.interp(arr * (len(v) - 1), np.arange(len(v), dtype=np.float64), v)
    return float(out) if out.ndim == 0 else out


def sampled_position(key: int, bins: "BinCounts", num_frames: int) -> int:
    """Sampled frame index named by time bin ``key``: ``round(key / (n - 1) * (T - 1))``, ``n = bins.time``.

    Example: with 100 time bins and T = 20, bin 50 names frame ``round(50 / 99 * 19) = 10``;
    with 10 time bins and T = 4, bin 5 names ``round(5 / 9 * 3) = round(1.67) = 2``.
    """
    n = bins.time
    if not 0 <= key < n:
        raise OutOfRangeError(f"time bin {key} is outside 0..{n - 1}")
    return nearest_sampled_frame(key / (n - 1), num_frames)


@dataclass(frozen=True)
class Timeline:
    """Where the sampled frames of one clip sit in time and how large they are.

    Attributes:
        width, height: frame size in pixels.
        timestamps: presentation time in seconds of each sampled frame, ``[T]``,
            non-decreasing (repeats allowed: a short clip samples a frame twice);
            ``None`` when unknown (seconds are then not available).
        frame_ids: absolute frame number of each sampled frame, ``[T]``, or ``None``.

    Time conversions: normalised ``t`` is position ``t * (T - 1)`` on the
    sampled frames; seconds are the linear interpolation of ``timestamps`` at
    that position, so a variable frame rate is handled. The inverse maps
    seconds back through the same piecewise-linear curve; inside a run of
    equal timestamps it returns the first frame of the run.
    """

    width: int
    height: int
    timestamps: tuple[float, ...] | None = None
    frame_ids: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not (self.width > 0 and self.height > 0):
            raise ValueError(f"frame size must be positive, got {self.width}x{self.height}")
        if self.timestamps is None and self.frame_ids is None:
            raise ValueError("a timeline needs the sampled frames' timestamps, their frame ids, or both")
        if self.timestamps is not None:
            ts = tuple(float(t) for t in self.timestamps)
            if not ts:
                raise ValueError("timestamps is empty")
            if any(not math.isfinite(t) for t in ts):
                raise ValueError(f"timestamps must be finite numbers, got {ts}")
            if any(b < a for a, b in zip(ts, ts[1:])):
                raise ValueError("timestamps must be non-decreasing (sampled frames in presentation order)")
            object.__setattr__(self, "timestamps", ts)
        if self.frame_ids is not None:
            ids = tuple(int(f) for f in self.frame_ids)
            if not ids:
                raise ValueError("frame_ids is empty")
            object.__setattr__(self, "frame_ids", ids)
        if self.timestamps is not None and self.frame_ids is not None and len(self.timestamps) != len(self.frame_ids):
            raise ValueError(
                f"timestamps ({len(self.timestamps)}) and frame_ids ({len(self.frame_ids)}) must have one entry per sampled frame"
            )

    # -- construction

    @classmethod
    def from_split(
        cls,
        split: Sequence[int],
        num_frames: int,
        width: int,
        height: int,
        fps: float | None = None,
        start_time: float = 0.0,
    ) -> "Timeline":
        """Frames sampled over the inclusive frame range ``split`` (SPEC §2.1).

        With ``fps``, frame ``f`` is shown at ``start_time + f / fps`` seconds
        (constant frame rate); without it, seconds are not available.
        """
        a, b = int(split[0]), int(split[1])
        ids = tuple(int(f) for f in sample_frame_indices(a, b, num_frames))
        ts = None
        if fps is not None:
            if not fps > 0:
                raise ValueError(f"fps must be positive, got {fps}")
            ts = tuple(start_time + f / fps for f in ids)
        return cls(width=width, height=height, timestamps=ts, frame_ids=ids)

    @classmethod
    def for_image(cls, width: int, height: int) -> "Timeline":
        """An image: one frame at time 0."""
        return cls(width=width, height=height, timestamps=(0.0,), frame_ids=(0,))

    # -- time

    @property
    def num_frames(self) -> int:
        return len(self.timestamps if self.timestamps is not None else self.frame_ids)  # type: ignore[arg-type]

    def _need_timestamps(self) -> np.ndarray:
        if self.timestamps is None:
            raise ValueError("this timeline has no timestamps; build it with the sampled frames' times to use seconds")
        return np.asarray(self.timestamps, dtype=np.float64)

    def to_seconds(self, t: float | np.ndarray) -> float | np.ndarray:
        """Normalised time(s) in [0, 1] -> seconds (interpolated between sampled frames)."""
        ts = self._need_timestamps()
        arr = np.asarray(t, dtype=np.float64)
        if np.any(~np.isfinite(arr)) or np.any(arr < 0.0) or np.any(arr > 1.0):
            raise OutOfRangeError(f"normalised time {t} is outside [0, 1]")
        return interpolate_sampled(arr, ts)

    def to_normalised(self, seconds: float | np.ndarray) -> float | np.ndarray:
        """Seconds -> normalised time in [0, 1].

        Raises:
            OutOfRangeError: a time before the first or after the last sampled frame.
        """
        ts = self._need_timestamps()
        arr = np.asarray(seconds, dtype=np.float64)
        lo, hi = ts[0], ts[-1]
        tol = 1e-9 * max(1.0, abs(lo), abs(hi))
        if np.any(~np.isfinite(arr)) or np.any(arr < lo - tol) or np.any(arr > hi + tol):
            raise OutOfRangeError(
                f"time {seconds} s is outside the sampled clip [{lo:.6g} s, {hi:.6g} s]"
            )
        arr = np.clip(arr, lo, hi)
        if len(ts) == 1 or hi == lo:
            out = np.zeros(arr.shape)
        else:
            # first frame of each run of equal timestamps, so the curve is strictly increasing
            keep = np.concatenate(([True], np.diff(ts) > 0))
            pos = np.interp(arr, ts[keep], np.arange(len(ts), dtype=np.float64)[keep])
            out = pos / (len(ts) - 1)
        return float(out) if out.ndim == 0 else out

    def frame_index(self, key: int, bins: "BinCounts") -> int:
        """Sampled frame index named by time bin ``key`` of ``bins.time`` bins (see :func:`sampled_position`)."""
        return sampled_position(key, bins, self.num_frames)

    def frame_seconds(self, index: int) -> float:
        """Presentation time in seconds of sampled frame ``index``."""
        ts = self._need_timestamps()
        return float(ts[index])

    # -- space

    def box_to_pixels(self, box: Sequence[float]) -> tuple[float, float, float, float]:
        """Normalised ``xyxy`` box -> pixel ``xyxy`` (``x * width``, ``y * height``)."""
        x1, y1, x2, y2 = check_box(box, 1.0, 1.0, "normalised box")
        return (x1 * self.width, y1 * self.height, x2 * self.width, y2 * self.height)

    def box_to_normalised(self, box: Sequence[float]) -> tuple[float, float, float, float]:
        """Pixel ``xyxy`` box -> normalised ``xyxy``.

        Raises:
            OutOfRangeError: a corner outside the ``width x height`` frame, or a
                box that ends before it starts.
        """
        x1, y1, x2, y2 = check_box(box, float(self.width), float(self.height), "pixel box")
        return (x1 / self.width, y1 / self.height, x2 / self.width, y2 / self.height)


def check_box(
    box: Sequence[float], width: float, height: float, what: str, tol: float = 0.0
) -> tuple[float, float, float, float]:
    """An ``xyxy`` box checked to lie inside a ``width x height`` frame and not end before it starts.

    ``tol`` widens the frame on every side (e.g. a thousandth of a pixel to
    absorb the float rounding of ``normalised * size``); corners inside that
    margin are moved onto the frame's edge. Use ``width = height = 1`` for a
    normalised box.

    Raises:
        OutOfRangeError: not four finite numbers, a corner outside the frame,
            or ``x2 < x1`` / ``y2 < y1``. The message quotes the box and ``what``.
    """
    if len(box) != 4:
        raise OutOfRangeError(f"{what} must have 4 numbers x1, y1, x2, y2, got {list(box)}")
    x1, y1, x2, y2 = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        raise OutOfRangeError(f"{what} {list(box)} holds a value that is not a finite number")
    w, h = float(width), float(height)
    if not all(-tol <= v <= w + tol for v in (x1, x2)) or not all(-tol <= v <= h + tol for v in (y1, y2)):
        raise OutOfRangeError(f"{what} {list(box)} lies outside the frame [0, {w:g}] x [0, {h:g}]")
    if x2 < x1 or y2 < y1:
        raise OutOfRangeError(f"{what} {list(box)} ends before it starts (xyxy: need x1 <= x2 and y1 <= y2)")
    return (min(max(x1, 0.0), w), min(max(y1, 0.0), h), min(max(x2, 0.0), w), min(max(y2, 0.0), h))


__all__ = [
    "OutOfRangeError",
    "Timeline",
    "check_box",
    "interpolate_sampled",
    "nearest_sampled_frame",
    "sample_frame_indices",
    "sampled_position",
]
