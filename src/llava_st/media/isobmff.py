"""Display matrices from ISO-BMFF (mp4, mov, m4v, 3gp) headers, without decoding.

FFmpeg hands a video's display matrix to decoded frames, but PyAV offers no
way to read it from a stream before decoding. The probe needs it to report
the displayed size, and phones write it into the ``tkhd`` box of mp4/mov
files, so we read it there: ``moov/mvhd`` holds a movie matrix and each
``moov/trak/tkhd`` a track matrix; the track's effective matrix is
``tkhd x mvhd`` in 16.16 fixed point (2.30 for the third column), which is how
FFmpeg's mov demuxer combines them. Tracks appear in the order FFmpeg numbers
its streams.
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO, Iterator

_IDENTITY = (1 << 16, 0, 0, 0, 1 << 16, 0, 0, 0, 1 << 30)


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """``(type, payload_start, payload_end)`` of the boxes in ``data[start:end]``."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                return
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield kind, pos + header, pos + size
        pos += size


def _read_moov(f: BinaryIO, file_size: int) -> bytes | None:
    """The payload of the top-level ``moov`` box, skipping over media data."""
    pos = 0
    while pos + 8 <= file_size:
        f.seek(pos)
        head = f.read(16)
        if len(head) < 8:
            return None
        size, kind = struct.unpack_from(">I4s", head, 0)
        header = 8
        if size == 1:
            if len(head) < 16:
                return None
            (size,) = struct.unpack_from(">Q", head, 8)
            header = 16
        elif size == 0:
            size = file_size - pos
        if size < header:
            return None
        if kind == b"moov":
            f.seek(pos + header)
            return f.read(size - header)
        pos += size
    return None


def _matrix_at(data: bytes, payload_start: int, offset_v0: int, offset_v1: int) -> tuple[int, ...] | None:
    """The 9 big-endian int32 of a full box's matrix; offsets are past version/flags."""
    version = data[payload_start]
    offset = payload_start + 4 + (offset_v1 if version == 1 else offset_v0)
    if offset + 36 > len(data):
        return None
    return struct.unpack_from(">9i", data, offset)


def _multiply(track: tuple[int, ...], movie: tuple[int, ...]) -> tuple[int, ...]:
    """``track x movie`` in the fixed-point formats of the display matrix."""
    out = []
    for i in range(3):
        for j in range(3):
            total = 0
            for e in range(3):
                # Row e of ``movie`` is 16.16 for e < 2 and 2.30 for e == 2.
                total += (track[3 * i + e] * movie[3 * e + j]) >> (30 if e == 2 else 16)
            out.append(total)
    return tuple(out)


def track_display_matrices(path: str | os.PathLike) -> list[tuple[int, ...]] | None:
    """One display matrix ``(a, b, u, c, d, v, x, y, w)`` per ``trak``, in file order.

    ``None`` when the file has no readable ``moov`` box (not ISO-BMFF, or damaged).
    """
    with open(path, "rb") as f:
        moov = _read_moov(f, os.fstat(f.fileno()).st_size)
    if moov is None:
        return None
    movie = _IDENTITY
    matrices: list[tuple[int, ...]] = []
    for kind, start, end in _boxes(moov, 0, len(moov)):
        if kind == b"mvhd" and end > start:
            # v0: creation, modification, timescale, duration (4 bytes each); v1: 8, 8, 4, 8.
            # Then rate (4), volume (2), reserved (2 + 8) before the matrix.
            movie = _matrix_at(moov, start, 16 + 16, 28 + 16) or _IDENTITY
        elif kind == b"trak":
            track = _IDENTITY
            for sub, s_start, s_end in _boxes(moov, start, end):
                if sub == b"tkhd" and s_end > s_start:
                    # v0: creation, modification, track id, reserved, duration (4 each); v1: 8, 8, 4, 4, 8.
                    # Then reserved (8), layer, alternate group, volume, reserved (2 each).
                    track = _matrix_at(moov, s_start, 20 + 16, 32 + 16) or _IDENTITY
            matrices.append(track)
    return [_multiply(t, movie) for t in matrices]
