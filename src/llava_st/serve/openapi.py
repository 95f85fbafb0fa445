"""OpenAPI descriptions of the answers: the answer object and the error object.

The request body's schema is written from the field table
(:func:`llava_st.serve.params.request_schema`); the answer's follows the
schema of :mod:`llava_st.infer.answer` (``schema_version`` 1), the one JSON
form of ``llava-st ask --json``.
"""

from __future__ import annotations

from typing import Any

_SPAN = {"type": "object", "description": "a span: start, end normalised in [0, 1]; start_s, end_s seconds",
         "properties": {k: {"type": ["number", "null"]} for k in ("start", "end", "start_s", "end_s")}}
_BOX = {"type": "object", "description": "a box: xyxy normalised, pixels [x1, y1, x2, y2] of the displayed frame",
        "properties": {"xyxy": {"type": "array", "items": {"type": "number"}},
                       "pixels": {"type": ["array", "null"], "items": {"type": "number"}}}}

ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "the answer, as `llava-st ask --json` prints it (llava_st.infer.answer, schema_version 1)",
    "properties": {
        "schema_version": {"type": "integer", "const": 1},
        "question": {"type": "string", "description": "the question as asked (a task's prompt for a task request)"},
        "answer": {"type": "string", "description": "the generated text, bin tokens kept (<TEMP-012>)"},
        "task": {"type": ["string", "null"], "description": "the task it was read as; null: a free question"},
        "ok": {"type": "boolean", "description": "false when the text does not follow the task's grammar"},
        "media": {"type": "object", "description": "kind (image | video), source (the upload's file name or the "
                  "path as requested), width, height (pixels), frame_ids and timestamps (seconds) of the sampled "
                  "frames"},
        "spans": {"type": "array", "items": _SPAN},
        "boxes": {"type": "array", "items": _BOX},
        "track": {"type": "array", "items": {"type": "object", "description": "key (time bin), time (normalised), "
                  "frame (sampled frame 0..T-1), frame_id (frame number in the video), seconds, box"}},
        "events": {"type": "array", "items": {"type": "object", "properties": {"span": _SPAN,
                                                                                 "caption": {"type": "string"}}}},
        "result": {"type": ["object", "null"], "description": "the typed answer of the task, with its `type` "
                   "(TemporalGrounding, ParseFailure ...), or null for a free question"},
        "failures": {"type": "array", "items": {"type": "string"}},
        "num_tokens": {"type": "integer", "description": "tokens generated, the end-of-turn token included"},
    },
}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"error": {"type": "object", "properties": {
        "status": {"type": "integer"},
        "code": {"type": "string", "description": "bad_request, unauthorized, forbidden, not_found, too_large, "
                 "unsupported_media_type, invalid_request, corrupt_media, wrong_media_kind, queue_full, unavailable, timeout"},
        "message": {"type": "string", "description": "what was wrong, naming the field or limit"},
    }}},
}

_ERRORS = {
    400: "malformed request: bad JSON or multipart",
    401: "missing or wrong API key",
    403: "a path outside the media root, or path requests not enabled",
    404: "no such file under the media root",
    413: "too large: upload, body, video length or frame count, frame size",
    415: "neither an image nor a video, or a body neither JSON nor multipart",
    422: "a field missing or invalid, corrupt media, a value outside the media, a task for the other kind of media",
    429: "the queue is full; retry after Retry-After seconds",
    503: "the server is shutting down",
    504: "no answer within the request timeout",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries of the given error statuses."""
    return {s: {"description": _ERRORS[s], "content": {"application/json": {"schema": ERROR_SCHEMA}}} for s in statuses}


def ask_responses() -> dict[int | str, dict[str, Any]]:
    return {200: {"description": "the answer", "content": {"application/json": {"schema": ANSWER_SCHEMA}}},
            **error_responses(*sorted(_ERRORS))}


__all__ = ["ANSWER_SCHEMA", "ERROR_SCHEMA", "ask_responses", "error_responses"]
