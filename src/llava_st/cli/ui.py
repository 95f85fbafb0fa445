"""``llava-st ui``: a web page to try a model: upload a clip or pick a sample, ask, see the boxes.

    llava-st ui                          # the shipped "tiny" model on http://127.0.0.1:7860
    llava-st ui --model DIR --port 7861

Tasks: a free question, ground in time, track, refer, caption an event. The
page shows the answer's text, the sampled frames with the boxes, the
timeline and the annotated video. Samples are the videos and images shipped
with the package, or an ST-Synth video and image rendered at startup.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from ._args import positive
from .serve import add_model_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--port", type=positive, default=7860)
    parser.add_argument("--max-new-tokens", type=positive, default=256, help="the page's starting token budget (default 256)")
    parser.add_argument("--max-upload-mb", type=positive, default=100, help="largest upload in MiB (default 100)")
    parser.add_argument("--work-dir", help="folder for samples and pictures (default: a new temporary folder)")


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from a closed network
    try:
        import gradio  # noqa: F401
        import matplotlib  # noqa: F401
    except ImportError as exc:
        print(f"llava-st ui: {exc}; install the ui extra: pip install 'llava-st[ui]'", file=sys.stderr)
        return 1
    from ..infer import LlavaST
    from ..serve.samples import find_samples
    from ..serve.settings import Limits
    from ..serve.ui import build_ui, launch

    limits = Limits(max_upload_bytes=args.max_upload_mb * 2**20)
    print(f"llava-st ui: loading model {args.model} ...", file=sys.stderr, flush=True)
    model = LlavaST.from_pretrained(args.model, device=args.device, dtype=args.dtype)
    with tempfile.TemporaryDirectory(prefix="llava-st-ui-") as scratch:  # removed when the page stops
        work = Path(args.work_dir) if args.work_dir else Path(scratch)
        samples = find_samples(work / "samples")
        page = build_ui(model, samples, work / "answers", limits=limits, default_max_new_tokens=args.max_new_tokens)
        launch(page, args.host, args.port, work, limits, block=True)
    return 0
