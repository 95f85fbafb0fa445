"""Loading the media of a request: the part of answering that runs in loader threads or processes.

:func:`load_request` decodes and samples a request's media and turns the
frames into the model's pixels. It needs no model and no tokenizer, only the
frame count and the vision settings, so it can run in a worker process (its
arguments and result pickle); the prompt is encoded afterwards, in the
model's process (:meth:`LlavaST.prepare <llava_st.infer.LlavaST.prepare>`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from ..config import VisionConfig
from ..errors import ProtocolError
from ..media.load import LoadedMedia, load_media
from ..processor.pixels import media_pixels
from ..protocol.results import TASKS


@dataclass
class Request:
    """One question about one media item; media options as in :func:`~llava_st.media.load_media`.

    ``elc_start``: the normalised start time given in an ELC prompt, so the
    answer's span is ``[start, end]``. ``num_frames``: frames to sample from a
    video (default: the model's ``num_frames``). ``constrained``: decode the
    answer under its task's grammar (:mod:`llava_st.infer.constrain`), so it
    always parses; needs ``task``. ``span``: the normalised span an SVG prompt
    gives (its track lists the frames inside it).
    """

    media: Any
    question: str
    task: str | None = None
    frame_range: tuple[int, int] | None = None
    time_range: tuple[float, float] | None = None
    fps: float | None = None
    kind: Literal["image", "video"] | None = None
    elc_start: float | None = None
    num_frames: int | None = None
    constrained: bool = False
    span: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.question, str) or not self.question.strip():
            raise ProtocolError("the question is empty")
        if self.task is not None and self.task not in TASKS:
            raise ProtocolError(f"unknown task {self.task!r}; expected one of {TASKS}")
        if self.constrained and self.task is None:
            raise ProtocolError("a constrained answer needs a task: its grammar is the task's answer grammar")
        if self.constrained and self.task == "svg" and self.span is None:
            raise ProtocolError("a constrained svg answer needs the span its prompt gives (span=(start, end))")
        if self.constrained and self.task == "elc" and self.elc_start is None:
            raise ProtocolError("a constrained elc answer needs the start its prompt gives (elc_start=...)")

    def describe(self) -> str:
        """The media as an error message names it."""
        m = self.media
        if isinstance(m, LoadedMedia):
            return m.source or f"loaded {m.kind}"
        return str(m) if isinstance(m, (str, os.PathLike)) else type(m).__name__


@dataclass(frozen=True)
class LoadedRequest:
    """A request with its media loaded: the sampled frames and the model's ``pixels`` (``[T, 3, S, S]``)."""

    request: Request
    media: LoadedMedia
    pixels: torch.Tensor


def load_request(req: Request, num_frames: int, vision: VisionConfig,
                 decoder_threads: int | None = None) -> LoadedRequest:
    """Load ``req``'s media (``req.num_frames`` or ``num_frames`` frames of a video) and compute its pixels.

    Each distinct frame is preprocessed once: a split shorter than ``T``
    samples some frames twice, and their pixels are copied, not recomputed.
    ``decoder_threads``: FFmpeg's threads for a video (None: one per core).
    """
    media = load_media(req.media, req.num_frames or num_frames, kind=req.kind, frame_range=req.frame_range,
                       time_range=req.time_range, fps=req.fps, decoder_threads=decoder_threads)
    ids = np.asarray(media.timeline.frame_ids if media.timeline.frame_ids is not None else range(len(media.frames)))
    _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    # one resize thread per loader: the loaders already run side by side
    pixels = media_pixels(media.frames[first], media.kind, vision, num_threads=1)
    if len(first) < len(ids):
        pixels = pixels[torch.from_numpy(inverse.reshape(-1))]
    return LoadedRequest(req, media, pixels)


__all__ = ["LoadedRequest", "Request", "load_request"]
