"""The token protocol shared by the processor and the model (SPEC §2.7-2.10).

The release tokenizer is the LLM's own tokenizer plus, in this order, three
image markers, five video markers, six coordinate placeholders (the text
embedding matrix has ``V`` rows once these are added) and then ``3 * bins``
bin tokens whose ids are ``V + k`` (time), ``V + bins_t + k`` (height) and
``V + bins_t + bins_s + k`` (width). The bin tokens have no rows in the text
embedding: they index the extra coordinate tables instead.

This module names those tokens, describes where they sit
(:class:`SpecialTokenIds`) and turns the release's ``variables`` (six ordered
lists of values, one per placeholder kind) into a per-position value tensor
aligned with the token ids, which is what the model consumes.

It is also the one owner of the bin-token *names*: how many bins each axis has
(:class:`BinCounts`, which :class:`llava_st.config.CoordConfig` hands out as
``config.coords.bins``), how a bin token is written (:func:`bin_token`) and the
one pattern that reads it back (:data:`BIN_TOKEN_RE`). What a bin *means* (its
value, the release's decimal text) is :mod:`llava_st.protocol.bins`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Mapping, Sequence

from ..errors import ConfigError

if TYPE_CHECKING:  # torch is imported where tensors are made, so `import llava_st` stays light
    import torch

#: Label of a position that is not supervised.
IGNORE_INDEX = -100

IMAGE_TAG = "<image>"
VIDEO_TAG = "<video>"

IM_START = "<im_start>"
IM_END = "<im_end>"
IM_PATCH = "<im_patch>"
VID_START = "<vid_start>"
VID_END = "<vid_end>"
VID_PATCH = "<vid_patch>"
SLOW_VID_START = "<slow_vid_start>"
SLOW_VID_END = "<slow_vid_end>"

IMAGE_MARKERS = (IM_START, IM_END, IM_PATCH)
VIDEO_MARKERS = (VID_START, VID_END, VID_PATCH, SLOW_VID_START, SLOW_VID_END)

#: The three coordinate axes, in the order of their tables and bin-id blocks.
AXES = ("TEMP", "HEIGHT", "WIDTH")

#: Placeholder tokens in the order the release adds them to the tokenizer.
PLACEHOLDERS = (
    "<TEMP-INPUT>",
    "<TEMP-OUTPUT>",
    "<HEIGHT-INPUT>",
    "<HEIGHT-OUTPUT>",
    "<WIDTH-INPUT>",
    "<WIDTH-OUTPUT>",
)

#: The release's ``variables`` keys, one per placeholder, same order as PLACEHOLDERS.
VARIABLE_KEYS = (
    "temporal_input_locations",
    "temporal_output_locations",
    "spatial_height_input_locations",
    "spatial_height_output_locations",
    "spatial_width_input_locations",
    "spatial_width_output_locations",
)

PLACEHOLDER_TO_KEY = dict(zip(PLACEHOLDERS, VARIABLE_KEYS))

#: Every token added after the LLM's own vocabulary, before the bins, in id order.
ADDED_TOKENS = IMAGE_MARKERS + VIDEO_MARKERS + PLACEHOLDERS


#: Text the chat template ends an assistant turn with; the release deletes it from a decoded answer.
END_OF_TURN = "<|im_end|>"


@dataclass(frozen=True)
class BinCounts:
    """How many bins each coordinate axis has: ``time`` for TEMP, ``space`` for HEIGHT and WIDTH.

    This is the one shape in which bin counts travel: every function that
    needs them takes a ``BinCounts``. A model's counts come from its config
    (``config.coords.bins``); a scorer gets them from its own config or
    command line. Bin ``k`` of an axis with ``n`` bins means ``k / (n - 1)``,
    so every axis needs at least 2 bins.

    Example: ``BinCounts(time=50, space=20)`` has bin tokens ``<TEMP-000>`` ..
    ``<TEMP-049>`` and ``<HEIGHT-000>`` .. ``<HEIGHT-019>`` (same for WIDTH);
    ``bins.of("WIDTH") == 20``.

    Raises:
        ConfigError: a count that is not an integer >= 2.
    """

    time: int
    space: int

    def __post_init__(self) -> None:
        for name in ("time", "space"):
            n = getattr(self, name)
            if isinstance(n, bool) or not isinstance(n, int) or n < 2:
                raise ConfigError(f"BinCounts.{name} must be an integer >= 2 (bin k means k / (n - 1)), got {n!r}")

    @classmethod
    def uniform(cls, n: int) -> "BinCounts":
        """The same count ``n`` on every axis, as in the release (``BinCounts.uniform(100)``)."""
        return cls(n, n)

    @classmethod
    def parse(cls, text: str) -> "BinCounts":
        """Read ``"N"`` (every axis) or ``"T,S"`` (time, space), as a command line writes them.

        Example: ``BinCounts.parse("100") == BinCounts(100, 100)``,
        ``BinCounts.parse("50,20") == BinCounts(50, 20)``.
        """
        parts = [p.strip() for p in str(text).split(",")]
        if len(parts) not in (1, 2) or not all(p.isdigit() for p in parts):
            raise ConfigError(f"bin counts must be N or TIME,SPACE (integers >= 2), got {text!r}")
        counts = [int(p) for p in parts]
        return cls(counts[0], counts[-1])

    def of(self, axis: str) -> int:
        """The count of ``axis`` (``"TEMP"``, ``"HEIGHT"`` or ``"WIDTH"``)."""
        if axis not in AXES:
            raise ValueError(f"unknown coordinate axis {axis!r}; expected one of {AXES}")
        return self.time if axis == "TEMP" else self.space

    @property
    def total(self) -> int:
        """Bin tokens in all: ``time + 2 * space`` (the extra output columns of the model)."""
        return self.time + 2 * self.space


#: The bin counts of the released checkpoints (100 per axis). Named so that the code
#: that reproduces the release (published-compatible scoring, the default model
#: config) says so; nothing else should assume it.
RELEASE_BINS = BinCounts(100, 100)


def bin_token(axis: str, k: int) -> str:
    """Name of bin ``k`` of ``axis`` (``"TEMP"``, ``"HEIGHT"`` or ``"WIDTH"``), e.g. ``<TEMP-007>``."""
    if axis not in AXES:
        raise ValueError(f"unknown coordinate axis {axis!r}; expected one of {AXES}")
    return f"<{axis}-{k:03d}>"


#: The one pattern of a bin token: group 1 is the axis, group 2 the index as
#: written (``<WIDTH-036>`` -> ``"WIDTH"``, ``"036"``). It reads what
#: :func:`bin_token` writes, and also indices of other widths (``<TEMP-7>``).
BIN_TOKEN_RE = re.compile(r"<(" + "|".join(AXES) + r")-(\d+)>")

#: :data:`BIN_TOKEN_RE` with its groups made non-capturing, for building larger patterns.
BIN_TOKEN = BIN_TOKEN_RE.pattern.replace("(", "(?:")


def read_bin_token(text: str) -> tuple[str, int] | None:
    """``(axis, k)`` when the whole of ``text`` is one bin token, else ``None``.

    Example: ``read_bin_token("<HEIGHT-037>") == ("HEIGHT", 37)``;
    ``read_bin_token("<TEMP-INPUT>") is None``.
    """
    m = BIN_TOKEN_RE.fullmatch(text)
    return None if m is None else (m.group(1), int(m.group(2)))


def bin_tokens(bins: BinCounts) -> list[str]:
    """All bin tokens in id order: time bins, then height bins, then width bins.

    Example: ``bin_tokens(BinCounts(2, 3))`` is ``<TEMP-000>, <TEMP-001>,
    <HEIGHT-000> .. <HEIGHT-002>, <WIDTH-000> .. <WIDTH-002>`` (8 tokens; token
    ``i`` has id ``V + i``).
    """
    return (
        [bin_token("TEMP", k) for k in range(bins.time)]
        + [bin_token("HEIGHT", k) for k in range(bins.space)]
        + [bin_token("WIDTH", k) for k in range(bins.space)]
    )


@dataclass(frozen=True)
class SpecialTokenIds:
    """Ids of the multimodal markers and coordinate placeholders.

    ``vocab_size`` is ``V``, the number of rows of the text embedding; bin ids
    start there. In the release layout the 14 added tokens occupy ids
    ``V - 14 .. V - 1`` (see :meth:`release_layout`).
    """

    vocab_size: int
    im_start: int
    im_end: int
    im_patch: int
    vid_start: int
    vid_end: int
    vid_patch: int
    slow_vid_start: int
    slow_vid_end: int
    temp_input: int
    temp_output: int
    height_input: int
    height_output: int
    width_input: int
    width_output: int
    pad: int | None = None
    eos: int | None = None

    @classmethod
    def release_layout(cls, vocab_size: int, pad: int | None = None, eos: int | None = None) -> "SpecialTokenIds":
        """Ids of the release tokenizer: the added tokens are the last 14 rows of the text table.

        Example: the parity model has ``V = 529``, so ``<im_start>`` is 515 and
        ``<WIDTH-OUTPUT>`` is 528; bin ``<TEMP-000>`` is 529.
        """
        first = vocab_size - len(ADDED_TOKENS)
        if first < 0:
            raise ValueError(f"vocab_size {vocab_size} is too small to hold the {len(ADDED_TOKENS)} added tokens")
        ids = {name: first + i for i, name in enumerate(_FIELD_ORDER)}
        return cls(vocab_size=vocab_size, pad=pad, eos=eos, **ids)

    @classmethod
    def from_tokenizer(cls, tokenizer, vocab_size: int) -> "SpecialTokenIds":
        """Read the ids from a tokenizer (anything with ``convert_tokens_to_ids``), checking each exists."""
        ids = {}
        unk = getattr(tokenizer, "unk_token_id", None)
        for name, token in zip(_FIELD_ORDER, ADDED_TOKENS):
            tid = tokenizer.convert_tokens_to_ids(token)
            if tid is None or (unk is not None and tid == unk):
                raise ValueError(f"tokenizer has no token {token!r}; it is not a LLaVA-ST tokenizer")
            ids[name] = int(tid)
        return cls(
            vocab_size=vocab_size,
            pad=getattr(tokenizer, "pad_token_id", None),
            eos=getattr(tokenizer, "eos_token_id", None),
            **ids,
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> "SpecialTokenIds":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown special token fields {sorted(unknown)}")
        return cls(**data)

    @property
    def placeholder_ids(self) -> tuple[int, int, int, int, int, int]:
        """Placeholder ids in the order of :data:`PLACEHOLDERS` / :data:`VARIABLE_KEYS`."""
        return (
            self.temp_input,
            self.temp_output,
            self.height_input,
            self.height_output,
            self.width_input,
            self.width_output,
        )

    def placeholder_axis(self) -> dict[int, int]:
        """Map placeholder id -> axis index (0 time, 1 height, 2 width)."""
        return {pid: i // 2 for i, pid in enumerate(self.placeholder_ids)}


_FIELD_ORDER = (
    "im_start",
    "im_end",
    "im_patch",
    "vid_start",
    "vid_end",
    "vid_patch",
    "slow_vid_start",
    "slow_vid_end",
    "temp_input",
    "temp_output",
    "height_input",
    "height_output",
    "width_input",
    "width_output",
)


def values_from_variables(
    input_ids: "torch.Tensor",
    variables: Mapping[str, Sequence[float]] | None,
    ids: SpecialTokenIds,
) -> "torch.Tensor":
    """Align the release's six value lists with the placeholder positions of one sequence.

    Args:
        input_ids: ``[L]`` token ids of one sample.
        variables: the release dict (keys of :data:`VARIABLE_KEYS`; missing keys
            mean empty lists) or ``None`` for no coordinates.
        ids: the tokenizer's special token ids.

    Returns:
        ``[L]`` float64 tensor: at the i-th ``<AXIS-IO>`` placeholder the i-th value
        of that kind's list, NaN everywhere else.

    Raises:
        ValueError: a list's length differs from the number of its placeholders,
            or a value is not a finite number.

    Example: ids ``[x, <TEMP-INPUT>, y, <TEMP-INPUT>]`` with
    ``temporal_input_locations = [0.2, 0.6]`` give ``[nan, 0.2, nan, 0.6]``.
    """
    import torch

    if input_ids.dim() != 1:
        raise ValueError(f"input_ids must be one sequence [L], got shape {tuple(input_ids.shape)}")
    variables = variables or {}
    unknown = set(variables) - set(VARIABLE_KEYS)
    if unknown:
        raise ValueError(f"unknown variables keys {sorted(unknown)}; expected a subset of {list(VARIABLE_KEYS)}")
    values = torch.full(input_ids.shape, float("nan"), dtype=torch.float64)
    for key, pid, name in zip(VARIABLE_KEYS, ids.placeholder_ids, PLACEHOLDERS):
        given = list(variables.get(key, []))
        positions = (input_ids == pid).nonzero().flatten()
        if len(given) != len(positions):
            raise ValueError(
                f"{name}: the sequence has {len(positions)} placeholder(s) but variables[{key!r}] "
                f"holds {len(given)} value(s)"
            )
        if not given:
            continue
        vals = torch.tensor([float(v) for v in given], dtype=torch.float64)
        if not torch.isfinite(vals).all():
            raise ValueError(f"variables[{key!r}] holds a value that is not a finite number: {given}")
        values[positions] = vals
    return values


def variables_from_values(input_ids: "torch.Tensor", values: "torch.Tensor", ids: SpecialTokenIds) -> dict[str, list[float]]:
    """Inverse of :func:`values_from_variables` for one sequence."""
    out = {}
    for key, pid in zip(VARIABLE_KEYS, ids.placeholder_ids):
        out[key] = values[input_ids == pid].tolist()
    return out
