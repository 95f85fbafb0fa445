"""A request's task and arguments -> the :class:`~llava_st.infer.Request` the model answers.

:data:`TASKS` is the table of the tasks a request can ask by name, with the
media each needs and its arguments; :func:`build_request` writes the prompt
exactly as the task helpers of :class:`~llava_st.infer.LlavaST` write it
(``ground_time``, ``track``, ``refer``, ``caption_event`` ...), from media
already loaded, so that requests can be batched: a helper answers one
request at a time, the server many. ``tests/serve/test_api.py`` checks
that both send the same prompt.

Conventions are the helpers' (:mod:`llava_st.infer.predictor`): times are
seconds on the video's own clock and boxes ``[x1, y1, x2, y2]`` pixels of
the displayed frame, both inside the sampled clip; ``units="normalised"``
gives both in [0, 1]. Nothing is clamped: a value outside is a
:class:`~llava_st.errors.ProtocolError` naming it (HTTP 422).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from ..errors import ProtocolError
from ..infer.loading import Request
from ..media.errors import MediaKindError
from ..media.load import LoadedMedia
from ..protocol import prompts
from ..protocol.coords import round3
from ..protocol.timebase import OutOfRangeError, Timeline
from .params import AskParams


@dataclass(frozen=True)
class Task:
    """A task asked by name: the media it needs (``None``: either), its arguments, the helper it mirrors."""

    name: str
    media: Literal["image", "video"] | None
    arguments: tuple[str, ...]
    helper: str
    description: str


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("tvg", "video", ("query",), "ground_time", "when does `query` happen: a span"),
    Task("stvg", "video", ("query",), "track", "when and where: a span and a box on each sampled frame in it"),
    Task("svg", "video", ("query", "start", "end"), "boxes_in_span", "a box of `query` on each frame of [start, end]"),
    Task("elc", "video", ("start", "box"), "caption_event", "from the object in `box` at `start`: when the event "
         "ends, what it is, and the object's track"),
    Task("tr", "video", ("start", "end"), "describe_span", "what happens between `start` and `end`"),
    Task("dvc", "video", (), "dense_captions", "every event of the video with its span"),
    Task("rec", "image", ("expression",), "refer", "where is `expression`: a box"),
    Task("reg", None, ("box",), "describe_region", "what is inside `box`"),
    Task("dgc", "image", (), "grounded_caption", "a description with a box after each object it names"),
)}

#: The coordinate conventions of requests and answers (``GET /v1/model``).
CONVENTIONS = {
    "times": "seconds on the video's own clock (0 = its first frame); request times must lie inside the sampled "
             "clip",
    "boxes": "[x1, y1, x2, y2] in pixels of the displayed frame (rotation applied), x1 <= x2, y1 <= y2, inside "
             "the frame",
    "units": "units='normalised' gives request times and boxes in [0, 1] instead (time 0 = first sampled frame, "
             "1 = the last; boxes over the frame's width and height)",
    "answers": "every span, box and track frame carries both forms: normalised values and seconds / pixels "
               "(the schema of `llava-st ask --json`, schema_version 1)",
    "clamping": "none: a value outside the media is answered 422 naming it",
}


def _time(timeline: Timeline, t: float, units: str, what: str) -> float:
    if units == "normalised":
        if not 0.0 <= t <= 1.0:
            raise OutOfRangeError(f"{what} {t} is outside [0, 1] (units='normalised')")
        return t
    if timeline.timestamps is None:
        raise ProtocolError(f"{what} is in seconds but the media carry no timestamps: use units='normalised'")
    return float(timeline.to_normalised(t))


def _span(timeline: Timeline, start: float, end: float, units: str) -> tuple[float, float]:
    s, e = round3(_time(timeline, start, units, "start")), round3(_time(timeline, end, units, "end"))
    if not s < e:
        raise ProtocolError(f"the span must start before it ends (at 3 decimals of the clip), got start={start}, end={end}")
    return s, e


def _box(timeline: Timeline, box: Sequence[float], units: str) -> tuple[float, ...]:
    if units == "normalised":
        return Timeline(1, 1, frame_ids=(0,)).box_to_normalised(box)
    return timeline.box_to_normalised(box)


def _missing(task: Task, p: AskParams) -> None:
    given = p.task_arguments()
    missing = [a for a in task.arguments if a not in given]
    extra = sorted(set(given) - set(task.arguments))
    if missing:
        raise ProtocolError(f"task {task.name!r} needs {list(task.arguments)}; missing {missing}")
    if extra:
        raise ProtocolError(f"task {task.name!r} takes {list(task.arguments) or 'no arguments'}; {extra} do not apply")


def _elc(m: LoadedMedia, p: AskParams) -> tuple[str, dict]:
    s = round3(_time(m.timeline, p.start, p.units, "start"))
    return prompts.elc(s, _box(m.timeline, p.box, p.units)), {"elc_start": s}


def _svg(m: LoadedMedia, p: AskParams) -> tuple[str, dict]:
    span = _span(m.timeline, p.start, p.end, p.units)
    return prompts.svg(p.query, *span), {"span": span}


# task -> (media, params) -> (prompt, what else the Request carries: the span an SVG prompt
# gives, the start an ELC prompt gives)
_PROMPTS: dict[str, Callable[[LoadedMedia, AskParams], tuple[str, dict]]] = {
    "tvg": lambda m, p: (prompts.tvg(p.query), {}),
    "stvg": lambda m, p: (prompts.stvg(p.query), {}),
    "svg": _svg,
    "tr": lambda m, p: (prompts.tr(*_span(m.timeline, p.start, p.end, p.units)), {}),
    "elc": _elc,
    "dvc": lambda m, p: (prompts.DVC, {}),
    "rec": lambda m, p: (prompts.rec(p.expression), {}),
    "reg": lambda m, p: (prompts.reg(_box(m.timeline, p.box, p.units)), {}),
    "dgc": lambda m, p: (prompts.DGC, {}),
}


def build_request(params: AskParams, media: LoadedMedia) -> Request:
    """The model request of ``params`` about ``media`` (already loaded and checked).

    A free ``question`` is asked as it is (read with ``task``'s grammar when
    given, as ``llava-st ask --task``; decoded under it with ``constrained``);
    otherwise the task's prompt is written from its arguments and, as the task
    helpers do, decoded under the task's answer grammar unless ``constrained``
    is false. Raises :class:`~llava_st.errors.ProtocolError` for
    missing or extra arguments and values outside the media, and
    :class:`~llava_st.media.MediaKindError` for a task on the other kind of media.
    """
    if params.question is not None:
        return Request(media, params.question, task=params.task, constrained=bool(params.constrained))
    task = TASKS.get(params.task or "")
    if task is None:
        raise ProtocolError(f"unknown task {params.task!r}; expected one of {sorted(TASKS)}")
    _missing(task, params)
    if task.media is not None and media.kind != task.media:
        raise MediaKindError(f"task {task.name!r} ({task.helper}) needs {'a video' if task.media == 'video' else 'an image'}, "
                             f"got {'an image' if media.kind == 'image' else 'a video'}")
    for name in ("query", "expression"):
        if name in task.arguments and not getattr(params, name).strip():
            raise ProtocolError(f"the {name} is empty")
    prompt, extra = _PROMPTS[task.name](media, params)
    constrained = True if params.constrained is None else params.constrained
    return Request(media, prompt, task=task.name, constrained=constrained, **extra)


__all__ = ["CONVENTIONS", "TASKS", "Task", "build_request"]
