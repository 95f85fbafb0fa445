"""Media input: video files, frame folders and images -> RGB frames -> pixel tensors.

``load_video`` / ``load_frame_folder`` sample ``T`` frames uniformly over a
frame or time range (SPEC §2.1) and return a :class:`VideoClip` with the
frames, their indices and timestamps; ``load_image`` returns one upright RGB
image; ``preprocess_frames`` turns frames into the vision tower's input
exactly as the release does (SPEC §2.2). Every failure is a
:class:`MediaError` subclass whose message names the input.

:func:`load_media` is the one dispatcher from any input (a path to an image,
a video or a folder of frames, an array, a PIL image) to :class:`LoadedMedia`
(frames and their timeline); :data:`IMAGE_EXTENSIONS` is the one list of
image file endings.

Modules: ``load`` (the dispatcher), ``sampling`` (index logic), ``video``
(PyAV), ``isobmff`` and ``orientation`` (rotation metadata), ``image``
(Pillow), ``folder`` (frame folders), ``preprocess`` (pixels), ``clip``
(result types), ``errors``.
"""

from .clip import VideoClip, VideoInfo
from .errors import (
    CorruptMediaError,
    EmptyVideoError,
    FrameCountError,
    FrameRangeError,
    MediaError,
    MediaKindError,
    MediaNotFoundError,
    UnsupportedMediaError,
)
from .folder import load_frame_folder, probe_frame_folder
from .image import load_image
from .load import IMAGE_EXTENSIONS, LoadedMedia, classify, is_image_file, load_media
from .orientation import Orientation
from .preprocess import preprocess_frames
from .sampling import frame_range_for_times, sample_frame_indices
from .video import iter_video_frames, load_video, probe_video

__all__ = [
    "IMAGE_EXTENSIONS",
    "CorruptMediaError",
    "EmptyVideoError",
    "FrameCountError",
    "FrameRangeError",
    "LoadedMedia",
    "MediaError",
    "MediaKindError",
    "MediaNotFoundError",
    "Orientation",
    "UnsupportedMediaError",
    "VideoClip",
    "VideoInfo",
    "classify",
    "frame_range_for_times",
    "is_image_file",
    "iter_video_frames",
    "load_frame_folder",
    "load_image",
    "load_media",
    "load_video",
    "preprocess_frames",
    "probe_frame_folder",
    "probe_video",
    "sample_frame_indices",
]
