"""The high-level predictor: media + question in, structured answer out.

:class:`LlavaST` ties the pieces together: it loads media (:mod:`llava_st.media`),
builds the prompt (:mod:`llava_st.protocol.prompts`, :class:`~llava_st.processor.LlavaSTProcessor`),
generates (:meth:`LlavaSTModel.generate`) and reads the answer
(:mod:`llava_st.protocol.answers`) with the sampled frames' real timestamps and the
frame size.

Conventions, enforced:

* **times** given to the task helpers are seconds on the video's own clock
  (0 = its first frame); they must lie inside the sampled clip;
* **boxes** given to the helpers are ``[x1, y1, x2, y2]`` in pixels of the
  displayed frame; they must lie inside the frame, with ``x1 <= x2`` and
  ``y1 <= y2``;
* pass ``units="normalised"`` to give both as values in [0, 1] instead (the
  default, ``units="absolute"``, means seconds and pixels);
* answers carry both forms: normalised values and seconds / pixels.

Nothing is clamped: a box outside the frame or a time outside the video is
an error that names the value.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Sequence

import numpy as np
import torch

from ..protocol import answers as A
from ..protocol.timebase import OutOfRangeError, Timeline
from ..protocol import prompts
from ..protocol.coords import round3
from ..model.generate import GenerationConfig
from ..processor.pixels import media_pixels
from ..protocol.tokens import IMAGE_TAG, VIDEO_TAG

Units = Literal["absolute", "normalised"]
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


# ---------------------------------------------------------------------- media


@dataclass(frozen=True)
class LoadedMedia:
    """Media ready for the model: ``frames`` uint8 ``[T, H, W, 3]`` (``T = 1`` for an image),
    the ``timeline`` of the sampled frames, the source path when there is one and, for
    videos read from a file or folder, the :class:`~llava_st.media.VideoClip`."""

    kind: Literal["image", "video"]
    frames: np.ndarray
    timeline: Timeline
    source: str | None = None
    clip: Any = None


def load_media(
    source: Any,
    num_frames: int,
    *,
    kind: Literal["image", "video"] | None = None,
    frame_range: tuple[int, int] | None = None,
    time_range: tuple[float, float] | None = None,
    fps: float | None = None,
) -> LoadedMedia:
    """Read ``source`` into :class:`LoadedMedia`.

    ``source`` may be a path (image file by its suffix, a folder of frames, or
    any video container FFmpeg reads), a ``VideoClip``, a PIL image, a uint8
    array ``[H, W, 3]`` (image) or ``[T, H, W, 3]`` (video frames; ``fps`` gives
    their timestamps, else only frame positions are known), or an already
    loaded :class:`LoadedMedia`. ``kind`` forces image or video for a path.
    ``frame_range`` (inclusive frame indices) or ``time_range`` (seconds)
    restrict the sampled part of a video; ``fps`` is required for a folder.
    """
    from .. import media as M

    if isinstance(source, LoadedMedia):
        return source
    if isinstance(source, M.VideoClip):
        return _from_clip(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise M.MediaNotFoundError(f"media file not found: {path}")
        if path.is_dir():
            if fps is None:
                raise ValueError(f"{path} is a folder of frames: give its frame rate with fps=...")
            return _from_clip(M.load_frame_folder(path, num_frames, fps, frame_range=frame_range, time_range=time_range))
        as_image = kind == "image" or (kind is None and path.suffix.lower() in IMAGE_SUFFIXES)
        if as_image:
            if frame_range is not None or time_range is not None:
                raise ValueError(f"{path} is an image: frame_range/time_range apply to videos only")
            frame = M.load_image(path)
            return LoadedMedia("image", frame[None], Timeline.for_image(frame.shape[1], frame.shape[0]), str(path))
        return _from_clip(M.load_video(path, num_frames, frame_range=frame_range, time_range=time_range))
    if isinstance(source, np.ndarray) and source.ndim == 4:
        return _from_frames(source, num_frames, kind, frame_range, time_range, fps)
    if kind == "video":
        raise ValueError(f"kind='video' but the media is one image ({type(source).__name__})")
    if frame_range is not None or time_range is not None:
        raise ValueError("frame_range/time_range apply to videos only, and the media is one image")
    frame = M.load_image(source)
    return LoadedMedia("image", frame[None], Timeline.for_image(frame.shape[1], frame.shape[0]))


def _from_frames(frames: np.ndarray, num_frames: int, kind, frame_range, time_range, fps) -> LoadedMedia:
    """Sample ``num_frames`` of an array of video frames ``[N, H, W, 3]`` as a video file is sampled."""
    from ..media.sampling import resolve_frame_range, sample_frame_indices

    if kind == "image":
        raise ValueError(f"kind='image' but the array holds video frames {frames.shape}; give one frame [H, W, 3]")
    if frames.dtype != np.uint8 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise ValueError(f"video frames must be uint8 [T, H, W, 3] with T >= 1, got {frames.dtype} {frames.shape}")
    n, h, w, _ = frames.shape
    if time_range is not None and fps is None:
        raise ValueError("time_range on an array of frames needs their frame rate: pass fps=...")
    stamps = None if fps is None else np.arange(n) / float(fps)
    a, b = resolve_frame_range(frame_range, time_range, stamps if stamps is not None else np.zeros(n),
                               n / float(fps) if fps else 0.0, "the array of frames")
    idx = sample_frame_indices(a, b, num_frames)
    times = None if stamps is None else tuple(stamps[idx].tolist())
    return LoadedMedia("video", frames[idx], Timeline(w, h, timestamps=times, frame_ids=tuple(int(i) for i in idx)))


def _from_clip(clip) -> LoadedMedia:
    timeline = Timeline(clip.width, clip.height, timestamps=tuple(clip.timestamps.tolist()),
                          frame_ids=tuple(int(i) for i in clip.indices))
    return LoadedMedia("video", clip.frames, timeline, getattr(clip, "path", None), clip)


# ---------------------------------------------------------------------- answers


@dataclass
class Answer:
    """What the model said, read into structure.

    Attributes:
        text: the generated answer, bin tokens kept (``<TEMP-012>``).
        question: the question as asked (before the media tag and markup conversion).
        task: the task the answer was read as (``None``: a free question).
        result: the typed answer of :mod:`llava_st.protocol.answers` for ``task``
            (a :class:`~llava_st.protocol.answers.ParseFailure` when the text does not
            follow the task's grammar), or ``None`` for a free question.
        spans: every ``{s, e}`` span in the text (normalised and seconds).
        boxes: every box in the text (normalised and pixels, xyxy).
        track: the ``key: [box]`` pairs (each key's sampled frame, its time in seconds).
        events: spans with captions (DVC answers; ELC's event).
        media: the media the question was about (frames, timeline, source).
        num_tokens: tokens generated, the end-of-turn token included.
    """

    text: str
    question: str
    task: str | None
    result: Any
    spans: tuple[A.Span, ...]
    boxes: tuple[A.Box, ...]
    track: A.Track
    events: tuple[A.Event, ...]
    media: LoadedMedia
    num_tokens: int = 0
    failures: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """False when the answer does not follow its task's grammar."""
        return not (self.result is not None and isinstance(self.result, A.ParseFailure)) and not self.failures

    @property
    def timeline(self) -> Timeline:
        return self.media.timeline

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the ``llava-st ask --json`` schema): ``question``, ``answer`` (text),
        ``task``, ``ok``, ``media`` (kind, source, width, height, sampled frame ids and
        timestamps), ``spans`` [{start, end, start_s, end_s}], ``boxes`` [{xyxy, pixels}],
        ``track`` [{key, time, frame, frame_id, seconds, box: {xyxy, pixels}}],
        ``events`` [{span, caption}], ``result`` (typed answer or parse failure), ``num_tokens``."""
        tl = self.timeline
        return {
            "question": self.question,
            "answer": self.text,
            "task": self.task,
            "ok": self.ok,
            "media": {
                "kind": self.media.kind,
                "source": self.media.source,
                "width": tl.width,
                "height": tl.height,
                "frame_ids": list(tl.frame_ids) if tl.frame_ids is not None else None,
                "timestamps": list(tl.timestamps) if tl.timestamps is not None else None,
            },
            "spans": [_span_dict(s) for s in self.spans],
            "boxes": [_box_dict(b) for b in self.boxes],
            "track": [
                {"key": f.key, "time": f.time, "frame": f.frame, "frame_id": f.frame_id, "seconds": f.seconds,
                 "box": _box_dict(f.box)}
                for f in self.track.frames
            ],
            "events": [{"span": _span_dict(e.span), "caption": e.caption} for e in self.events],
            "result": None if self.result is None else self.result.to_dict(),
            "failures": list(self.failures),
            "num_tokens": self.num_tokens,
        }

    def plot(self, ground_truth: Any = None):
        """A matplotlib figure: the sampled frames with the boxes, and a timeline of the spans."""
        from .. import viz

        return viz.figure(self.media.frames, self._drawable(), self.timeline, ground_truth=ground_truth)

    def save(self, path: str | os.PathLike, ground_truth: Any = None) -> Path:
        """Write the answer: ``.json`` (:meth:`to_dict`), ``.mp4`` (the video with the track
        drawn on it; needs a video read from a file) or a picture (``.png``, ``.pdf``, ...)."""
        import json

        from .. import viz

        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".json":
            path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        elif suffix == ".mp4":
            if self.media.kind != "video" or self.media.source is None or not Path(self.media.source).is_file():
                raise ValueError(f"{path}: an annotated video needs a question about a video file")
            viz.write_annotated_video(self.media.source, self._drawable(), self.timeline, path, ground_truth=ground_truth)
        else:
            viz.save_picture(path, self.media.frames, self._drawable(), self.timeline, ground_truth=ground_truth)
        return path

    def _drawable(self):
        """The typed result to draw; for a free question, the track or the first box/span found."""
        if self.result is not None:
            return self.result
        if len(self.track):
            return A.SpatialGrounding(text=self.text, track=self.track)
        if self.boxes:
            return A.Grounding(text=self.text, box=self.boxes[0])
        if self.spans:
            return A.TemporalGrounding(text=self.text, span=self.spans[0])
        return A.Caption(text=self.text, caption=self.text)

    def __str__(self) -> str:
        return format_answer(self)


def _span_dict(s: A.Span) -> dict:
    return {"start": s.start, "end": s.end, "start_s": s.start_s, "end_s": s.end_s}


def _box_dict(b: A.Box) -> dict:
    return {"xyxy": list(b.xyxy), "pixels": list(b.pixels) if b.pixels is not None else None}


def read_answer(
    text: str, question: str, task: str | None, media: LoadedMedia, num_bins: A.Bins, num_tokens: int = 0,
    start: float | None = None,
) -> Answer:
    """Read generated text about ``media`` into an :class:`Answer` (never raises for a bad answer)."""
    tl = media.timeline
    failures = []
    spans = A.find_spans(text, task or "tvg", num_bins, tl)
    if isinstance(spans, A.ParseFailure):
        failures.append(spans.reason)
        spans = ()
    boxes = A.find_boxes(text, task or "rec", num_bins, tl)
    if isinstance(boxes, A.ParseFailure):
        failures.append(boxes.reason)
        boxes = ()
    track = A.find_track(text, task or "stvg", num_bins, tl)
    if isinstance(track, A.ParseFailure):
        failures.append(track.reason)
        track = A.Track()
    result = None
    events: tuple[A.Event, ...] = ()
    if task is not None:
        result = A.parse_answer(text, task, timeline=tl, num_bins=num_bins, start=start)
        if isinstance(result, A.DenseEvents):
            events = result.events
        elif isinstance(result, A.EventLocalization) and result.span is not None:
            events = (A.Event(result.span, result.caption),)
    return Answer(text=text, question=question, task=task, result=result, spans=tuple(spans), boxes=tuple(boxes),
                  track=track, events=events, media=media, num_tokens=num_tokens,
                  failures=tuple(failures) if task is None else ())


def format_answer(answer: Answer) -> str:
    """Human-readable text of an answer (what ``llava-st ask`` prints)."""
    lines = [answer.text.strip() or "(empty answer)"]
    if answer.result is not None and isinstance(answer.result, A.ParseFailure):
        lines.append(f"  (could not read it as {answer.task}: {answer.result.reason})")
    for f in answer.failures:
        lines.append(f"  (could not read: {f})")
    for s in answer.spans:
        when = f"{s.start_s:.2f}s - {s.end_s:.2f}s" if s.start_s is not None else "seconds unknown"
        lines.append(f"  span  {when}  (normalised {s.start:.3f} - {s.end:.3f})")
    for e in answer.events:
        lines.append(f"  event {_fmt_span(e.span)}: {e.caption}")
    track_boxes = {f.box for f in answer.track.frames}
    for b in answer.boxes:
        if b not in track_boxes:
            lines.append(f"  box   {_fmt_box(b)}")
    for f in answer.track.frames:
        t = f"{f.seconds:.2f}s" if f.seconds is not None else f"t={f.time:.3f}"
        lines.append(f"  track {t} (frame {f.frame_id if f.frame_id is not None else f.frame}): {_fmt_box(f.box)}")
    return "\n".join(lines)


def _fmt_span(s: A.Span) -> str:
    return f"{s.start_s:.2f}s - {s.end_s:.2f}s" if s.start_s is not None else f"{s.start:.3f} - {s.end:.3f}"


def _fmt_box(b: A.Box) -> str:
    if b.pixels is not None:
        return "[" + ", ".join(f"{v:.1f}" for v in b.pixels) + "] px"
    return "[" + ", ".join(f"{v:.3f}" for v in b.xyxy) + "]"


# ---------------------------------------------------------------------- requests


@dataclass
class Request:
    """One question about one media item; media options as in :func:`load_media`.

    ``elc_start``: the normalised start time given in an ELC prompt, so the
    answer's span is ``[start, end]``. ``num_frames``: frames to sample from a
    video (default: the model's ``num_frames``).
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

    def __post_init__(self) -> None:
        if not isinstance(self.question, str) or not self.question.strip():
            raise ValueError("the question is empty")
        if self.task is not None and self.task not in A.TASKS:
            raise ValueError(f"unknown task {self.task!r}; expected one of {A.TASKS}")


@dataclass(frozen=True)
class Prepared:
    """A request ready for the model: its media and the processor's encoding (:meth:`LlavaST.prepare`)."""

    request: Request
    media: LoadedMedia
    encoded: Any


@dataclass
class BatchStats:
    """Where the time of the last :meth:`LlavaST.ask_batch` went (seconds)."""

    total: float = 0.0
    waiting_for_media: float = 0.0
    model: float = 0.0
    generated_tokens: int = 0

    @property
    def wait_share(self) -> float:
        """Share of the run the model spent waiting for media to be decoded."""
        return self.waiting_for_media / self.total if self.total else 0.0


# ---------------------------------------------------------------------- predictor


class LlavaST:
    """A LLaVA-ST model ready to answer questions about videos and images.

    Example::

        st = LlavaST.from_pretrained("path/to/LLaVA-ST-Qwen2-7B", device="cuda", dtype="bfloat16")
        ans = st.ground_time("kitchen.mp4", "a person opens the fridge")
        ans.spans[0].start_s, ans.spans[0].end_s     # seconds
        st.track("kitchen.mp4", "the person in red").track.frames[0].box.pixels   # xyxy pixels
    """

    def __init__(self, model, processor, generation: GenerationConfig | None = None):
        self.model = model.eval()
        self.processor = processor
        self.config = model.config
        self.generation = generation or GenerationConfig(max_new_tokens=512)
        self.last_stats = BatchStats()

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | str = "float32",
        attn_implementation: str = "sdpa",
    ) -> "LlavaST":
        """Load a model folder in the release layout, or a named model of our registry
        (:func:`llava_st.zoo.model_path`). The folder holds the weights, ``config.json``
        and the tokenizer."""
        from ..model import LlavaSTModel
        from ..processor import LlavaSTProcessor
        from ..zoo import model_path

        folder = model_path(name_or_path)
        model = LlavaSTModel.from_pretrained(folder, device=device, dtype=dtype, attn_implementation=attn_implementation)
        processor = LlavaSTProcessor.from_pretrained(folder, config=model.config)
        return cls(model, processor)

    # -------------------------------------------------------------- asking
    @property
    def num_frames(self) -> int:
        return self.config.num_frames

    def load(self, media: Any, **options) -> LoadedMedia:
        """:func:`load_media` with this model's frame count."""
        return load_media(media, self.num_frames, **options)

    def ask(self, media: Any, question: str, *, task: str | None = None, frame_range=None, time_range=None,
            fps: float | None = None, kind=None, **generation) -> Answer:
        """Ask one question about one video or image.

        ``task`` (one of :data:`llava_st.protocol.answers.TASKS`) reads the answer with that
        task's grammar into ``Answer.result``; without it the answer's spans, boxes
        and track are still read. ``generation`` overrides :class:`GenerationConfig`
        fields (``max_new_tokens``, ``do_sample``, ``temperature``, ``top_p``, ``seed``).
        """
        req = Request(media, question, task=task, frame_range=frame_range, time_range=time_range, fps=fps, kind=kind)
        return self.ask_batch([req], batch_size=1, num_workers=0, **generation)[0]

    def ask_batch(
        self,
        requests: Iterable[Request | tuple],
        *,
        batch_size: int = 8,
        num_workers: int = 2,
        progress: Callable[[int], None] | None = None,
        **generation,
    ) -> list[Answer]:
        """Answer many questions with batched generation.

        ``requests`` are :class:`Request` objects or ``(media, question)`` /
        ``(media, question, task)`` tuples. Media are loaded and preprocessed by a
        pool of ``num_workers`` threads (0: in this thread) ahead of the model, so
        the model does not wait on video decoding; answers come back in request
        order. ``progress`` is called with the number of requests done after each
        batch. Timing of the run is kept in :attr:`last_stats`.
        """
        reqs = [r if isinstance(r, Request) else Request(*r) for r in requests]
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        cfg = self._generation_config(generation)
        stats = BatchStats()
        start = time.perf_counter()
        answers: list[Answer] = []
        pool = ThreadPoolExecutor(max_workers=num_workers) if num_workers > 0 else None
        try:
            window = max(2 * batch_size, num_workers)
            futures: list[Future | None] = [None] * len(reqs)

            def submit(i: int) -> None:
                if i < len(reqs) and futures[i] is None:
                    futures[i] = pool.submit(self.prepare, reqs[i]) if pool else None

            for i in range(min(window, len(reqs))):
                submit(i)
            for lo in range(0, len(reqs), batch_size):
                hi = min(lo + batch_size, len(reqs))
                prepared = []
                t0 = time.perf_counter()
                for i in range(lo, hi):
                    # a request no worker has started yet is prepared here rather than waited for
                    inline = not pool or futures[i].cancel()
                    prepared.append(self.prepare(reqs[i]) if inline else futures[i].result())
                    futures[i] = None
                if pool:
                    stats.waiting_for_media += time.perf_counter() - t0
                    for i in range(hi, min(hi + window, len(reqs))):
                        submit(i)
                t1 = time.perf_counter()
                batch_answers = self._answer(prepared, cfg)
                stats.model += time.perf_counter() - t1
                stats.generated_tokens += sum(a.num_tokens for a in batch_answers)
                answers.extend(batch_answers)
                if progress is not None:
                    progress(len(answers))
        finally:
            if pool:
                pool.shutdown(wait=False, cancel_futures=True)
        stats.total = time.perf_counter() - start
        if not pool:
            stats.waiting_for_media = stats.total - stats.model
        self.last_stats = stats
        return answers

    def _generation_config(self, overrides: dict) -> GenerationConfig:
        unknown = set(overrides) - set(GenerationConfig.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unknown generation arguments: {sorted(unknown)}")
        cfg = GenerationConfig(**{**self.generation.__dict__, **overrides})
        cfg.validate()
        return cfg

    def prepare(self, req: Request) -> Prepared:
        """Load the media and encode the prompt of one request (thread-safe: loading pools call it)."""
        media = load_media(req.media, req.num_frames or self.num_frames, kind=req.kind, frame_range=req.frame_range,
                           time_range=req.time_range, fps=req.fps)
        tag = IMAGE_TAG if media.kind == "image" else VIDEO_TAG
        prompt = req.question if (IMAGE_TAG in req.question or VIDEO_TAG in req.question) else f"{tag}\n{req.question}"
        # a split shorter than T samples frames more than once: preprocess each frame once
        ids = np.asarray(media.timeline.frame_ids if media.timeline.frame_ids is not None else range(len(media.frames)))
        _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
        # one resize thread per loading thread: the pool already runs loads side by side
        pixels = media_pixels(media.frames[first], media.kind, self.config.vision, num_threads=1)
        if len(first) < len(ids):
            pixels = pixels[torch.from_numpy(inverse.reshape(-1))]
        return Prepared(req, media, self.processor.encode(prompt, pixels))

    @torch.no_grad()
    def generate_texts(self, prepared: Sequence[Prepared], **generation) -> list[str]:
        """Answer texts (bin tokens kept) of prepared requests, as one batch, without reading them."""
        return [text for text, _ in self._generate(prepared, self._generation_config(generation))]

    def _generate(self, prepared: Sequence[Prepared], cfg: GenerationConfig) -> list[tuple[str, int]]:
        """``(text, tokens generated)`` per request; the end-of-turn token is not part of the text."""
        batch = self.processor.collate([p.encoded for p in prepared], padding_side="left")
        out = self.model.generate(
            batch["input_ids"], attention_mask=batch["attention_mask"], coord_values=batch["coord_values"],
            pixel_values=batch["pixel_values"], modalities=batch["modalities"], generation_config=cfg,
        )
        result = []
        for b in range(len(prepared)):
            n = int(out.lengths[b])
            ids = out.sequences[b, : n - int(out.stopped[b])].tolist()
            text = self.processor.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
            result.append((text, n))
        return result

    @torch.no_grad()
    def _answer(self, prepared: Sequence[Prepared], cfg: GenerationConfig) -> list[Answer]:
        nb = (self.config.coords.num_temporal_bins, self.config.coords.num_spatial_bins)
        return [
            read_answer(text, p.request.question, p.request.task, p.media, nb, num_tokens=n, start=p.request.elc_start)
            for p, (text, n) in zip(prepared, self._generate(prepared, cfg))
        ]

    # -------------------------------------------------------------- task helpers
    def _time(self, media: LoadedMedia, t: float, units: Units, what: str) -> float:
        if units == "normalised":
            if not 0.0 <= float(t) <= 1.0:
                raise OutOfRangeError(f"{what} {t} is outside [0, 1] (units='normalised')")
            return float(t)
        if units != "absolute":
            raise ValueError(f"units must be 'absolute' (seconds, pixels) or 'normalised', got {units!r}")
        if media.timeline.timestamps is None:
            raise ValueError(f"{what} is in seconds but the media carry no timestamps: pass fps=... or units='normalised'")
        return float(media.timeline.to_normalised(float(t)))

    def _span(self, media: LoadedMedia, start: float, end: float, units: Units) -> tuple[float, float]:
        """A span as the prompt will carry it (normalised, 3 decimals), checked to start before it ends."""
        s = round3(self._time(media, start, units, "start"))
        e = round3(self._time(media, end, units, "end"))
        if not s < e:
            raise ValueError(
                f"the span must start before it ends (at 3 decimals of the clip), got start={start}, end={end}"
            )
        return s, e

    def _box(self, media: LoadedMedia, box: Sequence[float], units: Units) -> tuple[float, ...]:
        if units == "normalised":
            # a unit frame: the same checks (inside [0, 1], x1 <= x2, y1 <= y2), no scaling
            return Timeline(1, 1, frame_ids=(0,)).box_to_normalised(box)
        if units != "absolute":
            raise ValueError(f"units must be 'absolute' (seconds, pixels) or 'normalised', got {units!r}")
        return media.timeline.box_to_normalised(box)

    def _video(self, video: Any, fps: float | None, what: str) -> LoadedMedia:
        media = load_media(video, self.num_frames, fps=fps)
        if media.kind != "video":
            raise ValueError(f"{what} needs a video, got an image")
        return media

    def ground_time(self, video: Any, query: str, *, fps: float | None = None, **generation) -> Answer:
        """TVG: when does ``query`` happen? ``Answer.result.span`` in seconds and normalised."""
        media = self._video(video, fps, "ground_time")
        return self.ask(media, prompts.tvg(_nonempty(query, "query")), task="tvg", **generation)

    def refer(self, image: Any, expression: str, **generation) -> Answer:
        """REC: where is ``expression`` in the image? ``Answer.result.box.pixels`` is xyxy pixels."""
        media = load_media(image, 1)
        if media.kind != "image":
            raise ValueError("refer needs an image, got a video")
        return self.ask(media, prompts.rec(_nonempty(expression, "expression")), task="rec", **generation)

    def track(self, video: Any, query: str, *, fps: float | None = None, **generation) -> Answer:
        """STVG: when ``query`` happens and the object's box on each sampled frame of that span."""
        media = self._video(video, fps, "track")
        return self.ask(media, prompts.stvg(_nonempty(query, "query")), task="stvg", **generation)

    def boxes_in_span(self, video: Any, query: str, start: float, end: float, *, units: Units = "absolute",
                      fps: float | None = None, **generation) -> Answer:
        """SVG: the box of ``query`` on each sampled frame between ``start`` and ``end``
        (seconds, or normalised with ``units="normalised"``)."""
        media = self._video(video, fps, "boxes_in_span")
        s, e = self._span(media, start, end, units)
        return self.ask(media, prompts.svg(_nonempty(query, "query"), s, e), task="svg", **generation)

    def caption_event(self, video: Any, start: float, box: Sequence[float], *, units: Units = "absolute",
                      fps: float | None = None, **generation) -> Answer:
        """ELC: from the object in ``box`` (xyxy pixels) at ``start`` (seconds), when the event
        ends, what it is, and the object's track."""
        media = self._video(video, fps, "caption_event")
        s = round3(self._time(media, start, units, "start"))
        b = self._box(media, box, units)
        req = Request(media, prompts.elc(s, b), task="elc", elc_start=s)
        return self.ask_batch([req], batch_size=1, num_workers=0, **generation)[0]

    def describe_region(self, media: Any, box: Sequence[float], *, units: Units = "absolute",
                        fps: float | None = None, **generation) -> Answer:
        """REG: describe what is inside ``box`` (xyxy pixels; normalised with ``units="normalised"``)."""
        loaded = load_media(media, self.num_frames, fps=fps)
        b = self._box(loaded, box, units)
        return self.ask(loaded, prompts.reg(b), task="reg", **generation)

    def describe_span(self, video: Any, start: float, end: float, *, units: Units = "absolute",
                      fps: float | None = None, **generation) -> Answer:
        """TR: what happens between ``start`` and ``end`` (seconds, or normalised)."""
        media = self._video(video, fps, "describe_span")
        s, e = self._span(media, start, end, units)
        return self.ask(media, prompts.tr(s, e), task="tr", **generation)

    def dense_captions(self, video: Any, *, fps: float | None = None, **generation) -> Answer:
        """DVC: every event of the video with its span (``Answer.events``)."""
        media = self._video(video, fps, "dense_captions")
        return self.ask(media, prompts.DVC, task="dvc", **generation)

    def grounded_caption(self, image: Any, **generation) -> Answer:
        """DGC: a description of the image with a box after each object it names."""
        media = load_media(image, 1)
        if media.kind != "image":
            raise ValueError("grounded_caption needs an image, got a video")
        return self.ask(media, prompts.DGC, task="dgc", **generation)


def _nonempty(text: str, what: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"the {what} is empty")
    return text
