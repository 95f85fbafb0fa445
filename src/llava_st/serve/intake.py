"""Media into the server: uploads to temporary files, paths under the media root, kind by decoding, limits.

Whatever a client sends ends up as :class:`~llava_st.media.LoadedMedia`
through :func:`load_checked`, which runs in a worker thread:

1. the file is a temporary copy of an upload (:func:`save_upload`, removed by
   :func:`load_upload` whatever happens) or a file under the media root
   (:func:`resolve_under_root`: a path that leads outside it, through ``..``,
   an absolute path or a link, is refused);
2. :func:`detect` decides what it is by decoding its header, never by its
   name: an image Pillow identifies, else a video FFmpeg opens (PyAV), else
   415;
3. :func:`check_limits` refuses a video longer than ``max_video_seconds``,
   holding more than ``max_video_frames`` frames, or frames/images larger
   than ``max_pixels`` (413), before anything is decoded;
4. the sampled frames are decoded (:func:`~llava_st.media.load_media`, one
   FFmpeg thread per request: requests decode side by side), and the answer
   names the media by ``source`` (the upload's file name or the path as
   requested), never by a path of the server.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Literal

from ..media.errors import CorruptMediaError, MediaNotFoundError, UnsupportedMediaError
from ..media.load import LoadedMedia, load_media
from ..errors import LlavaSTError
from .errors import ApiError, Forbidden, NotFound, TooLarge, Unprocessable, UnsupportedType
from .params import AskParams
from .settings import Limits, size_text

Kind = Literal["image", "video"]
_COPY_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Probe:
    """What a file holds, learnt from its header: kind, frame size, and for a video its length."""

    kind: Kind
    width: int
    height: int
    num_frames: int = 1
    duration: float = 0.0


# ----------------------------------------------------------------- where the file is


def resolve_under_root(root: Path | None, name: str) -> Path:
    """The file ``name`` (relative to ``root``) names, refusing anything outside ``root``.

    Raises :class:`~.errors.Forbidden` when path requests are off (``root`` is
    ``None``) or the path leaves the root (``..``, an absolute path, a link to
    elsewhere), :class:`~.errors.NotFound` when no such file exists there, and
    :class:`~.errors.Unprocessable` for a path that is not a file.
    """
    if root is None:
        raise Forbidden("path requests are off: start the server with --media-root DIR, or upload the file")
    if not name or "\x00" in name:
        raise Unprocessable("field 'path': expected a file name under the media root")
    if os.path.isabs(name) or PurePosixPath(name).is_absolute():
        raise Forbidden(f"path {name!r} is absolute; give a path relative to the media root")
    target = (root / name).resolve()
    if not target.is_relative_to(root):
        raise Forbidden(f"path {name!r} leads outside the media root")
    if not target.exists():
        raise NotFound(f"no file {name!r} under the media root")
    if not target.is_file():
        raise Unprocessable(f"path {name!r} is not a file")
    return target


def save_upload(upload: BinaryIO, folder: Path, limits: Limits) -> Path:
    """Copy an upload into a new temporary file in ``folder`` and return its path.

    The copy stops with :class:`~.errors.TooLarge` past ``max_upload_bytes``
    (the partial file is removed); the caller removes the file when done
    (:func:`load_upload` does).
    """
    fd, name = tempfile.mkstemp(prefix="upload-", dir=folder)
    path = Path(name)
    try:
        upload.seek(0)
        written = 0
        with os.fdopen(fd, "wb") as out:
            while chunk := upload.read(_COPY_CHUNK):
                written += len(chunk)
                if written > limits.max_upload_bytes:
                    raise TooLarge(f"the upload is larger than the limit of {size_text(limits.max_upload_bytes)}")
                out.write(chunk)
        if written == 0:
            raise Unprocessable("the uploaded file is empty")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


# ----------------------------------------------------------------- what the file is


def detect(path: Path) -> Probe:
    """The file's kind and size, by decoding its header (the name plays no part).

    Raises :class:`~.errors.UnsupportedType` for a file that is neither an
    image Pillow identifies nor a video FFmpeg opens; a corrupt video header
    is a :class:`~llava_st.media.CorruptMediaError` (422).
    """
    from PIL import Image, UnidentifiedImageError

    from ..media.video import probe_video

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                return Probe("image", *img.size)
    except Image.DecompressionBombError as exc:
        raise TooLarge(f"the image is too large to decode ({exc})") from None
    except UnidentifiedImageError:
        pass
    except OSError as exc:  # identified, but the header is broken
        raise CorruptMediaError(f"the image's header cannot be read ({exc})") from exc
    try:
        info = probe_video(path)
    except UnsupportedMediaError as exc:
        raise UnsupportedType(f"the file is neither an image nor a video that can be decoded ({exc})") from None
    return Probe("video", info.width, info.height, info.num_frames, float(info.duration))


def check_limits(probe: Probe, limits: Limits) -> None:
    """Refuse (413) media larger than the limits, before decoding them."""
    if probe.width * probe.height > limits.max_pixels:
        raise TooLarge(f"the {probe.kind} is {probe.width}x{probe.height} pixels; the limit is {limits.max_pixels} "
                       "pixels per frame")
    if probe.kind == "video":
        if probe.duration > limits.max_video_seconds:
            raise TooLarge(f"the video lasts {probe.duration:.1f} s; the limit is {limits.max_video_seconds:g} s")
        if probe.num_frames > limits.max_video_frames:
            raise TooLarge(f"the video has {probe.num_frames} frames; the limit is {limits.max_video_frames}")


def load_checked(path: Path, params: AskParams, limits: Limits, num_frames: int, source: str | None) -> LoadedMedia:
    """Detect, check and decode the media of a request; the answer will name it ``source``."""
    probe = detect(path)
    check_limits(probe, limits)
    if probe.kind == "image" and (params.frames is not None or params.time_range is not None):
        raise Unprocessable("fields 'frames' and 'time_range' apply to videos; this file is an image")
    media = load_media(path, params.frames or num_frames if probe.kind == "video" else 1, kind=probe.kind,
                       time_range=params.time_range, decoder_threads=1)
    return dataclasses.replace(media, source=source)


def load_upload(upload: BinaryIO, filename: str | None, folder: Path, params: AskParams, limits: Limits,
                num_frames: int) -> LoadedMedia:
    """:func:`save_upload` then :func:`load_checked`; the temporary file is always removed."""
    path = save_upload(upload, folder, limits)
    name = upload_name(filename)
    try:
        return load_checked(path, params, limits, num_frames, source=name)
    except LlavaSTError as exc:
        raise _renamed(exc, path, f"upload {name!r}" if name else "the upload") from exc.__cause__
    finally:
        path.unlink(missing_ok=True)


def upload_name(filename: str | None) -> str | None:
    """The base name of an upload's file name (no folders of the client's), or ``None``."""
    if not filename:
        return None
    base = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return base[:255] or None


def load_path(root: Path | None, name: str, params: AskParams, limits: Limits, num_frames: int) -> LoadedMedia:
    """A file under the media root, checked and decoded; the answer names it as requested."""
    path = resolve_under_root(root, name)
    try:
        return load_checked(path, params, limits, num_frames, source=name)
    except MediaNotFoundError as exc:  # removed in between
        raise NotFound(f"no file {name!r} under the media root") from exc
    except LlavaSTError as exc:
        raise _renamed(exc, path, repr(name)) from exc.__cause__


def _renamed(exc: LlavaSTError, path: Path, label: str) -> LlavaSTError:
    """``exc`` with the server's path of the file replaced by ``label`` in its message
    (an error answer never shows where the server keeps files)."""
    message = str(exc)
    if str(path) not in message:
        return exc
    try:
        renamed = type(exc)(message.replace(str(path), label))
    except Exception:  # noqa: BLE001 - an error class with another constructor: keep it as it is
        return exc
    if isinstance(exc, ApiError):
        renamed.headers = exc.headers
    return renamed


def new_upload_dir() -> Path:
    """A new private folder for upload files (remove it with :func:`remove_upload_dir`)."""
    return Path(tempfile.mkdtemp(prefix="llava-st-uploads-"))


def remove_upload_dir(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


__all__ = [
    "Probe",
    "check_limits",
    "detect",
    "load_checked",
    "load_path",
    "load_upload",
    "new_upload_dir",
    "remove_upload_dir",
    "resolve_under_root",
    "save_upload",
    "upload_name",
]
