"""The benchmarks we score, by name, and where their files sit under a data root.

The layout under ``--data-root`` is the release's (``inference/config.yaml``):

=================  ==================================  ====================
benchmark          annotation file                      media folder
=================  ==================================  ====================
refcoco[+|g]       ``refcoco/<name>_<split>.json``       ``refcoco/sources``
charades-sta       ``charades/test.json``                ``charades/sources``
stvg / svg / elc   ``st-align/<name>.json``              ``st-align/sources``
=================  ==================================  ====================

ST-Synth's evaluation files (written by ``llava-st synth``) use the same
formats; the ``synth-*`` benchmarks read them with the same readers and
scoring from a dataset folder given as the data root:

=================  ==================================  ====================
synth-rec          ``eval/refcoco_style_rec.json``       the dataset folder
synth-tvg          ``eval/charades_sta_style_tvg.json``  ``videos``
synth-stvg / -svg  ``eval/st_align_<task>.json``         the dataset folder
/ -elc
=================  ==================================  ====================

They have no published numbers.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import ConfigError
from ..protocol.tokens import BinCounts
from .base import Benchmark
from .charades import CharadesSTA
from .refcoco import SPLITS, RefCOCO
from .st_align import STAlign

#: ST-Synth benchmark -> (released benchmark whose format and scoring it uses, file, media folder).
SYNTH: dict[str, tuple[str, str, str]] = {
    "synth-rec": ("refcoco", "eval/refcoco_style_rec.json", "."),
    "synth-tvg": ("charades-sta", "eval/charades_sta_style_tvg.json", "videos"),
    "synth-stvg": ("stvg", "eval/st_align_stvg.json", "."),
    "synth-svg": ("svg", "eval/st_align_svg.json", "."),
    "synth-elc": ("elc", "eval/st_align_elc.json", "."),
}

BENCHMARKS: tuple[str, ...] = ("refcoco", "refcoco+", "refcocog", "charades-sta", "stvg", "svg", "elc") + tuple(SYNTH)


def get_benchmark(name: str, *, bins: BinCounts) -> Benchmark:
    """The benchmark called ``name`` (one of :data:`BENCHMARKS`), reading answers with ``bins`` in canonical mode."""
    if name in SYNTH:
        bench = get_benchmark(SYNTH[name][0], bins=bins)
        bench.name = name  # same reader and scoring, its own name (no published numbers)
        return bench
    if name in SPLITS:
        return RefCOCO(name, bins=bins)
    if name == "charades-sta":
        return CharadesSTA(bins=bins)
    if name in ("stvg", "svg", "elc"):
        return STAlign(name, bins=bins)
    raise ConfigError(f"unknown benchmark {name!r}; expected one of {BENCHMARKS}")


def default_paths(name: str, data_root: str | Path, split: str | None = None) -> tuple[Path, Path]:
    """``(annotation file, media folder)`` of a benchmark under ``data_root``.

    Raises:
        ValueError: a RefCOCO-family benchmark without a valid ``split``.
    """
    root = Path(data_root)
    if name in SYNTH:
        _, data, media = SYNTH[name]
        return root / data, root / media
    if name in SPLITS:
        if split not in SPLITS[name]:
            raise ConfigError(f"{name} needs --split, one of {SPLITS[name]}")
        return root / "refcoco" / f"{name}_{split}.json", root / "refcoco" / "sources"
    if name == "charades-sta":
        return root / "charades" / "test.json", root / "charades" / "sources"
    if name in ("stvg", "svg", "elc"):
        return root / "st-align" / f"{name}.json", root / "st-align" / "sources"
    raise ConfigError(f"unknown benchmark {name!r}; expected one of {BENCHMARKS}")


def infer_split(name: str, path: str | Path) -> str | None:
    """The RefCOCO split named by a released file name (``refcoco+_testA.json`` -> ``testA``), else ``None``."""
    if name not in SPLITS:
        return None
    m = re.fullmatch(re.escape(name) + r"_(\w+)\.json", Path(path).name)
    if m and m.group(1) in SPLITS[name]:
        return m.group(1)
    return None


__all__ = ["BENCHMARKS", "SYNTH", "default_paths", "get_benchmark", "infer_split"]
