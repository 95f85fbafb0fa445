"""Which parts of a LLaVA-ST model train in a stage, and at which learning rate (SPEC §8).

One function, :func:`apply_trainability`, turns a :class:`Trainability`
(normally the ``trainable`` block of a stage recipe) into ``requires_grad``
flags and AdamW parameter groups; nothing else in the package changes
trainability. Everything the spec does not name is frozen.

Named parts (the keys of :data:`PARTS`, also the names learning-rate groups use):

=========================  ==================================================
part                       parameters
=========================  ==================================================
``vision_tower``           the SigLIP tower
``projector``              the ``mlp2x_gelu`` projector
``packer.spatial``         the first packer block (``token_packer`` in the release)
``packer.slow``            the temporal block (``token_packer_slow``)
``packer.fast``            the fast block (``token_packer_fast``)
``coord_tables.<t>``       one of the six coordinate tables, ``<t>`` in
                           ``time_in time_out height_in height_out width_in width_out``
``embed_tokens``           the text input embedding (all rows, or only the rows
                           of the tokens new in this stage)
``lm_head``                the text part of the output head (``V`` rows)
``llm``                    the Qwen2 layers and final norm (the LLM base)
``lora``                   LoRA adapter weights, when adapters are attached
                           (:mod:`llava_st.train.lora`); they always train
=========================  ==================================================

A learning-rate group may name a part or a family (``packer``,
``coord_tables``); the most specific name wins, and parts that no group names
get the base rate.

The release's stages (SPEC §8, the authors' training script):

* stage 1: packer and ``embed_tokens`` (all rows) at 1e-4;
* stages 2 and 3: LoRA at 2e-4; packer, the six tables and ``embed_tokens``
  (all rows) at 2e-5; the tower, projector, LLM base and LM head frozen.

The tower runs under ``torch.no_grad()`` in every release stage; the model's
``vision_tower_grad`` switch is set here from :attr:`Trainability.tower_grad`
(by default: autograd through the tower exactly when the tower trains).

New-token initialisation (:func:`init_new_token_rows`): the rows of tokens
added in a stage start at the mean of the pre-existing rows, in the input
embedding and in the LM head.
"""

from __future__ import annotations

import math

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import torch
from torch import nn

from ..errors import ConfigError
from ..protocol.tokens import IMAGE_MARKERS, PLACEHOLDERS, VIDEO_MARKERS

PACKER_BLOCKS = ("spatial", "slow", "fast")
COORD_TABLES = ("time_in", "time_out", "height_in", "height_out", "width_in", "width_out")
EMBED_MODES = ("none", "new", "all")

#: part name -> parameter-name prefix in :class:`~llava_st.model.LlavaSTModel`.
PARTS: dict[str, str] = {
    "vision_tower": "vision_tower.",
    "projector": "projector.",
    **{f"packer.{b}": f"packer.{b}." for b in PACKER_BLOCKS},
    **{f"coord_tables.{t}": f"coord_tables.{t}" for t in COORD_TABLES},
    "embed_tokens": "language_model.embed_tokens.",
    "lm_head": "lm_head.",
    "llm": "language_model.",
}
#: Names a learning-rate group may use: every part, the two families and ``lora``.
LR_GROUP_NAMES = tuple(PARTS) + ("packer", "coord_tables", "lora")

#: Groups of added tokens, for :func:`new_token_ids` (tokens new in a stage).
TOKEN_GROUPS: dict[str, tuple[str, ...]] = {
    "image_markers": IMAGE_MARKERS,
    "video_markers": VIDEO_MARKERS,
    "placeholders": PLACEHOLDERS,
}
_TOKEN_FIELDS = {
    "<im_start>": "im_start", "<im_end>": "im_end", "<im_patch>": "im_patch",
    "<vid_start>": "vid_start", "<vid_end>": "vid_end", "<vid_patch>": "vid_patch",
    "<slow_vid_start>": "slow_vid_start", "<slow_vid_end>": "slow_vid_end",
    "<TEMP-INPUT>": "temp_input", "<TEMP-OUTPUT>": "temp_output",
    "<HEIGHT-INPUT>": "height_input", "<HEIGHT-OUTPUT>": "height_output",
    "<WIDTH-INPUT>": "width_input", "<WIDTH-OUTPUT>": "width_output",
}


@dataclass
class Trainability:
    """What trains in a stage. Everything not named here is frozen.

    Attributes:
        vision_tower: train the SigLIP tower.
        projector: train the projector.
        packer: packer blocks that train, a subset of ``("spatial", "slow", "fast")``.
        coord_tables: coordinate tables that train, a subset of :data:`COORD_TABLES`.
        embed_tokens: ``"none"``, ``"new"`` (only the rows of the tokens new in this
            stage receive updates; the others keep a zero gradient) or ``"all"``
            (every row, as the release does).
        lm_head: train the text rows of the output head.
        llm: train the LLM base (layers and final norm) in full.
        tower_grad: run the tower with autograd. ``None`` (default) follows
            ``vision_tower``: a frozen tower runs under ``torch.no_grad()`` as in
            the release.
    """

    vision_tower: bool = False
    projector: bool = False
    packer: list[str] = field(default_factory=list)
    coord_tables: list[str] = field(default_factory=list)
    embed_tokens: str = "none"
    lm_head: bool = False
    llm: bool = False
    tower_grad: bool | None = None

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the field of the first invalid value."""
        _subset("packer", self.packer, PACKER_BLOCKS)
        _subset("coord_tables", self.coord_tables, COORD_TABLES)
        if self.embed_tokens not in EMBED_MODES:
            raise ConfigError(f"embed_tokens: must be one of {list(EMBED_MODES)}, got {self.embed_tokens!r}")

    def parts(self) -> list[str]:
        """The parts this spec trains (LoRA aside), in :data:`PARTS` order."""
        on = {
            "vision_tower": self.vision_tower,
            "projector": self.projector,
            "embed_tokens": self.embed_tokens != "none",
            "lm_head": self.lm_head,
            "llm": self.llm,
            **{f"packer.{b}": b in self.packer for b in PACKER_BLOCKS},
            **{f"coord_tables.{t}": t in self.coord_tables for t in COORD_TABLES},
        }
        return [p for p in PARTS if on[p]]

    @classmethod
    def everything(cls, vision_tower: bool = False) -> "Trainability":
        """Every part trains (the tower only when asked), all embedding rows included."""
        return cls(
            vision_tower=vision_tower,
            projector=True,
            packer=list(PACKER_BLOCKS),
            coord_tables=list(COORD_TABLES),
            embed_tokens="all",
            lm_head=True,
            llm=True,
        )


def _subset(name: str, values: Sequence[str], allowed: Sequence[str]) -> None:
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ConfigError(f"{name}: unknown name(s) {bad}; choose from {list(allowed)}")
    if len(set(values)) != len(values):
        raise ConfigError(f"{name}: names repeated in {list(values)}")


def validate_lr_groups(lr_groups: dict[str, float]) -> None:
    """Raise :class:`ConfigError` for a group name that is not in :data:`LR_GROUP_NAMES` or a rate <= 0."""
    for name, lr in lr_groups.items():
        if name not in LR_GROUP_NAMES:
            raise ConfigError(f"{name}: not a part name; learning-rate groups may name {list(LR_GROUP_NAMES)}")
        if not lr > 0:
            raise ConfigError(f"{name}: a learning rate must be > 0, got {lr}")


def part_of(name: str) -> str | None:
    """The part a parameter name belongs to (LoRA weights are ``"lora"``), or None.

    Examples: ``packer.slow.to_q.fc1.weight`` -> ``packer.slow``;
    ``language_model.layers.0.mlp.up_proj.lora_A.default.weight`` -> ``lora``;
    ``language_model.embed_tokens.weight`` -> ``embed_tokens``; ``image_newline`` -> None.
    """
    if ".lora_" in name:
        return "lora"
    best = None
    for part, prefix in PARTS.items():
        if name.startswith(prefix) and (best is None or len(prefix) > len(PARTS[best])):
            best = part
    return best


def _lr_for(part: str, base_lr: float, lr_groups: dict[str, float]) -> float:
    if part in lr_groups:
        return lr_groups[part]
    family = part.split(".")[0]
    return lr_groups.get(family, base_lr)


def new_token_ids(model: nn.Module, groups: Iterable[str]) -> list[int]:
    """Ids of the added tokens in ``groups`` (keys of :data:`TOKEN_GROUPS`), from the model's config.

    Example: on the parity model (``V = 529``) ``["placeholders"]`` gives ids 523..528.
    """
    ids = model.config.token_ids
    out: list[int] = []
    for group in groups:
        if group not in TOKEN_GROUPS:
            raise ConfigError(f"unknown token group {group!r}; choose from {list(TOKEN_GROUPS)}")
        out += [getattr(ids, _TOKEN_FIELDS[tok]) for tok in TOKEN_GROUPS[group]]
    return sorted(set(out))


@torch.no_grad()
def init_new_token_rows(model: nn.Module, token_ids: Sequence[int]) -> None:
    """Set the rows of ``token_ids`` in the input embedding and the LM head to the mean of the other rows.

    This is how a stage starts the tokens it adds (SPEC §8): every new row
    equals the average of the rows that existed before. With tied weights the
    one shared matrix is set once.
    """
    embed = model.language_model.embed_tokens.weight  # [V, D]
    head = model.lm_head.weight  # [V, D]
    ids = torch.as_tensor(sorted(set(int(i) for i in token_ids)), dtype=torch.long)
    if ids.numel() == 0:
        return
    v = embed.shape[0]
    if int(ids.min()) < 0 or int(ids.max()) >= v:
        raise ConfigError(f"new token ids must lie in [0, {v}) (text rows), got {ids.tolist()}")
    if ids.numel() >= v:
        raise ConfigError("every row is new: there are no existing rows to average")
    old = torch.ones(v, dtype=torch.bool)
    old[ids] = False
    for weight in {id(embed): embed, id(head): head}.values():
        mean = weight[old.to(weight.device)].float().mean(dim=0)  # [D]
        weight[ids.to(weight.device)] = mean.to(weight.dtype)


@torch.no_grad()
def init_coordinate_tables(model: nn.Module, mode: str, std: float = 0.02) -> None:
    """Initialise the six coordinate tables for a stage that adds them.

    ``mode``: ``"keep"`` (leave them), ``"zeros"`` (LAPE then adds nothing, which
    is how the release's stage 1, that has no tables yet, computes its features)
    ``"normal"`` (``N(0, std^2)``, fresh tables for the stage that introduces
    coordinates) or ``"sincos"`` (input and output tables both set to
    :func:`sincos_rows`).
    """
    if mode == "keep":
        return
    if mode == "zeros":
        for p in model.coord_tables.parameters():
            p.zero_()
    elif mode == "normal":
        for p in model.coord_tables.parameters():
            p.normal_(0.0, std)
    elif mode == "sincos":
        tables = model.coord_tables
        d = tables.time_in.shape[1]
        for axis, (t_in, t_out) in enumerate(zip(tables.inputs(), tables.outputs())):
            rows = sincos_rows(t_in.shape[0], d, axis)
            t_in.data.copy_(rows)
            t_out.data.copy_(rows)
    else:
        raise ConfigError(f"coordinate table init must be 'keep', 'zeros', 'normal' or 'sincos', got {mode!r}")


def sincos_rows(num_bins: int, dim: int, axis: int, norm: float = 1.0) -> torch.Tensor:
    """Geometric rows for one axis's coordinate table: ``[num_bins, dim]``.

    Bin ``k`` (value ``v = k / (num_bins - 1)``) gets sine/cosine pairs
    ``sin(2 pi f v), cos(2 pi f v)`` at frequencies ``f`` spaced geometrically
    from 0.25 to ``(num_bins - 1) / 4`` cycles over ``[0, 1]``, written into the
    axis's own third of the width (time, height, width: ``axis`` 0, 1, 2), zero
    elsewhere, each row of L2 norm ``norm``. The dot product of two rows then
    depends only on ``|v - v'|`` and peaks at ``v = v'``, so LAPE adds a position
    signal the LLM can match against these same rows when it writes a
    coordinate; random rows carry no such structure. (Ours, for models trained
    from scratch; the release initialises new rows at random.)
    """
    if not 0 <= axis < 3:
        raise ConfigError(f"axis must be 0 (time), 1 (height) or 2 (width), got {axis}")
    block = (dim // 3) // 2 * 2
    if block < 2:
        raise ConfigError(f"a width of {dim} is too small for sine/cosine coordinate rows (needs >= 6)")
    pairs = block // 2
    values = torch.arange(num_bins, dtype=torch.float64) / max(num_bins - 1, 1)  # [K]
    top = max((num_bins - 1) / 4, 0.5)
    freqs = torch.logspace(math.log10(0.25), math.log10(top), pairs, dtype=torch.float64)  # [P]
    angles = 2 * math.pi * values[:, None] * freqs[None, :]  # [K, P]
    rows = torch.zeros(num_bins, dim, dtype=torch.float64)
    start = axis * block
    rows[:, start : start + block : 2] = angles.sin()
    rows[:, start + 1 : start + block : 2] = angles.cos()
    rows *= norm / math.sqrt(pairs)
    return rows.float()


def _row_mask_hook(keep_rows: torch.Tensor):
    """A gradient hook that zeroes every row of an ``[V, D]`` gradient except ``keep_rows``."""

    def hook(grad: torch.Tensor) -> torch.Tensor:
        mask = torch.zeros(grad.shape[0], 1, dtype=grad.dtype, device=grad.device)
        mask[keep_rows.to(grad.device)] = 1
        return grad * mask

    return hook


def apply_trainability(
    model: nn.Module,
    spec: Trainability,
    lr: float,
    lr_groups: dict[str, float] | None = None,
    weight_decay: float = 0.0,
    new_token_ids: Sequence[int] | None = None,
) -> list[dict]:
    """Freeze everything, unfreeze what ``spec`` names, and build AdamW parameter groups.

    Args:
        model: a :class:`~llava_st.model.LlavaSTModel`, possibly with LoRA adapters
            attached to its language model (their weights train, part ``lora``).
        spec: what trains.
        lr: the base learning rate (parts no group names, LoRA included).
        lr_groups: per-part rates, keyed by :data:`LR_GROUP_NAMES`.
        weight_decay: for every group (the release uses 0).
        new_token_ids: the text rows that train when ``spec.embed_tokens == "new"``
            (see :func:`new_token_ids`).

    Returns:
        One group per part that has trainable parameters, in :data:`PARTS`
        order then ``lora``: ``{"name": part, "params": [...], "lr": float,
        "weight_decay": float}``, ready for ``torch.optim.AdamW``. Every
        parameter with ``requires_grad`` is in exactly one group.

    Side effects: ``requires_grad`` of every parameter; a gradient hook on
    the input embedding for ``"new"`` rows (replacing one set by an earlier
    call); ``model.vision_tower_grad``.

    Raises:
        ConfigError: an invalid spec or group name, ``"new"`` rows without
            ids, ``"new"`` rows with weight decay (the frozen rows would decay),
            or a spec under which nothing trains.
    """
    spec.validate()
    lr_groups = dict(lr_groups or {})
    validate_lr_groups(lr_groups)
    if not lr > 0:
        raise ConfigError(f"lr: must be > 0, got {lr}")

    for handle in getattr(model, "_trainability_hooks", []):
        handle.remove()
    model._trainability_hooks = []

    model.requires_grad_(False)
    parts = set(spec.parts())
    named = list(model.named_parameters())
    for name, param in named:
        part = part_of(name)
        if part == "lora" or part in parts:
            param.requires_grad_(True)

    if spec.embed_tokens == "new":
        if not new_token_ids:
            raise ConfigError("embed_tokens: 'new' needs the ids of the new tokens (none were given)")
        if weight_decay:
            raise ConfigError(
                "embed_tokens: 'new' trains some rows of one matrix; with weight decay the other rows "
                "would decay too. Use weight_decay 0 or embed_tokens 'all'"
            )
        weight = model.language_model.embed_tokens.weight
        rows = torch.as_tensor(sorted(set(int(i) for i in new_token_ids)), dtype=torch.long)
        if int(rows.min()) < 0 or int(rows.max()) >= weight.shape[0]:
            raise ConfigError(f"new token ids must lie in [0, {weight.shape[0]}), got {rows.tolist()}")
        model._trainability_hooks.append(weight.register_hook(_row_mask_hook(rows)))

    # The model decides per call whether the tower records autograd.
    tower_grad = spec.vision_tower if spec.tower_grad is None else spec.tower_grad
    if hasattr(model, "vision_tower_grad"):
        model.vision_tower_grad = bool(tower_grad)

    groups: dict[str, list[torch.nn.Parameter]] = {}
    seen: set[int] = set()
    for name, param in named:
        if not param.requires_grad or id(param) in seen:
            continue
        seen.add(id(param))
        part = part_of(name)
        if part is None:  # e.g. image_newline: never part of a stage
            param.requires_grad_(False)
            continue
        groups.setdefault(part, []).append(param)
    if not groups:
        raise ConfigError("nothing trains: the spec names no part and the model has no LoRA adapters")
    order = list(PARTS) + ["lora"]
    return [
        {"name": part, "params": groups[part], "lr": _lr_for(part, lr, lr_groups), "weight_decay": weight_decay}
        for part in order
        if part in groups
    ]


def describe_groups(groups: Sequence[dict]) -> str:
    """One line per group: name, tensors, parameters, learning rate (for logs)."""
    lines = []
    for g in groups:
        n = sum(p.numel() for p in g["params"])
        lines.append(f"{g['name']:<24} {len(g['params']):>5} tensors {n:>14,d} params  lr {g['lr']:.3g}")
    return "\n".join(lines)


__all__ = [
    "COORD_TABLES",
    "EMBED_MODES",
    "LR_GROUP_NAMES",
    "PACKER_BLOCKS",
    "PARTS",
    "TOKEN_GROUPS",
    "Trainability",
    "apply_trainability",
    "describe_groups",
    "init_coordinate_tables",
    "init_new_token_rows",
    "new_token_ids",
    "part_of",
    "validate_lr_groups",
]


def sincos_grid_rows(grid: int, dim: int, norm: float = 1.0) -> torch.Tensor:
    """2-D sine/cosine position rows for a ``grid x grid`` patch grid: ``[grid * grid, dim]``, row-major.

    Half the width encodes the row, half the column, each as sine/cosine pairs
    at frequencies spaced geometrically from 0.25 to ``grid / 4`` cycles over
    the frame; each row has L2 norm ``norm``. A patch's place is then linearly
    readable from its first layer on (ours, for a tower trained from scratch;
    SigLIP learns its position table from random rows).
    """
    half = (dim // 2) // 2 * 2
    if half < 2:
        raise ConfigError(f"a width of {dim} is too small for 2-D sine/cosine positions (needs >= 4)")
    pairs = half // 2
    pos = (torch.arange(grid, dtype=torch.float64) + 0.5) / grid  # [G] patch centres in [0, 1]
    freqs = torch.logspace(math.log10(0.25), math.log10(max(grid / 4, 0.5)), pairs, dtype=torch.float64)
    ang = 2 * math.pi * pos[:, None] * freqs[None, :]  # [G, P]
    axis = torch.cat([ang.sin(), ang.cos()], dim=1)  # [G, 2P]
    rows = torch.zeros(grid, grid, dim, dtype=torch.float64)
    rows[:, :, :half] = axis[:, None, :]  # row (y) code
    rows[:, :, half : 2 * half] = axis[None, :, :]  # column (x) code
    rows = rows.reshape(grid * grid, dim)
    return (rows * norm / rows.norm(dim=1, keepdim=True)).float()


def init_tower_positions(model: nn.Module, mode: str) -> None:
    """``keep`` the tower's position table, or set it to :func:`sincos_grid_rows` (``sincos``)."""
    if mode == "keep":
        return
    if mode != "sincos":
        raise ConfigError(f"tower position init must be 'keep' or 'sincos', got {mode!r}")
    table = None
    for name, param in model.vision_tower.named_parameters():
        if name.endswith("position_embedding.weight"):
            table = param
    if table is None:
        raise ConfigError("the vision tower has no position_embedding table")
    grid = model.config.vision.grid_size
    if table.shape[0] != grid * grid:
        raise ConfigError(f"the tower's position table has {table.shape[0]} rows, the grid {grid}x{grid}")
    with torch.no_grad():
        table.copy_(sincos_grid_rows(grid, table.shape[1]))
