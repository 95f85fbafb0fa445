"""One picture of an answer: the frame grid above its timeline, as a matplotlib figure or a file.

:func:`figure` is what ``Answer.plot()`` returns; :func:`save_picture` writes
it in any format matplotlib writes, chosen by the file's extension (``.png``,
``.pdf``, ``.svg``, ``.jpg``, ...). The timeline is left out when neither the
answer nor the ground truth holds a time (REC, DGC, REG, a parse failure).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..protocol.timebase import Timeline
from .._optional import require
from ._files import check_output_path
from .draw import check_frames
from .grid import frame_grid
from .marks import check_ground_truth, check_result, read_marks
from .timeline import count_lanes, draw_timeline

#: Width in pixels of each frame in the figure's grid (frames are scaled to it).
FIGURE_TILE_WIDTH = 320
_DPI = 100.0
_LABEL_MARGIN_IN = 2.4  # left of the timeline, for its lane labels


def figure(frames: np.ndarray, result, timeline: Timeline | None = None, ground_truth=None):
    """The frame grid (:func:`.grid.frame_grid`) above the timeline (:func:`.timeline.draw_timeline`).

    Args:
        frames: uint8 RGB ``[T, H, W, 3]`` sampled frames, or one image ``[H, W, 3]``.
        result: a typed answer or a ``ParseFailure``.
        timeline: the frames' timeline (seconds, frame ids); optional.
        ground_truth: an answer of the same kind, drawn in the ground-truth colour.

    Returns:
        a ``matplotlib.figure.Figure`` (no pyplot state is touched). The grid
        is drawn with frames :data:`FIGURE_TILE_WIDTH` pixels wide at 100 dpi,
        one grid pixel per figure pixel; the timeline is left out when there
        is no time to show.
    """
    require("matplotlib")
    from matplotlib.figure import Figure

    check_result(result)
    check_ground_truth(result, ground_truth)
    check_frames(frames, "frames")
    grid = frame_grid(frames, result, timeline, ground_truth, tile_width=FIGURE_TILE_WIDTH)

    has_times = read_marks(result, name="result").has_times or (
        ground_truth is not None and read_marks(ground_truth, name="ground_truth").has_times
    )
    width_in = max(8.0, grid.shape[1] / _DPI)
    grid_h_in = grid.shape[0] / _DPI
    timeline_h_in = 1.0 + 0.45 * count_lanes(result, ground_truth) if has_times else 0.0
    height_in = grid_h_in + timeline_h_in
    fig = Figure(figsize=(width_in, height_in), dpi=_DPI)
    # Axes placed by hand (figure fractions): the grid fills the top at one pixel per pixel.
    top = fig.add_axes((0.0, timeline_h_in / height_in, 1.0, grid_h_in / height_in))
    top.imshow(grid, interpolation="nearest")
    top.set_axis_off()
    if has_times:
        bottom = fig.add_axes((
            _LABEL_MARGIN_IN / width_in, 0.55 / height_in,
            (width_in - _LABEL_MARGIN_IN - 0.3) / width_in, (timeline_h_in - 0.8) / height_in,
        ))
        draw_timeline(bottom, result, timeline, ground_truth)
    return fig


def save_picture(path: str | os.PathLike, frames: np.ndarray, result, timeline: Timeline | None = None, ground_truth=None) -> Path:
    """Write :func:`figure` to ``path`` in the format its extension names (``.png``, ``.pdf``, ``.svg``, ...).

    Returns the path. Raises ``ValueError`` for an extension matplotlib does
    not write, ``FileNotFoundError`` / ``PermissionError`` /
    ``IsADirectoryError`` for a path that cannot be written (checked before
    anything is drawn), and the errors of :func:`figure` for bad inputs.
    """
    require("matplotlib")
    from matplotlib.backend_bases import FigureCanvasBase

    p = check_output_path(path, "picture path")
    ext = p.suffix.lower().lstrip(".")
    formats = FigureCanvasBase.get_supported_filetypes()
    if ext not in formats:
        raise ValueError(
            f"picture path {p}: extension {p.suffix or '(none)'} is not a format matplotlib writes; "
            f"use one of {', '.join('.' + f for f in sorted(formats))}"
        )
    fig = figure(frames, result, timeline, ground_truth)
    try:
        fig.savefig(p, format=ext)
    except OSError as exc:
        raise OSError(f"cannot write picture {p}: {exc}") from exc
    return p
