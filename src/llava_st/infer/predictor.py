"""The high-level predictor: media + question in, structured answer out.

:class:`LlavaST` ties the pieces together: it loads media
(:func:`llava_st.media.load_media`), builds the prompt
(:mod:`llava_st.protocol.prompts`, :class:`~llava_st.processor.LlavaSTProcessor`),
generates (:meth:`LlavaSTModel.generate`) and reads the answer
(:func:`.answer.read_answer`) with the sampled frames' real timestamps and the
frame size. Batches go through the one prefetching loop of :mod:`.pipeline`.

Conventions, enforced:

* **times** given to the task helpers are seconds on the video's own clock
  (0 = its first frame); they must lie inside the sampled clip;
* **boxes** given to the helpers are ``[x1, y1, x2, y2]`` in pixels of the
  displayed frame; they must lie inside the frame, with ``x1 <= x2`` and
  ``y1 <= y2``;
* pass ``units="normalised"`` to give both as values in [0, 1] instead (the
  default, ``units="absolute"``, means seconds and pixels);
* answers carry both forms: normalised values and seconds / pixels.

Nothing is clamped: a box outside the frame or a time outside the video is a
:class:`~llava_st.errors.ProtocolError` that names the value; media of the
wrong kind are a :class:`~llava_st.media.MediaKindError`.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Literal, Sequence

import torch

from ..errors import ProtocolError
from ..media import MediaKindError
from ..media.load import LoadedMedia, load_media
from ..model.generate import GenerationConfig
from ..protocol import prompts
from ..protocol.coords import round3
from ..protocol.timebase import OutOfRangeError, Timeline
from ..protocol.tokens import IMAGE_TAG, VIDEO_TAG
from .answer import Answer, read_answer
from .loading import LoadedRequest, Request, load_request
from .pipeline import BatchError, BatchStats, Prefetcher, process_pool, run_batches

Units = Literal["absolute", "normalised"]


@dataclass(frozen=True)
class Prepared:
    """A request ready for the model: its media and the processor's encoding (:meth:`LlavaST.prepare`)."""

    request: Request
    media: LoadedMedia
    encoded: Any


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
        self._loader_processes: dict[int, ProcessPoolExecutor] = {}  # kept warm between calls
        self._grammar_program = None  # the task grammars compiled for this tokenizer, on first use

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | str = "float32",
        attn_implementation: str = "sdpa",
        revision: str | None = None,
    ) -> "LlavaST":
        """Load a model: a folder in the release layout, a model shipped with the package, or a
        Hugging Face Hub repository id (``org/name``, ``org/name@revision`` or ``revision=``),
        resolved by :func:`llava_st.zoo.model_path` (``HF_HUB_OFFLINE=1``: from the Hub cache
        only). The folder holds the weights, ``config.json`` and the tokenizer."""
        from ..model import LlavaSTModel
        from ..processor import LlavaSTProcessor
        from ..zoo import model_path

        folder = model_path(name_or_path, revision=revision)
        model = LlavaSTModel.from_pretrained(folder, device=device, dtype=dtype, attn_implementation=attn_implementation)
        processor = LlavaSTProcessor.from_pretrained(folder, config=model.config)
        return cls(model, processor)

    # -------------------------------------------------------------- asking
    @property
    def num_frames(self) -> int:
        """``T``, the frames this model samples per video (its config's ``num_frames``)."""
        return self.config.num_frames

    def load(self, media: Any, **options) -> LoadedMedia:
        """:func:`~llava_st.media.load_media` with this model's frame count."""
        return load_media(media, self.num_frames, **options)

    def ask(self, media: Any, question: str, *, task: str | None = None, frame_range=None, time_range=None,
            fps: float | None = None, kind=None, num_frames: int | None = None, constrained: bool = False,
            **generation) -> Answer:
        """Ask one question about one video or image.

        ``task`` (one of :data:`llava_st.protocol.answers.TASKS`) reads the answer with that
        task's grammar into ``Answer.result``; without it the answer's spans, boxes
        and track are still read. ``constrained=True`` (with a ``task``) also decodes
        under the task's answer grammar, so the answer always parses (the task
        helpers do this by default); a free question is never constrained.
        ``generation`` overrides :class:`GenerationConfig` fields (``max_new_tokens``,
        ``do_sample``, ``temperature``, ``top_p``, ``seed``, ``decoder``).
        A media file that cannot be loaded raises its own :class:`~llava_st.media.MediaError`.
        """
        return self.ask_request(Request(media, question, task=task, frame_range=frame_range, time_range=time_range,
                                        fps=fps, kind=kind, num_frames=num_frames, constrained=constrained),
                                **generation)

    def ask_request(self, req: Request, **generation) -> Answer:
        """:meth:`ask` with the question and its media options given as a :class:`Request`."""
        try:
            return self.ask_batch([req], batch_size=1, num_workers=0, **generation)[0]
        except BatchError as exc:
            raise exc.failures[0] from None  # one request: its own error says it all

    def ask_batch(
        self,
        requests: Iterable[Request | tuple],
        *,
        batch_size: int = 8,
        num_workers: int = 2,
        processes: bool = False,
        progress: Callable[[int], None] | None = None,
        **generation,
    ) -> list[Answer]:
        """Answer many questions with batched generation.

        ``requests`` are :class:`Request` objects or ``(media, question)`` /
        ``(media, question, task)`` tuples. Media are loaded and preprocessed by a
        pool of ``num_workers`` threads (0: in this thread; worker processes with
        ``processes=True``, see :meth:`loader`) one batch ahead of the model
        (:func:`.pipeline.run_batches`), so the model does not wait on video
        decoding; answers come back in request order. ``progress`` is called with
        the number of requests done after each batch. Timing of the run is kept in
        :attr:`last_stats`.

        Raises :class:`~llava_st.infer.pipeline.BatchError` when some media could
        not be loaded, after every other request was answered: its ``results``
        hold those answers (``None`` for the failed ones) and its message names
        each failed request.
        """
        reqs = [r if isinstance(r, Request) else Request(*r) for r in requests]
        cfg = self._generation_config(generation)
        counts = [0, 0]  # model calls and forced tokens of this run
        try:
            answers, stats = run_batches(
                reqs, self._load_function(pipelined=num_workers > 0), lambda prepared: self._answer(prepared, cfg, counts),
                batch_size=batch_size,
                num_workers=num_workers, finish=self._encode, pool=self._process_pool(num_workers) if processes else None,
                describe=lambda i, r: f"request {i} ({r.describe()})", progress=progress,
            )
        except BatchError as exc:
            stats = exc.stats or BatchStats()
            stats.generated_tokens = sum(a.num_tokens for a in exc.results if a is not None)
            stats.model_calls, stats.forced_tokens = counts
            self.last_stats = stats
            raise
        stats.generated_tokens = sum(a.num_tokens for a in answers)
        stats.model_calls, stats.forced_tokens = counts
        self.last_stats = stats
        return answers

    def _generation_config(self, overrides: dict) -> GenerationConfig:
        unknown = set(overrides) - set(GenerationConfig.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unknown generation arguments: {sorted(unknown)}")
        cfg = GenerationConfig(**{**self.generation.__dict__, **overrides})
        cfg.validate()
        return cfg

    def prepare(self, req: Request, *, decoder_threads: int | None = None) -> Prepared:
        """Load the media and encode the prompt of one request (thread-safe).

        ``decoder_threads`` caps FFmpeg's threads for a video (None: one per core).
        """
        return self._encode(load_request(req, self.num_frames, self.config.vision, decoder_threads))

    def _encode(self, loaded: LoadedRequest) -> Prepared:
        """Encode the prompt of a request whose media are loaded (runs in the model's process)."""
        req = loaded.request
        tag = IMAGE_TAG if loaded.media.kind == "image" else VIDEO_TAG
        prompt = req.question if (IMAGE_TAG in req.question or VIDEO_TAG in req.question) else f"{tag}\n{req.question}"
        return Prepared(req, loaded.media, self.processor.encode(prompt, loaded.pixels))

    def loader(self, num_workers: int = 2, processes: bool = False) -> Prefetcher:
        """A :class:`~.pipeline.Prefetcher` that prepares this model's requests.

        With ``processes=True`` media load in ``num_workers`` worker processes,
        so decoding runs beside generation instead of sharing the interpreter
        lock with it: use it for long or high-resolution videos. The processes
        start on first use (~1-2 s) and stay up for later calls until
        :meth:`close`. Threads (the default) start at once and suit images and
        short clips.
        """
        pool = self._process_pool(num_workers) if processes else None
        return Prefetcher(self._load_function(pipelined=num_workers > 0), num_workers, finish=self._encode, pool=pool)

    def _process_pool(self, num_workers: int) -> ProcessPoolExecutor | None:
        """This model's loader processes, started on first use and kept until :meth:`close`."""
        if num_workers < 1:
            return None
        if num_workers not in self._loader_processes:
            self._loader_processes[num_workers] = process_pool(num_workers)
        return self._loader_processes[num_workers]

    def close(self) -> None:
        """Stop the loader processes (if any were started); the model stays usable."""
        for pool in self._loader_processes.values():
            pool.shutdown(wait=True, cancel_futures=True)
        self._loader_processes.clear()

    def _load_function(self, pipelined: bool) -> Callable[[Request], LoadedRequest]:
        """:func:`.loading.load_request` bound to this model's settings (picklable, for loader processes).

        Loaders that run beside the model (``pipelined``) decode with one thread
        each: the cores go to the model and to the other loaders, rather than
        to decoder threads that would all compete for them.
        """
        return functools.partial(load_request, num_frames=self.num_frames, vision=self.config.vision,
                                 decoder_threads=1 if pipelined else None)

    @torch.no_grad()
    def generate_texts(self, prepared: Sequence[Prepared], **generation) -> list[str]:
        """Answer texts (bin tokens kept) of prepared requests, as one batch, without reading them."""
        return [text for text, _ in self._generate(prepared, self._generation_config(generation))]

    def _generate(self, prepared: Sequence[Prepared], cfg: GenerationConfig,
                  counts: list[int] | None = None) -> list[tuple[str, int]]:
        """``(text, tokens generated)`` per request; the end-of-turn token is not part of the text.
        ``counts``: model calls and forced tokens are added to it."""
        batch = self.processor.collate([p.encoded for p in prepared], padding_side="left")
        out = self.model.generate(
            batch["input_ids"], attention_mask=batch["attention_mask"], coord_values=batch["coord_values"],
            pixel_values=batch["pixel_values"], modalities=batch["modalities"], generation_config=cfg,
            constraint=self._constraint(prepared, cfg),
        )
        if counts is not None:
            counts[0] += out.model_calls
            counts[1] += int(out.forced.sum()) if out.forced is not None else 0
        result = []
        for b in range(len(prepared)):
            n = int(out.lengths[b])
            ids = out.sequences[b, : n - int(out.stopped[b])].tolist()
            text = self.processor.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
            result.append((text, n))
        return result

    def grammar_program(self):
        """The task answer grammars compiled for this model's tokenizer (:mod:`.constrain`), built once."""
        if self._grammar_program is None:
            from .constrain import GrammarCompiler

            ids = self.config.token_ids
            eos = ids.eos if ids.eos is not None else self.config.text.eos_token_id
            self._grammar_program = GrammarCompiler(self.processor.tokenizer, self.config.text.vocab_size,
                                                    self.config.coords.bins, eos).compile()
        return self._grammar_program

    def _constraint(self, prepared: Sequence[Prepared], cfg: GenerationConfig):
        """The grammar state of a batch, or None when no request in it is constrained."""
        if not any(p.request.constrained for p in prepared):
            return None
        from .constrain import ConstraintRow, grammar_state

        rows = [
            ConstraintRow(p.request.task, num_frames=len(p.media.frames), span=p.request.span, start=p.request.elc_start)
            if p.request.constrained else ConstraintRow(None)
            for p in prepared
        ]
        return grammar_state(self.grammar_program(), rows, self.config.coords.bins, eos_ids=cfg.eos_token_ids or ())

    @torch.no_grad()
    def _answer(self, prepared: Sequence[Prepared], cfg: GenerationConfig, counts: list[int] | None = None) -> list[Answer]:
        nb = self.config.coords.bins
        return [
            read_answer(text, p.request.question, p.request.task, p.media, nb, num_tokens=n, start=p.request.elc_start)
            for p, (text, n) in zip(prepared, self._generate(prepared, cfg, counts))
        ]

    # -------------------------------------------------------------- task helpers
    def _time(self, media: LoadedMedia, t: float, units: Units, what: str) -> float:
        if units == "normalised":
            if not 0.0 <= float(t) <= 1.0:
                raise OutOfRangeError(f"{what} {t} is outside [0, 1] (units='normalised')")
            return float(t)
        _check_units(units)
        if media.timeline.timestamps is None:
            raise ProtocolError(f"{what} is in seconds but the media carry no timestamps: pass fps=... or units='normalised'")
        return float(media.timeline.to_normalised(float(t)))

    def _span(self, media: LoadedMedia, start: float, end: float, units: Units) -> tuple[float, float]:
        """A span as the prompt will carry it (normalised, 3 decimals), checked to start before it ends."""
        s = round3(self._time(media, start, units, "start"))
        e = round3(self._time(media, end, units, "end"))
        if not s < e:
            raise ProtocolError(
                f"the span must start before it ends (at 3 decimals of the clip), got start={start}, end={end}"
            )
        return s, e

    def _box(self, media: LoadedMedia, box: Sequence[float], units: Units) -> tuple[float, ...]:
        if units == "normalised":
            # a unit frame: the same checks (inside [0, 1], x1 <= x2, y1 <= y2), no scaling
            return Timeline(1, 1, frame_ids=(0,)).box_to_normalised(box)
        _check_units(units)
        return media.timeline.box_to_normalised(box)

    def _media(self, source: Any, kind: Literal["image", "video"], what: str, fps: float | None = None) -> LoadedMedia:
        media = load_media(source, self.num_frames if kind == "video" else 1, fps=fps)
        if media.kind != kind:
            raise MediaKindError(f"{what} needs {'a video' if kind == 'video' else 'an image'}, got {_an(media.kind)}")
        return media

    # Every task helper decodes under its task's answer grammar, so the answer always parses
    # (llava_st.infer.constrain); pass constrained=False for the model's unconstrained answer.
    def ground_time(self, video: Any, query: str, *, fps: float | None = None, constrained: bool = True,
                    **generation) -> Answer:
        """TVG: when does ``query`` happen? ``Answer.result.span`` in seconds and normalised."""
        media = self._media(video, "video", "ground_time", fps)
        return self.ask(media, prompts.tvg(_nonempty(query, "query")), task="tvg", constrained=constrained, **generation)

    def refer(self, image: Any, expression: str, *, constrained: bool = True, **generation) -> Answer:
        """REC: where is ``expression`` in the image? ``Answer.result.box.pixels`` is xyxy pixels."""
        media = self._media(image, "image", "refer")
        return self.ask(media, prompts.rec(_nonempty(expression, "expression")), task="rec", constrained=constrained,
                        **generation)

    def track(self, video: Any, query: str, *, fps: float | None = None, constrained: bool = True,
              **generation) -> Answer:
        """STVG: when ``query`` happens and the object's box on each sampled frame of that span."""
        media = self._media(video, "video", "track", fps)
        return self.ask(media, prompts.stvg(_nonempty(query, "query")), task="stvg", constrained=constrained,
                        **generation)

    def boxes_in_span(self, video: Any, query: str, start: float, end: float, *, units: Units = "absolute",
                      fps: float | None = None, constrained: bool = True, **generation) -> Answer:
        """SVG: the box of ``query`` on each sampled frame between ``start`` and ``end``
        (seconds, or normalised with ``units="normalised"``)."""
        media = self._media(video, "video", "boxes_in_span", fps)
        s, e = self._span(media, start, end, units)
        req = Request(media, prompts.svg(_nonempty(query, "query"), s, e), task="svg", constrained=constrained, span=(s, e))
        return self.ask_request(req, **generation)

    def caption_event(self, video: Any, start: float, box: Sequence[float], *, units: Units = "absolute",
                      fps: float | None = None, constrained: bool = True, **generation) -> Answer:
        """ELC: from the object in ``box`` (xyxy pixels) at ``start`` (seconds), when the event
        ends, what it is, and the object's track."""
        media = self._media(video, "video", "caption_event", fps)
        s = round3(self._time(media, start, units, "start"))
        b = self._box(media, box, units)
        req = Request(media, prompts.elc(s, b), task="elc", elc_start=s, constrained=constrained)
        return self.ask_request(req, **generation)

    def describe_region(self, media: Any, box: Sequence[float], *, units: Units = "absolute",
                        fps: float | None = None, constrained: bool = True, **generation) -> Answer:
        """REG: describe what is inside ``box`` (xyxy pixels; normalised with ``units="normalised"``)."""
        loaded = load_media(media, self.num_frames, fps=fps)
        b = self._box(loaded, box, units)
        return self.ask(loaded, prompts.reg(b), task="reg", constrained=constrained, **generation)

    def describe_span(self, video: Any, start: float, end: float, *, units: Units = "absolute",
                      fps: float | None = None, constrained: bool = True, **generation) -> Answer:
        """TR: what happens between ``start`` and ``end`` (seconds, or normalised)."""
        media = self._media(video, "video", "describe_span", fps)
        s, e = self._span(media, start, end, units)
        return self.ask(media, prompts.tr(s, e), task="tr", constrained=constrained, **generation)

    def dense_captions(self, video: Any, *, fps: float | None = None, constrained: bool = True,
                       **generation) -> Answer:
        """DVC: every event of the video with its span (``Answer.events``)."""
        media = self._media(video, "video", "dense_captions", fps)
        return self.ask(media, prompts.DVC, task="dvc", constrained=constrained, **generation)

    def grounded_caption(self, image: Any, *, constrained: bool = True, **generation) -> Answer:
        """DGC: a description of the image with a box after each object it names."""
        media = self._media(image, "image", "grounded_caption")
        return self.ask(media, prompts.DGC, task="dgc", constrained=constrained, **generation)


def _check_units(units: str) -> None:
    if units not in ("absolute", "normalised"):
        raise ProtocolError(f"units must be 'absolute' (seconds, pixels) or 'normalised', got {units!r}")


def _an(kind: str) -> str:
    return "an image" if kind == "image" else "a video"


def _nonempty(text: str, what: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ProtocolError(f"the {what} is empty")
    return text


__all__ = ["LlavaST", "Prepared", "Request", "Units"]
