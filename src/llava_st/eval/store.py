"""Append-only JSONL prediction files of a run, one per rank, that survive being killed at any moment.

Layout of a run folder::

    run.json                          what the run is (benchmark, data, mode, frames, seed): resume checks it
    predictions-rank<r>-of-<W>.jsonl  rank r's records, appended one batch at a time (flush + fsync)
    predictions.jsonl                 all records in id order (rank 0 writes it at the end)
    report.json, report.md            the final report

Only lines that end with a newline count: a kill can leave the last line of a
file cut short, and :func:`read_records` ignores it (``repair=True``
truncates the file to its last complete line, so that the next append starts
on a fresh line). A malformed line anywhere else is corruption, an error.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterable
from ..errors import EvalError

MANIFEST = "run.json"
MERGED = "predictions.jsonl"
_SHARD_RE = re.compile(r"predictions-rank(\d+)-of-(\d+)\.jsonl\Z")


class StoreError(EvalError, RuntimeError):
    """A run folder whose files are corrupt or belong to another run."""


def shard_path(out_dir: str | Path, rank: int, world_size: int) -> Path:
    return Path(out_dir) / f"predictions-rank{rank}-of-{world_size}.jsonl"


def shard_files(out_dir: str | Path) -> list[Path]:
    """Every rank file in the folder, of this or an earlier (resumed) run, in name order."""
    d = Path(out_dir)
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if _SHARD_RE.match(p.name))


def read_records(path: str | Path, repair: bool = False) -> list[dict[str, Any]]:
    """The complete records of one JSONL file.

    A last line without its newline (cut by a kill) is ignored, and with
    ``repair`` cut off the file. Raises :class:`StoreError` for a complete line
    that is not a JSON object with an integer ``id``.
    """
    p = Path(path)
    if not p.exists():
        return []
    data = p.read_bytes()
    end = data.rfind(b"\n") + 1  # bytes up to and including the last newline
    if repair and end < len(data):
        with p.open("r+b") as fh:
            fh.truncate(end)
            fh.flush()
            os.fsync(fh.fileno())
    out = []
    for lineno, line in enumerate(data[:end].split(b"\n")[:-1], 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise StoreError(f"{p}: line {lineno} is not valid JSON ({exc}); the file is corrupt") from exc
        if not isinstance(rec, dict) or isinstance(rec.get("id"), bool) or not isinstance(rec.get("id"), int):
            raise StoreError(f"{p}: line {lineno} is not a record with an integer 'id'")
        out.append(rec)
    return out


def finished(out_dir: str | Path) -> dict[int, tuple[Path, dict[str, Any]]]:
    """``{id: (file, record)}`` over every rank file of the folder.

    Raises:
        StoreError: an id recorded twice (in one file or in two).
    """
    seen: dict[int, tuple[Path, dict[str, Any]]] = {}
    for path in shard_files(out_dir):
        for rec in read_records(path):
            i = rec["id"]
            if i in seen:
                raise StoreError(f"sample {i} is recorded twice, in {seen[i][0].name} and {path.name}")
            seen[i] = (path, rec)
    return seen


class ShardWriter:
    """Appends records to one rank file; each :meth:`write` is flushed and synced before it returns."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("ab")

    def write(self, records: Iterable[dict[str, Any]]) -> None:
        payload = b"".join(json.dumps(r, ensure_ascii=False).encode("utf-8") + b"\n" for r in records)
        if payload:
            self._fh.write(payload)
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_manifest(out_dir: str | Path, manifest: dict[str, Any]) -> None:
    path = Path(out_dir) / MANIFEST
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_manifest(out_dir: str | Path) -> dict[str, Any] | None:
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise StoreError(f"{path} is not valid JSON ({exc})") from exc


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    """Write a whole JSONL file at once (through a temporary file, so a kill never leaves half of it)."""
    p = Path(path)
    tmp = p.with_suffix(p.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, p)


__all__ = [
    "MANIFEST",
    "MERGED",
    "ShardWriter",
    "StoreError",
    "finished",
    "read_manifest",
    "read_records",
    "shard_files",
    "shard_path",
    "write_jsonl",
    "write_manifest",
]
