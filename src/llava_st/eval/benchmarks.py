"""The benchmarks we score, by name, and where their files sit under a data root.

The layout under ``--data-root`` is the release's (``inference/config.yaml``),
extended with ActivityNet Captions:

=================  ===========================================  ======================
benchmark          annotation file                               media folder
=================  ===========================================  ======================
refcoco[+|g]       ``refcoco/<name>_<split>.json``                ``refcoco/sources``
refcocog-reg       ``refcoco/refcocog_<split>.json``              ``refcoco/sources``
charades-sta       ``charades/test.json``                         ``charades/sources``
charades-tr        ``charades/test.json``                         ``charades/sources``
stvg / svg / elc   ``st-align/<name>.json``                       ``st-align/sources``
activitynet-tr     ``activitynet/<split>.json`` (val_1, val_2)    ``activitynet/videos``
activitynet-dvc    ``activitynet/<split>.json`` (val_1, val_2)    ``activitynet/videos``
=================  ===========================================  ======================

ST-Synth's evaluation files (written by ``llava-st synth``) are read from a
dataset folder given as the data root. REC, TVG, STVG, SVG and ELC have files
in the released benchmarks' formats and use their readers and scoring; REG,
TR, DVC and DGC have no released evaluation format and are read from the
held-out split's files in the release's training format
(:mod:`.release_format`; ``--data`` may name any file of that format):

=================  ==================================  ====================
synth-rec          ``eval/refcoco_style_rec.json``       the dataset folder
synth-tvg          ``eval/charades_sta_style_tvg.json``  ``videos``
synth-stvg / -svg  ``eval/st_align_<task>.json``         the dataset folder
/ -elc
synth-reg / -tr /  ``test/<task>.json``                  the dataset folder
-dvc / -dgc
=================  ==================================  ====================

Only RefCOCO/+/g, Charades-STA and ST-Align have published numbers and a
published-compatible mode; the release scores no REG, TR, DVC or DGC.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

from ..errors import ConfigError
from ..protocol.tokens import BinCounts
from .base import Benchmark
from .charades import CharadesSTA
from .descriptions import RegionCaptioning, SpanCaptioning
from .dgc import GroundedCaptioning
from .dvc import DenseVideoCaptioning
from .refcoco import SPLITS, RefCOCO
from .st_align import STAlign

#: ST-Synth benchmark -> (benchmark whose format and scoring it uses, file, media folder).
SYNTH: dict[str, tuple[str, str, str]] = {
    "synth-rec": ("refcoco", "eval/refcoco_style_rec.json", "."),
    "synth-tvg": ("charades-sta", "eval/charades_sta_style_tvg.json", "videos"),
    "synth-stvg": ("stvg", "eval/st_align_stvg.json", "."),
    "synth-svg": ("svg", "eval/st_align_svg.json", "."),
    "synth-elc": ("elc", "eval/st_align_elc.json", "."),
    "synth-reg": ("synth-reg", "test/reg.json", "."),
    "synth-tr": ("synth-tr", "test/tr.json", "."),
    "synth-dvc": ("synth-dvc", "test/dvc.json", "."),
    "synth-dgc": ("synth-dgc", "test/dgc.json", "."),
}

#: Splits of the ActivityNet Captions validation set (two annotations of the same videos).
ACTIVITYNET_SPLITS = ("val_1", "val_2")

#: Benchmarks of their own (not an alias of another's format): name -> factory(bins).
_OWN: dict[str, Callable[[BinCounts], Benchmark]] = {
    "charades-sta": lambda bins: CharadesSTA(bins=bins),
    **{name: (lambda bins, n=name: RefCOCO(n, bins=bins)) for name in SPLITS},
    **{name: (lambda bins, n=name: STAlign(n, bins=bins)) for name in ("stvg", "svg", "elc")},
    "refcocog-reg": lambda bins: RegionCaptioning("refcocog-reg", "refcocog", bins=bins),
    "charades-tr": lambda bins: SpanCaptioning("charades-tr", "charades", bins=bins),
    "activitynet-tr": lambda bins: SpanCaptioning("activitynet-tr", "activitynet", bins=bins),
    "activitynet-dvc": lambda bins: DenseVideoCaptioning("activitynet-dvc", "activitynet", bins=bins),
    "synth-reg": lambda bins: RegionCaptioning("synth-reg", "release", bins=bins),
    "synth-tr": lambda bins: SpanCaptioning("synth-tr", "release", bins=bins),
    "synth-dvc": lambda bins: DenseVideoCaptioning("synth-dvc", "release", bins=bins),
    "synth-dgc": lambda bins: GroundedCaptioning("synth-dgc", bins=bins),
}

BENCHMARKS: tuple[str, ...] = (
    "refcoco", "refcoco+", "refcocog", "charades-sta", "stvg", "svg", "elc",
    "refcocog-reg", "charades-tr", "activitynet-tr", "activitynet-dvc",
) + tuple(SYNTH)  # fmt: skip


def get_benchmark(name: str, *, bins: BinCounts) -> Benchmark:
    """The benchmark called ``name`` (one of :data:`BENCHMARKS`), reading answers with ``bins`` in canonical mode."""
    if name in SYNTH and SYNTH[name][0] != name:
        bench = get_benchmark(SYNTH[name][0], bins=bins)
        bench.name = name  # same reader and scoring, its own name (no published numbers)
        return bench
    if name in _OWN:
        return _OWN[name](bins)
    raise ConfigError(f"unknown benchmark {name!r}; expected one of {BENCHMARKS}")


def _split_of(name: str) -> tuple[str, tuple[str, ...]] | None:
    """``(file prefix, splits)`` of a benchmark whose file depends on a split."""
    if name in SPLITS:
        return name, SPLITS[name]
    if name == "refcocog-reg":
        return "refcocog", SPLITS["refcocog"]
    if name in ("activitynet-tr", "activitynet-dvc"):
        return "", ACTIVITYNET_SPLITS
    return None


def default_paths(name: str, data_root: str | Path, split: str | None = None) -> tuple[Path, Path]:
    """``(annotation file, media folder)`` of a benchmark under ``data_root``.

    Raises:
        ConfigError: an unknown benchmark, or one whose file depends on a split without a valid ``split``.
    """
    root = Path(data_root)
    if name in SYNTH:
        _, data, media = SYNTH[name]
        return root / data, root / media
    splits = _split_of(name)
    if splits is not None and split not in splits[1]:
        raise ConfigError(f"{name} needs --split, one of {splits[1]}")
    if name in SPLITS or name == "refcocog-reg":
        return root / "refcoco" / f"{splits[0]}_{split}.json", root / "refcoco" / "sources"  # type: ignore[index]
    if name in ("charades-sta", "charades-tr"):
        return root / "charades" / "test.json", root / "charades" / "sources"
    if name in ("stvg", "svg", "elc"):
        return root / "st-align" / f"{name}.json", root / "st-align" / "sources"
    if name in ("activitynet-tr", "activitynet-dvc"):
        return root / "activitynet" / f"{split}.json", root / "activitynet" / "videos"
    raise ConfigError(f"unknown benchmark {name!r}; expected one of {BENCHMARKS}")


def infer_split(name: str, path: str | Path) -> str | None:
    """The split named by a released file name (``refcoco+_testA.json`` -> ``testA``, ``val_2.json`` -> ``val_2``), else ``None``."""
    splits = _split_of(name)
    if splits is None:
        return None
    prefix, allowed = splits
    pattern = (re.escape(prefix) + r"_(\w+)\.json") if prefix else r"(\w+)\.json"
    m = re.fullmatch(pattern, Path(path).name)
    if m and m.group(1) in allowed:
        return m.group(1)
    return None


__all__ = ["ACTIVITYNET_SPLITS", "BENCHMARKS", "SYNTH", "default_paths", "get_benchmark", "infer_split"]
