"""File reading, field checks and JSON writers shared by the format modules.

Every check raises :class:`AnnotationError`, whose message names the file,
the sample's position in it and the field (``meta.split``,
``conversations[1].value`` ...), so that a bad record in a file of a million
is found at once. Whole numbers keep their ``int`` type when read, so that a
record read and written again has the same text.

Writers put one record per line (a JSON list is still one valid JSON value),
which keeps large files easy to grep and diff, and never write NaN or
infinity.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from ...errors import DataError


class AnnotationError(DataError):
    """A data or annotation file that does not have its format.

    ``path``, ``index`` (the sample's 0-based position, ``None`` for a
    problem with the whole file) and ``field`` say where; the message holds
    all three and the problem.
    """

    def __init__(self, path: str | Path, index: int | None, field: str, problem: str):
        self.path, self.index, self.field, self.problem = str(path), index, field, problem
        where = f"sample {index}, " if index is not None else ""
        super().__init__(f"{path}: {where}field {field!r}: {problem}")

    def __reduce__(self):  # picklable across worker processes (the default would call __init__ with one argument)
        return (type(self), (self.path, self.index, self.field, self.problem))


WHOLE_FILE = "<file>"

# ----------------------------------------------------------------- reading


def load_json(path: str | Path) -> Any:
    """Read one JSON value; a missing or malformed file is an :class:`AnnotationError` naming it."""
    p = Path(path)
    if not p.is_file():
        raise AnnotationError(p, None, WHOLE_FILE, "no such file")
    try:
        with p.open("r", encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise AnnotationError(p, None, WHOLE_FILE, f"not valid JSON ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise AnnotationError(p, None, WHOLE_FILE, f"not UTF-8 text ({exc})") from exc


def load_json_list(path: str | Path) -> list:
    """Read a JSON file that must hold a list of samples."""
    p = Path(path)
    data = load_json(p)
    if not isinstance(data, list):
        raise AnnotationError(p, None, WHOLE_FILE, f"must be a JSON list of samples, got {type(data).__name__}")
    return data


def iter_jsonl(path: str | Path) -> Iterator[Any]:
    """The records of a JSONL file, one per non-blank line.

    A line that is not valid JSON is an error naming its sample index and line
    number (the release's loader skips such lines with a message; losing
    training samples silently is worse than stopping).
    """
    p = Path(path)
    if not p.is_file():
        raise AnnotationError(p, None, WHOLE_FILE, "no such file")
    index, lineno = 0, 0
    with p.open("r", encoding="utf-8") as fh:
        lines = enumerate(fh, 1)
        while True:
            try:
                lineno, line = next(lines)
            except StopIteration:
                return
            except UnicodeDecodeError as exc:
                raise AnnotationError(p, index, WHOLE_FILE, f"not UTF-8 text after line {lineno} ({exc})") from exc
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise AnnotationError(p, index, WHOLE_FILE, f"line {lineno} is not valid JSON ({exc})") from exc
            yield record
            index += 1


def is_jsonl(path: str | Path) -> bool:
    """Whether a samples file is JSONL: by its ``.jsonl`` suffix, else by its first character not being ``[``."""
    p = Path(path)
    if p.suffix.lower() == ".jsonl":
        return True
    if not p.is_file():
        return False
    with p.open("r", encoding="utf-8", errors="replace") as fh:
        while True:
            chunk = fh.read(4096)
            if not chunk:
                return False  # empty file: read as JSON, which reports it
            stripped = chunk.lstrip()
            if stripped:
                return not stripped.startswith("[")


def load_records(path: str | Path) -> list:
    """The samples of a file that is either one JSON list or JSONL (see :func:`is_jsonl`)."""
    return list(iter_jsonl(path)) if is_jsonl(path) else load_json_list(path)


# ----------------------------------------------------------------- field checks
# Each takes the file, the sample index and the field name, and raises
# AnnotationError(path, index, field, problem).


def need(obj: Any, key: str, path: str | Path, index: int | None, prefix: str = "") -> Any:
    """``obj[key]``; ``obj`` must be an object holding ``key`` (``prefix`` names where ``obj`` sits)."""
    if not isinstance(obj, Mapping):
        raise AnnotationError(path, index, prefix.rstrip(".") or "<item>", f"must be an object, got {type(obj).__name__}")
    if key not in obj:
        raise AnnotationError(path, index, prefix + key, "missing")
    return obj[key]


def as_object(value: Any, path: str | Path, index: int | None, field: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise AnnotationError(path, index, field, f"must be an object, got {type(value).__name__}")
    return value


def as_text(value: Any, path: str | Path, index: int | None, field: str, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise AnnotationError(path, index, field, f"must be text, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise AnnotationError(path, index, field, "is empty")
    return value


def as_number(value: Any, path: str | Path, index: int | None, field: str) -> float:
    """A finite number; a whole number stays an ``int`` (so it is written back the same)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise AnnotationError(path, index, field, f"must be a finite number, got {value!r}")
    return value


def as_positive(value: Any, path: str | Path, index: int | None, field: str) -> float:
    v = as_number(value, path, index, field)
    if v <= 0:
        raise AnnotationError(path, index, field, f"must be positive, got {value!r}")
    return v


def as_frame(value: Any, path: str | Path, index: int | None, field: str) -> int:
    """A non-negative whole frame number (``12`` or ``12.0``), returned as ``int``."""
    v = as_number(value, path, index, field)
    if v != int(v) or v < 0:
        raise AnnotationError(path, index, field, f"must be a non-negative whole frame number, got {value!r}")
    return int(v)


def as_pair(value: Any, path: str | Path, index: int | None, field: str, what: str) -> tuple[Any, Any]:
    """A two-element list, such as ``[start, end]`` (``what`` names the elements in the message)."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise AnnotationError(path, index, field, f"must be {what}, got {value!r}")
    return value[0], value[1]


def as_xywh(value: Any, path: str | Path, index: int | None, field: str) -> tuple[float, float, float, float]:
    """A pixel box ``[x, y, w, h]`` with ``w, h >= 0``."""
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise AnnotationError(path, index, field, f"must be a box [x, y, w, h], got {value!r}")
    x, y, w, h = (as_number(v, path, index, field) for v in value)
    if w < 0 or h < 0:
        raise AnnotationError(path, index, field, f"box [x, y, w, h] has a negative size: {list(value)}")
    return (x, y, w, h)


# ----------------------------------------------------------------- writing


def dumps(value: Any) -> str:
    """One record as compact JSON text (UTF-8 kept, NaN refused)."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def json_list_text(records: Sequence[Any]) -> str:
    """A JSON list with one record per line (no trailing newline)."""
    return "[\n" + ",\n".join(dumps(r) for r in records) + "\n]" if records else "[]"


def write_json_list(path: str | Path, records: Sequence[Any]) -> Path:
    """Write ``records`` as a JSON list, one record per line; parent folders are made."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json_list_text(records) + "\n", encoding="utf-8")
    return p


def write_jsonl(path: str | Path, records: Iterable[Any]) -> Path:
    """Write ``records`` as JSONL, one per line; parent folders are made."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("".join(dumps(r) + "\n" for r in records), encoding="utf-8")
    return p


def write_records(path: str | Path, records: Sequence[Any], jsonl: bool | None = None) -> Path:
    """Write a samples file: JSONL when ``jsonl`` is set or (``None``) the name ends in ``.jsonl``, else a JSON list."""
    if jsonl is None:
        jsonl = Path(path).suffix.lower() == ".jsonl"
    return write_jsonl(path, records) if jsonl else write_json_list(path, records)


__all__ = [
    "AnnotationError",
    "WHOLE_FILE",
    "as_frame",
    "as_number",
    "as_object",
    "as_pair",
    "as_positive",
    "as_text",
    "as_xywh",
    "dumps",
    "is_jsonl",
    "iter_jsonl",
    "json_list_text",
    "load_json",
    "load_json_list",
    "load_records",
    "need",
    "write_json_list",
    "write_jsonl",
    "write_records",
]
