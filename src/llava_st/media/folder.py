"""A folder of frame images as a video source, sampled like a video file (SPEC §2.1).

Frame ``i`` is the ``i``-th image file in natural name order (digits compare
as numbers, so ``frame_2.jpg`` comes before ``frame_10.jpg``; ties broken by
the plain name), shown at ``i / fps`` seconds; the folder lasts
``num_frames / fps`` seconds. Only the sampled files are decoded, each through
:func:`.image.load_image` (EXIF orientation, modes, alpha as documented there).

Hidden entries (names starting with ``.``) are ignored; any other entry that
is not an image file (by extension, :data:`.load.IMAGE_EXTENSIONS`) is an
error rather than silently skipped.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .clip import VideoClip, VideoInfo
from .errors import EmptyVideoError, MediaError, MediaNotFoundError, UnsupportedMediaError
from .image import load_image
from .load import IMAGE_EXTENSIONS, is_image_file
from .sampling import check_num_frames, resolve_frame_range, sample_frame_indices

# EXIF orientations 5..8 turn the picture by a quarter, swapping width and height.
_QUARTER_TURN_ORIENTATIONS = frozenset({5, 6, 7, 8})


def _natural_key(name: str) -> tuple:
    parts = re.split(r"(\d+)", name)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts if p), name


def list_frame_files(path: str | os.PathLike) -> list[Path]:
    """The frame files of a folder in frame order (see the module docstring)."""
    folder = Path(path)
    if not folder.exists():
        raise MediaNotFoundError(f"frame folder not found: {folder}")
    if not folder.is_dir():
        raise UnsupportedMediaError(f"{folder} is a file, not a folder of frames; use load_video for video files")
    entries = [e for e in folder.iterdir() if not e.name.startswith(".")]
    others = sorted(e.name for e in entries if not (e.is_file() and is_image_file(e)))
    if others:
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        raise UnsupportedMediaError(
            f"frame folder {folder} holds entries that are not image files ({shown}); "
            f"frames must be files with one of the extensions {sorted(IMAGE_EXTENSIONS)}"
        )
    files = sorted(entries, key=lambda e: _natural_key(e.name))
    if not files:
        raise EmptyVideoError(f"frame folder {folder} holds no image files")
    return files


def _check_fps(fps, source: str) -> float:
    try:
        value = float(fps)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise MediaError(f"fps for {source} must be a positive number of frames per second, got {fps!r}")
    return value


def _displayed_size(file: Path) -> tuple[int, int]:
    """``(width, height)`` of an image after EXIF orientation, read from its header only."""
    try:
        with Image.open(file) as img:
            width, height = img.size
            orientation = img.getexif().get(0x0112, 1)
    except UnidentifiedImageError as exc:
        raise UnsupportedMediaError(f"Pillow cannot identify {file} as an image") from exc
    return (height, width) if orientation in _QUARTER_TURN_ORIENTATIONS else (width, height)


def _info(files: list[Path], fps: float, source: str) -> VideoInfo:
    n = len(files)
    width, height = _displayed_size(files[0])
    return VideoInfo(
        path=source, num_frames=n, timestamps=np.arange(n, dtype=np.float64) / fps, fps=fps, duration=n / fps,
        width=width, height=height, container_format="image folder",
    )


def probe_frame_folder(path: str | os.PathLike, fps: float) -> VideoInfo:
    """Frame count, timestamps (``i / fps``), duration and the first frame's displayed size; decodes nothing."""
    source = str(path)
    return _info(list_frame_files(path), _check_fps(fps, source), source)


def load_frame_folder(
    path: str | os.PathLike,
    num_frames: int,
    fps: float,
    frame_range: tuple[int, int] | None = None,
    time_range: tuple[float, float] | None = None,
) -> VideoClip:
    """Sample ``num_frames`` frames of a frame folder, exactly as :func:`.video.load_video` does a file.

    Example: 10 files at ``fps=2``, ``num_frames=3``, ``time_range=(1.0, 4.0)``:
    t=1.0 s shows frame 2 and t=4.0 s frame 8, so the indices are
    ``sample_frame_indices(2, 8, 3) = [2, 5, 8]`` at ``[1.0, 2.5, 4.0]`` s.

    All sampled frames must have the same displayed size. Raises
    :class:`FrameCountError`, :class:`MediaNotFoundError`,
    :class:`UnsupportedMediaError`, :class:`CorruptMediaError`,
    :class:`EmptyVideoError` or :class:`FrameRangeError`.
    """
    source = str(path)
    t = check_num_frames(num_frames, source)
    rate = _check_fps(fps, source)
    files = list_frame_files(path)
    info = _info(files, rate, source)
    a, b = resolve_frame_range(frame_range, time_range, info.timestamps, info.duration, source)
    indices = sample_frame_indices(a, b, t)
    decoded = {int(i): load_image(files[int(i)]) for i in np.unique(indices)}
    shapes = {img.shape for img in decoded.values()}
    if len(shapes) != 1:
        sizes = sorted(f"{w}x{h}" for h, w, _ in shapes)
        raise UnsupportedMediaError(f"frame folder {source}: the sampled frames differ in size ({', '.join(sizes)})")
    height, width, _ = shapes.pop()
    frames = np.empty((t, height, width, 3), dtype=np.uint8)
    for slot, i in enumerate(indices):
        frames[slot] = decoded[int(i)]
    return VideoClip(
        frames=frames, indices=indices, timestamps=info.timestamps[indices], frame_range=(a, b), fps=rate,
        duration=info.duration, total_frames=info.num_frames, width=width, height=height, path=source,
    )
