"""Stage 0's auxiliary objective: dense supervision of the tower and of the LLM's pointing.

A model trained from scratch on ST-Synth has to learn what the release got
from pretrained parts: a tower that sees objects, and an LLM that finds the
object a phrase names among the visual tokens. Both get direct supervision
here, from :mod:`llava_st.synth.targets`, on top of the answer's loss:

* **attributes** (weight ``attributes``): per patch, the projected tower
  feature (before LAPE, ``[F, P, D]``) classifies the colour, shape and size
  of the object drawn there (0 = background): three cross-entropies;
* **boxes** (weight ``boxes``): on patches covered by an object, the same
  feature regresses that object's box (L1 on ``[0, 1]`` coordinates, times 10);
* **pointer** (weight ``pointer``): the LLM's hidden state after layer
  ``pointer_layer`` at each position that predicts a coordinate of the
  answer is a query; the states at the sample's visual positions are keys
  (one linear map each, ``pointer_dim`` wide); the softmax over the visual
  positions is trained (cross-entropy) towards where that coordinate can be
  read (:func:`pointer_targets`): for a time, the tokens of the frame it names
  (on the referred object where it is drawn); for a box coordinate, the
  referred object on the box's frame. Patches are pooled to the tokens the
  LLM sees (an image's ``G x G`` patches; a video's fast tokens, one block of
  one frame's patches each, then its slow tokens).
  The pointer is read from an answer position, which has seen both the
  phrase and the pixels wherever the media sits;
* **attend** (weight ``attend``): the same answer positions and targets as the
  pointer's, but on the LLM's own attention: head ``attend_head`` of layer
  ``attend_layer`` (default the last) is trained to put its attention mass on
  the tokens the pointer target marks (minus the log of that mass; the
  probabilities are recomputed from the layer's queries and keys, RoPE included).
  The pointer head learns where to look beside the model; this makes the model
  look there, so the coordinate it writes is read from the named object;
* **referred** (weight ``referred``): the LLM's hidden state after
  ``pointer_layer`` at each visual position classifies (binary cross-entropy)
  how much of that token shows the object the question names (the referred
  map pooled like the pointer's targets, frames summed). A causal LLM can
  learn this only when the question comes before the pixels
  (``media_position: last``, the embedded model's layout); then the answer
  only has to find the marked tokens, which a one-object model already can;
* **asked** (weight ``asked``): the same states at the visual positions
  classify the colour, shape and size the question names (0 where it names
  none; :func:`asked_attributes`): each visual token has to read the phrase,
  the first half of telling whether it shows the named object;
* **answers** (weight ``answers``, 1 by default): the answers' own loss. At 0
  the LLM does not run at all: the step trains the tower and projector through
  ``attributes`` and ``boxes`` only, many times faster than a step through the
  LLM (a tower trained from scratch needs thousands of such steps before its
  features tell shapes apart);
* **words** (weight ``words``): the input embedding of each colour, shape and
  size word (:func:`attribute_words`; a word of several tokens: their mean)
  is classified by the same attribute head as the visual features, so that a
  word and the patches that show it start out in one shared subspace of the
  LLM's input, which the attention that binds a phrase to its object can use.

The heads live in :class:`AuxiliaryHeads`, attached to the model as
``model.auxiliary`` while training (so that DDP and checkpoints treat them as
part of the model); the exported release-layout model does not contain them.
This whole objective is ours: the release trains from pretrained parts and
has no such losses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..model.modeling import written_positions
from ..synth.targets import COLOUR_IDS, NUM_CLASSES, SHAPE_IDS, SIZE_IDS, DenseTargets, SceneIndex, dense_targets

#: Attribute name of the heads on the model while training.
ATTRIBUTE = "auxiliary"


@dataclass
class AuxiliaryConfig:
    """Weights of the losses (0 turns one off: all auxiliary losses are off by default; the
    answers' loss is on) and the layer and width of the LLM-side heads (pointer, referred).

    ``pointer_layer`` counts the LLM's decoder layers from 0; negative values
    count from the end (``-1`` = the last layer's output).

    ``grey`` (tower-only steps): the share of a step's samples shown in grey (the luminance
    of their pixels), whose colour target is then dropped on object patches. Shape and size
    must then be read without colour; without it, a tower trained on ST-Synth's split reads
    an object's shape partly from its colour, and fails on the colour-shape pairs the
    held-out set keeps out of training. A grey image shows no colour, so no held-out pair
    is shown.
    """

    attributes: float = 0.0
    boxes: float = 0.0
    pointer: float = 0.0
    referred: float = 0.0
    asked: float = 0.0
    words: float = 0.0
    answers: float = 1.0
    attend: float = 0.0
    pointer_layer: int = -2
    pointer_dim: int = 64
    attend_layer: int = -1
    attend_head: int = 0
    grey: float = 0.0

    def __post_init__(self) -> None:
        for name in ("attributes", "boxes", "pointer", "referred", "asked", "words", "answers", "attend"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or v < 0:
                raise ConfigError(f"auxiliary.{name}: must be a weight >= 0, got {v!r}")
        if self.answers == 0:
            llm_side = [n for n in ("pointer", "referred", "asked", "words", "attend") if getattr(self, n) > 0]
            if llm_side:
                raise ConfigError(f"auxiliary.answers: 0 runs no LLM, but {llm_side} need it")
            if self.attributes <= 0 and self.boxes <= 0:
                raise ConfigError("auxiliary.answers: 0 leaves nothing to train on (attributes and boxes are off too)")
        if not isinstance(self.grey, (int, float)) or not 0 <= self.grey <= 1:
            raise ConfigError(f"auxiliary.grey: must be a share in [0, 1], got {self.grey!r}")
        if self.grey > 0 and (self.answers != 0 or self.attributes <= 0):
            raise ConfigError("auxiliary.grey: only a tower-only step (answers: 0) with the attributes loss on "
                              "can show grey images (an answer about a colour would no longer be true)")
        if not isinstance(self.pointer_dim, int) or self.pointer_dim < 1:
            raise ConfigError(f"auxiliary.pointer_dim: must be a whole number >= 1, got {self.pointer_dim!r}")
        if not isinstance(self.attend_head, int) or self.attend_head < 0:
            raise ConfigError(f"auxiliary.attend_head: must be a head index >= 0, got {self.attend_head!r}")

    @property
    def enabled(self) -> bool:
        return self.answers != 1 or any(
            getattr(self, n) > 0 for n in ("attributes", "boxes", "pointer", "referred", "asked", "words", "attend"))

    @property
    def tower_only(self) -> bool:
        """The step runs the tower and projector only (``answers`` is 0)."""
        return self.answers == 0


_WORD_RE = re.compile(r"[a-z]+")


def asked_attributes(question: str) -> torch.Tensor:
    """int64 ``[3]``: the class of the colour, shape and size word in ``question`` (a referring
    phrase; ST-Synth's vocabulary; 0 where it has none, the first one where it has several)."""
    out = [0, 0, 0]
    for word in _WORD_RE.findall(question.lower()):
        for column, table in enumerate((COLOUR_IDS, SHAPE_IDS, SIZE_IDS)):
            if out[column] == 0 and word in table:
                out[column] = table[word]
    return torch.tensor(out)


def asked_in_question(scene: dict, meta: dict, questions: Sequence[str]) -> torch.Tensor | None:
    """:func:`asked_attributes` of the sample's object's referring phrase when the question
    names the object by that phrase; None when it does not (e.g. a region caption, whose
    question gives a box): then the visual positions cannot know the attributes. The
    phrase, not the whole question, is read: a question may name other colours (an event's)."""
    obj = meta.get("object")
    objects = scene.get("objects", [])
    if not isinstance(obj, int) or not 0 <= obj < len(objects) or not questions:
        return None
    phrase = str(objects[obj].get("phrase", "")).lower()
    if phrase.startswith("the "):
        phrase = phrase[4:]
    if not phrase or phrase not in questions[0].lower():
        return None
    return asked_attributes(phrase)


def attribute_words(tokenizer) -> tuple[list[list[int]], torch.Tensor]:
    """ST-Synth's colour, shape and size words as the tokenizer writes them inside a phrase
    (with the leading space): ``(token ids per word, classes [W, 3])``, the classes being
    (colour, shape, size) with -100 for the two attributes a word does not name."""
    words, classes = [], []
    for column, table in enumerate((COLOUR_IDS, SHAPE_IDS, SIZE_IDS)):
        for name, cls in table.items():
            ids = tokenizer.encode(" " + name, add_special_tokens=False)
            if not ids:
                raise ConfigError(f"the tokenizer writes the attribute word {name!r} as no token")
            row = [-100, -100, -100]
            row[column] = cls
            words.append(list(ids))
            classes.append(row)
    return words, torch.tensor(classes)


class AuxiliaryHeads(nn.Module):
    """The heads of :class:`AuxiliaryConfig`'s losses for a model of width ``hidden``;
    ``tokenizer`` gives the attribute words of the ``words`` loss (needed when it is on)."""

    def __init__(self, config: AuxiliaryConfig, hidden: int, tokenizer=None):
        super().__init__()
        if config.words > 0 and tokenizer is None:
            raise ConfigError("auxiliary.words needs the tokenizer (to find the attribute words)")
        words, classes = attribute_words(tokenizer) if config.words > 0 else ([], torch.zeros(0, 3, dtype=torch.long))
        # word w is tokens word_tokens[word_index == w]; not saved with the heads
        self.register_buffer("word_tokens", torch.tensor([t for ids in words for t in ids], dtype=torch.long),
                             persistent=False)
        self.register_buffer("word_index", torch.tensor([w for w, ids in enumerate(words) for _ in ids],
                                                        dtype=torch.long), persistent=False)
        self.register_buffer("word_classes", classes, persistent=False)
        self.config = config
        self.classes = (NUM_CLASSES["colour"], NUM_CLASSES["shape"], NUM_CLASSES["size"])
        self.attributes = nn.Linear(hidden, sum(self.classes))
        self.boxes = nn.Linear(hidden, 4)
        self.query = nn.Linear(hidden, config.pointer_dim)
        self.key = nn.Linear(hidden, config.pointer_dim)
        self.referred = nn.Linear(hidden, 1)
        self.asked = nn.Linear(hidden, sum(self.classes))


class Capture:
    """Forward hooks that keep the projector's outputs (in call order), one LLM layer's output
    and, with ``attend_layer``, the input of that layer's attention (normed states ``[B, L, D]``
    and its RoPE ``(cos, sin)``), from which the attention probabilities can be recomputed."""

    def __init__(self, model: nn.Module, layer: int, attend_layer: int | None = None):
        layers = model.language_model.layers
        for name, index in (("pointer_layer", layer), ("attend_layer", attend_layer)):
            if index is not None and not -len(layers) <= index < len(layers):
                raise ConfigError(f"auxiliary.{name} {index} is outside the LLM's {len(layers)} layers")
        self.projected: list[torch.Tensor] = []
        self.hidden: torch.Tensor | None = None
        self.attention = layers[attend_layer].self_attn if attend_layer is not None else None
        self.attention_input: tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]] | None = None
        self._handles = [
            model.projector.register_forward_hook(lambda m, i, o: self.projected.append(o)),
            layers[layer].register_forward_hook(self._keep_hidden),
        ]
        if self.attention is not None:
            self._handles.append(self.attention.register_forward_pre_hook(self._keep_attention_input, with_kwargs=True))

    def _keep_hidden(self, module, inputs, output) -> None:
        self.hidden = output[0] if isinstance(output, tuple) else output

    def _keep_attention_input(self, module, args, kwargs) -> None:
        states = args[0] if args else kwargs["hidden_states"]
        self.attention_input = (states, kwargs["position_embeddings"])

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


def per_sample_features(projected: Sequence[torch.Tensor], pixel_values, modalities) -> list[torch.Tensor | None]:
    """Split the projector's outputs back into samples: ``[F_b, P, D]`` per sample (None without media).

    The model runs the tower once per group of samples with the same modality
    and frame count, groups in order of first appearance, members in batch
    order (``LlavaSTModel._visual_features``); the projector's outputs arrive
    in that order, with ``vision_batch_frames`` chunks concatenated by the
    model before projection or projected chunk by chunk (both handled: the
    rows are concatenated first).
    """
    if pixel_values is None:  # a batch without media
        return [None] * len(modalities)
    rows = torch.cat([p.reshape(-1, *p.shape[-2:]) for p in projected]) if projected else None
    groups: dict[tuple[str, int], list[int]] = {}
    for b, (pix, mod) in enumerate(zip(pixel_values, modalities)):
        if mod is not None:
            groups.setdefault((mod, 1 if mod == "image" else int(pix.shape[0])), []).append(b)
    out: list[torch.Tensor | None] = [None] * len(modalities)
    at = 0
    for (mod, frames), members in groups.items():
        for b in members:
            out[b] = rows[at : at + frames]
            at += frames
    if rows is not None and at != rows.shape[0]:
        raise RuntimeError(f"the projector produced {rows.shape[0]} frames, the batch has {at}")
    return out


def grey_samples(pixel_values: Sequence[torch.Tensor | None], share: float, mean, std,
                 generator: torch.Generator | None = None) -> tuple[list[torch.Tensor | None], torch.Tensor]:
    """Each sample's frames ``[T, 3, S, S]`` (normalised with ``mean`` and ``std``) replaced by
    their luminance (ITU-R BT.601 weights, the same value in all three channels) with
    probability ``share``, drawn per sample; returns the new list and the bool ``[B]`` of
    samples turned grey (samples without media never are)."""
    draw = torch.rand(len(pixel_values), generator=generator) < share
    greyed = torch.tensor([bool(d) and p is not None for d, p in zip(draw.tolist(), pixel_values)])
    out = list(pixel_values)
    chosen = greyed.nonzero().flatten().tolist()
    if not chosen:
        return out, greyed
    like = pixel_values[chosen[0]]
    m, s, weights = (torch.tensor(v, dtype=like.dtype, device=like.device).view(3, 1, 1)
                     for v in (mean, std, (0.299, 0.587, 0.114)))
    for b in chosen:
        luma = ((pixel_values[b] * s + m) * weights).sum(-3, keepdim=True)  # [T, 1, S, S] in [0, 1]
        out[b] = (luma - m) / s
    return out, greyed


def frame_token_maps(per_patch: torch.Tensor, modality: str, config) -> torch.Tensor:
    """Each frame's per-patch map pooled onto the visual tokens the LLM sees: ``[F, N_visual]``.

    ``per_patch`` ``[F, P]`` (e.g. where the referred object is, or ones); row
    ``i`` of the result is zero except on the tokens that frame ``i`` feeds,
    in the order the model writes them: an image's ``P`` patches; a video's
    fast tokens (``T x f*f``, blocks of ``(G/f)^2`` patches averaged: only frame
    ``i``'s) then its slow tokens (``S x g*g``, ``sf x sf`` patch blocks: only the
    slot that holds frame ``i``, divided by the slot's frame count).
    """
    if modality == "image":
        return per_patch.reshape(1, -1)
    g = config.vision.grid_size
    t = per_patch.shape[0]
    grid = per_patch.reshape(t, g, g)
    sf, ff = config.packer.spatial_factor, config.packer.fast_factor
    gs = g // sf  # spatial grid after the first block
    gf = gs // ff  # fast grid
    fast = grid.reshape(t, gf, g // gf, gf, g // gf).mean(dim=(2, 4)).reshape(t, gf * gf)  # [T, f*f]
    fast_rows = torch.zeros(t, t, gf * gf, dtype=fast.dtype)
    fast_rows[torch.arange(t), torch.arange(t)] = fast
    slots = max(1, t // config.packer.temporal_window)
    bounds = (torch.arange(slots + 1) * t) // slots  # slot s holds frames bounds[s] .. bounds[s+1]-1 (as the packer)
    slot_of = torch.bucketize(torch.arange(t), bounds[1:], right=True)  # [T]
    width = torch.bincount(slot_of, minlength=slots).to(fast.dtype)  # frames per slot
    spatial = grid.reshape(t, gs, sf, gs, sf).mean(dim=(2, 4)).reshape(t, gs * gs)  # [T, g*g]
    slow_rows = torch.zeros(t, slots, gs * gs, dtype=fast.dtype)
    slow_rows[torch.arange(t), slot_of] = spatial / width[slot_of, None]
    parts = [fast_rows.reshape(t, -1)] if config.inject_fast_stream else []
    return torch.cat(parts + [slow_rows.reshape(t, -1)], dim=1)


def pointer_targets(
    target: DenseTargets, modality: str, labels: torch.Tensor, values: torch.Tensor, config
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per coordinate of one sample's answer, where the LLM should look: ``(positions [C], targets [C, N])``.

    ``labels`` and ``values`` ``[L]`` are the sample's labels and coordinate
    values. Position ``p`` (its label is an ``-OUTPUT`` placeholder) is predicted
    from position ``p - 1``, which is returned. A time coordinate with value ``v``
    names sampled frame ``round(v * (T - 1))``: the target is that frame's
    tokens, weighted by the referred object where it is drawn there. A spatial
    coordinate belongs to the frame of the answer's latest time coordinate
    before it (the first frame when there is none; an image: its only frame): the target is the referred object on that frame;
    without a referred object there, the coordinate gets no target. Targets are
    normalised to sum to 1; positions without one are left out.
    """
    ids = config.token_ids
    axis = torch.full_like(labels, -1)
    axis[labels == ids.temp_output] = 0
    axis[labels == ids.height_output] = 1
    axis[labels == ids.width_output] = 2
    coords = (axis >= 0).nonzero().flatten()
    coords = coords[coords > 0]
    frames = target.referred.shape[0]
    object_maps = frame_token_maps(target.referred, modality, config)  # [F, N]
    uniform = frame_token_maps(torch.ones_like(target.referred), modality, config)  # [F, N]
    # the position of the latest time coordinate of the answer at or before each position (-1: none)
    time_pos = torch.where(axis == 0, torch.arange(len(labels)), torch.full_like(labels, -1))
    latest = torch.cummax(time_pos, dim=0).values  # [L]
    positions, rows = [], []
    for p in coords.tolist():
        if axis[p] == 0:
            f = int(round(float(values[p]) * (frames - 1))) if frames > 1 else 0
            row = object_maps[f] if target.has_object and object_maps[f].sum() > 0 else uniform[f]
        else:
            q = int(latest[p - 1]) if p > 0 else -1
            f = int(round(float(values[q]) * (frames - 1))) if (q >= 0 and frames > 1) else 0
            if not target.has_object or object_maps[f].sum() <= 0:
                continue
            row = object_maps[f]
        positions.append(p - 1)
        rows.append(row / row.sum())
    if not rows:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, object_maps.shape[1])
    return torch.tensor(positions), torch.stack(rows)


def _attribute_loss(heads: AuxiliaryHeads, scores: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
    """Mean over colour, shape and size of the cross-entropy of ``scores`` ``[N, sum(classes)]``
    (an attribute head's output) against ``goal`` ``[N, 3]`` (-100: no target for that attribute)."""
    logits = scores.split(heads.classes, dim=-1)
    return sum(F.cross_entropy(lg.float(), goal[:, c], ignore_index=-100) for c, lg in enumerate(logits)) / 3


def _tower_losses(heads, feats, targets, device, greyed: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """attributes and boxes, on the projected tower features of the samples that have targets;
    ``greyed`` (bool ``[B]``): samples shown in grey, whose object patches have no colour target."""
    cfg, out = heads.config, {}
    have = [b for b, (f, t) in enumerate(zip(feats, targets)) if f is not None and t is not None]
    if not have or (cfg.attributes <= 0 and cfg.boxes <= 0):
        return out
    x = torch.cat([feats[b].reshape(-1, feats[b].shape[-1]) for b in have])  # [N, D]
    goal = torch.stack([torch.cat([getattr(targets[b], a).reshape(-1) for b in have]) for a in ("colour", "shape", "size")],
                       dim=1).to(device)  # [N, 3]
    covered = goal[:, 1] > 0  # a patch some object covers (every object has a shape)
    if greyed is not None:
        grey_rows = torch.cat([torch.full((targets[b].shape.numel(),), bool(greyed[b])) for b in have]).to(device)
        goal[:, 0] = goal[:, 0].masked_fill(grey_rows & covered, -100)
    if cfg.attributes > 0:
        out["aux_attributes"] = _attribute_loss(heads, heads.attributes(x), goal)
    if cfg.boxes > 0 and covered.any():
        box = torch.cat([targets[b].box.reshape(-1, 4) for b in have]).to(device)
        out["aux_boxes"] = F.l1_loss(heads.boxes(x[covered]).float().sigmoid(), box[covered]) * 10
    return out


def _pointer_of(target: DenseTargets, b: int, batch, model) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``b``'s pointer positions and targets: precomputed by the data pipeline, or from the batch."""
    if target.pointer is not None:
        return target.pointer
    return pointer_targets(target, batch["modalities"][b], batch["labels"][b].cpu(), batch["coord_values"][b].cpu(),
                           model.config)


def _pointer_loss(heads, hidden, vis, batch, targets, model) -> torch.Tensor | None:
    cfg, device = heads.config, hidden.device
    losses = []
    for b in range(hidden.shape[0]):
        t = targets[b] if b < len(targets) else None
        mod = batch["modalities"][b]
        if t is None or mod is None:
            continue
        pos, tgt = _pointer_of(t, b, batch, model)
        if not len(pos):
            continue
        keys = heads.key(hidden[b][vis[b]])  # [N, d]
        if keys.shape[0] != tgt.shape[1]:
            raise RuntimeError(f"sample {b}: {keys.shape[0]} visual positions, pointer targets have {tgt.shape[1]}")
        queries = heads.query(hidden[b, pos.to(device)])  # [C, d]
        logp = (queries @ keys.T / cfg.pointer_dim**0.5).float().log_softmax(-1)  # [C, N]
        losses.append(-(tgt.to(device) * logp).sum(-1))  # [C]
    return torch.cat(losses).mean() if losses else None


def attention_rows(attention: nn.Module, states: torch.Tensor, rope, head: int, positions: torch.Tensor) -> torch.Tensor:
    """One head's causal attention probabilities at some query positions of one sample: ``[C, L]``.

    ``attention``: a transformers Qwen2 attention module; ``states`` ``[L, D]``: its input (the
    layer's normed states); ``rope``: its ``(cos, sin)``, ``[L, head_dim]`` each; ``positions``
    ``[C]``. Key ``j`` gets probability 0 beyond query ``p`` (what the model's causal mask does;
    right padding lies beyond every query).
    """
    from transformers.models.qwen2.modeling_qwen2 import apply_rotary_pos_emb

    d = attention.head_dim
    heads = attention.q_proj.out_features // d
    if not 0 <= head < heads:
        raise ConfigError(f"auxiliary.attend_head {head} is outside the layer's {heads} heads")
    kv = head // attention.num_key_value_groups
    cos, sin = rope
    q = attention.q_proj(states[positions])[:, head * d : (head + 1) * d]  # [C, d]
    k = attention.k_proj(states)[:, kv * d : (kv + 1) * d]  # [L, d]
    # transformers' RoPE on [batch 1, heads 1, positions, d] with cos/sin [1, positions, d]
    q = apply_rotary_pos_emb(q[None, None], q[None, None], cos[positions][None], sin[positions][None])[0][0, 0]
    k = apply_rotary_pos_emb(k[None, None], k[None, None], cos[None], sin[None])[1][0, 0]
    scores = (q @ k.T).float() * attention.scaling  # [C, L]
    future = torch.arange(states.shape[0], device=states.device)[None, :] > positions[:, None]
    return scores.masked_fill(future, float("-inf")).softmax(-1)


def _attend_loss(heads, capture, vis, batch, targets, model) -> torch.Tensor | None:
    """Minus the log of the attention mass head ``attend_head`` puts on each pointer target's tokens."""
    cfg = heads.config
    states, (cos, sin) = capture.attention_input
    losses = []
    for b in range(states.shape[0]):
        t = targets[b] if b < len(targets) else None
        if t is None or batch["modalities"][b] is None:
            continue
        pos, tgt = _pointer_of(t, b, batch, model)
        if not len(pos):
            continue
        where = vis[b].nonzero().flatten()  # [N] sequence positions of the visual tokens
        if where.shape[0] != tgt.shape[1]:
            raise RuntimeError(f"sample {b}: {where.shape[0]} visual positions, pointer targets have {tgt.shape[1]}")
        pos = pos.to(states.device)
        probs = attention_rows(capture.attention, states[b], (cos[b], sin[b]), cfg.attend_head, pos)  # [C, L]
        mass = (probs[:, where] * (tgt.to(states.device) > 0)).sum(-1)  # [C]
        losses.append(-mass.clamp_min(1e-8).log())
    return torch.cat(losses).mean() if losses else None


def _visual_losses(heads, hidden, vis, batch, targets, model) -> dict[str, torch.Tensor]:
    """referred and asked, on the LLM's states at the visual positions of the samples that name an object."""
    cfg, device, out = heads.config, hidden.device, {}
    states, referred, asked = [], [], []
    for b in range(hidden.shape[0]):
        t = targets[b] if b < len(targets) else None
        mod = batch["modalities"][b]
        if t is None or mod is None or not t.has_object:
            continue
        x = hidden[b][vis[b]]  # [N, D]
        if cfg.referred > 0:
            goal = frame_token_maps(t.referred, mod, model.config).sum(0).clamp(0, 1)  # [N]
            if x.shape[0] != goal.shape[0]:
                raise RuntimeError(f"sample {b}: {x.shape[0]} visual positions, referred targets have {goal.shape[0]}")
            referred.append(goal)
        states.append(x)
        asked.append(t.asked.expand(x.shape[0], 3) if t.asked is not None else torch.full((x.shape[0], 3), -100))
    if not states:
        return out
    x = torch.cat(states)
    if cfg.referred > 0:
        out["aux_referred"] = F.binary_cross_entropy_with_logits(
            heads.referred(x).squeeze(-1).float(), torch.cat(referred).to(device))
    goal = torch.cat(asked).to(device)  # [N, 3]
    if cfg.asked > 0 and (goal[:, 0] != -100).any():
        keep = goal[:, 0] != -100
        out["aux_asked"] = _attribute_loss(heads, heads.asked(x[keep]), goal[keep])
    return out


def _words_loss(heads, model) -> torch.Tensor:
    table = model.language_model.embed_tokens.weight  # [V, D]
    n = len(heads.word_classes)
    rows = table[heads.word_tokens]  # [tokens, D]
    sums = torch.zeros(n, rows.shape[-1], dtype=rows.dtype, device=rows.device).index_add(0, heads.word_index, rows)
    counts = torch.bincount(heads.word_index, minlength=n).to(rows.dtype)[:, None]
    return _attribute_loss(heads, heads.attributes(sums / counts), heads.word_classes)


def auxiliary_loss(
    heads: AuxiliaryHeads, capture: Capture, batch: dict[str, Any], targets: Sequence[DenseTargets | None], model,
    greyed: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted sum of the losses of :class:`AuxiliaryConfig` for one batch, and each loss's
    value (for the log); ``greyed``: bool ``[B]``, the samples :func:`grey_samples` turned grey."""
    cfg = heads.config
    device = heads.attributes.weight.device
    feats = per_sample_features(capture.projected, batch["pixel_values"], batch["modalities"])
    losses = _tower_losses(heads, feats, targets, device, greyed)
    hidden = capture.hidden
    reads_hidden = hidden is not None and (cfg.pointer > 0 or cfg.referred > 0 or cfg.asked > 0)
    attends = cfg.attend > 0 and capture.attention_input is not None
    if reads_hidden or attends:
        vis = written_positions(batch["input_ids"], model.config).to(device)
    if reads_hidden:
        if cfg.pointer > 0:
            pointer = _pointer_loss(heads, hidden, vis, batch, targets, model)
            if pointer is not None:
                losses["aux_pointer"] = pointer
        if cfg.referred > 0 or cfg.asked > 0:
            losses.update(_visual_losses(heads, hidden, vis, batch, targets, model))
    if attends:
        attend = _attend_loss(heads, capture, vis, batch, targets, model)
        if attend is not None:
            losses["aux_attend"] = attend
    if cfg.words > 0 and len(heads.word_classes):
        losses["aux_words"] = _words_loss(heads, model)
    weights = {"aux_attributes": cfg.attributes, "aux_boxes": cfg.boxes, "aux_pointer": cfg.pointer,
               "aux_referred": cfg.referred, "aux_asked": cfg.asked, "aux_words": cfg.words, "aux_attend": cfg.attend}
    total = sum((weights[name] * loss for name, loss in losses.items()), torch.zeros((), device=device))
    parts = {name: float(loss.detach()) for name, loss in losses.items()}
    # heads whose loss this batch has no target for still take part (with zero weight), so
    # that every trainable parameter receives a gradient on every rank (DDP requires it)
    used = {
        "aux_attributes": (heads.attributes,),
        "aux_boxes": (heads.boxes,),
        "aux_pointer": (heads.query, heads.key),
        "aux_referred": (heads.referred,),
        "aux_asked": (heads.asked,),
    }
    idle = [m for name, mods in used.items() if name not in parts for m in mods]
    if idle:
        total = total + sum(p.sum() for m in idle for p in m.parameters()) * 0.0
    return total, parts


class DenseTargetSource:
    """``source(data_folder, sample, encoded)`` -> the :class:`~llava_st.synth.targets.DenseTargets`
    of a training sample, its pointer targets included (computed here, in the DataLoader
    worker, from the encoded sample's labels and values).

    The ground truth of each data folder is read once, when first needed (so
    each worker reads it itself instead of receiving it pickled). A sample
    without ``meta.scene`` (not from ST-Synth) gives None: it trains on its
    answer only.
    """

    def __init__(self, config):
        self.config = config
        self._indexes: dict[str, SceneIndex] = {}

    def __getstate__(self) -> dict:
        return {"config": self.config, "_indexes": {}}

    def __call__(self, data_folder, sample, encoded) -> DenseTargets | None:
        meta = sample.meta
        if not meta.get("scene"):
            return None
        key = str(data_folder)
        if key not in self._indexes:
            self._indexes[key] = SceneIndex(data_folder)
        scene = self._indexes[key].scene(meta["scene"])
        target = dense_targets(scene, meta, self.config.vision.grid_size)
        target.asked = asked_in_question(scene, meta, [t.text for t in sample.conversations if t.role == "human"])
        if encoded.modality is not None and encoded.labels is not None:
            target.pointer = pointer_targets(target, encoded.modality, encoded.labels, encoded.coord_values, self.config)
        return target
