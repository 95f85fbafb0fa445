"""Seconds <-> normalised <-> bins <-> frame indices, end to end, on videos written with PyAV.

The videos have an odd frame rate (30000/1001) and a first frame that is not at
time 0 on the file's clock; each frame's grey level carries its index, so the
test can see which frame a time or a bin lands on.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from llava_st.protocol.timebase import OutOfRangeError
from llava_st.protocol.bins import bin_to_value, value_to_bin
from llava_st.protocol.tokens import RELEASE_BINS
from llava_st.infer import load_media, read_answer
from llava_st.processor import LlavaSTProcessor

av = pytest.importorskip("av")

RATE = Fraction(30000, 1001)
N, OFFSET = 45, 61  # frames, and the first frame's pts in frame units (about 2.035 s on the file clock)


def _write(path: Path) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=RATE)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.gop_size = 8
        tb = 1 / RATE
        for i in range(N):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 5 * i, dtype=np.uint8), format="rgb24")
            frame.pts, frame.time_base = OFFSET + i, tb
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def _index(frame: np.ndarray) -> int:
    return int(round(frame.mean() / 5))


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    path = _write(tmp_path_factory.mktemp("tb") / "odd.mp4")
    return load_media(path, 12)


def test_sampled_frames_carry_their_real_times(media) -> None:
    tl = media.timeline
    assert tl.frame_ids == tuple(int(round(i / 11 * (N - 1))) for i in range(12))
    assert [_index(f) for f in media.frames] == list(tl.frame_ids)
    # seconds from the first frame: frame f is shown at f / rate
    np.testing.assert_allclose(tl.timestamps, np.asarray(tl.frame_ids) / float(RATE), rtol=0, atol=1e-6)


def test_seconds_to_normalised_to_bins_to_frames_and_back(media) -> None:
    tl = media.timeline
    for k, seconds in enumerate(tl.timestamps):
        t = tl.to_normalised(seconds)
        assert t == pytest.approx(k / 11, abs=1e-12)
        b = value_to_bin("TEMP", t, RELEASE_BINS)
        frame = tl.frame_index(b, RELEASE_BINS)
        assert frame == k and _index(media.frames[frame]) == tl.frame_ids[k]
        assert tl.to_seconds(bin_to_value("TEMP", b, RELEASE_BINS)) == pytest.approx(seconds, abs=0.5 / float(RATE) * (N - 1) / 11)
    # a time between two sampled frames interpolates linearly between them
    mid = (tl.timestamps[3] + tl.timestamps[4]) / 2
    assert tl.to_normalised(mid) == pytest.approx(3.5 / 11)
    with pytest.raises(OutOfRangeError):
        tl.to_normalised(tl.timestamps[-1] + 0.5)


def test_a_question_in_seconds_reaches_the_model_as_values(media, tiny_model_dir) -> None:
    tl = media.timeline
    proc = LlavaSTProcessor.from_pretrained(tiny_model_dir)
    s, e = tl.to_normalised(tl.timestamps[2]), tl.to_normalised(tl.timestamps[9])
    out = proc(f"<video>\nWhat happens during {{{s}, {e}}}?", media.frames)
    ids = proc.config.token_ids
    placed = out["coord_values"][0][out["input_ids"][0] == ids.temp_input]
    assert placed.tolist() == [round(s, 3), round(e, 3)]


def test_generated_bins_read_back_in_seconds_and_frames(media, tiny_model_dir) -> None:
    proc = LlavaSTProcessor.from_pretrained(tiny_model_dir)
    tl = media.timeline
    v = proc.config.text.vocab_size
    generated = torch.tensor([[v + 18, v + 81]])  # two time bins
    text = "{" + proc.decode(generated[0]) + "} " + proc.decode(torch.tensor([v + 45])) + ":[<WIDTH-010><HEIGHT-020><WIDTH-050><HEIGHT-060>]"
    ans = read_answer(text, "q", "stvg", media, RELEASE_BINS)
    span = ans.result.span
    assert (span.start, span.end) == (18 / 99, 81 / 99)
    pos = np.arange(12)
    assert span.start_s == pytest.approx(np.interp(18 / 99 * 11, pos, tl.timestamps))
    frame = ans.track.frames[0]
    assert frame.frame == round(45 / 99 * 11) and frame.frame_id == tl.frame_ids[frame.frame]
    assert _index(media.frames[frame.frame]) == frame.frame_id
    assert frame.box.pixels == pytest.approx((10 / 99 * 64, 20 / 99 * 48, 50 / 99 * 64, 60 / 99 * 48))
