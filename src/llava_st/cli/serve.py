"""``llava-st serve``: the REST API (FastAPI on uvicorn) for a model.

    llava-st serve                                   # the shipped "tiny" model on 127.0.0.1:8000
    llava-st serve --model DIR --host 0.0.0.0 --port 8080 --media-root /data/clips --api-key "$KEY"

Routes: ``POST /v1/ask``, ``GET /v1/model``, ``GET /v1/health``; OpenAPI docs
at ``/docs``. The API key may also come from ``$LLAVA_ST_API_KEY``. Limits
(upload size, video length, queue, timeout ...) have safe defaults; see
:class:`llava_st.serve.Limits`.
"""

from __future__ import annotations

import argparse
import os
import sys

from ._args import number, positive

API_KEY_ENV = "LLAVA_ST_API_KEY"


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--device``, ``--dtype``, ``--host`` (shared with ``llava-st ui``)."""
    parser.add_argument("--model", default="tiny",
                        help="model folder, a shipped model name, or a Hugging Face Hub id org/name[@revision] "
                             "(default: tiny, the model shipped with the package)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ... (default cpu)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..serve.settings import Limits

    d = Limits()
    add_model_arguments(parser)
    parser.add_argument("--port", type=positive, default=8000)
    parser.add_argument("--media-root", help="folder whose files JSON requests may name ({\"path\": ...}); "
                                             "without it only uploads are answered")
    parser.add_argument("--upload-dir", help="folder for the temporary files of uploads (default: a new temporary folder)")
    parser.add_argument("--api-key", help=f"require this key (Authorization: Bearer KEY or X-API-Key); default ${API_KEY_ENV}")
    parser.add_argument("--max-batch", type=positive, default=16, help="most requests answered together (default 16)")
    parser.add_argument("--batch-wait-ms", type=number(lambda v: v >= 0, "a number >= 0"), default=20.0,
                        help="how long a batch that is not full waits for more requests (default 20 ms)")
    parser.add_argument("--intake-wait-ms", type=number(lambda v: v >= 0, "a number >= 0"), default=200.0,
                        help="how long it waits instead for requests still reading their media (default 200 ms)")
    parser.add_argument("--max-new-tokens", type=positive, default=512, help="token budget of a request that gives none")
    parser.add_argument("--load-workers", type=positive, default=4, help="threads decoding media side by side (default 4)")
    limits = parser.add_argument_group("limits")
    above0 = number(lambda v: v > 0, "a number > 0")
    limits.add_argument("--max-upload-mb", type=above0, default=d.max_upload_bytes / 2**20,
                        help=f"largest upload in MiB (default {d.max_upload_bytes / 2**20:g})")
    limits.add_argument("--max-video-seconds", type=above0, default=d.max_video_seconds,
                        help=f"longest video (default {d.max_video_seconds:g} s)")
    limits.add_argument("--max-video-frames", type=positive, default=d.max_video_frames,
                        help=f"most frames in a video (default {d.max_video_frames})")
    limits.add_argument("--max-pixels", type=positive, default=d.max_pixels,
                        help=f"largest frame, width x height (default {d.max_pixels})")
    limits.add_argument("--max-sample-frames", type=positive, default=d.max_sample_frames,
                        help=f"most frames a request may sample (default {d.max_sample_frames})")
    limits.add_argument("--max-new-tokens-limit", type=positive, default=d.max_new_tokens,
                        help=f"most tokens a request may ask for (default {d.max_new_tokens})")
    limits.add_argument("--timeout", type=above0, default=d.request_timeout_s,
                        help=f"seconds to answer a request before 504 (default {d.request_timeout_s:g})")
    limits.add_argument("--max-queue", type=positive, default=d.max_queue,
                        help=f"requests waiting at once before 429 (default {d.max_queue})")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])


def settings_from_args(args: argparse.Namespace):
    """The :class:`~llava_st.serve.ServerSettings` of the command line (checked before the model loads)."""
    from pathlib import Path

    from ..serve.settings import Limits, ServerSettings

    limits = Limits(
        max_upload_bytes=int(args.max_upload_mb * 2**20), max_video_seconds=args.max_video_seconds,
        max_video_frames=args.max_video_frames, max_pixels=args.max_pixels, max_sample_frames=args.max_sample_frames,
        max_new_tokens=args.max_new_tokens_limit, request_timeout_s=args.timeout, max_queue=args.max_queue,
    )
    return ServerSettings(
        model=args.model, limits=limits, media_root=Path(args.media_root) if args.media_root else None,
        upload_dir=Path(args.upload_dir) if args.upload_dir else None,
        api_key=args.api_key or os.environ.get(API_KEY_ENV) or None, max_batch=args.max_batch,
        batch_wait_ms=args.batch_wait_ms, intake_wait_ms=args.intake_wait_ms,
        default_max_new_tokens=args.max_new_tokens, load_workers=args.load_workers,
    )


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..serve.app import create_app
    except ImportError as exc:
        print(f"llava-st serve: {exc}; install the serve extra: pip install 'llava-st[serve]'", file=sys.stderr)
        return 1
    from ..infer import LlavaST
    settings = settings_from_args(args)
    print(f"llava-st serve: loading model {args.model} ...", file=sys.stderr, flush=True)
    model = LlavaST.from_pretrained(args.model, device=args.device, dtype=args.dtype)
    app = create_app(model, settings)
    print(f"llava-st serve: http://{args.host}:{args.port}/docs", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
