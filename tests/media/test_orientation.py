"""Display matrices -> upright frames, checked against the matrix definition pixel by pixel."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from llava_st.media import Orientation, UnsupportedMediaError, load_video, probe_video
from llava_st.media.isobmff import track_display_matrices

av = pytest.importorskip("av")
ONE = 1 << 16


def by_definition(stored: np.ndarray, a: int, b: int, c: int, d: int) -> np.ndarray:
    """Stored (p, q) -> (a p + c q, b p + d q), shifted to start at 0 (libavutil/display.h)."""
    h, w = stored.shape[:2]
    q, p = np.mgrid[0:h, 0:w]
    p2, q2 = a * p + c * q, b * p + d * q
    p2, q2 = p2 - p2.min(), q2 - q2.min()
    out = np.zeros((q2.max() + 1, p2.max() + 1) + stored.shape[2:], stored.dtype)
    out[q2, p2] = stored[q, p]
    return out


# every right-angle rotation or mirror: entries in {-1, 0, 1}, one non-zero per row and column
RIGHT_ANGLE = [
    (a, b, c, d)
    for a, b, c, d in itertools.product((-1, 0, 1), repeat=4)
    if (a != 0 and d != 0 and b == c == 0) or (b != 0 and c != 0 and a == d == 0)
]


@pytest.mark.parametrize("abcd", RIGHT_ANGLE)
def test_all_eight_transforms_match_the_definition(abcd):
    a, b, c, d = abcd
    stored = np.arange(3 * 5 * 2, dtype=np.uint8).reshape(3, 5, 2)
    orientation = Orientation.from_display_matrix([a * ONE, b * ONE, 0, c * ONE, d * ONE, 0, 0, 0, 1 << 30], "m")
    got = orientation.apply(stored)
    assert np.array_equal(got, by_definition(stored, a, b, c, d))
    assert got.flags["C_CONTIGUOUS"]
    assert orientation.displayed_size(5, 3) == (got.shape[1], got.shape[0])
    # the transform is a quarter-turn count, then a left-right mirror if mirrored
    turned = np.rot90(stored, k=orientation.rotation_degrees // 90)
    assert np.array_equal(got, turned[:, ::-1] if orientation.mirrored else turned)
    assert orientation.mirrored == (a * d - b * c < 0)


def test_batches_of_frames_are_transformed_alike():
    frames = np.random.default_rng(0).integers(0, 256, (4, 6, 8, 3), dtype=np.uint8)
    o = Orientation(transpose=True, flip_rows=True)
    assert np.array_equal(o.apply(frames), np.stack([o.apply(f) for f in frames]))
    assert Orientation().is_identity and not o.is_identity


@pytest.mark.parametrize("matrix", [[ONE, ONE, 0, -ONE, ONE, 0, 0, 0, 1 << 30], [0, 0, 0, 0, 0, 0, 0, 0, 0], [ONE] * 4])
def test_other_matrices_are_refused(matrix):
    with pytest.raises(UnsupportedMediaError, match="clip.mp4"):
        Orientation.from_display_matrix(matrix, "clip.mp4")


def test_rotation_of_a_video_track_after_an_audio_track(tmp_path, synth):
    """The header reader must pick the video's tkhd, not the first track's."""
    path = tmp_path / "av.mp4"
    with av.open(str(path), "w") as out:
        audio = out.add_stream("aac", rate=8000)
        video = out.add_stream("libx264", rate=30)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.set_display_matrix([0, ONE, 0, -ONE, 0, 0, 48 * ONE, 0, 1 << 30])
        sound = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        sound.sample_rate = 8000
        out.mux(audio.encode(sound))
        for i in range(4):
            out.mux(video.encode(av.VideoFrame.from_ndarray(synth.pattern(i), format="rgb24")))
        out.mux(video.encode())
        out.mux(audio.encode())
    with av.open(str(path)) as container:
        kinds = [s.type for s in container.streams]
    assert kinds == ["audio", "video"]
    matrices = track_display_matrices(path)
    assert matrices[0][:5] == (ONE, 0, 0, 0, ONE) and matrices[1][:5] == (0, ONE, 0, -ONE, 0)
    info = probe_video(path)
    clip = load_video(path, 2)
    assert (info.width, info.height) == (clip.width, clip.height) == (48, 64)
    ref = synth.decode_all(path)
    assert np.array_equal(clip.frames, np.rot90(ref.frames[clip.indices], k=-1, axes=(1, 2)))


def test_files_that_are_not_isobmff(tmp_path):
    (tmp_path / "x.bin").write_bytes(b"\x00\x00\x00\x08free" + b"junk" * 10)
    assert track_display_matrices(tmp_path / "x.bin") is None
