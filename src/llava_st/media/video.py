"""Video files through PyAV: probe, then sample frames by seeking (SPEC §2.1).

Any container FFmpeg demuxes works (mp4, mov, mkv, webm, avi, mpeg-ts, ...).
Reading happens in two passes over the file:

1. **Index** (no decoding): demux every packet of the video stream and keep
   its presentation timestamp (pts), keyframe flag and duration. Sorting the
   pts gives the presentation order, so frame ``i`` is the ``i``-th frame on
   screen also for variable frame rate and B-frame reordering, and every
   frame's exact time is known before anything is decoded.
2. **Decode** only what is needed: for each wanted frame, in ascending order,
   seek to the last keyframe at or before it and decode forward until the
   decoder outputs that pts. When the next wanted frame's keyframe has already
   been fed to the decoder (same GOP, or close behind), keep decoding instead
   of seeking again. Frames that no other frame references (most B-frames)
   are skipped by the decoder unless they are wanted, and only wanted frames
   are converted to RGB.

Streams whose packets carry no usable timestamps (raw elementary streams such
as ``.h264``, or duplicate pts) cannot be indexed by time; they are decoded
sequentially and their frames timed from the stream's nominal frame rate.

Rotation: decoded frames carry FFmpeg's display matrix, which we apply so the
returned frames are upright (see :mod:`.orientation`). The probe, which
decodes nothing, reads the same matrix from the mp4/mov header
(:mod:`.isobmff`); other containers rarely carry one, and for them the probe
reports the stored size while :func:`load_video` still applies what the
decoder reports.

Fork: a process may fork (DataLoader workers started with ``fork``) after it
decoded video here. FFmpeg objects that own threads (a decoder's slice or frame
threads, a scaler's thread pool) are the danger: a forked child gets a copy of
such an object but not its threads, and using or freeing the copy waits forever
for them. So no such object outlives the call that made it: each call's codec
context is freed when its container closes (no reference cycle keeps it for the
garbage collector to free later, possibly in the child) and the per-thread RGB
converter runs without a thread pool. ``tests/media/test_video_fork.py`` forks
DataLoader workers after decoding in the parent.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from .._optional import require
from .clip import VideoClip, VideoInfo
from .errors import CorruptMediaError, EmptyVideoError, MediaNotFoundError, UnsupportedMediaError
from .isobmff import track_display_matrices
from .orientation import Orientation
from .sampling import check_num_frames, resolve_frame_range, sample_frame_indices
from ..errors import ConfigError


def _av():
    return require("av")


# ---------------------------------------------------------------------------
# Opening


def _open(path: str | os.PathLike):
    """The opened PyAV input container, or a MediaError naming ``path``."""
    p = Path(path)
    if not p.exists():
        raise MediaNotFoundError(f"video file not found: {p}")
    if p.is_dir():
        raise UnsupportedMediaError(f"{p} is a folder, not a video file; use load_frame_folder for folders of frames")
    av = _av()
    try:
        return av.open(str(p), mode="r")
    except av.error.FFmpegError as exc:
        raise UnsupportedMediaError(
            f"FFmpeg cannot open {p} as a video ({exc.strerror or exc}); it is not a media file "
            "FFmpeg reads, or its header is damaged"
        ) from exc


def _video_stream(container, source: str, decoder_threads: int | None = None):
    """The first real video stream (cover-art pictures attached to audio files excluded).

    ``decoder_threads``: threads FFmpeg may decode with (None: its own choice,
    one per core; 1: no decoder threads, for loaders that run side by side).
    """
    av = _av()
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            if stream.codec_context is None:
                raise UnsupportedMediaError(f"{source}: FFmpeg has no decoder for its video codec")
            if decoder_threads is not None:
                stream.thread_type = "NONE" if decoder_threads == 1 else "AUTO"
                stream.codec_context.thread_count = decoder_threads
            return stream
    raise UnsupportedMediaError(f"{source} has no video stream")


# ---------------------------------------------------------------------------
# Index (pass 1)


@dataclass(frozen=True)
class _StreamIndex:
    """Where each frame lives in the stream. ``N`` frames, ``K = N`` packets.

    ``pts`` int64 ``[N]``: frame ``i``'s pts (stream time base), ascending.
    ``seek_pos`` int64 ``[N]``: decode-order position of the keyframe to start
    decoding from for frame ``i`` (``-1`` = from the start of the stream).
    ``key_positions`` int64 ``[Kf]``: decode-order positions of the keyframes,
    ``key_pts`` and ``key_dts`` int64 ``[Kf]`` their presentation and decode
    timestamps (dts = pts where the container stores none). ``start_ts``: the
    smallest timestamp in the stream, a seek target before every packet.
    ``pos_by_pts``: packet pts -> decode-order position.
    ``timed``: False when packets have no usable pts (sequential decoding).
    """

    pts: np.ndarray
    seek_pos: np.ndarray
    key_positions: np.ndarray
    key_pts: np.ndarray
    key_dts: np.ndarray
    start_ts: int
    pos_by_pts: dict
    last_duration: int
    timed: bool


def _demux_index(container, stream, source: str) -> _StreamIndex:
    av = _av()
    pts_list, dts_list, key_list, dur_list = [], [], [], []
    stored = 0  # packets the container holds for the stream, discarded or empty ones included
    try:
        for packet in container.demux(stream):
            if packet.size or packet.pts is not None or packet.dts is not None:
                stored += 1
            # Empty packets flush the decoder at the end; discard-flagged ones
            # (before an mp4 edit list's start) are decoded but never shown.
            if packet.size == 0 or packet.is_discard:
                continue
            pts_list.append(packet.pts)
            dts_list.append(packet.dts if packet.dts is not None else packet.pts)
            key_list.append(packet.is_keyframe)
            dur_list.append(packet.duration or 0)
    except av.error.FFmpegError as exc:
        raise CorruptMediaError(f"{source}: reading packets failed after {len(pts_list)} frames ({exc})") from exc
    n = len(pts_list)
    if stream.frames and stored < stream.frames:
        # The header's sample table promises more than the file holds.
        raise CorruptMediaError(
            f"{source} is truncated: its header lists {stream.frames} video frames but only {stored} could be read"
        )
    if n == 0:
        raise EmptyVideoError(f"{source} has a video stream but no frames")
    keys = np.flatnonzero(np.array(key_list, dtype=bool))
    timed = all(p is not None for p in pts_list) and len(set(pts_list)) == n
    if not timed:
        return _StreamIndex(
            pts=np.arange(n, dtype=np.int64), seek_pos=np.full(n, -1, np.int64), key_positions=keys,
            key_pts=np.zeros(0, np.int64), key_dts=np.zeros(0, np.int64), start_ts=0, pos_by_pts={},
            last_duration=0, timed=False,
        )
    packet_pts = np.array(pts_list, dtype=np.int64)  # [K] in decode order
    order = np.argsort(packet_pts, kind="stable")  # frame i -> decode position
    pts = packet_pts[order]
    key_pts = packet_pts[keys]
    if np.any(np.diff(key_pts) <= 0):
        # Keyframes out of presentation order: no keyframe is a safe start for a
        # later frame, so decode from the beginning for every frame.
        seek_pos = np.full(n, -1, np.int64)
    else:
        # Start at the last keyframe that is both before the frame in decode
        # order and not after it on screen (leading pictures of an open GOP
        # need the previous GOP, which this rule includes).
        by_pos = np.searchsorted(keys, order, side="right")
        by_pts = np.searchsorted(key_pts, pts, side="right")
        k = np.minimum(by_pos, by_pts) - 1
        seek_pos = np.where(k >= 0, keys[np.maximum(k, 0)], -1)
    packet_dts = np.array(dts_list, dtype=np.int64)
    return _StreamIndex(
        pts=pts, seek_pos=seek_pos, key_positions=keys, key_pts=key_pts, key_dts=packet_dts[keys],
        start_ts=int(min(pts[0], packet_dts.min())),
        pos_by_pts={int(p): i for i, p in enumerate(pts_list)}, last_duration=int(dur_list[order[-1]]), timed=True,
    )


def _timing(index: _StreamIndex, stream, source: str) -> tuple[np.ndarray, float, float, float]:
    """``(timestamps [N] s from the first frame, duration s, fps, start_time s)``."""
    n = len(index.pts)
    if not index.timed:
        rate = stream.guessed_rate or stream.average_rate
        if not rate:
            raise UnsupportedMediaError(f"{source}: its packets carry no timestamps and it states no frame rate")
        rate = Fraction(rate)
        timestamps = np.arange(n, dtype=np.float64) / float(rate)
        return timestamps, n / float(rate), float(rate), 0.0
    tb = stream.time_base
    rel = index.pts - index.pts[0]  # exact integers
    # Integer numerator over integer denominator: one correctly rounded division.
    timestamps = (rel * tb.numerator).astype(np.float64) / tb.denominator
    last = index.last_duration
    if last <= 0:
        # No stated duration for the last frame: use the typical frame interval.
        last = int(np.median(np.diff(index.pts))) if n > 1 else 0
        if last <= 0 and stream.guessed_rate:
            last = int(round(1 / (Fraction(stream.guessed_rate) * tb)))
    duration = float(Fraction(int(rel[-1]) + last) * tb)
    fps = n / duration if duration > 0 else float(stream.guessed_rate or 0)
    return timestamps, duration, fps, float(Fraction(int(index.pts[0])) * tb)


def _header_orientation(path: str, container, stream) -> Orientation:
    """The display transform stated in the container header (mp4/mov only)."""
    if "mp4" not in container.format.name and "mov" not in container.format.name:
        return Orientation()
    matrices = track_display_matrices(path)
    if matrices is None or len(matrices) != len(container.streams) or stream.index >= len(matrices):
        return Orientation()
    return Orientation.from_display_matrix(matrices[stream.index], path)


def _probe_open(container, stream, source: str) -> tuple[VideoInfo, _StreamIndex]:
    index = _demux_index(container, stream, source)
    timestamps, duration, fps, start_time = _timing(index, stream, source)
    orientation = _header_orientation(source, container, stream)
    width, height = orientation.displayed_size(stream.codec_context.width, stream.codec_context.height)
    info = VideoInfo(
        path=source, num_frames=len(index.pts), timestamps=timestamps, fps=fps, duration=duration,
        width=width, height=height, start_time=start_time, orientation=orientation,
        sample_aspect_ratio=stream.sample_aspect_ratio, codec=stream.codec_context.name,
        container_format=container.format.name,
        nominal_rate=Fraction(stream.average_rate or stream.guessed_rate) if (stream.average_rate or stream.guessed_rate) else None,
    )
    return info, index


def iter_video_frames(path: str | os.PathLike, info: VideoInfo | None = None) -> Iterator[np.ndarray]:
    """Every frame of a video in presentation order, as upright RGB uint8 ``[H, W, 3]``.

    Frame ``n`` is frame ``n`` of :func:`load_video` (same stream, same colour
    conversion and rotation). ``info`` (from :func:`probe_video`) is read when not
    given. Raises :class:`CorruptMediaError` when decoding disagrees with the
    index (frame count or frame size).
    """
    source = str(path)
    info = info or probe_video(path)
    av = _av()
    n = 0
    with _open(path) as container:
        stream = _video_stream(container, source)
        try:
            for frame in container.decode(stream):
                if n >= info.num_frames:
                    raise CorruptMediaError(f"{source}: decoding gives more frames than the {info.num_frames} indexed")
                rgb = _frame_to_rgb(frame, source)
                if rgb.shape[:2] != (info.height, info.width):
                    raise CorruptMediaError(
                        f"{source}: frame {n} is {rgb.shape[1]}x{rgb.shape[0]}, not {info.width}x{info.height}"
                    )
                yield rgb
                n += 1
        except av.error.FFmpegError as exc:
            raise CorruptMediaError(f"{source}: decoding failed at frame {n} ({exc})") from exc
    if n != info.num_frames:
        raise CorruptMediaError(f"{source}: decoding gave {n} frames but the file indexes {info.num_frames}")


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Frame count, per-frame timestamps, fps, duration and displayed size, decoding nothing.

    Reads every packet header of the video stream (pass 1 of :mod:`.video`).
    Raises :class:`MediaNotFoundError`, :class:`UnsupportedMediaError`,
    :class:`CorruptMediaError` or :class:`EmptyVideoError`.
    """
    source = str(path)
    with _open(path) as container:
        info, _ = _probe_open(container, _video_stream(container, source), source)
    return info


# ---------------------------------------------------------------------------
# Decoding (pass 2)


_THREAD = threading.local()


def _reformat_takes_threads() -> bool:
    """Whether this PyAV's ``VideoReformatter.reformat`` has the ``threads`` argument (PyAV >= 17)."""
    try:
        major = int(_av().__version__.split(".")[0])
    except (ValueError, AttributeError):
        return True
    return major >= 17


_REFORMAT_THREADS = None  # decided on first use (importing PyAV is deferred)


def _frame_to_rgb(frame, source: str) -> np.ndarray:
    """Decoded frame -> upright RGB uint8 ``[H, W, 3]``."""
    global _REFORMAT_THREADS
    av = _av()
    if _REFORMAT_THREADS is None:
        _REFORMAT_THREADS = _reformat_takes_threads()
    # PyAV converts with the frame's own colour matrix and range (full-range
    # phone video included; tests/media check both). One reformatter per thread
    # keeps its scaler context between frames (4x faster on small frames than a
    # new one per frame; the same pixels). It scales on the calling thread
    # (threads=1): with PyAV's default (0, one thread per core) the scaler owns a
    # pool of FFmpeg threads for the life of the process, and a process forked
    # from here (a DataLoader worker) would inherit the context but not its
    # threads, then hang in its first conversion (waiting for workers that do not
    # exist) or when freeing it (joining them). See the module docstring, "Fork".
    # PyAV before 17 has no ``threads`` argument and its scaler is single-threaded.
    reformatter = getattr(_THREAD, "reformatter", None)
    if reformatter is None:
        reformatter = _THREAD.reformatter = av.video.reformatter.VideoReformatter()
    options = {"threads": 1} if _REFORMAT_THREADS else {}
    rgb = reformatter.reformat(frame, format="rgb24", **options).to_ndarray()
    try:
        matrix = frame.side_data[av.sidedata.sidedata.Type.DISPLAYMATRIX]
    except KeyError:
        return rgb
    orientation = Orientation.from_display_matrix(np.frombuffer(bytes(matrix), dtype="=i4"), source)
    return orientation.apply(rgb)


class _SeekingDecoder:
    """Decodes frames by presentation index, in ascending order, seeking only to skip work.

    Demuxers seek differently: mp4 and mkv land on the keyframe at or before a
    timestamp, mpeg-ts lands on whatever packet has that decode timestamp. So
    a seek is accepted only if the first frame it yields is a keyframe at or
    before the target; otherwise the same keyframe is tried by its decode
    timestamp, then earlier keyframes, and finally the stream's start. The
    timestamp kind that worked is tried first next time.
    """

    def __init__(self, container, stream, index: _StreamIndex, source: str, wanted: np.ndarray):
        self._container, self._stream, self._index, self._source = container, stream, index, source
        self._wanted_pts = set(index.pts[wanted].tolist())
        self._frames = None  # decoded-frame generator since the last seek
        self._fed_upto = -1  # decode position of the last packet given to the decoder
        self._use_dts_first = False

    def close(self) -> None:
        """Finish the decoding generator and drop the stream.

        The generator refers to this object and this object to the generator: a
        reference cycle that would keep the stream's codec context, and with it
        the decoder's FFmpeg threads, alive until Python's cyclic garbage
        collector happens to run, possibly in a forked child that then hangs
        joining threads it does not have. Closing breaks the cycle, so the codec
        context is freed as soon as the container is closed.
        """
        if self._frames is not None:
            self._frames.close()
        self._frames = None
        self._container = self._stream = None

    def _decoded(self):
        av = _av()
        context = self._stream.codec_context
        try:
            for packet in self._container.demux(self._stream):
                if packet.pts is not None:
                    self._fed_upto = max(self._fed_upto, self._index.pos_by_pts.get(packet.pts, -1))
                # A frame nothing references and nobody wants need not be decoded:
                # the decoder checks this setting per frame (H.264/HEVC nal_ref_idc,
                # MPEG B-frames, VP9 refresh flags); codecs without the notion ignore it.
                skip = "DEFAULT" if packet.pts in self._wanted_pts else "NONREF"
                if context.skip_frame != skip:
                    context.skip_frame = skip
                yield from packet.decode()
        except av.error.FFmpegError as exc:
            raise CorruptMediaError(f"{self._source}: decoding failed ({exc})") from exc

    def _seek_plan(self, seek_pos: int):
        """``(timestamp, uses_dts, is_stream_start)`` to try, best first, for keyframe ``seek_pos``."""
        index = self._index
        k = int(np.searchsorted(index.key_positions, seek_pos)) if seek_pos >= 0 else -1
        while k >= 0:
            by_pts = (int(index.key_pts[k]), False, False)
            by_dts = (int(index.key_dts[k]), True, False)
            yield from ((by_dts, by_pts) if self._use_dts_first else (by_pts, by_dts))
            k -= 1
        yield index.start_ts, self._use_dts_first, True

    def _seek(self, timestamp: int) -> None:
        av = _av()
        try:
            self._container.seek(timestamp, stream=self._stream, backward=True)
        except av.error.FFmpegError as exc:
            raise CorruptMediaError(f"{self._source}: seeking to timestamp {timestamp} failed ({exc})") from exc
        self._frames = self._decoded()
        self._fed_upto = -1

    def _take(self, i: int, target: int):
        """Pull decoded frames until ``target`` comes out; return it as upright RGB."""
        for frame in self._frames:
            if frame.pts is None:
                raise CorruptMediaError(f"{self._source}: the decoder returned a frame without a timestamp")
            if frame.pts < target:
                continue
            if frame.pts == target:
                return _frame_to_rgb(frame, self._source)
            raise CorruptMediaError(
                f"{self._source}: frame {i} (pts {target}) is listed in the stream but the decoder "
                f"skipped it (next decoded pts {frame.pts})"
            )
        raise CorruptMediaError(f"{self._source}: the stream ended before frame {i} (pts {target}) was decoded")

    def frame(self, i: int) -> np.ndarray:
        """Upright RGB frame ``i`` (presentation order); ``i`` must not decrease between calls."""
        index = self._index
        target = int(index.pts[i])
        seek_pos = int(index.seek_pos[i])
        if self._frames is not None and seek_pos <= self._fed_upto:
            # The keyframe this frame needs is already decoded: keep going.
            return self._take(i, target)
        for timestamp, uses_dts, at_start in self._seek_plan(seek_pos):
            self._seek(timestamp)
            first = next(self._frames, None)
            if first is None or first.pts is None:
                continue
            if at_start or (first.key_frame and first.pts <= target):
                self._use_dts_first = uses_dts
                if first.pts == target:
                    return _frame_to_rgb(first, self._source)
                if first.pts > target:
                    break
                return self._take(i, target)
        raise CorruptMediaError(f"{self._source}: frame {i} (pts {target}) cannot be reached by decoding")


def _decode_sequential(path: str | os.PathLike, wanted: np.ndarray, source: str,
                       decoder_threads: int | None = None) -> dict[int, np.ndarray]:
    """Decode from the start, keeping frames whose output position is in ``wanted`` (sorted).

    Opens the file again: raw elementary streams cannot seek back to the start.
    """
    av = _av()
    out: dict[int, np.ndarray] = {}
    want = set(int(i) for i in wanted)
    last = int(wanted[-1])
    position = 0
    with _open(path) as container:
        try:
            for frame in container.decode(_video_stream(container, source, decoder_threads)):
                if position in want:
                    out[position] = _frame_to_rgb(frame, source)
                if position == last:
                    return out
                position += 1
        except av.error.FFmpegError as exc:
            raise CorruptMediaError(f"{source}: decoding failed at frame {position} ({exc})") from exc
    raise CorruptMediaError(f"{source}: the stream ended after {position} decoded frames, before frame {last}")


def _gather(decoded, wanted: np.ndarray, indices: np.ndarray, source: str) -> np.ndarray:
    """Write each decoded frame (in ``wanted`` order) into every slot of ``indices`` (sorted)
    that names it -> uint8 ``[T, H, W, 3]``, without holding a second copy of the frames."""
    frames = None
    starts = np.searchsorted(indices, wanted, side="left")
    stops = np.searchsorted(indices, wanted, side="right")
    for i, start, stop, frame in zip(wanted, starts, stops, decoded):
        if frames is None:
            frames = np.empty((len(indices),) + frame.shape, dtype=np.uint8)
        elif frame.shape != frames.shape[1:]:
            raise UnsupportedMediaError(
                f"{source}: frame {int(i)} is {frame.shape[1]}x{frame.shape[0]} but earlier sampled frames are "
                f"{frames.shape[2]}x{frames.shape[1]} (the resolution changes mid-stream)"
            )
        frames[start:stop] = frame
    return frames


def load_video(
    path: str | os.PathLike,
    num_frames: int,
    frame_range: tuple[int, int] | None = None,
    time_range: tuple[float, float] | None = None,
    decoder_threads: int | None = None,
) -> VideoClip:
    """Sample ``num_frames`` frames uniformly over a frame or time range (SPEC §2.1).

    ``frame_range = (a, b)`` is inclusive, in presentation-order frame indices;
    ``time_range = (t0, t1)`` is in seconds from the first frame and selects the
    frames on screen at ``t0`` and ``t1`` (see
    :func:`.sampling.frame_range_for_times`); give at most one, the default is
    the whole video. Frames are ``sample_frame_indices(a, b, num_frames)``.
    ``decoder_threads`` caps FFmpeg's decoding threads (default: one per core;
    1 where several loaders already run side by side with a model).

    Example: a 30000/1001 fps video of 300 frames, ``num_frames=4`` and
    ``time_range=(1.0, 5.0)``: t=1.0 s shows frame 29 (29 * 1001/30000 =
    0.968 s <= 1.0 < 1.001 s), t=5.0 s shows frame 149, so the range is
    ``(29, 149)`` and the indices are ``29 + round([0, 40, 80, 120]) =
    [29, 69, 109, 149]`` with timestamps ``index * 1001/30000`` s.

    Raises :class:`FrameCountError`, :class:`MediaNotFoundError`,
    :class:`UnsupportedMediaError`, :class:`CorruptMediaError`,
    :class:`EmptyVideoError` or :class:`FrameRangeError`.
    """
    source = str(path)
    t = check_num_frames(num_frames, source)
    if decoder_threads is not None and (isinstance(decoder_threads, bool) or not isinstance(decoder_threads, int)
                                        or decoder_threads < 1):
        raise ConfigError(f"decoder_threads must be None or an integer >= 1, got {decoder_threads!r}")
    with _open(path) as container:
        stream = _video_stream(container, source, decoder_threads)
        info, index = _probe_open(container, stream, source)
        a, b = resolve_frame_range(frame_range, time_range, info.timestamps, info.duration, source)
        indices = sample_frame_indices(a, b, t)
        wanted = np.unique(indices)  # ascending, each frame decoded once
        if index.timed:
            decoder = _SeekingDecoder(container, stream, index, source, wanted)
            try:
                frames = _gather((decoder.frame(int(i)) for i in wanted), wanted, indices, source)
            finally:
                decoder.close()
    if not index.timed:
        decoded_by_index = _decode_sequential(path, wanted, source, decoder_threads)
        frames = _gather((decoded_by_index[int(i)] for i in wanted), wanted, indices, source)
    height, width = frames.shape[1:3]
    return VideoClip(
        frames=frames, indices=indices, timestamps=info.timestamps[indices], frame_range=(a, b), fps=info.fps,
        duration=info.duration, total_frames=info.num_frames, width=width, height=height, path=source,
    )
