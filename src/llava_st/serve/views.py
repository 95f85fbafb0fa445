"""The pictures of one answer for the web page, made with :mod:`llava_st.viz`.

:func:`answer_views` turns an :class:`~llava_st.infer.Answer` into what the
page shows: the text (:func:`~llava_st.infer.format_answer`), its JSON, the
sampled frames with the boxes (:func:`llava_st.viz.frame_grid`), the
timeline (:func:`llava_st.viz.timeline_figure`, for a video) and the
annotated video (:func:`llava_st.viz.write_annotated_video`, for a question
about a video file). Needs matplotlib and PyAV (extra ``viz``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..infer.answer import Answer, format_answer


@dataclass
class AnswerViews:
    """What the page shows of an answer: ``frames`` and ``timeline`` are uint8 RGB ``[H, W, 3]``
    pictures (``timeline`` is ``None`` for an image), ``video`` the annotated video (``None``
    for an image)."""

    text: str
    json: dict[str, Any]
    frames: np.ndarray
    timeline: np.ndarray | None
    video: Path | None


def figure_pixels(fig) -> np.ndarray:
    """A matplotlib figure drawn to uint8 RGB ``[H, W, 3]``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def answer_views(answer: Answer, out_dir: Path) -> AnswerViews:
    """The views of ``answer``; the annotated video is written into ``out_dir``."""
    from .. import viz

    drawn = answer._drawable()  # what Answer.plot()/save() draw: the task's result, or what a free answer holds
    frames = viz.frame_grid(answer.media.frames, drawn, answer.timeline)
    timeline = video = None
    if answer.media.kind == "video":
        timeline = figure_pixels(viz.timeline_figure(drawn, answer.timeline))
        if answer.media.source is not None and Path(answer.media.source).is_file():
            video = answer.save(Path(out_dir) / "annotated.mp4")
    return AnswerViews(format_answer(answer), answer.to_dict(), frames, timeline, video)


__all__ = ["AnswerViews", "answer_views", "figure_pixels"]
