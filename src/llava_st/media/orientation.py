"""Display orientation: turning stored frames upright.

Phones and cameras store video frames as the sensor saw them and record how
to show them in a *display matrix* (FFmpeg's ``AV_FRAME_DATA_DISPLAYMATRIX``,
the ISO/IEC 14496-12 ``tkhd`` matrix). The matrix ``(a, b, u, c, d, v, x, y, w)``
maps a stored pixel ``(p, q)`` (column, row; rows grow downwards) to the
displayed position ``(a*p + c*q + x, b*p + d*q + y)``. We support the eight
right-angle rotations and mirrors that real files carry; any other matrix
(a skew or a 30 degree turn) is refused rather than approximated.

:class:`Orientation` is that transform reduced to three booleans and applies
it to ``[..., H, W, C]`` arrays with views (no pixel loops).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import UnsupportedMediaError


@dataclass(frozen=True)
class Orientation:
    """Stored -> displayed transform: optional transpose, then optional flips.

    ``transpose`` swaps rows and columns; ``flip_rows`` then reverses the row
    order (upside down), ``flip_cols`` the column order (mirror). The identity
    is ``Orientation()``.

    Examples, by the signs of the matrix entries ``(a, b, c, d)``
    (``S`` a stored image)::

        ( 0, -1,  1,  0) -> Orientation(True, True, False):   S turned 90 deg counter-clockwise
        ( 0,  1, -1,  0) -> Orientation(True, False, True):   S turned 90 deg clockwise (phones)
        (-1,  0,  0, -1) -> Orientation(False, True, True):   S turned 180 deg
        (-1,  0,  0,  1) -> Orientation(False, False, True):  S mirrored left-right
    """

    transpose: bool = False
    flip_rows: bool = False
    flip_cols: bool = False

    @property
    def is_identity(self) -> bool:
        return not (self.transpose or self.flip_rows or self.flip_cols)

    @classmethod
    def from_display_matrix(cls, matrix, source: str) -> "Orientation":
        """From the 9 numbers ``(a, b, u, c, d, v, x, y, w)`` of a display matrix."""
        m = [int(v) for v in matrix]
        if len(m) != 9:
            raise UnsupportedMediaError(f"{source}: display matrix has {len(m)} entries, expected 9")
        a, b, c, d = m[0], m[1], m[3], m[4]
        if b == 0 and c == 0 and a != 0 and d != 0:
            # p' = a p, q' = d q: columns reversed when a < 0, rows when d < 0.
            return cls(transpose=False, flip_rows=d < 0, flip_cols=a < 0)
        if a == 0 and d == 0 and b != 0 and c != 0:
            # p' = c q, q' = b p: displayed row index comes from the stored column.
            return cls(transpose=True, flip_rows=b < 0, flip_cols=c < 0)
        raise UnsupportedMediaError(
            f"{source}: display matrix {m} is not a right-angle rotation or mirror; "
            "only the eight upright orientations are supported"
        )

    @property
    def mirrored(self) -> bool:
        """Whether the transform includes a mirror (its 2x2 matrix has determinant -1)."""
        return (self.transpose + self.flip_rows + self.flip_cols) % 2 == 1

    @property
    def rotation_degrees(self) -> int:
        """Counter-clockwise quarter turn (0, 90, 180, 270) of the transform.

        A mirrored transform is read as this turn followed by a left-right
        mirror, so ``Orientation(flip_cols=True)`` is ``0`` and mirrored."""
        turns = {
            (False, False, False): 0, (True, True, False): 90, (False, True, True): 180, (True, False, True): 270,
            (False, False, True): 0, (True, True, True): 90, (False, True, False): 180, (True, False, False): 270,
        }
        return turns[(self.transpose, self.flip_rows, self.flip_cols)]

    def displayed_size(self, width: int, height: int) -> tuple[int, int]:
        """``(width, height)`` on screen of a stored ``width x height`` frame."""
        return (height, width) if self.transpose else (width, height)

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """``pixels [..., H, W, C]`` stored -> displayed, as a contiguous array."""
        out = pixels
        if self.transpose:
            out = np.swapaxes(out, -3, -2)
        if self.flip_rows:
            out = out[..., ::-1, :, :]
        if self.flip_cols:
            out = out[..., :, ::-1, :]
        return np.ascontiguousarray(out)
