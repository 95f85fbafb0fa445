"""Event spans on the sampled frames, and time coordinates built from them (SPEC §1, §2.1).

The sampler itself is :func:`llava_st.protocol.timebase.sample_frame_indices`.

Convention: a clip is an inclusive absolute frame range ``[a, b]`` (the
sample's ``meta.split``); the sampler takes ``T`` frames
``idx_i = a + round(i / (T - 1) * (b - a))`` (Python ``round``, ties to even),
and the normalised time of sampled frame ``i`` is ``i / (T - 1)``: 0 is the
first sampled frame, 1 the last. An event spanning absolute frames
``[start, end]`` is seen by the model from the first to the last sampled frame
that falls inside it, so its span in an answer is ``{i_s / (T-1), i_e / (T-1)}``.
"""

from __future__ import annotations

import math

def sampled_span(indices: list[int], start: int, end: int) -> tuple[int, int] | None:
    """First and last sample index ``i`` whose frame lies in ``[start, end]``; None when none does."""
    inside = [i for i, f in enumerate(indices) if start <= f <= end]
    if not inside:
        return None
    return inside[0], inside[-1]


def time_value(i: int, num_samples: int) -> float:
    """Normalised time of sample ``i``: ``i / (T - 1)``."""
    return i / (num_samples - 1)


def min_event_frames(num_frames: int, num_samples: int) -> int:
    """Shortest event (in frames) that always covers at least 3 sampled frames of the whole video.

    Consecutive distinct sampled frames are at most ``g = ceil((F - 1) / (T - 1))``
    frames apart, so any run of ``3 * g`` consecutive frames holds three of them.
    Example: F = 100, T = 100 -> g = 1 -> 3 frames; F = 300, T = 100 -> g = 4 -> 12.
    """
    gap = max(1, math.ceil((num_frames - 1) / (num_samples - 1)))
    return 3 * gap
