"""Event spans on the sampled frames and the time values built from them (SPEC §2.1)."""

from __future__ import annotations

import numpy as np
import pytest

from llava_st.protocol.timebase import sample_frame_indices
from llava_st.synth.timeline import min_event_frames, sampled_span, time_value


def test_sampled_span_and_time_values():
    idx = sample_frame_indices(0, 23, 16).tolist()
    assert idx[:8] == [0, 2, 3, 5, 6, 8, 9, 11]  # round(i * 23 / 15)
    assert sampled_span(idx, 5, 11) == (3, 7)
    assert sampled_span(idx, 4, 4) is None
    assert sampled_span(idx, 1, 1) is None
    assert time_value(0, 16) == 0.0 and time_value(15, 16) == 1.0


@pytest.mark.parametrize("F,T", [(24, 16), (100, 100), (300, 100), (31, 7), (100, 17)])
def test_min_event_frames_always_holds_three_sampled_frames(F, T):
    need = min_event_frames(F, T)
    sampled = np.array(sorted(set(sample_frame_indices(0, F - 1, T).tolist())))
    for start in range(0, F - need + 1):
        inside = np.count_nonzero((sampled >= start) & (sampled <= start + need - 1))
        assert inside >= 3, (F, T, start)
