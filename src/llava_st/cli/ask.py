"""``llava-st ask``: one question about a video or an image.

    llava-st ask --model DIR --video clip.mp4 "When does the dog jump?"
    llava-st ask --model DIR --image photo.jpg --task rec "Where is the red cup?" --json
    llava-st ask --model DIR --video clip.mp4 --task stvg "the man in black" --viz out.png

Output: the answer and its spans (seconds), boxes (pixels) and track, or with
``--json`` one JSON object (the schema of :meth:`llava_st.infer.Answer.to_dict`).
Progress goes to stderr. Exit codes: 0 answered, 2 bad input (missing or
unreadable file, invalid option), 1 any other failure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

EXIT_BAD_INPUT = 2
EXIT_FAILURE = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..protocol.answers import TASKS

    parser.add_argument("question", help="the question (write coordinates as {s, e} spans or [x1, y1, x2, y2] boxes, normalised)")
    parser.add_argument("--model", required=True, help="model folder in the release layout, or a registered model name")
    media = parser.add_mutually_exclusive_group(required=True)
    media.add_argument("--video", help="a video file (any container FFmpeg reads) or a folder of frames (with --fps)")
    media.add_argument("--image", help="an image file")
    parser.add_argument("--task", choices=TASKS, help="read the answer with this task's grammar")
    parser.add_argument("--frames", type=int, help="frames to sample from the video (default: the model's)")
    parser.add_argument("--start", type=float, help="sample the video from this time (seconds)")
    parser.add_argument("--end", type=float, help="sample the video up to this time (seconds)")
    parser.add_argument("--fps", type=float, help="frame rate of a folder of frames")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--viz", metavar="OUT", help="also write a picture (.png/.pdf/...), an annotated video (.mp4) or .json")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ... (default cpu)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--max-new-tokens", type=int, default=512)
    parser.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--quiet", action="store_true", help="no progress messages")


def _say(args, message: str) -> None:
    if not args.quiet:
        print(message, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from ..protocol.answers import OutOfRangeError
    from ..protocol.coords import CoordinateError
    from ..infer import LlavaST, Request
    from ..media import MediaError

    if not args.question.strip():
        print("llava-st ask: the question is empty", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.image and (args.start is not None or args.end is not None or args.frames):
        print("llava-st ask: --start/--end/--frames apply to --video only", file=sys.stderr)
        return EXIT_BAD_INPUT
    if (args.start is None) != (args.end is None):
        print("llava-st ask: give both --start and --end", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        t0 = time.perf_counter()
        _say(args, f"loading model {args.model} ...")
        st = LlavaST.from_pretrained(args.model, device=args.device, dtype=args.dtype)
        _say(args, f"model loaded in {time.perf_counter() - t0:.1f}s; reading {args.video or args.image} ...")
        req = Request(
            media=args.video or args.image,
            question=args.question,
            task=args.task,
            kind="video" if args.video else "image",
            time_range=(args.start, args.end) if args.start is not None else None,
            fps=args.fps,
            num_frames=args.frames,
        )
        t1 = time.perf_counter()
        answer = st.ask_batch(
            [req], batch_size=1, num_workers=0, max_new_tokens=args.max_new_tokens, do_sample=args.sample,
            temperature=args.temperature, top_p=args.top_p, seed=args.seed,
        )[0]
        _say(args, f"answered in {time.perf_counter() - t1:.1f}s ({answer.num_tokens} tokens)")
        if args.viz:
            path = answer.save(args.viz)
            _say(args, f"wrote {path}")
    except (FileNotFoundError, MediaError, CoordinateError, OutOfRangeError, ValueError) as exc:
        print(f"llava-st ask: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ImportError as exc:
        print(f"llava-st ask: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    if args.json:
        print(json.dumps(answer.to_dict(), indent=2))
    else:
        print(answer)
    return 0
