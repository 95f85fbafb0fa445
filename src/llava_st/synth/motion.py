"""Object trajectories as whole arrays: centre ``[F, 2]`` (float pixels) for frames ``0..F-1``.

Motion kinds: static, linear, bouncing (reflected at the walls of a box),
circular, and speed profiles for the events (stop-and-go ``move``,
``start_moving``, ``stop_moving``). A speed profile ``v[F]`` says how far the
object travels between frame ``f - 1`` and frame ``f`` (``v[0] = 0``); the
object "moves at frame f" when ``v[f] > 0``.
"""

from __future__ import annotations

import numpy as np


def static(p: np.ndarray, num_frames: int) -> np.ndarray:
    """The same point ``p`` ``[2]`` on every frame -> ``[F, 2]``."""
    return np.repeat(np.asarray(p, dtype=np.float64)[None, :], num_frames, axis=0)


def linear(p0: np.ndarray, velocity: np.ndarray, num_frames: int) -> np.ndarray:
    """``p0 + f * velocity`` -> ``[F, 2]``."""
    f = np.arange(num_frames, dtype=np.float64)[:, None]
    return np.asarray(p0, dtype=np.float64)[None, :] + f * np.asarray(velocity, dtype=np.float64)[None, :]


def reflect(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Fold unbounded positions into ``[lo, hi]`` as a ball bouncing between two walls.

    Example: with lo = 0, hi = 10, x = 12 -> 8 and x = 23 -> 3.
    """
    length = np.maximum(hi - lo, 1e-9)
    u = np.mod(x - lo, 2 * length)
    return lo + length - np.abs(u - length)


def bouncing(p0: np.ndarray, velocity: np.ndarray, lo: np.ndarray, hi: np.ndarray, num_frames: int) -> np.ndarray:
    """Linear motion reflected at the walls of the box ``[lo, hi]`` (``[2]`` each) -> ``[F, 2]``."""
    return reflect(linear(p0, velocity, num_frames), np.asarray(lo)[None, :], np.asarray(hi)[None, :])


def circular(centre: np.ndarray, radius: float, omega: float, phase: float, num_frames: int) -> np.ndarray:
    """``centre + radius * (cos(omega f + phase), sin(omega f + phase))`` -> ``[F, 2]``."""
    a = omega * np.arange(num_frames, dtype=np.float64) + phase
    return np.asarray(centre, dtype=np.float64)[None, :] + radius * np.stack([np.cos(a), np.sin(a)], 1)


def move_profile(num_frames: int, start: int, end: int, speed: float) -> np.ndarray:
    """Stop and go: at rest up to ``start``, ``speed`` px per frame on frames ``start+1..end``, at rest after."""
    v = np.zeros(num_frames)
    v[start + 1 : end + 1] = speed
    return v


def start_profile(num_frames: int, start: int, end: int, speed: float) -> np.ndarray:
    """At rest up to ``start``, accelerating on ``start+1..end`` to ``speed``, then cruising."""
    v = np.zeros(num_frames)
    f = np.arange(start + 1, end + 1)
    v[start + 1 : end + 1] = speed * (f - start) / (end - start)
    v[end + 1 :] = speed
    return v


def stop_profile(num_frames: int, start: int, end: int, speed: float) -> np.ndarray:
    """Cruising at ``speed`` up to ``start``, slowing down on ``start+1..end``, at rest after ``end``."""
    v = np.zeros(num_frames)
    v[1 : start + 1] = speed
    f = np.arange(start + 1, end + 1)
    v[start + 1 : end + 1] = speed * (end - f + 1) / (end - start + 1)
    return v


def path_from_speeds(direction: np.ndarray, speeds: np.ndarray) -> np.ndarray:
    """Displacement ``[F, 2]`` from frame 0 along the unit ``direction`` for a speed profile ``[F]``."""
    travelled = np.cumsum(speeds)
    return travelled[:, None] * np.asarray(direction, dtype=np.float64)[None, :]


def fit_path(rng: np.random.Generator, rel: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray | None:
    """Place a relative path ``rel`` ``[F, 2]`` so that it stays inside the box ``[lo, hi]``.

    Returns the absolute path, or None when the path is longer than the box.
    The offset is drawn uniformly among the valid ones.
    """
    lo_off = lo - rel.min(0)
    hi_off = hi - rel.max(0)
    if np.any(hi_off < lo_off):
        return None
    offset = lo_off + rng.random(2) * (hi_off - lo_off)
    return rel + offset[None, :]
