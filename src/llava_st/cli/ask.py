"""``llava-st ask``: one question about a video or an image.

    llava-st ask --model DIR --video clip.mp4 "When does the dog jump?"
    llava-st ask --model DIR --image photo.jpg --task rec "Where is the red cup?" --json
    llava-st ask --model DIR --video clip.mp4 --task stvg "the man in black" --viz out.png

Output: the answer and its spans (seconds), boxes (pixels) and track, or with
``--json`` one JSON object (the schema documented in :mod:`llava_st.infer.answer`).
Progress goes to stderr. A video is sampled at the model's own frame count
(``num_frames`` of its config) unless ``--frames`` says otherwise.

Exit codes: 0 answered; 2 bad input (a :class:`~llava_st.errors.LlavaSTError`:
a missing or unreadable file, an invalid option, a time or box outside the
media, a model folder that does not fit); 1 a missing optional package or an
I/O failure.
"""

from __future__ import annotations

import argparse
import sys
import time

from ._args import positive

EXIT_FAILURE = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..protocol.answers import TASKS

    parser.add_argument("question", help="the question (write coordinates as {s, e} spans or [x1, y1, x2, y2] boxes, normalised)")
    parser.add_argument(
        "--model", default="tiny",
        help="model folder in the release layout, a shipped model name, or a Hugging Face Hub id org/name[@revision] "
        "(default: tiny, the model shipped with the package)",
    )
    media = parser.add_mutually_exclusive_group(required=True)
    media.add_argument("--video", help="a video file (any container FFmpeg reads) or a folder of frames (with --fps)")
    media.add_argument("--image", help="an image file")
    parser.add_argument("--task", choices=TASKS,
                        help="read the answer with this task's grammar, and decode under it (so that it parses)")
    parser.add_argument("--unconstrained", action="store_true",
                        help="with --task: decode freely and only read the answer with the task's grammar")
    parser.add_argument("--frames", type=positive, help="frames to sample from the video (default: the model's own)")
    parser.add_argument("--start", type=float, help="sample the video from this time (seconds)")
    parser.add_argument("--end", type=float, help="sample the video up to this time (seconds)")
    parser.add_argument("--fps", type=float, help="frame rate of a folder of frames")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--viz", metavar="OUT", help="also write a picture (.png/.pdf/...), an annotated video (.mp4) or .json")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ... (default cpu)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--max-new-tokens", type=positive, default=512)
    parser.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--quiet", action="store_true", help="no progress messages")


def _say(args, message: str) -> None:
    if not args.quiet:
        print(message, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """Answer the question; a :class:`~llava_st.errors.LlavaSTError` goes up to
    :func:`llava_st.cli.main`, which prints it and exits with 2."""
    from ..errors import ConfigError
    from ..infer import LlavaST, Request

    if args.image and (args.start is not None or args.end is not None or args.frames):
        raise ConfigError("--start/--end/--frames apply to --video only")
    if args.unconstrained and args.task is None:
        raise ConfigError("--unconstrained applies with --task only")
    if (args.start is None) != (args.end is None):
        raise ConfigError("give both --start and --end")
    req = Request(  # checks the question before the model loads
        media=args.video or args.image,
        question=args.question,
        task=args.task,
        kind="video" if args.video else "image",
        time_range=(args.start, args.end) if args.start is not None else None,
        fps=args.fps,
        num_frames=args.frames,  # None: the model's own
        constrained=args.task is not None and not args.unconstrained,
    )
    t0 = time.perf_counter()
    try:
        _say(args, f"loading model {args.model} ...")
        st = LlavaST.from_pretrained(args.model, device=args.device, dtype=args.dtype)
        what = f"{args.frames or st.num_frames} frames of {args.video}" if args.video else args.image
        _say(args, f"model loaded in {time.perf_counter() - t0:.1f}s; reading {what} ...")
        t1 = time.perf_counter()
        answer = st.ask_request(
            req, max_new_tokens=args.max_new_tokens, do_sample=args.sample, temperature=args.temperature,
            top_p=args.top_p, seed=args.seed,
        )
        _say(args, f"answered in {time.perf_counter() - t1:.1f}s ({answer.num_tokens} tokens)")
        if args.viz:
            path = answer.save(args.viz)
            _say(args, f"wrote {path}")
    except ImportError as exc:  # an optional package (PyAV, matplotlib) is missing: the message names it
        print(f"llava-st ask: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    if args.json:
        print(answer.to_json())
    else:
        print(answer)
    return 0
