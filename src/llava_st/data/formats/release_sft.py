"""The release's training format (SPEC §4): LLaVA-style conversations plus coordinate values.

One file per source, either a JSON list or JSONL (one sample per line)::

    {"id": "st-synth/stvg/v000003/0",
     "video": "videos/000003.mp4",                  # or "image": ..., or neither (text only)
     "conversations": [{"from": "human", "value": "<video>\\nWhen is ... {<TEMP-INPUT><TEMP-INPUT>} ..."},
                       {"from": "gpt", "value": "During the span of  {<TEMP-OUTPUT><TEMP-OUTPUT>} ..."}],
     "variables": {"temporal_input_locations": [0.2, 0.6], "temporal_output_locations": [...],
                   "spatial_height_input_locations": [], "spatial_height_output_locations": [...],
                   "spatial_width_input_locations": [], "spatial_width_output_locations": [...]},
     "meta": {"split": [a, b], ...}}

The text holds bare placeholders (``<TEMP-INPUT>``, ``<WIDTH-OUTPUT>`` ...)
and ``variables`` the values, in order of appearance per placeholder kind:
the i-th ``<TEMP-OUTPUT>`` of the conversation takes
``temporal_output_locations[i]``. Values are normalised to [0, 1] (times over
the sampled clip ``meta.split``, boxes ``x1, y1, x2, y2`` over the frame).
Coordinates may also be written in the text as the release's markup
(``{0.2, 0.6}``, ``[0.1, 0.2, 0.5, 0.7]``, ``Starts in 0.4``, ``<t0.4>``): the
reader converts them as the release does
(:func:`llava_st.protocol.coords.convert_conversation`), so a read sample
always holds bare placeholders and all six lists.

What the reader checks, each failure an :class:`AnnotationError` naming the
file, the sample index and the field:

* ``id`` (optional) is text or a whole number; at most one of ``video`` /
  ``image``, a non-empty path;
* ``conversations``: at least two turns ``{"from", "value"}``, an optional
  ``system`` turn first, then ``human`` and ``gpt`` alternating, ending with
  ``gpt``; every text non-empty;
* the media tag: a video sample holds exactly one ``<video>`` (an image
  sample one ``<image>``) in a human turn and no tag of the other kind; a
  text-only sample holds none;
* coordinates: markup well formed and in [0, 1]; INPUT placeholders only in
  human/system turns and OUTPUT placeholders only in gpt turns; ``variables``
  has only the six keys, each a list of numbers in [0, 1], and each list has
  exactly as many values as its kind has bare placeholders;
* ``meta`` (optional) is an object; its ``split``, when given, is
  ``[a, b]`` whole frames with ``a <= b``.

Other top-level keys are kept (``extra``) and written back; other keys of a
turn are not kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal, Mapping, Sequence

from ...protocol.coords import CoordinateError, Variables, convert_conversation, to_placeholders
from ...protocol.tokens import IMAGE_TAG, VARIABLE_KEYS, VIDEO_TAG
from ._io import (
    AnnotationError,
    as_frame,
    as_object,
    as_pair,
    as_text,
    is_jsonl,
    iter_jsonl,
    load_json_list,
    need,
    write_records,
)

MediaKind = Literal["video", "image"]
MEDIA_KINDS: tuple[str, ...] = ("video", "image")
MEDIA_TAGS = {"video": VIDEO_TAG, "image": IMAGE_TAG}
#: Turn roles of the format: the human asks, gpt answers, an optional system turn comes first.
ROLES: tuple[str, ...] = ("system", "human", "gpt")
_KEYS = ("id", "video", "image", "conversations", "variables", "meta")


@dataclass(frozen=True)
class Turn:
    """One turn: ``role`` is ``"human"``, ``"gpt"`` or ``"system"``; ``text`` holds bare placeholders."""

    role: str
    text: str

    def to_dict(self) -> dict[str, str]:
        return {"from": self.role, "value": self.text}


@dataclass(frozen=True)
class SFTSample:
    """One training sample of the release's format (see the module docstring).

    Attributes:
        conversations: the turns, coordinates as bare placeholders.
        variables: the six value lists (:class:`~llava_st.protocol.coords.Variables`).
        id: the sample's id as given (``None`` when the file has none).
        media_kind: ``"video"``, ``"image"`` or ``None`` (text only).
        media: path of the video or image, relative to the source's data folder.
        meta: the ``meta`` object as read (``split`` among others).
        extra: other top-level keys, as read.
        index: position in the file (not part of the record's value).
    """

    conversations: tuple[Turn, ...]
    variables: Variables = field(default_factory=Variables)
    id: str | int | None = None
    media_kind: MediaKind | None = None
    media: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    index: int = field(default=0, compare=False)

    @property
    def split(self) -> tuple[int, int] | None:
        """``meta.split``: the inclusive frame range a video is sampled over (``None``: the whole video)."""
        s = self.meta.get("split")
        return None if s is None else (int(s[0]), int(s[1]))

    def to_dict(self) -> dict[str, Any]:
        """The sample as the file holds it (key order ``id``, media, ``conversations``, ``variables``, ``meta``)."""
        out: dict[str, Any] = {}
        if self.id is not None:
            out["id"] = self.id
        if self.media_kind is not None:
            out[self.media_kind] = self.media
        out["conversations"] = [t.to_dict() for t in self.conversations]
        out["variables"] = self.variables.to_dict()
        out["meta"] = dict(self.meta)
        out.update(self.extra)
        return out


# ----------------------------------------------------------------- reading


def read_release_sft(path: str | Path) -> list[SFTSample]:
    """Read a training file (a JSON list, or JSONL when named ``.jsonl`` or not starting with ``[``).

    Raises:
        AnnotationError: the first malformed sample, naming the file, its index and the field.
    """
    return list(iter_release_sft(path))


def iter_release_sft(path: str | Path) -> Iterator[SFTSample]:
    """The samples of a training file one by one (a JSONL file is read line by line)."""
    p = Path(path)
    records: Iterable[Any] = iter_jsonl(p) if is_jsonl(p) else load_json_list(p)
    for i, record in enumerate(records):
        yield parse_sft_sample(record, p, i)


def parse_sft_sample(record: Any, path: str | Path = "<memory>", index: int = 0) -> SFTSample:
    """Check one sample (a dict as loaded from JSON) and return its typed form.

    ``path`` and ``index`` only go into error messages and ``SFTSample.index``.

    Raises:
        AnnotationError: naming ``path``, ``index`` and the field.
    """
    p, i = path, index
    item = as_object(record, p, i, "<item>")
    sample_id = item.get("id")
    if sample_id is not None and (isinstance(sample_id, bool) or not isinstance(sample_id, (str, int))):
        raise AnnotationError(p, i, "id", f"must be text or a whole number, got {sample_id!r}")
    kinds = [k for k in MEDIA_KINDS if k in item]
    if len(kinds) > 1:
        raise AnnotationError(p, i, "video/image", "a sample has one video or one image, not both")
    kind = kinds[0] if kinds else None
    media = as_text(item[kind], p, i, kind) if kind else None
    raw_turns = _read_turns(need(item, "conversations", p, i), p, i)
    _check_media_tags(raw_turns, kind, p, i)
    variables = _read_variables(item.get("variables"), p, i)
    turns, values = _convert(raw_turns, variables, p, i)
    meta = as_object(item.get("meta", {}), p, i, "meta")
    if "split" in meta:
        pair = as_pair(meta["split"], p, i, "meta.split", "[first, last] frame numbers")
        a, b = (as_frame(v, p, i, "meta.split") for v in pair)
        if b < a:
            raise AnnotationError(p, i, "meta.split", f"{list(pair)} ends before it starts")
    extra = {k: v for k, v in item.items() if k not in _KEYS}
    return SFTSample(turns, values, sample_id, kind, media, dict(meta), extra, index=i)  # type: ignore[arg-type]


def _read_turns(conv: Any, p: str | Path, i: int) -> list[Turn]:
    if not isinstance(conv, list) or len(conv) < 2:
        raise AnnotationError(p, i, "conversations", "must be a list of at least two turns (human, gpt)")
    turns = []
    for t, turn in enumerate(conv):
        where = f"conversations[{t}]"
        role = need(turn, "from", p, i, where + ".")
        if role not in ROLES:
            raise AnnotationError(p, i, where + ".from", f"must be one of {list(ROLES)}, got {role!r}")
        text = as_text(need(turn, "value", p, i, where + "."), p, i, where + ".value")
        turns.append(Turn(role, text))
    body = turns[1:] if turns[0].role == "system" else turns
    for t, turn in enumerate(body):
        expected = "human" if t % 2 == 0 else "gpt"
        if turn.role != expected:
            where = f"conversations[{t + len(turns) - len(body)}].from"
            raise AnnotationError(
                p, i, where, f"is {turn.role!r} where {expected!r} was expected (an optional system turn, "
                "then human and gpt turns alternating)"
            )
    if not body or body[-1].role != "gpt":
        raise AnnotationError(p, i, "conversations", "must end with a gpt turn (the answer to learn)")
    return turns


def _check_media_tags(turns: Sequence[Turn], kind: str | None, p: str | Path, i: int) -> None:
    for other_kind, tag in MEDIA_TAGS.items():
        if other_kind == kind:
            continue
        for t, turn in enumerate(turns):
            if tag in turn.text:
                why = "a text-only sample" if kind is None else f"a {kind} sample"
                raise AnnotationError(p, i, f"conversations[{t}].value", f"holds {tag}, which {why} must not hold")
    if kind is None:
        return
    tag = MEDIA_TAGS[kind]
    found = [t for t, turn in enumerate(turns) for _ in range(turn.text.count(tag))]
    if len(found) != 1:
        raise AnnotationError(p, i, "conversations", f"a {kind} sample holds exactly one {tag}, found {len(found)}")
    if turns[found[0]].role != "human":
        raise AnnotationError(p, i, f"conversations[{found[0]}].value", f"{tag} must be in a human turn")


def _read_variables(raw: Any, p: str | Path, i: int) -> dict[str, list[float]]:
    if raw is None:
        return {}
    data = as_object(raw, p, i, "variables")
    unknown = sorted(set(data) - set(VARIABLE_KEYS))
    if unknown:
        raise AnnotationError(p, i, "variables", f"unknown keys {unknown}; expected {list(VARIABLE_KEYS)}")
    out: dict[str, list[float]] = {}
    for key, values in data.items():
        where = f"variables.{key}"
        if not isinstance(values, list):
            raise AnnotationError(p, i, where, f"must be a list of numbers, got {type(values).__name__}")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                raise AnnotationError(p, i, where, f"holds {v!r}; values are numbers in [0, 1]")
        out[key] = values
    return out


def _convert(turns: list[Turn], variables: dict[str, list[float]], p: str | Path, i: int) -> tuple[tuple[Turn, ...], Variables]:
    """Placeholders and values through the coordinate protocol, with errors pointed at a turn or a list."""
    try:
        converted, values = convert_conversation([t.to_dict() for t in turns], variables)
    except CoordinateError as exc:
        for t, turn in enumerate(turns):  # markup problems belong to one turn
            try:
                to_placeholders(turn.text, "OUTPUT" if turn.role == "gpt" else "INPUT")
            except CoordinateError as turn_exc:
                raise AnnotationError(p, i, f"conversations[{t}].value", str(turn_exc)) from turn_exc
        message = str(exc)
        key = next((k for k in VARIABLE_KEYS if message.startswith(k + ":")), None)
        raise AnnotationError(p, i, f"variables.{key}" if key else "variables", message) from exc
    out = tuple(Turn(t["from"], t["value"]) for t in converted)
    for t, turn in enumerate(out):
        wrong = "-INPUT>" if turn.role == "gpt" else "-OUTPUT>"
        if wrong in turn.text:
            right = "OUTPUT" if turn.role == "gpt" else "INPUT"
            raise AnnotationError(
                p, i, f"conversations[{t}].value", f"a {turn.role} turn holds {wrong[1:-1]} placeholders; its "
                f"coordinates are {right} placeholders"
            )
    return out, values


# ----------------------------------------------------------------- writing


def write_release_sft(
    path: str | Path, samples: Iterable[SFTSample | Mapping[str, Any]], jsonl: bool | None = None
) -> Path:
    """Write training samples: JSONL when ``jsonl`` is set or (``None``) the name ends in ``.jsonl``, else a JSON list.

    ``samples`` may be :class:`SFTSample` objects or release dicts; a dict is
    checked by :func:`parse_sft_sample` first (an error names ``path`` and its
    position), so a file written here always reads back.
    """
    records = []
    for i, s in enumerate(samples):
        sample = s if isinstance(s, SFTSample) else parse_sft_sample(s, path, i)
        records.append(sample.to_dict())
    return write_records(path, records, jsonl)


__all__ = [
    "MEDIA_KINDS",
    "MediaKind",
    "ROLES",
    "SFTSample",
    "Turn",
    "iter_release_sft",
    "parse_sft_sample",
    "read_release_sft",
    "write_release_sft",
]
