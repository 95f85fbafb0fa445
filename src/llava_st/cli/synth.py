"""``llava-st synth``: generate the ST-Synth dataset (library: :mod:`llava_st.synth`)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from ._args import count, number, positive
from ..synth.config import DIFFICULTIES, PRESETS, ConfigError, SynthConfig


_fraction = number(lambda v: 0.0 <= v < 1.0, "a fraction in [0, 1)")
_fps = number(lambda v: 0 < v <= 240, "a frame rate in (0, 240]")
_scale = number(lambda v: v > 0, "a positive factor")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="dataset folder to write (must be empty unless --overwrite)")
    parser.add_argument("--seed", type=count, default=0, help="random seed (same seed -> identical annotation files)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="standard", help="sizes and counts to start from")
    parser.add_argument("--videos", type=count, help="number of videos (default: the preset's)")
    parser.add_argument("--images", type=count, help="number of images (default: the preset's)")
    parser.add_argument("--difficulty", choices=sorted(DIFFICULTIES), help="clutter, size, speed, occlusion, pans")
    parser.add_argument("--distractors", type=count, help="distractors per scene (overrides the difficulty's range)")
    parser.add_argument("--size-scale", type=_scale, help="multiply every object size (difficulty's value by default)")
    parser.add_argument("--speed-scale", type=_scale, help="multiply the difficulty's speed range")
    size = parser.add_argument_group("sizes (default: the preset's)")
    size.add_argument("--width", type=positive, help="video width in pixels (even)")
    size.add_argument("--height", type=positive, help="video height in pixels (even)")
    size.add_argument("--frames", type=positive, help="frames per video")
    size.add_argument("--fps", type=_fps, help="video frame rate")
    size.add_argument("--sample-frames", type=positive, help="T, frames the model samples per clip (times are i/(T-1))")
    size.add_argument("--image-width", type=positive, help="image width in pixels")
    size.add_argument("--image-height", type=positive, help="image height in pixels")
    parser.add_argument("--crf", type=count, help="x264 constant rate factor (0..51; lower is sharper)")
    parser.add_argument("--test-fraction", type=_fraction, help="share of items in the held-out test split")
    parser.add_argument("--workers", type=positive, help="worker processes (default: CPU count, at most 8)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier ST-Synth output in --out")
    parser.add_argument("--no-preview", action="store_true", help="do not draw preview.png")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_config(args: argparse.Namespace) -> SynthConfig:
    """The preset with the command line's changes; raises ConfigError for impossible values."""
    base = PRESETS[args.preset]
    video = base.video
    changes = {
        k: v
        for k, v in (
            ("width", args.width),
            ("height", args.height),
            ("num_frames", args.frames),
            ("fps", args.fps),
            ("sample_frames", args.sample_frames),
            ("crf", args.crf),
        )
        if v is not None
    }
    if changes:
        video = replace(video, **changes)
    image = base.image
    if args.image_width is not None or args.image_height is not None:
        image = replace(
            image,
            width=args.image_width if args.image_width is not None else image.width,
            height=args.image_height if args.image_height is not None else image.height,
        )
    split = base.split if args.test_fraction is None else replace(base.split, test_fraction=args.test_fraction)
    difficulty = base.difficulty if args.difficulty is None else DIFFICULTIES[args.difficulty]
    tweaks: dict = {}
    if args.distractors is not None:
        tweaks["distractors"] = (args.distractors, args.distractors)
    if args.size_scale is not None:
        tweaks["size_scale"] = args.size_scale
    if args.speed_scale is not None:
        tweaks["speed"] = tuple(v * args.speed_scale for v in difficulty.speed)
    if tweaks:
        difficulty = replace(difficulty, name=difficulty.name + "+custom", **tweaks)
    return base.replace(
        seed=args.seed,
        num_videos=base.num_videos if args.videos is None else args.videos,
        num_images=base.num_images if args.images is None else args.images,
        video=video,
        image=image,
        difficulty=difficulty,
        split=split,
    )


def run(args: argparse.Namespace) -> int:
    from ..synth import generate
    from ..synth.item import GenerationError
    from ..synth.writer import OutputExistsError, default_workers

    try:
        config = build_config(args)
    except ConfigError as exc:
        print(f"llava-st synth: error: {exc}", file=sys.stderr)
        return 2
    try:
        summary = generate(
            config,
            args.out,
            workers=args.workers or default_workers(),
            overwrite=args.overwrite,
            progress=not args.no_progress,
            preview=not args.no_preview,
        )
    except (OutputExistsError, NotADirectoryError, GenerationError) as exc:
        print(f"llava-st synth: error: {exc}", file=sys.stderr)
        return 2
    print(summary.format())
    return 0
