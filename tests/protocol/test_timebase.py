"""The time base: the one frame sampler (SPEC §2.1) and Timeline's seconds and pixels."""

from __future__ import annotations

import numpy as np
import pytest

from llava_st.protocol.timebase import OutOfRangeError, Timeline, sample_frame_indices, sampled_position
from llava_st.protocol.tokens import RELEASE_BINS as R
from llava_st.protocol.tokens import BinCounts

NTSC = 30000 / 1001  # 29.97... fps


def test_sampler_hand_cases():
    # a + round(i / (T - 1) * (b - a)), Python round (ties to even)
    assert sample_frame_indices(10, 14, 3).tolist() == [10, 12, 14]
    # 0, 0.5, 1, 1.5, 2 -> 0, 0, 1, 2, 2
    assert sample_frame_indices(0, 2, 5).tolist() == [0, 0, 1, 2, 2]
    assert sample_frame_indices(7, 7, 4).tolist() == [7, 7, 7, 7]
    assert sample_frame_indices(5, 9, 1).tolist() == [5]
    assert sample_frame_indices(0, 99, 100).tolist() == list(range(100))
    assert sample_frame_indices(0, 23, 16).tolist()[:8] == [0, 2, 3, 5, 6, 8, 9, 11]
    with pytest.raises(ValueError):
        sample_frame_indices(9, 5, 3)
    with pytest.raises(ValueError):
        sample_frame_indices(0, 5, 0)


@pytest.mark.parametrize("a,b,t", [(0, 9, 4), (3, 40, 100), (0, 2, 7), (17, 1017, 33), (5, 5, 1)])
def test_sampler_equals_the_python_formula(a, b, t):
    expected = [a] if t == 1 else [a + round(i / (t - 1) * (b - a)) for i in range(t)]
    got = sample_frame_indices(a, b, t)
    assert got.dtype == np.int64 and got.tolist() == expected


def test_sampled_position_names_the_frame_of_a_time_bin():
    assert sampled_position(50, R, 20) == round(50 / 99 * 19)
    assert sampled_position(0, R, 1) == 0
    with pytest.raises(OutOfRangeError):
        sampled_position(100, R, 20)
    # only the time count matters: 10 time bins, T = 4 -> bin 5 is round(5 / 9 * 3) = 2
    assert sampled_position(5, BinCounts(10, 3), 4) == 2
    with pytest.raises(OutOfRangeError):
        sampled_position(10, BinCounts(10, 300), 4)


def test_timeline_odd_fps_nonzero_start_seconds_and_back():
    tl = Timeline.from_split((30, 129), 100, width=640, height=360, fps=NTSC, start_time=0.5)
    assert tl.frame_ids[0] == 30 and tl.frame_ids[-1] == 129
    # normalised 12/99 is sampled frame 12 = frame 42, shown at 0.5 + 42 * 1001 / 30000 s
    assert tl.to_seconds(12 / 99) == pytest.approx(0.5 + 42 * 1001 / 30000, abs=1e-12)
    assert tl.to_seconds(0.0) == pytest.approx(0.5 + 30 * 1001 / 30000, abs=1e-12)
    assert tl.to_seconds(1.0) == pytest.approx(0.5 + 129 * 1001 / 30000, abs=1e-12)
    # halfway between sampled frames 12 and 13 (frames 42, 43)
    mid = (12.5) / 99
    assert tl.to_seconds(mid) == pytest.approx(0.5 + 42.5 * 1001 / 30000, abs=1e-12)
    for t in (0.0, 0.123, 12 / 99, 0.5, 0.999, 1.0):
        assert tl.to_normalised(tl.to_seconds(t)) == pytest.approx(t, abs=1e-12)
    vec = tl.to_seconds(np.array([0.0, 1.0]))
    assert vec.shape == (2,)


def test_timeline_variable_frame_rate_interpolates_timestamps():
    tl = Timeline(width=100, height=50, timestamps=(0.0, 0.1, 0.3, 0.35, 1.0))
    # t = 0.5 -> position 2 -> 0.3 s; t = 0.625 -> position 2.5 -> halfway between 0.3 and 0.35
    assert tl.to_seconds(0.5) == pytest.approx(0.3)
    assert tl.to_seconds(0.625) == pytest.approx(0.325)
    assert tl.to_normalised(0.325) == pytest.approx(0.625)
    assert tl.to_normalised(0.05) == pytest.approx(0.5 / 4)


def test_timeline_repeated_timestamps_inverse_takes_first_frame_of_run():
    # a 3-frame clip sampled at 5 frames: ids 0, 0, 1, 2, 2
    tl = Timeline.from_split((0, 2), 5, width=10, height=10, fps=10.0)
    assert tl.timestamps == (0.0, 0.0, 0.1, 0.2, 0.2)
    assert tl.to_normalised(0.0) == 0.0
    assert tl.to_normalised(0.2) == pytest.approx(3 / 4)
    assert tl.to_normalised(0.1) == pytest.approx(2 / 4)


def test_timeline_errors():
    tl = Timeline.from_split((30, 129), 100, width=640, height=360, fps=NTSC, start_time=0.5)
    with pytest.raises(OutOfRangeError, match="outside the sampled clip"):
        tl.to_normalised(0.1)  # before the first sampled frame (0.5 + 1.001 s)
    with pytest.raises(OutOfRangeError):
        tl.to_normalised(100.0)
    with pytest.raises(OutOfRangeError, match=r"outside \[0, 1\]"):
        tl.to_seconds(1.2)
    with pytest.raises(OutOfRangeError):
        tl.box_to_normalised([-1, 0, 10, 10])
    with pytest.raises(OutOfRangeError, match="outside the frame"):
        tl.box_to_normalised([0, 0, 641, 10])
    with pytest.raises(OutOfRangeError, match="ends before it starts"):
        tl.box_to_normalised([50, 0, 10, 10])
    with pytest.raises(ValueError, match="non-decreasing"):
        Timeline(width=10, height=10, timestamps=(0.0, 0.2, 0.1))
    with pytest.raises(ValueError, match="no timestamps"):
        Timeline.from_split((0, 9), 5, width=10, height=10).to_seconds(0.5)


def test_timeline_pixels_both_ways():
    tl = Timeline.for_image(width=640, height=480)
    assert tl.box_to_normalised([64, 48, 320, 480]) == (0.1, 0.1, 0.5, 1.0)
    assert tl.box_to_pixels([0.1, 0.1, 0.5, 1.0]) == pytest.approx((64.0, 48.0, 320.0, 480.0))
    with pytest.raises(OutOfRangeError):
        tl.box_to_pixels([0.1, 0.1, 1.5, 1.0])


def test_frame_index_of_track_keys():
    tl = Timeline.from_split((0, 999), 50, width=10, height=10)
    # key 50 of 100 bins on 50 frames: round(50 / 99 * 49) = round(24.75) = 25
    assert tl.frame_index(50, R) == 25
    assert tl.frame_index(0, R) == 0 and tl.frame_index(99, R) == 49
    with pytest.raises(OutOfRangeError):
        tl.frame_index(100, R)
