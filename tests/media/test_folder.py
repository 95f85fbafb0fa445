"""Folders of frame images sampled like a video."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from llava_st.media import (
    EmptyVideoError,
    FrameCountError,
    FrameRangeError,
    MediaError,
    MediaNotFoundError,
    UnsupportedMediaError,
    load_frame_folder,
    probe_frame_folder,
)
from llava_st.media import folder as folder_module

N = 25


def spec_indices(a: int, b: int, t: int) -> list[int]:
    return [a] if t == 1 else [a + round(i / (t - 1) * (b - a)) for i in range(t)]


@pytest.fixture
def frames_dir(tmp_path, synth):
    """frame_0.png .. frame_24.png, unpadded numbers so plain sorting would put 10 before 2."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(N):
        Image.fromarray(synth.pattern(i)).save(folder / f"frame_{i}.png")
    return folder


def test_natural_order_timestamps_and_pixels(frames_dir, synth):
    clip = load_frame_folder(frames_dir, 6, fps=5)
    expected = spec_indices(0, N - 1, 6)
    assert clip.indices.tolist() == expected
    assert [synth.read_index(f) for f in clip.frames] == expected
    assert np.array_equal(clip.frames[1], synth.pattern(expected[1]))  # PNG is lossless
    assert clip.timestamps.tolist() == [i / 5 for i in expected]
    assert (clip.fps, clip.duration, clip.total_frames, clip.width, clip.height) == (5.0, N / 5, N, 64, 48)


def test_ranges(frames_dir, synth):
    clip = load_frame_folder(frames_dir, 3, fps=2, time_range=(1.0, 4.0))  # frames 2 .. 8
    assert clip.frame_range == (2, 8) and clip.indices.tolist() == [2, 5, 8]
    assert clip.timestamps.tolist() == [1.0, 2.5, 4.0]
    clip = load_frame_folder(frames_dir, 4, fps=2, frame_range=(20, 24))
    assert [synth.read_index(f) for f in clip.frames] == spec_indices(20, 24, 4)


def test_only_sampled_files_are_decoded(frames_dir, monkeypatch):
    opened = []
    real = folder_module.load_image
    monkeypatch.setattr(folder_module, "load_image", lambda path: opened.append(path.name) or real(path))
    load_frame_folder(frames_dir, 30, fps=1)  # more samples than files: repeats, each file once
    assert sorted(opened) == sorted(f"frame_{i}.png" for i in range(N))
    opened.clear()
    load_frame_folder(frames_dir, 3, fps=1)
    assert opened == ["frame_0.png", "frame_12.png", "frame_24.png"]


def test_probe(frames_dir):
    info = probe_frame_folder(frames_dir, fps=10)
    assert info.num_frames == N and info.duration == 2.5 and (info.width, info.height) == (64, 48)
    assert info.timestamps.tolist() == [i / 10 for i in range(N)]


def test_exif_rotated_frames_report_their_displayed_size(tmp_path, synth):
    exif = Image.Exif()
    exif[0x0112] = 6  # needs a quarter turn
    for i in range(3):
        Image.fromarray(synth.pattern(i)).save(tmp_path / f"{i}.png", exif=exif)
    info = probe_frame_folder(tmp_path, fps=1)
    clip = load_frame_folder(tmp_path, 2, fps=1)
    assert (info.width, info.height) == (clip.width, clip.height) == (48, 64)


def test_hidden_files_are_ignored_other_files_are_errors(frames_dir):
    (frames_dir / ".DS_Store").write_bytes(b"\0\1")
    assert load_frame_folder(frames_dir, 2, fps=1).total_frames == N
    (frames_dir / "labels.txt").write_text("x")
    with pytest.raises(UnsupportedMediaError, match=r"frames holds entries that are not image files \(labels.txt\)"):
        load_frame_folder(frames_dir, 2, fps=1)
    (frames_dir / "labels.txt").unlink()
    (frames_dir / "sub").mkdir()
    with pytest.raises(UnsupportedMediaError, match="sub"):
        load_frame_folder(frames_dir, 2, fps=1)


def test_empty_and_missing_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".hidden").write_text("")
    with pytest.raises(EmptyVideoError, match="empty holds no image files"):
        load_frame_folder(tmp_path / "empty", 2, fps=1)
    with pytest.raises(MediaNotFoundError, match="nowhere"):
        load_frame_folder(tmp_path / "nowhere", 2, fps=1)
    (tmp_path / "clip.mp4").write_bytes(b"")
    with pytest.raises(UnsupportedMediaError, match="load_video"):
        load_frame_folder(tmp_path / "clip.mp4", 2, fps=1)


def test_frames_of_different_sizes(tmp_path, synth):
    Image.fromarray(synth.pattern(0)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(tmp_path / "b.png")
    with pytest.raises(UnsupportedMediaError, match="differ in size"):
        load_frame_folder(tmp_path, 2, fps=1)


@pytest.mark.parametrize("fps", [0, -1, float("nan"), "fast", None])
def test_bad_fps(frames_dir, fps):
    with pytest.raises(MediaError, match="fps"):
        load_frame_folder(frames_dir, 2, fps=fps)


def test_bad_ranges_and_counts(frames_dir):
    with pytest.raises(FrameRangeError, match=rf"frames 0\.\.{N - 1}"):
        load_frame_folder(frames_dir, 2, fps=1, frame_range=(0, N))
    with pytest.raises(FrameRangeError, match="lasts"):
        load_frame_folder(frames_dir, 2, fps=1, time_range=(0, N + 1))
    with pytest.raises(FrameCountError):
        load_frame_folder(frames_dir, 0, fps=1)
