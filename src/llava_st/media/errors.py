"""Errors of media input: one base class, one subclass per thing that can be wrong.

Every message names the input (a path, or a description of an in-memory
object) and says what is wrong with it, so a failing sample in a data set can
be found and fixed. All of them are ``ValueError`` subclasses: a bad file or a
bad range is a bad value given to a function, and callers that only want to
catch "this input is unusable" can catch :class:`MediaError`.
"""

from __future__ import annotations

from ..errors import MediaError


class MediaNotFoundError(MediaError):
    """The file or folder does not exist."""


class UnsupportedMediaError(MediaError):
    """The input is not something we read: not a video/image FFmpeg or Pillow
    understands, no video stream, an image mode or array dtype/shape that has
    no defined conversion to RGB uint8, a folder holding non-image files."""


class CorruptMediaError(MediaError):
    """The input was recognised but its data cannot be decoded as promised
    (truncated file, decoder errors, a frame that the index lists but the
    decoder never returns)."""


class EmptyVideoError(MediaError):
    """The video (or frame folder) holds no frames."""


class FrameRangeError(MediaError):
    """A frame range or time range is malformed or lies outside the video."""


class FrameCountError(MediaError):
    """The number of frames to sample is not an integer >= 1."""


class MediaKindError(MediaError):
    """The media is an image where a video is needed, or a video where an image
    is needed (a task that only applies to one of them, or a forced ``kind``
    that contradicts the input)."""
