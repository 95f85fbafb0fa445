"""Training mixes (SPEC §4): a YAML list of sources, each with a sampling strategy.

A mix file::

    datasets:
      - json_path: train/tvg.json        # a training file (SPEC §4 format)
        data_folder: .                   # media paths of its samples are relative to this
        source: st-synth/tvg             # a name for logs and metrics
        sampling_strategy: all           # all | first:N | end:N | random:N, N may be P%

``json_path`` and ``data_folder`` that are relative are read relative to the
folder holding the mix file (ST-Synth writes its mixes that way); absolute
paths are used as they are. ``source`` defaults to ``json_path``.

Strategies, for a file of ``n`` samples (``k`` = N, or ``ceil(P * n / 100)``
for a percentage, at most ``n``):

* ``all``: every sample;
* ``first:N``: samples ``0 .. k-1``; ``end:N``: the last ``k``;
* ``random:N``: ``k`` samples drawn without replacement by a generator seeded
  with ``(seed, source, json_path)``, so a mix resolves to the same samples
  for a given seed on every rank and every resume.

Selected indices are returned in file order (the batch sampler shuffles).

Example: ``random:10%`` of a 95-sample file keeps ``ceil(9.5) = 10`` samples.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..errors import DataError

STRATEGY_KINDS = ("all", "first", "end", "random")
_STRATEGY_RE = re.compile(r"^(all)$|^(first|end|random):(\d+)(%?)$")
_ENTRY_KEYS = ("json_path", "data_folder", "source", "sampling_strategy")


@dataclass(frozen=True)
class Strategy:
    """A parsed ``sampling_strategy``: ``kind`` in :data:`STRATEGY_KINDS`; ``count`` is N, or the
    percentage when ``percent`` is true (``None`` for ``all``)."""

    kind: str
    count: int | None = None
    percent: bool = False

    @classmethod
    def parse(cls, text: Any) -> "Strategy":
        """``"all"``, ``"first:100"``, ``"end:5"``, ``"random:10%"`` ... -> :class:`Strategy`.

        Raises:
            ValueError: any other text, or a percentage above 100.
        """
        m = _STRATEGY_RE.match(str(text).strip()) if isinstance(text, str) else None
        if m is None:
            raise ValueError(
                f"sampling_strategy {text!r} is not one of all, first:N, end:N, random:N (N a count or a percentage like 10%)"
            )
        if m.group(1):
            return cls("all")
        count, percent = int(m.group(3)), m.group(4) == "%"
        if percent and count > 100:
            raise ValueError(f"sampling_strategy {text!r}: a percentage is at most 100%")
        return cls(m.group(2), count, percent)

    def size(self, n: int) -> int:
        """How many of ``n`` samples this strategy keeps."""
        if self.kind == "all":
            return n
        k = math.ceil(self.count * n / 100) if self.percent else self.count
        return min(k, n)

    def select(self, n: int, rng: random.Random) -> list[int]:
        """The kept indices of ``n`` samples, ascending (``rng`` is used by ``random`` only)."""
        k = self.size(n)
        if self.kind in ("all",) or k == n:
            return list(range(n))
        if self.kind == "first":
            return list(range(k))
        if self.kind == "end":
            return list(range(n - k, n))
        return sorted(rng.sample(range(n), k))

    def __str__(self) -> str:
        if self.kind == "all":
            return "all"
        return f"{self.kind}:{self.count}{'%' if self.percent else ''}"


@dataclass(frozen=True)
class MixEntry:
    """One source of a mix, paths resolved (see the module docstring)."""

    json_path: Path
    data_folder: Path
    source: str
    strategy: Strategy


def read_mix(path: str | Path) -> list[MixEntry]:
    """Read and check a mix YAML.

    Raises:
        DataError: a missing or malformed file, an unknown key, a bad strategy or a
            training file that does not exist (the message names the mix file and entry).
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such training-mix file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise DataError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("datasets"), list) or not data["datasets"]:
        raise DataError(f"{path}: a training mix is a mapping with a non-empty 'datasets' list")
    extra = sorted(set(data) - {"datasets"})
    if extra:
        raise DataError(f"{path}: unknown top-level keys {extra}; a mix holds only 'datasets'")
    base = path.parent
    entries = []
    for i, raw in enumerate(data["datasets"]):
        where = f"{path}: datasets[{i}]"
        if not isinstance(raw, dict):
            raise DataError(f"{where}: must be a mapping with {list(_ENTRY_KEYS)}")
        unknown = sorted(set(raw) - set(_ENTRY_KEYS))
        if unknown:
            raise DataError(f"{where}: unknown keys {unknown}; known keys: {list(_ENTRY_KEYS)}")
        if not isinstance(raw.get("json_path"), str) or not raw["json_path"]:
            raise DataError(f"{where}.json_path: required, the path of a training file")
        json_path = base / raw["json_path"]
        if not json_path.is_file():
            raise DataError(f"{where}.json_path: no such file {json_path}")
        folder = raw.get("data_folder", ".")
        if not isinstance(folder, str):
            raise DataError(f"{where}.data_folder: must be a path, got {folder!r}")
        source = raw.get("source", raw["json_path"])
        if not isinstance(source, str) or not source:
            raise DataError(f"{where}.source: must be a non-empty name, got {source!r}")
        try:
            strategy = Strategy.parse(raw.get("sampling_strategy", "all"))
        except ValueError as exc:
            raise DataError(f"{where}.sampling_strategy: {exc}") from None
        entries.append(MixEntry(json_path, base / folder, source, strategy))
    return entries


def select_entry(entry: MixEntry, n: int, seed: int) -> list[int]:
    """The indices of an entry's ``n`` samples that the mix keeps (see :class:`Strategy`)."""
    rng = random.Random(f"{seed}:{entry.source}:{entry.json_path.name}")
    return entry.strategy.select(n, rng)


def describe_mix(entries: Sequence[MixEntry], counts: Sequence[tuple[int, int]]) -> str:
    """One line per source: name, strategy, kept / available (for logs)."""
    return "\n".join(
        f"{e.source:<28} {str(e.strategy):<12} {kept:>8,d} of {total:,d}" for e, (kept, total) in zip(entries, counts)
    )


__all__ = ["MixEntry", "STRATEGY_KINDS", "Strategy", "describe_mix", "read_mix", "select_entry"]
