"""Frame index logic (SPEC §2.1) against the formula written out in plain Python."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from llava_st.media import FrameCountError, FrameRangeError, frame_range_for_times, sample_frame_indices
from llava_st.media.sampling import check_frame_range, resolve_frame_range


def spec_indices(a: int, b: int, t: int) -> list[int]:
    """SPEC §2.1 verbatim: Python round, so ties go to even."""
    if t == 1:
        return [a]
    return [a + round(i / (t - 1) * (b - a)) for i in range(t)]


@pytest.mark.parametrize("a", [0, 3, 17])
def test_matches_the_spec_formula_everywhere(a):
    for length, t in itertools.product(range(0, 60), range(1, 40)):
        got = sample_frame_indices(a, a + length, t)
        assert got.dtype == np.int64 and got.shape == (t,)
        assert got.tolist() == spec_indices(a, a + length, t), (a, length, t)


def test_long_videos_and_release_setting():
    assert sample_frame_indices(0, 99, 100).tolist() == list(range(100))
    for b in (999, 18_000, 123_457, 10**9):
        assert sample_frame_indices(0, b, 100).tolist() == spec_indices(0, b, 100)


def test_worked_examples_of_the_docstring():
    assert sample_frame_indices(0, 9, 4).tolist() == [0, 3, 6, 9]
    assert sample_frame_indices(0, 5, 3).tolist() == [0, 2, 5]  # 2.5 -> 2
    assert sample_frame_indices(0, 7, 3).tolist() == [0, 4, 7]  # 3.5 -> 4
    assert sample_frame_indices(0, 3, 5).tolist() == [0, 1, 2, 2, 3]
    assert sample_frame_indices(10, 20, 1).tolist() == [10]


def test_ties_go_to_even_not_up():
    # x = 0.5, 1.5, 2.5, ... occur with T - 1 = 2 and odd lengths: 2.5 -> 2, 3.5 -> 4.
    assert sample_frame_indices(0, 5, 3)[1] == 2
    assert sample_frame_indices(0, 9, 3)[1] == 4  # 4.5 -> 4
    assert sample_frame_indices(0, 11, 3)[1] == 6  # 5.5 -> 6


def test_numpy_integers_are_accepted():
    assert sample_frame_indices(np.int64(2), np.int32(8), np.int16(3)).tolist() == [2, 5, 8]


@pytest.mark.parametrize("t", [0, -1])
def test_fewer_than_one_frame(t):
    with pytest.raises(FrameCountError, match=">= 1"):
        sample_frame_indices(0, 10, t)


@pytest.mark.parametrize("t", [2.0, "3", True, None])
def test_non_integer_frame_counts(t):
    with pytest.raises(FrameCountError, match="integer"):
        sample_frame_indices(0, 10, t)


@pytest.mark.parametrize("a,b", [(5, 4), (-1, 3)])
def test_bad_ranges(a, b):
    with pytest.raises(FrameRangeError, match=r"0 <= start <= end"):
        sample_frame_indices(a, b, 3)


def test_frame_range_checks_name_the_source():
    assert check_frame_range(None, 40, "v.mp4") == (0, 39)
    assert check_frame_range((3, 39), 40, "v.mp4") == (3, 39)
    for bad in [(0, 40), (-1, 5), (10, 9)]:
        with pytest.raises(FrameRangeError, match=r"v\.mp4.*0\.\.39"):
            check_frame_range(bad, 40, "v.mp4")
    with pytest.raises(FrameRangeError, match="pair"):
        check_frame_range(7, 40, "v.mp4")
    with pytest.raises(FrameRangeError, match="integer"):
        check_frame_range((0.5, 3), 40, "v.mp4")


def test_time_range_picks_the_frames_on_screen():
    timestamps = np.arange(50) / 10  # 10 fps, duration 5.0
    assert frame_range_for_times(timestamps, 5.0, (0.0, 1.0), "v") == (0, 10)
    assert frame_range_for_times(timestamps, 5.0, (0.25, 0.25), "v") == (2, 2)
    assert frame_range_for_times(timestamps, 5.0, (4.95, 5.0), "v") == (49, 49)
    # every frame's own timestamp maps back to that frame
    for i, t in enumerate(timestamps):
        assert frame_range_for_times(timestamps, 5.0, (t, t), "v") == (i, i)


def test_time_range_on_irregular_timestamps():
    timestamps = np.array([0.0, 0.01, 0.05, 0.06, 0.2, 1.0])
    assert frame_range_for_times(timestamps, 1.04, (0.055, 0.5), "v") == (2, 4)
    assert frame_range_for_times(timestamps, 1.04, (0.0, 0.009), "v") == (0, 0)


@pytest.mark.parametrize("rng", [(-0.1, 1.0), (1.0, 6.0), (3.0, 2.0), (float("nan"), 1.0), (0, float("inf"))])
def test_time_ranges_outside_the_video(rng):
    with pytest.raises(FrameRangeError, match=r"outside v\.mp4, which lasts 5\.0 s"):
        frame_range_for_times(np.arange(50) / 10, 5.0, rng, "v.mp4")


def test_frame_and_time_range_together_is_an_error():
    with pytest.raises(FrameRangeError, match="not both"):
        resolve_frame_range((0, 3), (0.0, 1.0), np.arange(50) / 10, 5.0, "v.mp4")
