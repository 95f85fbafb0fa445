"""The frame grid: sampled frames side by side with the answer's boxes and span marks.

Layout of the returned uint8 RGB image (``n`` frames shown, ``C`` columns)::

    +------------------------------------------+
    | banner: failure reason / caption (opt.)  |
    | +--------+ +--------+ +--------+         |   each cell: a label band
    | | label  | | label  | | label  |         |   ("#i  3.20 s  frame 96"),
    | |[frame ]| |[frame ]| |[frame ]|         |   then the frame (resized to
    | +--------+ +--------+ +--------+         |   the tile size) inside a
    | legend: prediction / ground truth / span |   border, amber when the
    +------------------------------------------+   frame is in a predicted span

Boxes are drawn on the tile with :func:`.draw.draw_box`, at the answer's pixel
box scaled by the tile size over the frame size (``tile_width / W``): with
the default ``tile_width=None`` frames keep their size and a box's edges
land exactly on the pixels its ``xyxy`` pixel box touches. Ground truth is
drawn first, the prediction over it.

Which frames are shown when there are more than ``max_frames``
(:func:`choose_frames`): the frames just outside each predicted span (so the
span's edges are visible), then the frames of the predicted track evenly
spread over it, then ground-truth track frames, frames inside the predicted
and ground-truth spans, and finally any frames, each group evenly spread
over what is left of the budget.
"""

from __future__ import annotations

import math

import numpy as np

from ..protocol.timebase import Timeline
from . import draw as D
from .marks import Marks, check_ground_truth, check_timeline, frame_times, read_marks


def _spread(pool: np.ndarray, n: int) -> np.ndarray:
    """``n`` entries of sorted ``pool`` evenly spread over it (all of it when it is not longer)."""
    if n <= 0:
        return pool[:0]
    if len(pool) <= n:
        return pool
    return pool[np.round(np.linspace(0, len(pool) - 1, n)).astype(np.int64)]


def choose_frames(num_frames: int, max_frames: int, marks: Marks, ground_truth: Marks | None = None) -> np.ndarray:
    """Sampled frame indices to show (ascending, at most ``max_frames``); see the module docstring.

    Example: 20 frames, a predicted span covering frames 5..10 with a box on
    each, ``max_frames=4`` -> frames 4 and 11 (just outside the span) and two
    track frames spread over 5..10 (5 and 10): ``[4, 5, 10, 11]``.
    """
    if max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    if num_frames <= max_frames:
        return np.arange(num_frames)
    times = frame_times(num_frames)
    everything = np.arange(num_frames)
    inside = marks.in_spans(times)
    # Frames outside every predicted span whose neighbour is inside one.
    neighbour_inside = np.zeros(num_frames, dtype=bool)
    neighbour_inside[1:] |= inside[:-1]
    neighbour_inside[:-1] |= inside[1:]
    just_outside = everything[~inside & neighbour_inside]

    def track_frames(m: Marks | None) -> np.ndarray:
        if m is None:
            return everything[:0]
        return np.unique(np.array([b.frame for b in m.boxes if b.frame is not None], dtype=np.int64))

    gt_inside = ground_truth.in_spans(times) if ground_truth is not None else np.zeros(num_frames, dtype=bool)
    pools = [
        _spread(just_outside, max(1, max_frames // 2)),
        track_frames(marks),
        track_frames(ground_truth),
        everything[inside],
        everything[gt_inside],
        everything,
    ]
    chosen = np.zeros(num_frames, dtype=bool)
    for pool in pools:
        left = max_frames - int(chosen.sum())
        if left <= 0:
            break
        pool = pool[~chosen[pool]]
        chosen[_spread(pool, left)] = True
    return everything[chosen]


def _frame_label(i: int, num_frames: int, timeline: Timeline | None, image: bool) -> str:
    if image:
        return "image"
    parts = [f"#{i}"]
    if timeline is not None and timeline.timestamps is not None:
        parts.append(f"{timeline.timestamps[i]:.2f} s")
    else:
        parts.append(f"t={frame_times(num_frames)[i]:.3f}")
    if timeline is not None and timeline.frame_ids is not None:
        parts.append(f"frame {timeline.frame_ids[i]}")
    return " | ".join(parts)


def _boxes_on(marks: Marks | None, frame: int):
    if marks is None:
        return []
    return [b for b in marks.boxes if b.frame is None or b.frame == frame]


def _draw_marks_on_tile(tile, boxes, color, sx: float, sy: float, line_width: int, font_size: int) -> None:
    th, tw = tile.shape[:2]
    # Frame pixels -> tile pixels; min() absorbs float error at the far edges.
    scaled = [(min(x1 * sx, tw), min(y1 * sy, th), min(x2 * sx, tw), min(y2 * sy, th)) for x1, y1, x2, y2 in (b.pixels for b in boxes)]
    for box in scaled:
        D.draw_box(tile, box, color, line_width)
    for b, box in zip(boxes, scaled):
        if not b.label:
            continue
        # The phrase goes just above the box, or inside its top edge when there is no room above.
        c1, r1, _, _ = D.box_edges(box, tw, th)
        _, text_h = D.text_size(b.label, font_size)
        y = r1 - text_h - 2 if r1 - text_h - 2 >= 0 else r1 + line_width + 2
        D.draw_text(tile, (c1 + 2, y), b.label, color=(255, 255, 255), size=font_size, background=color, pad=1)


def _banner_text(result, marks: Marks) -> tuple[str, tuple[int, int, int]]:
    if marks.failure is not None:
        raw = result.text if len(result.text) <= 200 else result.text[:200] + "..."
        return f"could not read the {marks.task} answer: {marks.failure}\nanswer text: {raw}", D.FAILURE_RGB
    if marks.text:
        prefix = "event" if marks.task == "elc" else "caption"
        return f"{prefix}: {marks.text}", D.TEXT_RGB
    return "", D.TEXT_RGB


def frame_grid(
    frames: np.ndarray,
    result,
    timeline: Timeline | None = None,
    ground_truth=None,
    max_frames: int = 16,
    columns: int = 4,
    *,
    tile_width: int | None = None,
    line_width: int | None = None,
) -> np.ndarray:
    """The sampled frames in a grid with the answer drawn on them -> uint8 RGB ``[H', W', 3]``.

    Args:
        frames: uint8 RGB ``[T, H, W, 3]`` (the sampled frames the answer's
            times and track keys refer to) or one image ``[H, W, 3]``.
        result: a typed answer of :mod:`llava_st.protocol.answers` or a ``ParseFailure``
            (then the frames are shown with the reason written above them).
        timeline: the frames' timeline (``T`` entries, ``W x H``); gives each
            frame's time in seconds and frame id. Without it frames are
            labelled with their normalised time ``i / (T - 1)``.
        ground_truth: an answer of the same kind, drawn in the ground-truth colour.
        max_frames: at most this many frames are shown (:func:`choose_frames`).
        columns: frames per row.
        tile_width: width in pixels of each shown frame (height keeps the
            aspect ratio); ``None`` keeps the frames' size.
        line_width: box outline thickness on the tile in pixels (default
            :func:`.draw.default_line_width` of the tile).

    Colours: prediction :data:`.draw.PREDICTION_RGB`, ground truth
    :data:`.draw.GROUND_TRUTH_RGB`, border of frames inside a predicted span
    :data:`.draw.SPAN_RGB`; a ground-truth span is a strip of the
    ground-truth colour under the frame's label.

    Raises:
        TypeError / ValueError naming the input: frames that are not uint8
        ``[T, H, W, 3]`` / ``[H, W, 3]``, a result or ground truth of the wrong
        type, a timeline for other frames, a box outside the frame, bad sizes.
    """
    image = isinstance(frames, np.ndarray) and frames.ndim == 3
    frames = D.check_frames(frames, "frames")
    num_frames, height, width = frames.shape[:3]
    if not isinstance(columns, int) or columns < 1:
        raise ValueError(f"columns must be an integer >= 1, got {columns!r}")
    if not isinstance(max_frames, int) or max_frames < 1:
        raise ValueError(f"max_frames must be an integer >= 1, got {max_frames!r}")
    check_timeline(timeline, num_frames, width, height)
    check_ground_truth(result, ground_truth)
    marks = read_marks(result, num_frames, width, height, "result")
    gt = read_marks(ground_truth, num_frames, width, height, "ground_truth") if ground_truth is not None else None

    if tile_width is None:
        tw, th = width, height
    else:
        if not isinstance(tile_width, int) or tile_width < 8:
            raise ValueError(f"tile_width must be an integer >= 8 pixels or None, got {tile_width!r}")
        tw, th = tile_width, max(1, int(round(height * tile_width / width)))
    sx, sy = tw / width, th / height
    lw = D.default_line_width(th, tw) if line_width is None else int(line_width)
    if lw < 1:
        raise ValueError(f"line_width must be >= 1 pixel, got {line_width!r}")
    font_size = D.default_font_size(th, tw)
    border = max(3, tw // 80)
    gap = max(4, tw // 60)
    cell_w = tw + 2 * border

    shown = choose_frames(num_frames, max_frames, marks, gt)
    times = frame_times(num_frames)
    event_of = [[j + 1 for j, s in enumerate(marks.spans) if s.start - 1e-9 <= t <= s.end + 1e-9] for t in times]
    labels = {}
    for i in shown:
        label = _frame_label(int(i), num_frames, timeline, image)
        if marks.task == "dvc" and event_of[i]:
            label += " | event " + ",".join(str(e) for e in event_of[i])
        labels[int(i)] = D.wrap_text(label, font_size, cell_w - 4)
    label_h = max(D.text_size(text, font_size)[1] for text in labels.values()) + 8
    cell_h = label_h + th + 2 * border
    n = len(shown)
    cols = min(columns, n)
    rows = math.ceil(n / cols)
    total_w = cols * cell_w + (cols + 1) * gap

    banner, banner_rgb = _banner_text(result, marks)
    banner = D.wrap_text(banner, font_size, total_w - 2 * gap) if banner else ""
    banner_h = D.text_size(banner, font_size)[1] + 2 * gap if banner else 0
    legend = []
    if marks.boxes:
        legend.append((D.PREDICTION_RGB, "prediction"))
    if gt is not None and (gt.boxes or gt.spans):
        legend.append((D.GROUND_TRUTH_RGB, "ground truth"))
    if marks.spans:
        legend.append((D.SPAN_RGB, "in predicted span"))
    legend_h = D.text_size("Ag", font_size)[1] + 2 * gap if legend else 0
    total_h = banner_h + rows * cell_h + (rows + 1) * gap + legend_h

    out = np.empty((total_h, total_w, 3), dtype=np.uint8)
    out[:] = D.PANEL_RGB
    if banner:
        D.draw_text(out, (gap, gap), banner, color=banner_rgb, size=font_size)

    in_pred = marks.in_spans(times)
    in_gt = gt.in_spans(times) if gt is not None else np.zeros(num_frames, dtype=bool)
    for slot, i in enumerate(shown):
        x0 = gap + (slot % cols) * (cell_w + gap)
        y0 = banner_h + gap + (slot // cols) * (cell_h + gap)
        cell = out[y0 : y0 + cell_h, x0 : x0 + cell_w]
        D.draw_text(cell[:label_h], (2, 3), labels[int(i)], size=font_size)
        if in_gt[i]:
            cell[label_h - 3 : label_h - 1] = D.GROUND_TRUTH_RGB
        if in_pred[i]:
            cell[label_h:] = D.SPAN_RGB
        tile = cell[label_h + border : label_h + border + th, border : border + tw]
        tile[:] = frames[i] if (tw, th) == (width, height) else _resize(frames[i], tw, th)
        _draw_marks_on_tile(tile, _boxes_on(gt, int(i)), D.GROUND_TRUTH_RGB, sx, sy, lw, font_size)
        _draw_marks_on_tile(tile, _boxes_on(marks, int(i)), D.PREDICTION_RGB, sx, sy, lw, font_size)

    if legend:
        x = gap
        y = total_h - legend_h + gap
        swatch = D.text_size("Ag", font_size)[1]
        for rgb, text in legend:
            out[y : y + swatch, x : x + swatch] = rgb
            x1, _, x2, _ = D.draw_text(out, (x + swatch + 4, y), text, size=font_size)
            x = x2 + 3 * gap
    return out


def _resize(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(frame).resize((width, height), Image.Resampling.BILINEAR))
