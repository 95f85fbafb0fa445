"""Helpers for media tests: tiny videos whose frames say which frame they are.

Every frame ``i`` of a generated video shows the bits of ``i`` as 16x16
black/white cells (two rows of four, so indices 0..255), which survive lossy
coding; :func:`read_index` reads them back. The reference for any decoded
frame is a plain sequential decode of the whole file written here, with no
seeking, independent of the code under test.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

HEIGHT, WIDTH = 48, 64


def index_pattern(i: int, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """uint8 ``[height, width, 3]`` showing the 8 bits of ``i``; the rest is a fixed gradient."""
    img = np.zeros((height, width, 3), dtype=np.uint8)
    img[:, :, 2] = np.linspace(0, 200, width, dtype=np.uint8)[None, :]
    for bit in range(8):
        row, col = divmod(bit, 4)
        if (i >> bit) & 1:
            img[row * 16 : row * 16 + 16, col * 16 : col * 16 + 16] = 255
        else:
            img[row * 16 : row * 16 + 16, col * 16 : col * 16 + 16] = 0
    return img


def read_index(frame: np.ndarray) -> int:
    """The index :func:`index_pattern` drew into ``frame`` (upright, 48x64 or larger)."""
    value = 0
    for bit in range(8):
        row, col = divmod(bit, 4)
        cell = frame[row * 16 + 3 : row * 16 + 13, col * 16 + 3 : col * 16 + 13]
        if cell.mean() > 128:
            value |= 1 << bit
    return value


def write_video(
    path: Path,
    images: list[np.ndarray],
    codec: str = "libx264",
    rate: Fraction = Fraction(30),
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    gop: int = 10,
    container_format: str | None = None,
    options: dict | None = None,
    display_matrix: list[int] | None = None,
    pix_fmt: str = "yuv420p",
    container_options: dict | None = None,
) -> Path:
    """Encode RGB uint8 ``images`` into ``path``; ``pts`` (in ``time_base``) for variable timing."""
    av = pytest.importorskip("av")  # only video tests need PyAV
    height, width = images[0].shape[:2]
    with av.open(str(path), "w", format=container_format, options=container_options or {}) as out:
        stream = out.add_stream(codec, rate=rate, options=options or {})
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.codec_context.gop_size = gop
        if time_base is not None:
            stream.time_base = time_base
            stream.codec_context.time_base = time_base
        if display_matrix is not None:
            stream.set_display_matrix(display_matrix)
        for i, img in enumerate(images):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[i], time_base
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


@dataclass
class Decoded:
    """A whole file decoded sequentially: RGB frames and times in presentation order."""

    frames: np.ndarray  # uint8 [N, H, W, 3]
    seconds: np.ndarray  # float64 [N], frame pts * time_base (file clock)


def decode_all(path: Path) -> Decoded:
    """Reference: decode every frame in order, no seeking."""
    av = pytest.importorskip("av")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames, seconds = [], []
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            seconds.append(float(frame.pts * stream.time_base) if frame.pts is not None else np.nan)
    return Decoded(np.stack(frames), np.array(seconds))


@pytest.fixture(scope="session")
def synth():
    """The helpers above, for test modules (conftest functions are not importable by name)."""

    class Synth:
        pattern = staticmethod(index_pattern)
        read_index = staticmethod(read_index)
        write_video = staticmethod(write_video)
        decode_all = staticmethod(decode_all)

    return Synth
