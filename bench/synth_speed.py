"""Benchmark: how fast ST-Synth writes a dataset.

The target (issue 5): 1000 videos of 100 frames at 320x240 plus 1000 images,
written in under 5 minutes on 2 cores. This runs the ``standard`` preset
(320x240, 100 frames at 10 fps, T = 100, 320x240 images, difficulty
``normal``) with that many items through :func:`llava_st.synth.generate`,
everything included: scene sampling, rendering, ground truth, the sample
builders, H.264 encoding, PNG writing, the annotation files and the preview.

Run: ``python bench/synth_speed.py`` (about two minutes on 2 cores; it keeps
both busy); writes ``bench/results/synth_speed.json``. ``--videos``,
``--images`` and ``--workers`` change the workload.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import PIL

from _machine import write_result

from llava_st.synth import PRESETS, generate

LIMIT_S = 300.0


def _size(root: Path, pattern: str) -> int:
    return sum(p.stat().st_size for p in root.glob(pattern))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=1000)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    config = PRESETS["standard"].replace(seed=args.seed, num_videos=args.videos, num_images=args.images)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="st-synth-bench-") as tmp:
        out = Path(tmp) / "data"
        started = time.perf_counter()
        summary = generate(config, out, workers=args.workers, progress=True, preview=True)
        seconds = time.perf_counter() - started
        sizes = {
            "videos_bytes": _size(out, "videos/*.mp4"),
            "images_bytes": _size(out, "images/*.png"),
            "annotations_bytes": _size(out, "*/*.json") + _size(out, "*/*.jsonl"),
        }
    frames = args.videos * config.video.num_frames
    result = {
        "benchmark": "ST-Synth dataset generation, end to end",
        "settings": {
            "preset": "standard",
            "difficulty": config.difficulty.name,
            "videos": args.videos,
            "images": args.images,
            "video": f"{config.video.width}x{config.video.height}, {config.video.num_frames} frames at "
            f"{config.video.fps:g} fps, libx264 {config.video.preset} crf {config.video.crf}, yuv420p",
            "image": f"{config.image.width}x{config.image.height} PNG",
            "sample_frames": config.video.sample_frames,
            "workers": args.workers,
            "seed": args.seed,
        },
        "seconds": round(seconds, 1),
        "limit_seconds": LIMIT_S,
        "within_limit": seconds < LIMIT_S,
        "video_frames_per_second": round(frames / seconds, 1),
        "items_per_second": round((args.videos + args.images) / seconds, 2),
        "records": summary.files,
        "sizes": sizes,
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "versions": {"numpy": np.__version__, "pillow": PIL.__version__, "av": av.__version__},
        "note": "the load averages show how busy the shared machine was; other processes slow the run down",
    }
    path = write_result("synth_speed", result)
    print(
        f"{args.videos} videos + {args.images} images in {seconds:.1f} s with {args.workers} workers "
        f"({'within' if seconds < LIMIT_S else 'OVER'} the {LIMIT_S:.0f} s limit); wrote {path}"
    )


if __name__ == "__main__":
    main()
