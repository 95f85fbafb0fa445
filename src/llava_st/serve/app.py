"""The REST server: a FastAPI application around one :class:`~llava_st.infer.LlavaST`.

Routes (OpenAPI at ``/openapi.json``, pages at ``/docs`` and ``/redoc``):

* ``POST /v1/ask``: a question about a video or image, answered with the JSON
  object of ``llava-st ask --json`` (:mod:`llava_st.infer.answer`). The body
  is either ``multipart/form-data`` with the media in field ``file`` and the
  fields of :data:`llava_st.serve.params.FIELDS` as text, or JSON
  ``{"path": ..., "question": ...}`` naming a file under the media root;
* ``GET /v1/model``: the model's configuration, the tasks and their
  arguments, the coordinate conventions, the limits;
* ``GET /v1/health``: liveness and the queue (no API key needed).

How a request is answered, without ever blocking the event loop: its body is
read (uploads stream into a spooled temporary file, capped at the upload
limit); its media are copied to a temporary file, identified by decoding,
checked against the limits and decoded on a pool of loader threads
(:mod:`.intake`); the request joins the :class:`~.batcher.Batcher`, which
answers concurrent requests together through
:meth:`LlavaST.ask_batch <llava_st.infer.LlavaST.ask_batch>` on the model's
own thread. Errors are JSON (:mod:`.errors`).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import AsyncIterator, Hashable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException, MultiPartParser

from ..errors import LlavaSTError
from ..infer.answer import SCHEMA_VERSION, Answer
from ..infer.pipeline import BatchError
from .batcher import Batcher
from .errors import ApiError, BadRequest, Timeout, TooLarge, Unauthorized, Unprocessable, UnsupportedType, http_error
from .intake import load_path, load_upload, new_upload_dir, remove_upload_dir
from .openapi import ask_responses, error_responses
from .params import FIELDS, AskParams, read_params, request_schema
from .settings import ServerSettings, size_text
from .tasks import CONVENTIONS, TASKS, build_request

log = logging.getLogger("llava_st.serve")

#: Bytes a multipart body may hold beyond its file: boundaries, part headers and the text fields.
FORM_OVERHEAD = 256 * 1024


def answer_batch(model: Any, requests: list, group: Hashable) -> list[Answer | Exception]:
    """One batch of the server: ``model.ask_batch`` with the group's generation settings.

    A request whose media failed gets its own exception, the others their
    answers. When the batch as a whole is refused for the input of one of its
    requests (a token budget too small for one request's constrained answer),
    each request is asked alone, so that the error goes to that request only.
    """
    generation = dict(group)
    try:
        return model.ask_batch(requests, batch_size=len(requests), num_workers=0, **generation)
    except BatchError as exc:
        return [exc.failures[i] if i in exc.failures else a for i, a in enumerate(exc.results)]
    except LlavaSTError:
        if len(requests) == 1:
            raise
    return [_answer_one(model, r, generation) for r in requests]


def _answer_one(model: Any, request, generation: dict) -> Answer | Exception:
    try:
        return answer_batch(model, [request], tuple(generation.items()))[0]
    except LlavaSTError as exc:
        return exc


def describe_model(model: Any, settings: ServerSettings) -> dict[str, Any]:
    """The answer of ``GET /v1/model``: the configuration summary, tasks, conventions, limits."""
    cfg = model.config
    return {
        "model": settings.model,
        "num_frames": cfg.num_frames,
        "image_size": cfg.vision.image_size,
        "coordinate_bins": {"time": cfg.coords.num_temporal_bins, "space": cfg.coords.num_spatial_bins},
        "vision_tower": cfg.vision_tower,
        "vision": {"hidden_size": cfg.vision.hidden_size, "num_hidden_layers": cfg.vision.num_hidden_layers,
                   "patch_size": cfg.vision.patch_size},
        "language_model": {"hidden_size": cfg.text.hidden_size, "num_hidden_layers": cfg.text.num_hidden_layers,
                           "vocab_size": cfg.text.vocab_size},
        "answer_schema_version": SCHEMA_VERSION,
        "conventions": CONVENTIONS,
        "tasks": {t.name: {"media": t.media or "image or video", "arguments": list(t.arguments), "helper": t.helper,
                           "description": t.description} for t in TASKS.values()},
        "fields": {f.name: f.help for f in FIELDS},
        "generation_defaults": {"max_new_tokens": settings.default_max_new_tokens, "do_sample": False},
        "limits": settings.limits.to_dict(),
        "batching": {"max_batch": settings.max_batch, "batch_wait_ms": settings.batch_wait_ms,
                     "intake_wait_ms": settings.intake_wait_ms},
        "path_requests": settings.media_root is not None,
        "api_key_required": settings.api_key is not None,
    }


def _error_response(err: ApiError) -> JSONResponse:
    return JSONResponse(err.to_dict(), status_code=err.status, headers=err.headers or None)


async def _capped(stream: AsyncIterator[bytes], limit: int, what: str) -> AsyncIterator[bytes]:
    total = 0
    async for chunk in stream:
        total += len(chunk)
        if total > limit:
            raise TooLarge(f"the request body is larger than the limit for {what} ({size_text(limit)})")
        yield chunk


def _content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        raise BadRequest(f"Content-Length {value!r} is not a number") from None
    if length < 0:
        raise BadRequest(f"Content-Length {value!r} is negative")
    return length


def create_app(model: Any, settings: ServerSettings | None = None) -> FastAPI:
    """The FastAPI application answering with ``model`` (a :class:`~llava_st.infer.LlavaST`).

    The batcher, the loader threads and the upload folder live as long as the
    application runs (its lifespan): serve it with uvicorn, or enter
    ``fastapi.testclient.TestClient(app)`` as a context manager.
    """
    settings = settings or ServerSettings()
    limits = settings.limits
    batcher: Batcher = Batcher(lambda reqs, group: answer_batch(model, reqs, group), max_batch=settings.max_batch,
                               max_wait_s=settings.batch_wait_ms / 1000.0, max_queue=limits.max_queue,
                               max_intake_wait_s=settings.intake_wait_ms / 1000.0)
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state["upload_dir"] = settings.upload_dir or new_upload_dir()
        state["loaders"] = ThreadPoolExecutor(settings.load_workers, thread_name_prefix="llava-st-media")
        batcher.start()
        try:
            yield
        finally:
            await batcher.stop()
            state["loaders"].shutdown(wait=True, cancel_futures=True)
            if settings.upload_dir is None:
                remove_upload_dir(state["upload_dir"])

    from .. import __version__

    app = FastAPI(
        title="LLaVA-ST",
        version=__version__,
        description="When and where in videos and images: ask a question about an uploaded clip or image, or one "
                    "under the server's media root, and get spans (seconds), boxes (pixels) and tracks. "
                    "Conventions: `GET /v1/model`.",
        lifespan=lifespan,
    )
    app.state.batcher = batcher
    app.state.settings = settings
    app.state.serve = state

    # ------------------------------------------------------------- errors as JSON
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(LlavaSTError)
    async def _library_error(request: Request, exc: LlavaSTError) -> JSONResponse:
        err = http_error(exc)
        if err is None:  # pragma: no cover - every LlavaSTError maps
            raise exc
        return _error_response(err)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        err = ApiError(str(exc.detail), headers=getattr(exc, "headers", None))
        err.status, err.code = exc.status_code, {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error_response(err)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error_response(Unprocessable("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())))

    # ------------------------------------------------------------- API key
    bearer = HTTPBearer(auto_error=False, description="the server's API key, when it has one")
    header_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="the server's API key, when it has one")

    async def require_key(credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
                          key: str | None = Depends(header_key)) -> None:
        if settings.api_key is None:
            return
        given = credentials.credentials if credentials is not None else key
        if given is None:
            raise Unauthorized("this server needs an API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'")
        if not hmac.compare_digest(given.encode(), settings.api_key.encode()):
            raise Unauthorized("wrong API key")

    # ------------------------------------------------------------- routes
    @app.get("/v1/health", summary="Liveness and the queue")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "queued": batcher.queued, "running": batcher.running, "incoming": batcher.incoming,
                "max_queue": limits.max_queue, "stats": batcher.stats.to_dict()}

    @app.get("/v1/model", summary="The model's configuration, tasks, coordinate conventions and limits",
             dependencies=[Depends(require_key)], responses=error_responses(401))
    async def model_info() -> dict[str, Any]:
        return describe_model(model, settings)

    @app.post("/v1/ask", summary="Ask a question about a video or an image", dependencies=[Depends(require_key)],
              openapi_extra={"requestBody": request_schema()}, responses=ask_responses())
    async def ask(request: Request) -> JSONResponse:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        loop = asyncio.get_running_loop()
        if kind == "multipart/form-data":
            form = await _read_form(request)
            try:
                params, upload = _form_params(form)
                load = lambda: load_upload(upload.file, upload.filename, state["upload_dir"], params, limits,  # noqa: E731
                                           model.num_frames)
                answer = await _answer(loop, params, load)
            finally:
                await form.close()
        elif kind == "application/json" or kind.endswith("+json"):
            params = read_params(await _read_json(request), limits)
            if params.path is None:
                raise Unprocessable("field 'path' is missing: name a file under the media root, or upload the "
                                    "file as multipart field 'file'")
            answer = await _answer(loop, params,
                                   lambda: load_path(settings.media_root, params.path, params, limits, model.num_frames))
        else:
            raise UnsupportedType(f"content type {kind or '(none)'!r}: send multipart/form-data (an upload in field "
                                  "'file') or application/json ({\"path\": ..., \"question\": ...})")
        return JSONResponse(answer.to_dict())

    async def _answer(loop: asyncio.AbstractEventLoop, params: AskParams, load) -> Answer:
        """Load (on the loader threads), build the request, and wait for the batcher, within the timeout."""
        deadline = loop.time() + limits.request_timeout_s

        async def within(awaitable, what: str):
            try:
                return await asyncio.wait_for(awaitable, max(deadline - loop.time(), 0.0))
            except asyncio.TimeoutError:
                raise Timeout(f"no answer within the request timeout of {limits.request_timeout_s:g} s "
                              f"(still {what})") from None

        batcher.announce()  # a batch forming now may wait for this one while its media are read
        try:
            media = await within(loop.run_in_executor(state["loaders"], load), "reading the media")
            req = build_request(params, media)
        except BaseException:
            batcher.withdraw()
            raise
        generation = params.generation(settings.default_max_new_tokens)
        return await within(batcher.submit(req, tuple(sorted(generation.items())), announced=True),
                            "waiting for the model")

    async def _read_json(request: Request) -> Any:
        length = _content_length(request)
        if length is not None and length > limits.max_json_bytes:
            raise TooLarge(f"the JSON body is {size_text(length)}; the limit is {size_text(limits.max_json_bytes)}")
        body = b"".join([c async for c in _capped(request.stream(), limits.max_json_bytes, "JSON")])
        try:
            return json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadRequest(f"the body is not valid JSON: {exc}") from None

    async def _read_form(request: Request):
        cap = limits.max_upload_bytes + FORM_OVERHEAD
        length = _content_length(request)
        if length is not None and length > cap:
            raise TooLarge(f"the request is {size_text(length)}; the upload limit is {size_text(limits.max_upload_bytes)}")
        parser = MultiPartParser(request.headers, _capped(request.stream(), cap, "uploads"), max_files=1,
                                 max_fields=len(FIELDS), max_part_size=4 * limits.max_question_chars + 1024)
        try:
            return await parser.parse()
        except MultiPartException as exc:
            raise BadRequest(f"malformed multipart body: {exc.message}") from None

    def _form_params(form) -> tuple[AskParams, UploadFile]:
        items = form.multi_items()
        names = [k for k, _ in items]
        repeated = sorted({k for k in names if names.count(k) > 1})
        if repeated:
            raise Unprocessable(f"field(s) {repeated} given more than once")
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Unprocessable("field 'file' is missing: upload the video or image as multipart field 'file'"
                                if upload is None else "field 'file' must be a file upload, not text")
        stray = [k for k, v in items if isinstance(v, UploadFile) and k != "file"]
        if stray:
            raise Unprocessable(f"only field 'file' may hold a file; got a file in {stray}")
        return read_params({k: v for k, v in items if k != "file"}, limits, form=True), upload

    return app


__all__ = ["FORM_OVERHEAD", "answer_batch", "create_app", "describe_model"]
