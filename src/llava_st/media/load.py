"""The one entry point from "some media" to sampled frames and their timeline.

:func:`classify` is the only place that decides what an input is, and
:data:`IMAGE_EXTENSIONS` the only list of file name endings read as still
images (frame folders use the same list for their files):

==========================================  ===========  ==================================
input                                       route        read by
==========================================  ===========  ==================================
a :class:`LoadedMedia`                      ``loaded``   returned as it is
a :class:`~llava_st.media.VideoClip`        ``clip``     already sampled
a folder                                    ``folder``   :func:`.folder.load_frame_folder`
a file named ``*.png``, ``*.ppm`` ...       ``image``    :func:`.image.load_image`
any other file                              ``video``    :func:`.video.load_video` (PyAV)
a uint8 array ``[T, H, W, 3]``              ``frames``   sampled here like a video file
a PIL image, an array ``[H, W(, C)]``       ``image``    :func:`.image.load_image`
==========================================  ===========  ==================================

``kind="image"`` or ``kind="video"`` forces the reading of a file (an image
saved without an extension, a video named ``.gif``), and is checked against
every other input: asking for a video of a single image, or an image of a
folder, is a :class:`MediaKindError`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..protocol.timebase import Timeline
from .clip import VideoClip
from .errors import FrameRangeError, MediaError, MediaKindError, MediaNotFoundError, UnsupportedMediaError

#: File name endings read as still images (compared in lower case). Everything
#: else is handed to FFmpeg as a video container.
IMAGE_EXTENSIONS = frozenset({".bmp", ".gif", ".jpeg", ".jpg", ".png", ".ppm", ".tif", ".tiff", ".webp"})

Kind = Literal["image", "video"]
Route = Literal["loaded", "clip", "folder", "image", "video", "frames"]


def is_image_file(path: str | os.PathLike) -> bool:
    """Whether a file name ends in one of :data:`IMAGE_EXTENSIONS`."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


@dataclass(frozen=True)
class LoadedMedia:
    """Media ready for the model.

    ``frames``: uint8 ``[T, H, W, 3]`` (``T = 1`` for an image; ``None`` only for
    an answer read back from JSON, which carries no pixels); ``timeline``: the
    sampled frames' timestamps, frame numbers and size; ``source``: the path, when
    there is one; ``clip``: the :class:`VideoClip` of a video read from a file or
    folder.
    """

    kind: Kind
    frames: np.ndarray | None
    timeline: Timeline
    source: str | None = None
    clip: Any = None


def classify(source: Any, kind: Kind | None = None) -> Route:
    """How :func:`load_media` reads ``source`` (the table of the module docstring).

    Raises :class:`MediaNotFoundError` for a path that does not exist and
    :class:`MediaKindError` when ``kind`` contradicts the input.
    """
    if kind not in (None, "image", "video"):
        raise MediaKindError(f"kind must be 'image', 'video' or None, got {kind!r}")
    if isinstance(source, LoadedMedia):
        route: Route = "loaded"
        found = source.kind
    elif isinstance(source, VideoClip):
        route, found = "clip", "video"
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise MediaNotFoundError(f"media file not found: {path}")
        if path.is_dir():
            route, found = "folder", "video"
        else:
            # a file: its name decides unless the caller says what it is
            found = kind or ("image" if is_image_file(path) else "video")
            route = found
    elif isinstance(source, np.ndarray) and source.ndim == 4:
        route, found = "frames", "video"
    else:
        route, found = "image", "image"
    if kind is not None and kind != found:
        raise MediaKindError(f"kind={kind!r} but {_describe(source)} is {'an image' if found == 'image' else 'a video'}")
    return route


def load_media(
    source: Any,
    num_frames: int,
    *,
    kind: Kind | None = None,
    frame_range: tuple[int, int] | None = None,
    time_range: tuple[float, float] | None = None,
    fps: float | None = None,
    decoder_threads: int | None = None,
) -> LoadedMedia:
    """Read ``source`` into :class:`LoadedMedia`, sampling ``num_frames`` frames of a video.

    ``source``: any input of the table in the module docstring. ``frame_range``
    (inclusive frame indices) or ``time_range`` (seconds) restrict the sampled
    part of a video; ``fps`` gives the frame rate of a folder (required) or of an
    array of frames (optional: without it only frame positions are known).
    ``decoder_threads`` caps FFmpeg's threads for a video file (see
    :func:`~llava_st.media.load_video`). Every failure is a
    :class:`~llava_st.media.MediaError` naming the input.
    """
    from .folder import load_frame_folder  # folder.py imports this module for the extensions
    from .image import load_image
    from .video import load_video

    route = classify(source, kind)
    ranged = frame_range is not None or time_range is not None
    if route == "loaded":
        return source
    if route in ("clip", "image") and ranged:
        what = "an already sampled clip" if route == "clip" else f"{_describe(source)} is an image"
        raise FrameRangeError(f"frame_range/time_range apply to videos to sample, and {what}")
    if route == "clip":
        return _from_clip(source)
    if route == "image":
        frame = load_image(source)
        where = str(source) if isinstance(source, (str, os.PathLike)) else None
        return LoadedMedia("image", frame[None], Timeline.for_image(frame.shape[1], frame.shape[0]), where)
    if route == "frames":
        return _from_frames(source, num_frames, frame_range, time_range, fps)
    if route == "folder":
        if fps is None:
            raise MediaError(f"{source} is a folder of frames: give its frame rate with fps=...")
        return _from_clip(load_frame_folder(source, num_frames, fps, frame_range=frame_range, time_range=time_range))
    return _from_clip(load_video(source, num_frames, frame_range=frame_range, time_range=time_range,
                                 decoder_threads=decoder_threads))


def _describe(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, np.ndarray):
        return f"the array {list(source.shape)}"
    return f"the {type(source).__name__}"


def _from_frames(frames: np.ndarray, num_frames: int, frame_range, time_range, fps) -> LoadedMedia:
    """Sample ``num_frames`` of an array of video frames ``[N, H, W, 3]`` as a video file is sampled."""
    from .sampling import check_num_frames, resolve_frame_range, sample_frame_indices

    if frames.dtype != np.uint8 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise UnsupportedMediaError(
            f"video frames must be uint8 [T, H, W, 3] with T >= 1, got {frames.dtype} {list(frames.shape)}"
        )
    t = check_num_frames(num_frames, "the array of frames")
    n, h, w, _ = frames.shape
    if time_range is not None and fps is None:
        raise FrameRangeError("time_range on an array of frames needs their frame rate: pass fps=...")
    stamps = None if fps is None else np.arange(n) / float(fps)
    a, b = resolve_frame_range(frame_range, time_range, stamps if stamps is not None else np.zeros(n),
                               n / float(fps) if fps else 0.0, "the array of frames")
    idx = sample_frame_indices(a, b, t)
    times = None if stamps is None else tuple(stamps[idx].tolist())
    return LoadedMedia("video", frames[idx], Timeline(w, h, timestamps=times, frame_ids=tuple(int(i) for i in idx)))


def _from_clip(clip: VideoClip) -> LoadedMedia:
    timeline = Timeline(clip.width, clip.height, timestamps=tuple(clip.timestamps.tolist()),
                        frame_ids=tuple(int(i) for i in clip.indices))
    return LoadedMedia("video", clip.frames, timeline, getattr(clip, "path", None), clip)


__all__ = ["IMAGE_EXTENSIONS", "LoadedMedia", "classify", "is_image_file", "load_media"]
