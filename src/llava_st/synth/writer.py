"""The generator's driver: make every item (in parallel), then write the dataset folder.

Layout of a dataset folder (all paths relative to it)::

    videos/000000.mp4 ...            H.264 MP4, yuv420p, the configured frame rate
    images/000000.png ...            PNG
    train/<task>.json                training samples of the training split (SPEC §4 format)
    test/<task>.json                 the same format, held-out split
    eval/refcoco_style_rec.json      REC on the test images, RefCOCO format
    eval/charades_sta_style_tvg.json TVG on the test videos, Charades-STA format
    eval/st_align_{stvg,svg,elc}.json ST-Align format, absolute frames and pixel boxes
    ground_truth/{videos,images}.jsonl  every object's box on every frame, events in frames and seconds
    stage1.yaml stage2.yaml stage3.yaml training mixes (SPEC §4, §8)
    manifest.json                    config, held-out pairs, record counts, conventions
    preview.png                      a grid of frames with boxes (optional)

Every annotation file is written through its format's writer in
:mod:`llava_st.data.formats` (the training files are checked sample by sample
on the way, so a file ST-Synth writes always reads back).

Items are made by worker processes and collected in index order, so the
annotation files are byte-identical for a given config whatever the number of
workers. Media files are written by the workers.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..data.formats import write_charades, write_jsonl, write_refcoco, write_release_sft, write_st_align
from .config import IMAGE_TASKS, VIDEO_TASKS, SynthConfig
from .formats import EVAL_FILES, STAGES, mix_yaml, number_refcoco, training_file
from .item import ItemOutput, make_image, make_video
from .split import heldout_pairs, num_test

GENERATOR = "llava-st synth (ST-Synth)"
FORMAT_VERSION = 1
#: Top-level names a dataset folder holds; only these are removed by ``overwrite``.
OWNED = ("videos", "images", "train", "test", "eval", "ground_truth", "manifest.json", "preview.png") + tuple(
    f"{stage}.yaml" for stage in STAGES
)

CONVENTIONS = {
    "boxes_pixel": "[x1, y1, x2, y2] with x2, y2 exclusive (x2 - x1 = width in pixels); eval files use [x, y, w, h]",
    "boxes_normalised": "[x1/W, y1/H, x2/W, y2/H] rounded to 3 decimals",
    "time_in_training_files": "i / (T - 1) for the i-th of T frames sampled over meta.split (SPEC 2.1)",
    "frames": "inclusive absolute frame ids; seconds = frame / fps",
    "charades_timestamp": "[start_frame, end_frame] / (num_frames - 1), data folder videos/",
    "st_align": "absolute frames and pixel [x, y, w, h]; data folder is the dataset folder",
    "refcoco": "file_name relative to the dataset folder; images[i] pairs with annotations[i]",
}


class OutputExistsError(FileExistsError):
    """The output folder holds files and may not be replaced."""


@dataclass
class GenerationSummary:
    """What a run wrote: record counts per annotation file, media counts, timing."""

    out_dir: Path
    num_videos: int
    num_images: int
    files: dict[str, int]
    heldout: list[tuple[str, str]]
    seconds: float
    workers: int
    preview: Path | None = None
    subsets: dict[str, dict[str, int]] = field(default_factory=dict)

    def format(self) -> str:
        width = max(len(k) for k in self.files) if self.files else 10
        lines = [
            f"ST-Synth wrote {self.num_videos} videos and {self.num_images} images to {self.out_dir} "
            f"in {self.seconds:.1f} s with {self.workers} worker(s)",
            "  split   videos  images",
        ]
        for subset in ("train", "test"):
            s = self.subsets.get(subset, {})
            lines.append(f"  {subset:<6} {s.get('videos', 0):>7} {s.get('images', 0):>7}")
        lines.append("  held-out (colour, shape) pairs: " + ", ".join(f"{c} {s}" for c, s in self.heldout))
        lines.append("  annotation files (records):")
        lines += [f"    {name:<{width}}  {count:>7}" for name, count in sorted(self.files.items())]
        if self.preview is not None:
            lines.append(f"  preview: {self.preview}")
        return "\n".join(lines)


def prepare_output(out_dir: Path, overwrite: bool) -> None:
    """Create ``out_dir``, or empty an earlier ST-Synth output when ``overwrite`` is set.

    Raises:
        OutputExistsError: the folder holds files and ``overwrite`` is not set, or
            it holds files that ST-Synth did not write (they are never deleted).
        NotADirectoryError: ``out_dir`` is a file.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"output path {out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not overwrite:
            raise OutputExistsError(f"output folder {out_dir} is not empty; pass --overwrite to replace an earlier ST-Synth output")
        foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in OWNED)
        if foreign or not (out_dir / "manifest.json").is_file():
            what = f"files ST-Synth did not write: {foreign[:8]}" if foreign else "no manifest.json"
            raise OutputExistsError(f"refusing to overwrite {out_dir}: it does not look like an ST-Synth output ({what})")
        for name in OWNED:
            p = out_dir / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)


# ---------------------------------------------------------------- workers

_STATE: dict[str, Any] = {}


def _init_worker(config: SynthConfig, heldout: frozenset, out_dir: str | None) -> None:
    _STATE.update(config=config, heldout=heldout, out_dir=Path(out_dir) if out_dir else None)


def _run_job(job: tuple[str, int]) -> ItemOutput:
    kind, index = job
    make = make_video if kind == "video" else make_image
    return make(_STATE["config"], index, _STATE["heldout"], _STATE["out_dir"])


@contextmanager
def _item_results(
    jobs: list[tuple[str, int]], config: SynthConfig, heldout, out_dir: Path | None, workers: int
) -> Iterator[Iterator[ItemOutput]]:
    """Results of ``jobs`` in job order, made here (one worker) or by a process pool."""
    initargs = (config, heldout, str(out_dir) if out_dir else None)
    if workers <= 1:
        _init_worker(*initargs)
        yield (_run_job(job) for job in jobs)
        return
    # fork where the platform has it: workers start at once and scripts need no __main__ guard;
    # the pool is made before any helper thread (progress bar) exists. Results do not depend on it.
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with mp.get_context(method).Pool(workers, initializer=_init_worker, initargs=initargs) as pool:
        yield pool.imap(_run_job, jobs, chunksize=4)


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def generate(
    config: SynthConfig,
    out_dir: str | Path,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = False,
    preview: bool = True,
) -> GenerationSummary:
    """Generate the dataset described by ``config`` into ``out_dir``.

    Args:
        workers: processes making items (1 = in this process); does not change the content.
        overwrite: replace an earlier ST-Synth output in ``out_dir``.
        progress: show a tqdm progress bar on stderr.
        preview: draw ``preview.png`` (a few frames with their boxes).
    """
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    out = Path(out_dir)
    prepare_output(out, overwrite)
    # a provisional manifest marks the folder as ours, so an interrupted run can be overwritten
    (out / "manifest.json").write_text(json.dumps({"generator": GENERATOR, "complete": False}) + "\n", encoding="utf-8")
    started = time.perf_counter()
    heldout = heldout_pairs(config)
    jobs = [("video", i) for i in range(config.num_videos)] + [("image", i) for i in range(config.num_images)]

    files: dict[str, list[Any]] = defaultdict(list)
    truth: dict[str, list[Any]] = {"video": [], "image": []}
    from tqdm import tqdm

    with _item_results(jobs, config, heldout, out, workers) as results, tqdm(
        total=len(jobs), desc="st-synth", unit="item", disable=not progress, dynamic_ncols=True
    ) as bar:
        for job, result in zip(jobs, results):
            for name, records in result.files.items():
                files[name].extend(records)
            truth[job[0]].append(result.truth)
            bar.update(1)

    counts: dict[str, int] = {}
    for subset in ("train", "test"):
        for task in VIDEO_TASKS + IMAGE_TASKS:
            name = training_file(subset, task)
            write_release_sft(out / name, files.get(name, []))  # checks every sample as the reader does
            counts[name] = len(files.get(name, []))
    for task, name in EVAL_FILES.items():
        records = files.get(name, [])
        if task == "rec":
            write_refcoco(out / name, number_refcoco(records))
        elif task == "tvg":
            write_charades(out / name, records)
        else:
            write_st_align(out / name, records)
        counts[name] = len(records)
    write_jsonl(out / "ground_truth/videos.jsonl", truth["video"])
    write_jsonl(out / "ground_truth/images.jsonl", truth["image"])
    counts["ground_truth/videos.jsonl"] = len(truth["video"])
    counts["ground_truth/images.jsonl"] = len(truth["image"])
    for stage in STAGES:
        (out / f"{stage}.yaml").write_text(mix_yaml(stage), encoding="utf-8")

    subsets = {
        "test": {
            "videos": num_test(config.num_videos, config.split.test_fraction),
            "images": num_test(config.num_images, config.split.test_fraction),
        }
    }
    subsets["train"] = {
        "videos": config.num_videos - subsets["test"]["videos"],
        "images": config.num_images - subsets["test"]["images"],
    }
    held = sorted(heldout)
    manifest = {
        "generator": GENERATOR,
        "format_version": FORMAT_VERSION,
        "complete": True,
        "config": config.to_dict(),
        "heldout_pairs": [list(p) for p in held],
        "subsets": subsets,
        "records": dict(sorted(counts.items())),
        "conventions": CONVENTIONS,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")

    preview_path = None
    if preview:
        from .preview import make_preview

        preview_path = make_preview(out)
    return GenerationSummary(
        out_dir=out,
        num_videos=config.num_videos,
        num_images=config.num_images,
        files=counts,
        heldout=held,
        seconds=time.perf_counter() - started,
        workers=workers,
        preview=preview_path,
        subsets=subsets,
    )
