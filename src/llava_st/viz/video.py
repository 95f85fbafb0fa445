"""The annotated video: every frame of the source video with the answer's track drawn on it (PyAV).

The answer speaks about ``T`` sampled frames; the video has ``N`` frames.
The timeline ties them together: sampled frame ``i`` *is* source frame
``frame_ids[i]`` (presentation-order index in the file, as
:func:`llava_st.media.load_video` returns in ``indices``) or, when the
timeline has no frame ids, sits at ``timestamps[i]`` seconds from the file's
first frame. Positions on the source are measured in those units ("source
units" ``u``: frame numbers, else seconds).

What is drawn on source frame ``n`` at position ``u_n``, for the prediction
and (first, underneath) the ground truth:

* a track frame whose sampled frame is at ``u_k == u_n``: its box as answered;
* ``u_a < u_n < u_b`` between two consecutive track frames ``a`` and ``b``: the
  **linear interpolation** of their pixel boxes,
  ``box_a + (u_n - u_a) / (u_b - u_a) * (box_b - box_a)``, corner by corner
  (:func:`interpolate_track`), also across sampled frames the track skips;
* before the first or after the last track frame: nothing;
* outside the answer's span nothing at all: the span (``[start, end]``
  normalised, placed at sampled position ``t * (T - 1)`` and mapped to
  source units by linear interpolation between sampled frames) for STVG,
  TVG and an ELC parsed with its start; an ELC without its start is bounded
  by its end time only; SVG (no span in the answer) by its track.

With ``overlay=True`` each frame also gets its time (seconds and frame
number) and, where they apply, the caption, the DVC events, the ELC caption
or a parse failure's reason written in its top-left corner, and a thin
amber border while inside a predicted span.

Output: H.264 (libx264, ``yuv420p``) at constant frame rate ``fps``
(default: the source's average rate), one output frame per source frame.
4:2:0 needs even sizes, so a frame of odd width or height is padded by one
column/row repeating its last column/row. Frames are decoded and encoded
with PyAV only, one at a time; the file appears at ``out_path`` only when
complete (it is written next to it first).
"""

from __future__ import annotations

import math
import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..protocol.timebase import Timeline, interpolate_sampled
from .._optional import require
from ..media import probe_video
from . import draw as D
from ._files import check_output_path
from .marks import Marks, check_ground_truth, check_result, read_marks

#: Containers written with H.264 (by extension).
VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv")


def interpolate_track(anchor_u: np.ndarray, anchor_boxes: np.ndarray, frame_u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boxes of a track on every frame between its first and last anchor.

    Args:
        anchor_u: float ``[K]``, position of each track frame (non-decreasing).
        anchor_boxes: float ``[K, 4]``, pixel ``xyxy`` box of each track frame.
        frame_u: float ``[N]``, position of each frame to draw on.

    Returns:
        ``(rows [M], boxes [M, 4])``: frame ``rows[m]`` gets ``boxes[m]``. A
        frame at an anchor's position gets that anchor's box (every anchor's,
        when several track frames share the position); a frame strictly
        between anchors ``a`` and ``a + 1`` gets
        ``box_a + (u - u_a) / (u_{a+1} - u_a) * (box_{a+1} - box_a)``; a frame
        before the first or after the last anchor gets none. Rows ascend.

    Example: anchors at ``u = [10, 20]`` with boxes ``[0, 0, 10, 10]`` and
    ``[10, 0, 20, 10]``: frame ``u = 15`` gets ``[5, 0, 15, 10]``, frame ``u = 25`` none.
    """
    anchor_u = np.asarray(anchor_u, dtype=np.float64)
    anchor_boxes = np.asarray(anchor_boxes, dtype=np.float64).reshape(-1, 4)
    frame_u = np.asarray(frame_u, dtype=np.float64)
    k = len(anchor_u)
    if k == 0:
        return np.zeros(0, np.int64), np.zeros((0, 4))
    order = np.argsort(anchor_u, kind="stable")
    anchor_u, anchor_boxes = anchor_u[order], anchor_boxes[order]
    left = np.searchsorted(anchor_u, frame_u, side="left")  # [N]
    right = np.searchsorted(anchor_u, frame_u, side="right")  # [N]
    counts = right - left  # anchors exactly at each frame
    # Exact hits, expanded to one row per (frame, anchor) pair.
    hit_rows = np.repeat(np.arange(len(frame_u)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    hit_boxes = anchor_boxes[np.repeat(left, counts) + offsets]
    # Strictly between two anchors.
    between = np.flatnonzero((counts == 0) & (left > 0) & (left < k))
    a, b = left[between] - 1, left[between]
    w = ((frame_u[between] - anchor_u[a]) / (anchor_u[b] - anchor_u[a]))[:, None]  # [M2, 1]
    lerp = anchor_boxes[a] + w * (anchor_boxes[b] - anchor_boxes[a])
    rows = np.concatenate([hit_rows, between])
    boxes = np.concatenate([hit_boxes, lerp])
    order = np.argsort(rows, kind="stable")
    return rows[order], boxes[order]


def _sampled_positions(timeline: Timeline, info) -> tuple[np.ndarray, np.ndarray, bool]:
    """``(sampled_u [T], frame_u [N], by_frame_number)``: where the sampled and the source frames sit."""
    if timeline.frame_ids is not None:
        ids = np.asarray(timeline.frame_ids, dtype=np.float64)
        if ids.min() < 0 or ids.max() >= info.num_frames:
            raise ValueError(
                f"timeline names frames {int(ids.min())}..{int(ids.max())} but {info.path} has "
                f"{info.num_frames} frames (0..{info.num_frames - 1})"
            )
        if np.any(np.diff(ids) < 0):
            raise ValueError("timeline frame_ids must be non-decreasing (sampled frames in presentation order)")
        return ids, np.arange(info.num_frames, dtype=np.float64), True
    ts = np.asarray(timeline.timestamps, dtype=np.float64)
    last = float(info.timestamps[-1])
    if ts[0] < -1e-6 or ts[-1] > last + 1e-6:
        raise ValueError(
            f"timeline timestamps {ts[0]:.6g}..{ts[-1]:.6g} s lie outside {info.path} (0..{last:.6g} s, "
            "seconds from its first frame)"
        )
    return ts, np.asarray(info.timestamps, dtype=np.float64), False


def _allowed(marks: Marks, sampled_u: np.ndarray, frame_u: np.ndarray, tol: float) -> np.ndarray:
    """Frames where the answer may draw: inside a span, before an ELC end, or anywhere."""
    if marks.spans:
        inside = np.zeros(len(frame_u), dtype=bool)
        for s in marks.spans:
            a, b = interpolate_sampled(s.start, sampled_u), interpolate_sampled(s.end, sampled_u)
            inside |= (frame_u >= a - tol) & (frame_u <= b + tol)
        return inside
    if marks.end is not None:
        return frame_u <= interpolate_sampled(marks.end, sampled_u) + tol
    return np.ones(len(frame_u), dtype=bool)


def _per_frame(rows: np.ndarray, boxes: np.ndarray, n: int) -> list[np.ndarray]:
    starts = np.searchsorted(rows, np.arange(n), side="left")
    stops = np.searchsorted(rows, np.arange(n), side="right")
    return [boxes[a:b] for a, b in zip(starts, stops)]


def plan_boxes(
    marks: Marks, sampled_u: np.ndarray, frame_u: np.ndarray, tol: float
) -> list[np.ndarray]:
    """Pixel ``xyxy`` boxes ``[m, 4]`` to draw on each source frame (list of ``N``); see the module docstring."""
    track = [b for b in marks.boxes if b.frame is not None]
    if not track:
        return [np.zeros((0, 4))] * len(frame_u)
    anchor_u = sampled_u[[b.frame for b in track]]
    anchor_boxes = np.array([b.pixels for b in track], dtype=np.float64)
    rows, boxes = interpolate_track(anchor_u, anchor_boxes, frame_u)
    keep = _allowed(marks, sampled_u, frame_u, tol)[rows]
    return _per_frame(rows[keep], boxes[keep], len(frame_u))


def _overlay_lines(marks: Marks, u: float, sampled_u: np.ndarray, tol: float) -> list[str]:
    lines = []
    if marks.failure is not None:
        lines.append(f"could not read the {marks.task} answer: {marks.failure}")
    elif marks.task == "dvc":
        for j, s in enumerate(marks.spans):
            if interpolate_sampled(s.start, sampled_u) - tol <= u <= interpolate_sampled(s.end, sampled_u) + tol:
                lines.append(f"event {j + 1}: {s.caption}")
    elif marks.text:
        lines.append(marks.text)
    return lines


def _fps(fps, info) -> Fraction:
    if fps is None:
        if info.nominal_rate:
            return Fraction(info.nominal_rate)
        return Fraction(info.fps).limit_denominator(1_000_000)
    if isinstance(fps, bool) or not isinstance(fps, (int, float, Fraction)) or not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number of frames per second or None, got {fps!r}")
    return Fraction(fps).limit_denominator(1_000_000)


def write_annotated_video(
    video_path: str | os.PathLike,
    result,
    timeline: Timeline,
    out_path: str | os.PathLike,
    ground_truth=None,
    fps: float | None = None,
    *,
    line_width: int | None = None,
    overlay: bool = True,
    crf: int = 18,
) -> Path:
    """Write ``video_path`` again to ``out_path`` (H.264) with the answer's track drawn on it.

    On a sampled frame of the track the predicted box is drawn as answered;
    between two sampled frames of the track, the linear interpolation of
    their two boxes (by frame number, or by seconds when the timeline has no
    frame ids); nothing before the first / after the last track frame and
    nothing outside the predicted span. The ground truth (an answer of the
    same kind) is drawn the same way in its own colour. See the module
    docstring for the exact rules and the overlay.

    Args:
        video_path: the video the answer is about.
        result: a typed answer (STVG, SVG, ELC draw boxes; TVG, DVC, REG/TR
            draw only the overlay) or a ``ParseFailure`` (the reason is
            written on every frame). REC/DGC answers have no time and are refused.
        timeline: the sampled frames' timeline (frame ids and/or timestamps
            in seconds from the file's first frame; frame size = the video's
            displayed size).
        out_path: ``.mp4``, ``.mov`` or ``.mkv`` file to write.
        ground_truth: an answer of the same kind, drawn underneath.
        fps: output frame rate (default: the source's average rate).
        line_width: box outline thickness in pixels (default
            :func:`.draw.default_line_width` of the frame).
        overlay: write time and captions on the frames and border frames
            inside a predicted span.
        crf: x264 constant rate factor (0 best .. 51 worst).

    Returns:
        ``Path(out_path)``.

    Raises:
        TypeError / ValueError naming the input (result, ground_truth,
        timeline, fps, line_width, crf, out_path), media errors naming
        ``video_path``, ``FileNotFoundError`` / ``PermissionError`` for an
        output path that cannot be written.
    """
    check_result(result)
    check_ground_truth(result, ground_truth)
    if not isinstance(timeline, Timeline):
        raise TypeError(f"timeline must be a llava_st.protocol.answers.Timeline, got {type(timeline).__name__}")
    out = check_output_path(out_path, "out_path")
    if out.suffix.lower() not in VIDEO_EXTENSIONS:
        raise ValueError(f"out_path {out}: write the annotated video as one of {', '.join(VIDEO_EXTENSIONS)}")
    if Path(video_path).exists() and out.exists() and out.resolve() == Path(video_path).resolve():
        raise ValueError(f"out_path {out} is the source video itself; choose another file")
    if not isinstance(crf, int) or isinstance(crf, bool) or not 0 <= crf <= 51:
        raise ValueError(f"crf must be an integer in 0..51, got {crf!r}")
    if fps is not None:
        _fps(fps, None)  # reject a bad fps before decoding anything

    info = probe_video(video_path)
    if (timeline.width, timeline.height) != (info.width, info.height):
        raise ValueError(
            f"timeline is for {timeline.width}x{timeline.height} frames but {info.path} shows "
            f"{info.width}x{info.height} frames"
        )
    t = timeline.num_frames
    marks = read_marks(result, t, info.width, info.height, "result")
    gt = read_marks(ground_truth, t, info.width, info.height, "ground_truth") if ground_truth is not None else None
    if any(b.frame is None for b in marks.boxes):
        raise ValueError(
            f"result is a {type(result).__name__}: its boxes belong to no time, so they cannot be drawn on a "
            "video; use save_picture for it"
        )
    sampled_u, frame_u, by_number = _sampled_positions(timeline, info)
    tol = 1e-6 if by_number else 1e-9 * max(1.0, float(frame_u[-1]))
    pred_boxes = plan_boxes(marks, sampled_u, frame_u, tol)
    gt_boxes = plan_boxes(gt, sampled_u, frame_u, tol) if gt is not None else None
    in_span = _allowed(marks, sampled_u, frame_u, tol) if marks.spans else np.zeros(len(frame_u), dtype=bool)

    lw = D.default_line_width(info.height, info.width) if line_width is None else line_width
    if not isinstance(lw, int) or lw < 1:
        raise ValueError(f"line_width must be an integer >= 1 pixel, got {line_width!r}")
    font_size = D.default_font_size(info.height, info.width)
    _encode(video_path, out, info, fps, crf, lambda n, rgb: _annotate(
        rgb, n, pred_boxes[n], gt_boxes[n] if gt_boxes is not None else None, lw, overlay, in_span[n],
        _caption(n, info, marks, sampled_u, frame_u, tol), font_size,
    ))
    return out


def _caption(n, info, marks, sampled_u, frame_u, tol) -> str:
    head = f"{float(info.timestamps[n]):.2f} s  frame {n}"
    return "\n".join([head] + _overlay_lines(marks, float(frame_u[n]), sampled_u, tol))


def _annotate(rgb, n, pred, gt, lw, overlay, in_span, caption, font_size) -> np.ndarray:
    rgb = np.array(rgb, copy=True)
    if gt is not None:
        for box in gt:
            D.draw_box(rgb, box, D.GROUND_TRUTH_RGB, lw)
    for box in pred:
        D.draw_box(rgb, box, D.PREDICTION_RGB, lw)
    if overlay:
        if in_span:
            D.draw_border(rgb, D.SPAN_RGB, max(2, lw // 2))
        width = rgb.shape[1]
        text = D.wrap_text(caption, font_size, max(16, width - 8))
        D.draw_text(rgb, (4, 4), text, color=(255, 255, 255), size=font_size, background=(0, 0, 0))
    return rgb


def _encode(video_path, out: Path, info, fps, crf: int, annotate) -> None:
    """Decode every frame of ``video_path`` in presentation order, ``annotate(n, rgb)`` it, encode to ``out``."""
    av = require("av")
    from ..media import iter_video_frames

    partial = out.with_name(f".{out.stem}.partial{out.suffix}")
    try:
        with av.open(str(partial), mode="w") as dst:
            enc = dst.add_stream("libx264", rate=_fps(fps, info))
            enc.width = info.width + info.width % 2
            enc.height = info.height + info.height % 2
            enc.pix_fmt = "yuv420p"
            enc.options = {"crf": str(crf)}
            # frame n here is frame n of load_video (same stream, conversion and rotation)
            for n, rgb in enumerate(iter_video_frames(video_path, info)):
                drawn = annotate(n, rgb)
                if drawn.shape[:2] != (enc.height, enc.width):
                    drawn = np.pad(drawn, ((0, enc.height - drawn.shape[0]), (0, enc.width - drawn.shape[1]), (0, 0)), mode="edge")
                vf = av.VideoFrame.from_ndarray(drawn, format="rgb24")
                vf.pts = n
                dst.mux(enc.encode(vf))
            dst.mux(enc.encode(None))
        os.replace(partial, out)
    finally:
        if partial.exists():
            partial.unlink()
