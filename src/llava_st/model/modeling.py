"""The LLaVA-ST model: tower, projector, LAPE, packer, Qwen2 with the extended vocabulary (SPEC §2).

Data flow for one sample (``T`` frames, ``G`` grid side, ``g = G / spatial``,
``S`` slow slots, ``D`` LLM width, ``V`` text vocabulary, ``K`` = bins of the
three axes)::

    pixels [T, 3, px, px] --tower--> [T, G*G, C] --projector--> [T, G*G, D]
        --LAPE--> [T, G*G, D]
        image: the G*G tokens go to the LLM as they are
        video: --packer--> slow [S, g*g, D] and fast [T, (g/ff)^2, D]

    ids [B, L] --embed--> [B, L, D]        text rows; bin ids V.. read E_in rows
        visual runs  <- features, one masked scatter (counts checked first)
        placeholders <- interpolated E_in rows at their values
    --Qwen2--> hidden [B, L, D] --head--> logits [B, L, V + K] = [h W_lm^T | h E_out^T]

The quirk switches of SPEC §7 are read from the config:
``inject_fast_stream`` (write the fast stream into the ``<vid_start> ..
<vid_end>`` run; the release leaves the plain marker rows there) and
``inject_width_inputs`` (write interpolated rows at ``<WIDTH-INPUT>``; the
release leaves the plain placeholder row). ``-OUTPUT`` placeholders are
always injected (teacher forcing). NTP (SPEC §2.12) is used in training mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from ..config import LlavaSTConfig
from ..protocol.tokens import SpecialTokenIds
from .lape import CoordinateTables, add_lape, interpolate_rows
from .loss import build_targets, coordinate_loss
from .packer import SpatialTemporalPacker
from .projector import Projector
from .vision import VisionTower

MODALITIES = ("image", "video")


@dataclass
class VideoFeatures:
    """Packer outputs of one video: ``spatial [T, g*g, D]``, ``slow [S, g*g, D]``, ``fast [T, f*f, D]``
    (None when not computed)."""

    spatial: torch.Tensor
    slow: torch.Tensor
    fast: torch.Tensor | None


@dataclass
class LlavaSTOutput:
    """``loss`` (scalar, mean over supervised positions) and/or ``logits`` ``[B, L, V + K]``;
    ``hidden_states`` ``[B, L, D]`` (last layer, normed); ``cache`` when ``use_cache``;
    ``visual_features``: per sample, the rows written into the sequence (only with ``media_only``)."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    hidden_states: torch.Tensor | None = None
    cache: object | None = None
    visual_features: list | None = None


def visual_runs(input_ids: torch.Tensor, ids) -> dict[str, torch.Tensor]:
    """``[B, L]`` bool masks of the ``image``, ``fast`` and ``slow`` visual runs (markers included)."""
    return {
        "image": _runs(input_ids, ids.im_start, ids.im_end),
        "fast": _runs(input_ids, ids.vid_start, ids.vid_end),
        "slow": _runs(input_ids, ids.slow_vid_start, ids.slow_vid_end),
    }


def _written(runs: dict[str, torch.Tensor], config: LlavaSTConfig) -> torch.Tensor:
    mask = runs["image"] | runs["slow"]
    return mask | runs["fast"] if config.inject_fast_stream else mask


def written_positions(input_ids: torch.Tensor, config: LlavaSTConfig) -> torch.Tensor:
    """``[B, L]`` bool: the positions :meth:`LlavaSTModel.embed_inputs` overwrites with visual
    features: image runs, slow-stream runs and, when ``config.inject_fast_stream``, fast-stream
    runs (the release's layout keeps the fast run's slots as plain token embeddings)."""
    return _written(visual_runs(input_ids, config.token_ids), config)


def _runs(ids: torch.Tensor, start: int, end: int) -> torch.Tensor:
    """Positions inside ``start ... end`` runs, markers included: ``[B, L]`` bool.

    Example: ids ``[x, S, p, p, E, y]`` give ``[0, 1, 1, 1, 1, 0]``.
    """
    is_start = (ids == start).long().cumsum(-1)
    is_end = ids == end
    return (is_start - is_end.long().cumsum(-1) + is_end.long()) > 0


class LlavaSTModel(nn.Module):
    """LLaVA-ST with named parts: ``vision_tower``, ``projector``, ``packer``,
    ``coord_tables``, ``language_model`` (transformers ``Qwen2Model``) and ``lm_head``."""

    def __init__(self, config: LlavaSTConfig, attn_implementation: str = "sdpa"):
        super().__init__()
        from transformers import Qwen2Model

        if attn_implementation not in ("sdpa", "eager"):
            raise ValueError(f"attn_implementation must be 'sdpa' or 'eager', got {attn_implementation!r}")
        self.config = config
        d = config.hidden_size
        self.vision_tower = VisionTower(config.vision, attn_implementation)
        self.projector = Projector(config.vision.hidden_size, d)
        self.packer = SpatialTemporalPacker(config)
        self.coord_tables = CoordinateTables(config.coords.bins, d)
        self.language_model = Qwen2Model(config.text.to_qwen2_config(attn_implementation))
        self.lm_head = nn.Linear(d, config.text.vocab_size, bias=False)
        if config.text.tie_word_embeddings:
            self.lm_head.weight = self.language_model.embed_tokens.weight
        # The release stores an unused ``image_newline`` when its merge type is "*unpad*";
        # we keep it (frozen) only so that a load/save round trip is exact.
        if "unpad" in str(config.extra.get("mm_patch_merge_type", "")):
            self.image_newline = nn.Parameter(torch.zeros(d), requires_grad=False)
        else:
            self.image_newline = None
        self.use_ntp: bool | None = None  # None: NTP exactly in training mode
        # Whether the tower's forward records autograd. False runs it under
        # torch.no_grad() as the release does in every stage (no gradient can reach
        # the tower, whatever its requires_grad flags); True records it (a recipe that
        # trains the tower); None records it only when a tower parameter requires grad.
        self.vision_tower_grad: bool | None = None
        self.vision_batch_frames = 256  # frames per tower call

    # ----------------------------------------------------------------- basics
    @property
    def token_ids(self) -> SpecialTokenIds:
        return self.config.token_ids

    @property
    def device(self) -> torch.device:
        return self.lm_head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.lm_head.weight.dtype

    def _ntp(self) -> bool:
        return self.training if self.use_ntp is None else self.use_ntp

    # --------------------------------------------------------------- features
    def encode_frames(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Tower + projector: ``[N, 3, px, px]`` -> ``[N, G*G, D]``, at most
        :attr:`vision_batch_frames` frames per tower call (bounds activation memory)."""
        chunks = [
            self.projector(self._run_tower(chunk).to(self.projector.fc1.weight.dtype))
            for chunk in pixel_values.split(self.vision_batch_frames)
        ]
        return chunks[0] if len(chunks) == 1 else torch.cat(chunks)

    def _run_tower(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The tower's features ``[N, G*G, C]``, under ``no_grad`` unless :attr:`vision_tower_grad` allows autograd."""
        grad = self.vision_tower_grad
        if grad is None:
            grad = any(p.requires_grad for p in self.vision_tower.parameters())
        if grad:
            return self.vision_tower(pixel_values)
        with torch.no_grad():
            return self.vision_tower(pixel_values)

    def get_image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``N`` images ``[N, 3, px, px]`` -> ``[N, G*G, D]`` (projected + LAPE; images are not packed)."""
        if pixel_values.dim() != 4:
            raise ValueError(f"images must be pixel_values [N, 3, H, W], got {tuple(pixel_values.shape)}")
        feats = self.encode_frames(pixel_values)  # [N, G*G, D]
        if not self.config.use_lape:
            return feats
        signal = self.coord_tables.lape_signal(self._ntp())
        # each image is its own one-frame clip: [N, 1, G*G, D]
        return add_lape(feats[:, None], signal, self.config.vision.grid_size, is_video=False)[:, 0]

    def get_video_features(self, pixel_values: torch.Tensor, fast: bool = True) -> VideoFeatures:
        """One video ``[T, 3, px, px]`` -> :class:`VideoFeatures` (spatial, slow, fast streams),
        or ``B`` videos of equal length ``[B, T, 3, px, px]`` -> the same with a leading ``B``.
        ``fast=False`` skips the fast stream."""
        if pixel_values.dim() == 4:
            v = self.get_video_features(pixel_values[None], fast)
            return VideoFeatures(spatial=v.spatial[0], slow=v.slow[0], fast=None if v.fast is None else v.fast[0])
        if pixel_values.dim() != 5:
            raise ValueError(f"a video must be pixel_values [T, 3, H, W], got {tuple(pixel_values.shape)}")
        b, t = pixel_values.shape[:2]
        self.config.check_video_frames(t)
        feats = self.encode_frames(pixel_values.flatten(0, 1))  # [B*T, G*G, D]
        feats = feats.reshape(b, t, *feats.shape[1:])
        if self.config.use_lape:
            signal = self.coord_tables.lape_signal(self._ntp())
            feats = add_lape(feats, signal, self.config.vision.grid_size, is_video=True)
        spatial, slow, fast_stream = self.packer(feats, fast)  # [B, T, g*g, D], [B, S, g*g, D], [B, T, f*f, D]
        return VideoFeatures(spatial=spatial, slow=slow, fast=fast_stream)

    def _visual_features(
        self, pixel_values: Sequence[torch.Tensor | None], modalities: Sequence[str | None]
    ) -> list[torch.Tensor | None]:
        """Per sample, the rows to scatter in sequence order: image ``[G*G, D]``;
        video ``[fast; slow]`` (``[slow]`` when the fast stream is not injected).

        All images of the batch go through the tower together, and so do all
        videos with the same frame count (one call per block of the packer).
        """
        out: list[torch.Tensor | None] = [None] * len(modalities)
        groups: dict[tuple[str, int], list[int]] = {}
        for b, (pix, mod) in enumerate(zip(pixel_values, modalities)):
            if mod is not None:
                groups.setdefault((mod, 1 if mod == "image" else int(pix.shape[0])), []).append(b)
        for (mod, _), members in groups.items():
            if mod == "image":
                feats = self.get_image_features(torch.cat([pixel_values[b] for b in members]))
                for i, b in enumerate(members):
                    out[b] = feats[i]
                continue
            # the release does not write the fast stream: then it is not computed either
            v = self.get_video_features(torch.stack([pixel_values[b] for b in members]), fast=self.config.inject_fast_stream)
            d = v.slow.shape[-1]
            for i, b in enumerate(members):
                rows = [v.fast[i].reshape(-1, d)] if self.config.inject_fast_stream else []
                out[b] = torch.cat(rows + [v.slow[i].reshape(-1, d)])
        return out

    # ------------------------------------------------------------- embedding
    def embed_tokens(self, input_ids: torch.Tensor, validate: bool = True) -> torch.Tensor:
        """``[B, L]`` ids -> ``[B, L, D]``: text rows for ids ``< V``; bin id ``V + k`` reads
        row ``k`` of ``[E_in[t]; E_in[h]; E_in[w]]`` (how generated coordinates are fed back).

        ``validate=False`` (the decoding loop, whose ids come from an argmax over the
        extended vocabulary) skips the range check and any host synchronisation.
        """
        v = self.config.text.vocab_size
        table = torch.cat(self.coord_tables.inputs(self._ntp()))  # [K, D], small
        is_bin = input_ids >= v
        if not validate:
            rows = table[(input_ids - v).clamp(0, table.shape[0] - 1)]  # [B, L, D]
            text = self.language_model.embed_tokens(input_ids.clamp(max=v - 1))
            return torch.where(is_bin.unsqueeze(-1), rows.to(text.dtype), text)
        total = self.config.extended_vocab_size
        if input_ids.numel() and (int(input_ids.min()) < 0 or int(input_ids.max()) >= total):
            raise ValueError(
                f"input_ids must lie in [0, {total}); got values in [{int(input_ids.min())}, {int(input_ids.max())}]"
            )
        embeds = self.language_model.embed_tokens(input_ids.clamp(max=v - 1))
        if is_bin.any():
            embeds = embeds.masked_scatter(is_bin.unsqueeze(-1), table[input_ids[is_bin] - v].to(embeds.dtype))
        return embeds

    @staticmethod
    def _check_media(pixel_values, modalities) -> None:
        for b, (pix, mod) in enumerate(zip(pixel_values, modalities)):
            if mod is not None and mod not in MODALITIES:
                raise ValueError(f"sample {b}: modality must be one of {MODALITIES} or None, got {mod!r}")
            if mod is None and pix is not None:
                raise ValueError(f"sample {b}: pixel_values given but modality is None")
            if mod is not None and pix is None:
                raise ValueError(f"sample {b}: modality {mod!r} but no pixel_values")
            if pix is not None and (pix.dim() != 4 or (mod == "image" and pix.shape[0] != 1)):
                want = "[1, 3, H, W]" if mod == "image" else "[T, 3, H, W]"
                raise ValueError(f"sample {b}: {mod} pixel_values must be {want}, got {tuple(pix.shape)}")

    def _check_runs(self, input_ids: torch.Tensor, pixel_values, modalities) -> dict[str, torch.Tensor]:
        """Visual-run masks ``[B, L]`` per kind, after checking each sample's slot counts."""
        runs = visual_runs(input_ids, self.token_ids)
        counts = {k: r.sum(-1).tolist() for k, r in runs.items()}
        # features are scattered as [fast; slow] in sequence order, so the fast run must come first
        fast_first = runs["fast"].long().argmax(-1) < runs["slow"].long().argmax(-1)
        cfg = self.config
        for b, mod in enumerate(modalities):
            frames = 0 if pixel_values[b] is None else int(pixel_values[b].shape[0])
            expected = {
                "image": cfg.image_token_count if mod == "image" else 0,
                "fast": cfg.video_fast_token_count(frames) if mod == "video" else 0,
                "slow": cfg.video_slow_token_count(frames) if mod == "video" else 0,
            }
            for kind, want in expected.items():
                have = counts[kind][b]
                if have != want:
                    what = {"image": "<im_start>..<im_end>", "fast": "<vid_start>..<vid_end>",
                            "slow": "<slow_vid_start>..<slow_vid_end>"}[kind]
                    media = f"{mod} with {frames} frame(s)" if mod else "no media"
                    raise ValueError(
                        f"sample {b}: the sequence has {have} visual slot(s) in {what} runs but the "
                        f"{media} needs {want}"
                    )
            if mod == "video" and not bool(fast_first[b]):
                raise ValueError(f"sample {b}: the <slow_vid_start> run comes before the <vid_start> run")
        return runs

    def embed_inputs(
        self,
        input_ids: torch.Tensor,
        coord_values: torch.Tensor | None = None,
        pixel_values: Sequence[torch.Tensor | None] | None = None,
        modalities: Sequence[str | None] | None = None,
    ) -> torch.Tensor:
        """The merged sequence ``[B, L, D]`` the language model receives.

        Args:
            input_ids: ``[B, L]``.
            coord_values: ``[B, L]`` placeholder values (NaN elsewhere), see
                :func:`llava_st.protocol.tokens.values_from_variables`.
            pixel_values: per sample ``[T_b, 3, px, px]`` or None.
            modalities: per sample ``"image"``, ``"video"`` or None.

        Raises:
            ValueError: visual slot counts that differ from the features (both
                counts named), a placeholder without a finite value, or
                mismatched list lengths.
        """
        bsz = input_ids.shape[0]
        input_ids = input_ids.to(self.device)
        if coord_values is not None:
            coord_values = coord_values.to(self.device)
        pixel_values = list(pixel_values) if pixel_values is not None else [None] * bsz
        modalities = list(modalities) if modalities is not None else [None] * bsz
        if len(pixel_values) != bsz or len(modalities) != bsz:
            raise ValueError(
                f"batch of {bsz} sequences but {len(pixel_values)} pixel_values and {len(modalities)} modalities"
            )
        self._check_media(pixel_values, modalities)
        embeds = self.embed_tokens(input_ids)

        runs = self._check_runs(input_ids, pixel_values, modalities)
        feats = [f for f in self._visual_features(pixel_values, modalities) if f is not None]
        if feats:
            mask = _written(runs, self.config)
            rows = torch.cat(feats).to(embeds.dtype)
            embeds = embeds.masked_scatter(mask.unsqueeze(-1), rows)

        return self._inject_coordinates(input_ids, coord_values, embeds)

    def _inject_coordinates(
        self, input_ids: torch.Tensor, coord_values: torch.Tensor | None, embeds: torch.Tensor
    ) -> torch.Tensor:
        ids = self.token_ids
        placeholder_axis = ids.placeholder_axis()
        injected = [pid for pid in ids.placeholder_ids if pid != ids.width_input or self.config.inject_width_inputs]
        is_ph = torch.isin(input_ids, torch.tensor(injected, device=input_ids.device))
        if not bool(is_ph.any()):
            return embeds
        if coord_values is None:
            raise ValueError("the sequence holds coordinate placeholders but no coord_values were given")
        if coord_values.shape != input_ids.shape:
            raise ValueError(
                f"coord_values must have the shape of input_ids {tuple(input_ids.shape)}, got {tuple(coord_values.shape)}"
            )
        values = coord_values.to(input_ids.device)[is_ph].to(torch.float64)  # [M]
        if not bool(torch.isfinite(values).all()):
            b, p = is_ph.nonzero()[(~torch.isfinite(values)).nonzero()[0, 0]].tolist()
            raise ValueError(f"coordinate placeholder at batch row {b}, position {p} has no value in coord_values")
        axis_lut = torch.full((self.config.extended_vocab_size,), -1, dtype=torch.long, device=input_ids.device)
        for pid, axis in placeholder_axis.items():
            axis_lut[pid] = axis
        axes = axis_lut[input_ids[is_ph]]  # [M]
        rows = torch.empty(values.shape[0], embeds.shape[-1], dtype=embeds.dtype, device=embeds.device)
        for axis, table in enumerate(self.coord_tables.inputs(self._ntp())):
            sel = axes == axis
            if bool(sel.any()):
                rows[sel] = interpolate_rows(table, values[sel]).to(embeds.dtype)
        return embeds.masked_scatter(is_ph.unsqueeze(-1), rows)

    # ------------------------------------------------------------------ head
    def extended_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """``[..., D]`` -> ``[..., V + K]`` = ``[h W_lm^T | h E_out[t]^T | h E_out[h]^T | h E_out[w]^T]``.

        Each block is its own matmul; only the (small) outputs are concatenated,
        never the ``V``-row weight matrix.
        """
        parts = [self.lm_head(hidden)]
        parts += [nn.functional.linear(hidden, t) for t in self.coord_tables.outputs(self._ntp())]
        return torch.cat(parts, dim=-1)

    # --------------------------------------------------------------- forward
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        coord_values: torch.Tensor | None = None,
        pixel_values: Sequence[torch.Tensor | None] | None = None,
        modalities: Sequence[str | None] | None = None,
        labels: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        cache=None,
        use_cache: bool = False,
        return_logits: bool = True,
        media_only: bool = False,
        **unused,
    ) -> LlavaSTOutput:
        """Full forward. With ``labels`` ``[B, L]`` (-100 = ignored) the loss is the mean
        over supervised positions of the coordinate-aware cross-entropy (SPEC §2.11).

        ``return_logits=False`` skips the full ``[B, L, V + K]`` logits (training
        then computes the head only at supervised positions). ``media_only=True`` runs
        the visual side only (tower, projector, LAPE, packer: ``visual_features``) and
        not the LLM: a training step of the tower alone goes through here, so that
        wrappers such as DDP see a forward.
        """
        unknown = set(unused) - {"variables", "token_type_ids"}
        if unknown:
            raise TypeError(f"unexpected forward arguments: {sorted(unknown)}")
        if media_only:
            if pixel_values is None:
                return LlavaSTOutput(visual_features=[None] * (0 if modalities is None else len(modalities)))
            return LlavaSTOutput(visual_features=self._visual_features(pixel_values, modalities))
        if inputs_embeds is None:
            inputs_embeds = self.embed_inputs(input_ids, coord_values, pixel_values, modalities)
        inputs_embeds = inputs_embeds.to(self.device)
        if attention_mask is None:
            attention_mask = torch.ones(inputs_embeds.shape[:2], dtype=torch.long, device=inputs_embeds.device)
        attention_mask = attention_mask.to(self.device)
        if position_ids is None:
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        out = self.language_model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            use_cache=use_cache,
        )
        hidden = out.last_hidden_state  # [B, L, D]
        result = LlavaSTOutput(hidden_states=hidden, cache=out.cache if use_cache else None)
        if labels is not None:
            _, sup_logits, target_ids, target_w = self.supervised_logits(hidden, labels, coord_values)
            result.loss = coordinate_loss(sup_logits, target_ids, target_w)
        if return_logits:
            result.logits = self.extended_logits(hidden)
        return result

    def supervised_logits(
        self, hidden: torch.Tensor, labels: torch.Tensor, coord_values: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The head at the supervised positions only, with their sparse targets (SPEC §2.11).

        ``hidden`` ``[B, L, D]`` (the last layer's states), ``labels`` ``[B, L]``,
        ``coord_values`` ``[B, L]`` (see :func:`~llava_st.model.loss.build_targets`). Returns
        ``rows`` ``[N, 2]`` (batch index, position predicting the label), ``logits``
        ``[N, V + K]``, ``target_ids`` and ``target_weights`` ``[N, 2]``: the loss of the
        forward is their mean soft-target cross-entropy.
        """
        labels = labels.to(self.device)
        coord_values = None if coord_values is None else coord_values.to(self.device)
        rows, target_ids, target_w = build_targets(labels, coord_values, self.token_ids, self.config.coords.bins)
        return rows, self.extended_logits(hidden[rows[:, 0], rows[:, 1]]), target_ids, target_w

    # ------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, **kwargs):
        """Greedy or sampled decoding with a KV cache; see :func:`llava_st.model.generate.generate`."""
        from .generate import generate

        return generate(self, input_ids, **kwargs)

    # ------------------------------------------------------------ checkpoint
    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | str = torch.float32,
        attn_implementation: str = "sdpa",
        strict: bool = True,
        config: LlavaSTConfig | None = None,
        revision: str | None = None,
    ) -> "LlavaSTModel":
        """Load a folder in the release layout, a named model or a Hub id (see
        :func:`llava_st.model.checkpoint.load_pretrained`)."""
        from .checkpoint import load_pretrained

        return load_pretrained(
            path, device=device, dtype=dtype, attn_implementation=attn_implementation, strict=strict, config=config,
            revision=revision,
        )

    def save_pretrained(self, path: str | Path, dtype: torch.dtype | None = None, max_shard_bytes: int = 5 * 2**30):
        """Write config.json and safetensors weights in the release layout."""
        from .checkpoint import save_pretrained

        save_pretrained(self, path, dtype=dtype, max_shard_bytes=max_shard_bytes)
