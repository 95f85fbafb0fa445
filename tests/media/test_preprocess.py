"""Pixels (SPEC §2.2): equal to the arithmetic done per pixel (the release tensors are checked in test_parity.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from llava_st.media import UnsupportedMediaError, preprocess_frames


def release_pixels(frames: np.ndarray, size: int, mean, std) -> np.ndarray:
    """The release's steps written out per frame, in float64 then float32, no table."""
    out = []
    for frame in frames:
        resized = np.asarray(Image.fromarray(frame).resize((size, size), Image.BICUBIC))
        x = (resized.astype(np.float64) * (1 / 255)).astype(np.float32)
        x = (x - np.array(mean, dtype=np.float32)) / np.array(std, dtype=np.float32)
        out.append(x.transpose(2, 0, 1))
    return np.stack(out)


@pytest.mark.parametrize(
    "size,mean,std",
    [
        (384, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        (56, (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
    ],
)
def test_every_value_and_channel_matches_per_pixel_arithmetic(size, mean, std):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(3, 40, 52, 3), dtype=np.uint8)
    # A frame that is every uint8 value in every channel, at the output size so the
    # resize keeps it (Pillow copies when the size is unchanged).
    ramp = np.tile(np.arange(256, dtype=np.uint8), (size * size * 3 + 255) // 256)[: size * size * 3]
    ramp_frame = ramp.reshape(size, size, 3)
    got = preprocess_frames(list(frames) + [ramp_frame], size, mean, std).numpy()
    expected = release_pixels(list(frames) + [ramp_frame], size, mean, std)
    assert got.tobytes() == expected.tobytes()
    assert set(np.unique(ramp_frame[..., 0])) == set(range(256))


def test_input_forms_and_shapes():
    rng = np.random.default_rng(1)
    video = rng.integers(0, 256, size=(4, 30, 50, 3), dtype=np.uint8)
    stacked = preprocess_frames(video, 28)
    assert tuple(stacked.shape) == (4, 3, 28, 28) and stacked.is_contiguous()
    assert torch.equal(preprocess_frames(list(video), 28), stacked)
    assert torch.equal(preprocess_frames(video[2], 28), stacked[2:3])
    mixed = [video[0], rng.integers(0, 256, size=(17, 90, 3), dtype=np.uint8)]
    assert tuple(preprocess_frames(mixed, 28).shape) == (2, 3, 28, 28)
    # channel order: a pure red frame is +1 in channel 0 and -1 elsewhere
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    px = preprocess_frames(red, 4)
    assert torch.all(px[0, 0] == 1) and torch.all(px[0, 1:] == -1)


def test_thread_pool_gives_the_same_pixels():
    frames = np.random.default_rng(2).integers(0, 256, size=(6, 33, 47, 3), dtype=np.uint8)
    serial = preprocess_frames(frames, 40, num_threads=1)
    assert torch.equal(preprocess_frames(frames, 40, num_threads=3), serial)
    assert torch.equal(preprocess_frames(frames, 40), serial)


@pytest.mark.parametrize(
    "frames,match",
    [
        (np.zeros((2, 8, 8, 3), np.float32), "uint8"),
        (np.zeros((2, 8, 8, 4), np.uint8), r"\[H, W, 3\]"),
        (np.zeros((8, 8), np.uint8), r"\[T, H, W, 3\] or \[H, W, 3\]"),
        ([], "empty"),
        ("frames.mp4", "numpy array or a sequence"),
        ([np.zeros((8, 8, 3), np.uint8), "x"], "frame 1"),
    ],
)
def test_bad_frames(frames, match):
    with pytest.raises(UnsupportedMediaError, match=match):
        preprocess_frames(frames, 8)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"image_size": 0}, "image_size"),
        ({"image_size": 8.0}, "image_size"),
        ({"mean": (0.5, 0.5)}, "mean"),
        ({"std": (0.5, 0.0, 0.5)}, "std"),
        ({"num_threads": 0}, "num_threads"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        preprocess_frames(np.zeros((8, 8, 3), np.uint8), **{"image_size": 8, **kwargs})
