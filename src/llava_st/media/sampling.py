"""Which frames of a video to use (SPEC §2.1).

A video is sampled at ``T`` frames spread uniformly over an inclusive frame
range ``[a, b]`` (the "split"; by default the whole video):

    idx_i = a + round(i / (T - 1) * (b - a)),   i = 0 .. T-1

with Python ``round`` (ties go to the even integer), and ``[a]`` for ``T = 1``.
Frame index ``i`` is the ``i``-th frame in presentation order. A range given in
seconds is first turned into a frame range: a time ``t`` means the frame on
screen at ``t``, i.e. the last frame whose timestamp is ``<= t``.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from ..protocol import timebase
from .errors import FrameCountError, FrameRangeError


def _as_int(value, what: str, error: type[Exception]) -> int:
    """``value`` as a Python int (numpy integers welcome; bools and floats are not)."""
    if isinstance(value, (bool, np.bool_)):
        raise error(f"{what} must be an integer, got the bool {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise error(f"{what} must be an integer, got {value!r} ({type(value).__name__})") from None


def check_num_frames(num_frames, source: str) -> int:
    """``num_frames`` as an int >= 1, or :class:`FrameCountError` naming ``source``."""
    n = _as_int(num_frames, f"num_frames for {source}", FrameCountError)
    if n < 1:
        raise FrameCountError(f"num_frames for {source} must be >= 1, got {n}")
    return n


def sample_frame_indices(start: int, end: int, num_frames: int) -> np.ndarray:
    """:func:`llava_st.protocol.timebase.sample_frame_indices` on checked input.

    Returns an int64 array ``[num_frames]``. Raises :class:`FrameCountError`
    for ``num_frames`` that is not an integer >= 1 and :class:`FrameRangeError`
    unless ``0 <= start <= end`` are integers.
    """
    a = _as_int(start, "start of the frame range", FrameRangeError)
    b = _as_int(end, "end of the frame range", FrameRangeError)
    t = check_num_frames(num_frames, "sample_frame_indices")
    if not 0 <= a <= b:
        raise FrameRangeError(f"frame range [{a}, {b}] must satisfy 0 <= start <= end")
    return timebase.sample_frame_indices(a, b, t)


def check_frame_range(frame_range, num_frames_total: int, source: str) -> tuple[int, int]:
    """Validate an inclusive ``(a, b)`` against a video of ``num_frames_total`` frames."""
    if frame_range is None:
        return 0, num_frames_total - 1
    try:
        a_raw, b_raw = frame_range
    except (TypeError, ValueError):
        raise FrameRangeError(f"frame_range for {source} must be a pair (start, end), got {frame_range!r}") from None
    a = _as_int(a_raw, f"start of frame_range for {source}", FrameRangeError)
    b = _as_int(b_raw, f"end of frame_range for {source}", FrameRangeError)
    if not 0 <= a <= b <= num_frames_total - 1:
        raise FrameRangeError(
            f"frame_range [{a}, {b}] is outside {source}, which has frames 0..{num_frames_total - 1} "
            f"(need 0 <= start <= end <= {num_frames_total - 1})"
        )
    return a, b


def frame_range_for_times(timestamps: np.ndarray, duration: float, time_range, source: str) -> tuple[int, int]:
    """The inclusive frame range shown during ``time_range = (t0, t1)`` seconds.

    ``timestamps`` (float64 ``[N]``, ascending, ``timestamps[0] == 0``) are the
    frames' presentation times; frame ``i`` is on screen from ``timestamps[i]``
    until the next frame (the last one until ``duration``). ``t`` maps to the
    frame on screen at ``t``: the last ``i`` with ``timestamps[i] <= t``.

    Example: a 10 fps video of 50 frames (timestamps 0.0, 0.1, ..., 4.9,
    duration 5.0): ``(0.0, 1.0) -> (0, 10)``, ``(0.25, 0.25) -> (2, 2)``,
    ``(4.95, 5.0) -> (49, 49)``; ``(1.0, 6.0)`` raises :class:`FrameRangeError`.
    """
    try:
        t0, t1 = (float(v) for v in time_range)
    except (TypeError, ValueError):
        raise FrameRangeError(
            f"time_range for {source} must be a pair of seconds (start, end), got {time_range!r}"
        ) from None
    if not (math.isfinite(t0) and math.isfinite(t1)) or not 0.0 <= t0 <= t1 <= duration:
        raise FrameRangeError(
            f"time_range ({t0}, {t1}) s is outside {source}, which lasts {duration} s "
            f"(need 0 <= start <= end <= {duration})"
        )
    first, last = np.searchsorted(timestamps, [t0, t1], side="right") - 1
    return int(first), int(last)


def resolve_frame_range(
    frame_range, time_range, timestamps: np.ndarray, duration: float, source: str
) -> tuple[int, int]:
    """The inclusive frame range asked for by ``frame_range`` OR ``time_range`` (default: all frames)."""
    if frame_range is not None and time_range is not None:
        raise FrameRangeError(f"give frame_range or time_range for {source}, not both")
    if time_range is not None:
        return frame_range_for_times(timestamps, duration, time_range, source)
    return check_frame_range(frame_range, len(timestamps), source)
