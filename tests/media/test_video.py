"""Video files: probing, sampling by seeking, timing, rotation and errors.

Every video is written here with PyAV, frame ``i`` drawing the bits of ``i``
(see conftest). The reference for any frame is a sequential decode of the
whole file, so "seeking returns the frames a full decode returns" is checked
bit for bit, and the pixels also say which frame came back.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from llava_st.media import (
    CorruptMediaError,
    EmptyVideoError,
    FrameCountError,
    FrameRangeError,
    MediaNotFoundError,
    UnsupportedMediaError,
    VideoClip,
    load_video,
    probe_video,
)
from llava_st.media import video as video_module

av = pytest.importorskip("av")

N = 40  # frames per test video


def has_encoder(name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
    except Exception:
        return False
    return True


def spec_indices(a: int, b: int, t: int) -> list[int]:
    return [a] if t == 1 else [a + round(i / (t - 1) * (b - a)) for i in range(t)]


# name -> (file name, encoder, container format or None, pixel format)
CONTAINERS = {
    "mp4-h264": ("v.mp4", "libx264", None, "yuv420p"),
    "mov-h264": ("v.mov", "libx264", None, "yuv420p"),
    "mkv-h264": ("v.mkv", "libx264", None, "yuv420p"),
    "ts-h264": ("v.ts", "libx264", "mpegts", "yuv420p"),
    "webm-vp9": ("v.webm", "libvpx-vp9", None, "yuv420p"),
    "webm-vp8": ("v8.webm", "libvpx", None, "yuv420p"),
    "avi-mpeg4": ("v.avi", "mpeg4", None, "yuv420p"),
    "mkv-mjpeg": ("mj.mkv", "mjpeg", None, "yuvj420p"),
}


@pytest.fixture(scope="module")
def videos(tmp_path_factory, synth):
    """Encode each available container once; value: (path, sequential reference decode)."""
    root = tmp_path_factory.mktemp("videos")
    images = [synth.pattern(i) for i in range(N)]
    out = {}
    for name, (file_name, codec, fmt, pix_fmt) in CONTAINERS.items():
        if not has_encoder(codec):
            continue
        path = synth.write_video(root / file_name, images, codec=codec, container_format=fmt, pix_fmt=pix_fmt)
        out[name] = (path, synth.decode_all(path))
    return out


def get_video(videos, name):
    if name not in videos:
        pytest.skip(f"encoder for {name} not available in this FFmpeg build")
    return videos[name]


@pytest.mark.parametrize("name", list(CONTAINERS))
def test_probe_agrees_with_a_full_decode(videos, name):
    path, ref = get_video(videos, name)
    info = probe_video(path)
    assert info.num_frames == len(ref.frames) == N
    assert (info.width, info.height) == (64, 48)
    np.testing.assert_allclose(info.timestamps, ref.seconds - ref.seconds[0], rtol=0, atol=1e-9)
    assert info.timestamps.dtype == np.float64 and info.timestamps[0] == 0.0
    # 30 fps written; containers with a millisecond clock store 33/34 ms steps
    assert info.fps == pytest.approx(30, abs=0.05)
    assert info.duration == pytest.approx(N / 30, abs=2e-3)
    assert info.start_time == pytest.approx(ref.seconds[0], abs=1e-9)


@pytest.mark.parametrize("name", list(CONTAINERS))
@pytest.mark.parametrize(
    "num_frames,frame_range",
    [(1, None), (7, None), (N, None), (64, None), (5, (12, 19)), (3, (9, 11)), (4, (39, 39)), (6, (1, 38))],
)
def test_seeking_returns_the_frames_of_a_full_decode(videos, synth, name, num_frames, frame_range):
    path, ref = get_video(videos, name)
    clip = load_video(path, num_frames, frame_range=frame_range)
    a, b = frame_range or (0, N - 1)
    expected = spec_indices(a, b, num_frames)
    assert isinstance(clip, VideoClip)
    assert clip.indices.tolist() == expected and clip.frame_range == (a, b)
    assert clip.frames.shape == (num_frames, 48, 64, 3) and clip.frames.dtype == np.uint8
    assert [synth.read_index(f) for f in clip.frames] == expected
    assert np.array_equal(clip.frames, ref.frames[expected])
    np.testing.assert_allclose(clip.timestamps, ref.seconds[expected] - ref.seconds[0], rtol=0, atol=1e-9)
    assert (clip.total_frames, clip.width, clip.height) == (N, 64, 48)


def test_odd_frame_rate_timestamps_are_exact(tmp_path, synth):
    path = synth.write_video(tmp_path / "ntsc.mp4", [synth.pattern(i) for i in range(N)], rate=Fraction(30000, 1001))
    info = probe_video(path)
    assert info.timestamps.tolist() == [float(Fraction(i * 1001, 30000)) for i in range(N)]
    assert info.fps == pytest.approx(30000 / 1001, rel=1e-12)
    assert info.duration == pytest.approx(N * 1001 / 30000, rel=1e-12)
    # t = 1.0 s shows frame 29 (0.968 s), t = 1.2 s frame 35 (1.168 s); frame 30 starts at 1.001 s
    clip = load_video(path, 4, time_range=(1.0, 1.2))
    shown = [max(i for i in range(N) if i * 1001 / 30000 <= t) for t in (1.0, 1.2)]
    assert clip.frame_range == tuple(shown) == (29, 35)
    assert [synth.read_index(f) for f in clip.frames] == spec_indices(29, 35, 4)


@pytest.mark.parametrize("file_name", ["late.mp4", "late.mkv"])
def test_non_zero_start_time(tmp_path, synth, file_name):
    pts = [5000 + 33 * i for i in range(N)]  # first frame at 5 s on the file's clock
    path = synth.write_video(
        tmp_path / file_name, [synth.pattern(i) for i in range(N)], pts=pts, time_base=Fraction(1, 1000)
    )
    info = probe_video(path)
    assert info.start_time == pytest.approx(5.0, abs=1e-9)
    np.testing.assert_allclose(info.timestamps, [(p - 5000) / 1000 for p in pts], rtol=0, atol=1e-9)
    clip = load_video(path, 4, time_range=(0.0, 0.1))  # frames at 0, .033, .066, .099
    assert clip.frame_range == (0, 3)
    assert [synth.read_index(f) for f in clip.frames] == [0, 1, 2, 3]
    ref = synth.decode_all(path)
    clip = load_video(path, 9)
    assert np.array_equal(clip.frames, ref.frames[clip.indices])


@pytest.mark.parametrize("file_name", ["vfr.mp4", "vfr.mkv"])
def test_variable_frame_rate(tmp_path, synth, file_name):
    pts = [0, 10, 50, 60, 200, 210, 215, 400, 1000, 1033] + [1100 + 40 * i for i in range(N - 10)]
    path = synth.write_video(
        tmp_path / file_name, [synth.pattern(i) for i in range(N)], pts=pts, time_base=Fraction(1, 1000), gop=8
    )
    info = probe_video(path)
    assert info.timestamps.tolist() == [p / 1000 for p in pts]
    # frame index = position on screen, whatever the spacing: t=0.055 shows frame 2, t=1.05 frame 9
    clip = load_video(path, 8, time_range=(0.055, 1.05))
    assert clip.frame_range == (2, 9)
    assert [synth.read_index(f) for f in clip.frames] == list(range(2, 10))
    assert clip.timestamps.tolist() == [p / 1000 for p in pts[2:10]]
    ref = synth.decode_all(path)
    assert np.array_equal(clip.frames, ref.frames[2:10])
    assert info.fps == pytest.approx(N / info.duration)


def display_transform(stored: np.ndarray, matrix) -> np.ndarray:
    """Apply a display matrix the way libavutil/display.h defines it: stored pixel
    (p, q) (column, row) goes to (a*p + c*q + x, b*p + d*q + y); written out
    pixel by pixel with index arrays, independent of the code under test."""
    a, b, c, d = (int(np.sign(v)) for v in (matrix[0], matrix[1], matrix[3], matrix[4]))
    h, w = stored.shape[:2]
    q, p = np.mgrid[0:h, 0:w]
    p2, q2 = a * p + c * q, b * p + d * q
    p2, q2 = p2 - p2.min(), q2 - q2.min()
    out = np.zeros((q2.max() + 1, p2.max() + 1, stored.shape[2]), stored.dtype)
    out[q2, p2] = stored[q, p]
    return out


ONE = 1 << 16
ROTATIONS = {
    "cw90-as-phones-write-it": [0, ONE, 0, -ONE, 0, 0, 48 * ONE, 0, 1 << 30],
    "ccw90": [0, -ONE, 0, ONE, 0, 0, 0, 64 * ONE, 1 << 30],
    "180": [-ONE, 0, 0, 0, -ONE, 0, 64 * ONE, 48 * ONE, 1 << 30],
    "mirror": [-ONE, 0, 0, 0, ONE, 0, 64 * ONE, 0, 1 << 30],
}


@pytest.mark.parametrize("ext", ["mp4", "mov"])
@pytest.mark.parametrize("kind", list(ROTATIONS))
def test_rotation_metadata_gives_upright_frames(tmp_path, synth, ext, kind):
    matrix = ROTATIONS[kind]
    path = synth.write_video(
        tmp_path / f"rot.{ext}", [synth.pattern(i) for i in range(12)], display_matrix=matrix, gop=5
    )
    ref = synth.decode_all(path)  # stored orientation, 48x64
    expected = np.stack([display_transform(f, matrix) for f in ref.frames])
    clip = load_video(path, 5)
    assert np.array_equal(clip.frames, expected[clip.indices])
    h, w = expected.shape[1:3]
    assert (clip.width, clip.height) == (w, h)
    info = probe_video(path)
    assert (info.width, info.height) == (w, h)


def test_rotation_agrees_with_pyav_counter_clockwise_convention(tmp_path, synth):
    with av.open(str(tmp_path / "r.mp4"), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.set_display_rotation(90)  # documented: counter-clockwise
        for i in range(3):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(synth.pattern(i), format="rgb24")))
        out.mux(stream.encode())
    ref = synth.decode_all(tmp_path / "r.mp4")
    clip = load_video(tmp_path / "r.mp4", 3)
    assert np.array_equal(clip.frames, np.rot90(ref.frames, k=1, axes=(1, 2)))
    assert probe_video(tmp_path / "r.mp4").orientation.rotation_degrees == 90


def test_raw_stream_without_timestamps_is_decoded_in_order(tmp_path, synth):
    path = synth.write_video(tmp_path / "raw.h264", [synth.pattern(i) for i in range(N)], container_format="h264")
    info = probe_video(path)
    assert info.num_frames == N
    assert info.fps == pytest.approx(30)  # from the stream's timing info
    np.testing.assert_allclose(info.timestamps, np.arange(N) / 30, rtol=0, atol=1e-12)
    clip = load_video(path, 5, frame_range=(3, 30))
    assert [synth.read_index(f) for f in clip.frames] == spec_indices(3, 30, 5)
    assert np.array_equal(clip.frames, synth.decode_all(path).frames[clip.indices])


@pytest.mark.skipif(not has_encoder("libvpx-vp9"), reason="no VP9 encoder")
def test_colour_matrix_and_full_range_are_honoured(tmp_path):
    colours = np.array([(220, 30, 40), (40, 200, 60), (30, 60, 210), (128, 128, 128)], np.uint8)
    img = np.repeat(np.repeat(colours[None], 48, axis=0), 16, axis=1)  # 48x64, four bands
    path = tmp_path / "c.webm"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libvpx-vp9", rate=30, options={"lossless": "1"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv444p"
        stream.codec_context.color_range, stream.codec_context.colorspace = 2, 1  # full range, BT.709
        frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(
            format="yuv444p", dst_colorspace="ITU709", dst_color_range="JPEG"
        )
        frame.color_range, frame.colorspace = 2, 1
        out.mux(stream.encode(frame))
        out.mux(stream.encode())
    got = load_video(path, 1).frames[0, 0, ::16].astype(int)
    assert np.abs(got - colours).max() <= 2  # BT.601 or limited range would be off by 10 or more


# ---------------------------------------------------------------------------
# Seeking behaviour


@pytest.fixture(scope="module")
def long_gop(tmp_path_factory, synth):
    """120 frames, a keyframe exactly every 30 (scene cuts off), B-frames on."""
    path = synth.write_video(
        tmp_path_factory.mktemp("gop") / "gop.mp4",
        [synth.pattern(i) for i in range(120)],
        gop=30,
        options={"x264-params": "scenecut=0:keyint=30:min-keyint=30:bframes=3"},
    )
    with av.open(str(path)) as container:
        keys = sorted(p.pts for p in container.demux(video=0) if p.size and p.is_keyframe)
        tb = container.streams.video[0].time_base
        step = Fraction(1, 30) / tb
    assert [Fraction(k) / step for k in keys] == [0, 30, 60, 90]  # the structure the test relies on
    return path, synth.decode_all(path)


@pytest.fixture
def counters(monkeypatch):
    """Count seeks and decoded frames of the seeking decoder."""
    counts = {"seeks": 0, "decoded": 0}
    seek, decoded = video_module._SeekingDecoder._seek, video_module._SeekingDecoder._decoded

    def counting_seek(self, timestamp):
        counts["seeks"] += 1
        return seek(self, timestamp)

    def counting_decoded(self):
        for frame in decoded(self):
            counts["decoded"] += 1
            yield frame

    monkeypatch.setattr(video_module._SeekingDecoder, "_seek", counting_seek)
    monkeypatch.setattr(video_module._SeekingDecoder, "_decoded", counting_decoded)
    return counts


def test_targets_in_one_gop_need_one_seek(long_gop, counters, synth):
    path, ref = long_gop
    clip = load_video(path, 8, frame_range=(33, 54))
    assert counters["seeks"] == 1
    assert counters["decoded"] <= 54 - 30 + 1 + 4  # from keyframe 30 to 54, plus reorder slack
    assert np.array_equal(clip.frames, ref.frames[clip.indices])


def test_each_gop_is_entered_by_a_seek_not_by_decoding_through(long_gop, counters):
    path, ref = long_gop
    clip = load_video(path, 3, frame_range=(5, 95))  # frames 5, 50, 95: GOPs 0, 30 and 90
    assert clip.indices.tolist() == [5, 50, 95]
    assert counters["seeks"] == 3
    # decoding runs 0..5(+slack), 30..50(+slack), 90..95(+slack): far below the 96 frames up to 95
    assert counters["decoded"] <= (6 + 21 + 6) + 3 * 4
    assert np.array_equal(clip.frames, ref.frames[[5, 50, 95]])


def test_every_frame_of_a_long_gop_video_matches(long_gop, synth):
    path, ref = long_gop
    clip = load_video(path, 120)
    assert [synth.read_index(f) for f in clip.frames] == list(range(120))
    assert np.array_equal(clip.frames, ref.frames)


# ---------------------------------------------------------------------------
# Bad input


def test_missing_file(tmp_path):
    with pytest.raises(MediaNotFoundError, match="nope.mp4"):
        load_video(tmp_path / "nope.mp4", 4)
    with pytest.raises(MediaNotFoundError, match="nope.mp4"):
        probe_video(tmp_path / "nope.mp4")


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(UnsupportedMediaError, match="folder.*load_frame_folder"):
        load_video(tmp_path, 4)


def test_not_a_video(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is a shopping list, not a video\n" * 20)
    with pytest.raises(UnsupportedMediaError, match="notes.mp4"):
        load_video(path, 4)


def test_audio_only_file(tmp_path):
    path = tmp_path / "tone.wav"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        out.mux(stream.encode(frame))
        out.mux(stream.encode())
    with pytest.raises(UnsupportedMediaError, match="tone.wav has no video stream"):
        probe_video(path)


def test_truncated_file(tmp_path, synth):
    whole = tmp_path / "whole.mp4"
    images = [np.random.default_rng(i).integers(0, 256, (48, 64, 3), dtype=np.uint8) for i in range(N)]
    synth.write_video(whole, images, container_options={"movflags": "faststart"})  # header first, then the frames
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptMediaError, match=rf"cut.mp4 is truncated: its header lists {N} video frames"):
        load_video(cut, 4)


def test_zero_frames(tmp_path):
    path = tmp_path / "empty.avi"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        out.start_encoding()
    with pytest.raises(EmptyVideoError, match="empty.avi has a video stream but no frames"):
        load_video(path, 4)
    y4m = tmp_path / "empty.y4m"
    y4m.write_text("YUV4MPEG2 W64 H48 F30:1 Ip A1:1 C420jpeg\n")
    with pytest.raises(EmptyVideoError, match="empty.y4m"):
        probe_video(y4m)


def test_ranges_outside_the_video(videos):
    path, _ = get_video(videos, "mp4-h264")
    with pytest.raises(FrameRangeError, match=rf"v\.mp4, which has frames 0\.\.{N - 1}"):
        load_video(path, 4, frame_range=(10, N))
    with pytest.raises(FrameRangeError, match=r"v\.mp4, which lasts"):
        load_video(path, 4, time_range=(1.0, 2.0))
    with pytest.raises(FrameRangeError, match="not both"):
        load_video(path, 4, frame_range=(0, 3), time_range=(0.0, 0.1))


@pytest.mark.parametrize("t", [0, -3, 2.5])
def test_frame_count_below_one_or_not_integer(videos, t):
    path, _ = get_video(videos, "mp4-h264")
    with pytest.raises(FrameCountError, match="v.mp4"):
        load_video(path, t)


@pytest.mark.parametrize("name", list(CONTAINERS))
def test_iter_video_frames_is_the_sequential_decode(videos, name):
    from llava_st.media import iter_video_frames

    path, reference = get_video(videos, name)
    frames = list(iter_video_frames(path))
    assert len(frames) == len(reference.frames)
    for got, want in zip(frames, reference.frames):
        assert np.array_equal(got, want)


@pytest.mark.parametrize("threads", [1, 2])
def test_decoder_threads_give_the_same_frames(videos, threads):
    for name in videos:
        path, ref = get_video(videos, name)
        clip = load_video(path, 9, decoder_threads=threads)
        assert np.array_equal(clip.frames, ref.frames[clip.indices]), name


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_decoder_threads_must_be_a_positive_integer(videos, bad):
    from llava_st.errors import ConfigError

    path, _ = get_video(videos, next(iter(videos)))
    with pytest.raises(ConfigError, match="decoder_threads"):
        load_video(path, 3, decoder_threads=bad)
