"""The fields of ``POST /v1/ask``: one table, read from JSON or from a multipart form.

:data:`FIELDS` lists every field with its type and meaning; :func:`read_params`
turns a JSON object or the text fields of a form into a checked
:class:`AskParams` (a field the table does not know, a value of the wrong
type or out of range is an :class:`~.errors.Unprocessable` naming the field),
and :func:`request_schema` writes the same table as the OpenAPI schema of the
request body.

A request asks either a free ``question`` (optionally read with a ``task``'s
grammar, as ``llava-st ask --task``), or a ``task`` with its arguments
(``query``, ``expression``, ``start``, ``end``, ``box``: see
:data:`llava_st.serve.tasks.TASKS`), which builds the task's prompt as the
task helpers of :class:`~llava_st.infer.LlavaST` do.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Mapping

from ..protocol.results import TASKS
from .errors import Unprocessable
from .settings import Limits


@dataclass(frozen=True)
class Field:
    """One request field: ``type`` is a JSON type name, or ``box`` (4 numbers) / ``range`` (2 numbers)."""

    name: str
    type: str
    help: str
    choices: tuple[str, ...] = ()
    json_only: bool = False


FIELDS: tuple[Field, ...] = (
    Field("path", "string", "a file under the server's media root (JSON requests; uploads send `file` instead)",
          json_only=True),
    Field("question", "string", "a free question; write coordinates as {s, e} spans or [x1, y1, x2, y2] boxes, "
          "normalised"),
    Field("task", "string", "with `question`: read the answer with this task's grammar; without it: ask this "
          "task with its arguments", choices=TASKS),
    Field("query", "string", "what to find (tasks tvg, stvg, svg)"),
    Field("expression", "string", "the referring expression (task rec)"),
    Field("start", "number", "a time in seconds on the video's clock, or normalised with units=normalised "
          "(tasks svg, tr, elc)"),
    Field("end", "number", "the end of the span, seconds or normalised (tasks svg, tr)"),
    Field("box", "box", "[x1, y1, x2, y2] in pixels of the displayed frame, or normalised with units=normalised "
          "(tasks elc, reg)"),
    Field("constrained", "boolean", "decode under the task's answer grammar, so the answer always parses (default: "
          "true for a task asked with its arguments, as the task helpers do; false for a free question)"),
    Field("units", "string", "units of start, end and box: absolute (seconds, pixels; the default) or normalised",
          choices=("absolute", "normalised")),
    Field("frames", "integer", "frames to sample from a video (default: the model's own count)"),
    Field("time_range", "range", "[start, end] seconds: sample the video from this part only"),
    Field("max_new_tokens", "integer", "most tokens to generate (default: the server's)"),
    Field("do_sample", "boolean", "sample instead of greedy decoding"),
    Field("temperature", "number", "sampling temperature"),
    Field("top_p", "number", "nucleus sampling threshold"),
    Field("seed", "integer", "random seed of sampling"),
)
_BY_NAME = {f.name: f for f in FIELDS}
TASK_ARGUMENTS = ("query", "expression", "start", "end", "box")


@dataclass(frozen=True)
class AskParams:
    """A checked request (see :data:`FIELDS` for each field's meaning)."""

    path: str | None = None
    question: str | None = None
    task: str | None = None
    query: str | None = None
    expression: str | None = None
    start: float | None = None
    end: float | None = None
    box: tuple[float, float, float, float] | None = None
    constrained: bool | None = None
    units: str = "absolute"
    frames: int | None = None
    time_range: tuple[float, float] | None = None
    max_new_tokens: int | None = None
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None

    def generation(self, default_max_new_tokens: int) -> dict[str, Any]:
        """The ``GenerationConfig`` overrides of this request (``ask_batch``'s ``**generation``)."""
        return {"max_new_tokens": self.max_new_tokens or default_max_new_tokens, "do_sample": self.do_sample,
                "temperature": self.temperature, "top_p": self.top_p, "seed": self.seed}

    def task_arguments(self) -> dict[str, Any]:
        """The task arguments given (those not ``None``)."""
        return {k: getattr(self, k) for k in TASK_ARGUMENTS if getattr(self, k) is not None}


# ----------------------------------------------------------------- reading values


def _number(name: str, value: Any, text: bool) -> float:
    if text and isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise Unprocessable(f"field {name!r}: expected a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Unprocessable(f"field {name!r}: expected a number, got {json.dumps(value)}")
    if not math.isfinite(value):
        raise Unprocessable(f"field {name!r}: expected a finite number, got {value}")
    return float(value)


def _integer(name: str, value: Any, text: bool) -> int:
    if text and isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise Unprocessable(f"field {name!r}: expected a whole number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise Unprocessable(f"field {name!r}: expected a whole number, got {json.dumps(value)}")
    return value


def _boolean(name: str, value: Any, text: bool) -> bool:
    if text and isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
    if not isinstance(value, bool):
        raise Unprocessable(f"field {name!r}: expected true or false, got {json.dumps(value)}")
    return value


def read_numbers(name: str, value: Any, text: bool, count: int) -> tuple[float, ...]:
    """``count`` numbers: a list, or (``text=True``) text ``[a, b, ...]`` or ``a, b, ...``."""
    if text and isinstance(value, str):
        raw = value.strip()
        try:
            value = json.loads(raw) if raw.startswith("[") else [float(v) for v in raw.split(",")]
        except ValueError:
            raise Unprocessable(f"field {name!r}: expected {count} numbers as [a, b, ...] or a,b,..., got {raw!r}") from None
    if not isinstance(value, (list, tuple)) or len(value) != count:
        raise Unprocessable(f"field {name!r}: expected a list of {count} numbers, got {json.dumps(value)}")
    return tuple(_number(f"{name}[{i}]", v, text) for i, v in enumerate(value))


def _convert(field: Field, value: Any, text: bool) -> Any:
    if field.type == "string":
        if not isinstance(value, str):
            raise Unprocessable(f"field {field.name!r}: expected a string, got {json.dumps(value)}")
        if field.choices and value not in field.choices:
            raise Unprocessable(f"field {field.name!r}: {value!r} is not one of {list(field.choices)}")
        return value
    if field.type == "number":
        return _number(field.name, value, text)
    if field.type == "integer":
        return _integer(field.name, value, text)
    if field.type == "boolean":
        return _boolean(field.name, value, text)
    return read_numbers(field.name, value, text, 4 if field.type == "box" else 2)


def read_params(data: Mapping[str, Any], limits: Limits, *, form: bool = False) -> AskParams:
    """A checked :class:`AskParams` from a JSON object (``form=False``) or a form's text fields
    (``form=True``: every value is text, numbers and lists are read from it).

    Raises :class:`~.errors.Unprocessable` naming the field: unknown, wrong type, out of
    range, or not applying (a task argument with a free question, ``path`` in a form).
    """
    if not isinstance(data, Mapping):
        raise Unprocessable(f"the request body must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(_BY_NAME))
    if unknown:
        raise Unprocessable(f"unknown field(s) {unknown}; the fields are {sorted(_BY_NAME)}")
    values: dict[str, Any] = {}
    for name, value in data.items():
        field = _BY_NAME[name]
        if form and field.json_only:
            raise Unprocessable(f"field {name!r} belongs to JSON requests; an upload sends the media as 'file'")
        if value is None:
            continue
        values[name] = _convert(field, value, text=form)
    params = AskParams(**values)
    _check(params, limits)
    return params


def _check(p: AskParams, limits: Limits) -> None:
    for name in ("question", "query", "expression"):
        text = getattr(p, name)
        if text is not None:
            if not text.strip():
                raise Unprocessable(f"field {name!r} is empty")
            if len(text) > limits.max_question_chars:
                raise Unprocessable(f"field {name!r} has {len(text)} characters; the limit is {limits.max_question_chars}")
    if p.question is None and p.task is None:
        raise Unprocessable("give a 'question', or a 'task' with its arguments")
    if p.constrained and p.task is None:
        raise Unprocessable("field 'constrained': a constrained answer needs a 'task' (its grammar is the task's)")
    if p.question is not None and p.task_arguments():
        raise Unprocessable(
            f"field(s) {sorted(p.task_arguments())} are task arguments: give them with a 'task' and no 'question'"
        )
    if p.frames is not None and not 1 <= p.frames <= limits.max_sample_frames:
        raise Unprocessable(f"field 'frames': expected 1..{limits.max_sample_frames}, got {p.frames}")
    if p.time_range is not None and not 0 <= p.time_range[0] < p.time_range[1]:
        raise Unprocessable(f"field 'time_range': expected [start, end] with 0 <= start < end, got {list(p.time_range)}")
    if p.max_new_tokens is not None and not 1 <= p.max_new_tokens <= limits.max_new_tokens:
        raise Unprocessable(f"field 'max_new_tokens': expected 1..{limits.max_new_tokens}, got {p.max_new_tokens}")
    if not p.temperature > 0:
        raise Unprocessable(f"field 'temperature': expected a number > 0, got {p.temperature}")
    if not 0 < p.top_p <= 1:
        raise Unprocessable(f"field 'top_p': expected a number in (0, 1], got {p.top_p}")


# ----------------------------------------------------------------- OpenAPI


def _schema(field: Field, form: bool) -> dict[str, Any]:
    if field.type in ("box", "range"):
        n = 4 if field.type == "box" else 2
        schema: dict[str, Any] = {"type": "array", "items": {"type": "number"}, "minItems": n, "maxItems": n}
        if form:
            schema = {"type": "string", "examples": ["[10, 20, 50, 60]" if n == 4 else "[0.5, 2.5]"]}
    else:
        schema = {"type": field.type}
    if field.choices:
        schema["enum"] = list(field.choices)
    schema["description"] = field.help
    return schema


def request_schema() -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of ``POST /v1/ask``: JSON (a file under the media root) or multipart (an upload)."""
    json_props = {f.name: _schema(f, form=False) for f in FIELDS}
    form_props = {"file": {"type": "string", "format": "binary", "description": "the video or image; its type is "
                           "decided by decoding it, not by its name"}}
    form_props.update({f.name: _schema(f, form=True) for f in FIELDS if not f.json_only})
    return {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object", "properties": json_props, "required": ["path"],
                                            "additionalProperties": False}},
            "multipart/form-data": {"schema": {"type": "object", "properties": form_props, "required": ["file"]}},
        },
    }


__all__ = ["FIELDS", "TASK_ARGUMENTS", "AskParams", "Field", "read_numbers", "read_params", "request_schema"]
