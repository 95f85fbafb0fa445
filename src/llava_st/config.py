"""Typed configuration of a LLaVA-ST model (SPEC §2, §6, §7).

``LlavaSTConfig`` is one composite dataclass whose defaults are the released
``LLaVA-ST-Qwen2-7B`` values. Every size the model uses is a field here, so the
7B release, our embedded model and the tiny test models run the same code.

The release stores its configuration as a flat ``config.json`` with
``model_type: "llava_qwen"`` (Qwen2 fields plus LLaVA-OneVision ``mm_*`` fields).
:meth:`LlavaSTConfig.from_release_dict` reads that layout, keeps every key it
does not know in ``extra`` and :meth:`LlavaSTConfig.to_release_dict` writes it
back, so a load/save round trip loses nothing.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from .protocol.tokens import RELEASE_BINS, BinCounts, SpecialTokenIds
from .errors import ConfigError, ModelNotFoundError

MODEL_TYPE = "llava_qwen"


@dataclass
class TextConfig:
    """The Qwen2 language model. Defaults: Qwen2-7B as in the release.

    ``vocab_size`` is ``V``, the row count of the text embedding and of
    ``lm_head``, which includes the 14 added marker/placeholder tokens. The
    release's value follows from the tokenizer growth (151646 Qwen2 tokens + 3
    image + 5 video + 6 placeholder tokens); a checkpoint's own config always wins.
    """

    vocab_size: int = 151660
    hidden_size: int = 3584
    intermediate_size: int = 18944
    num_hidden_layers: int = 28
    num_attention_heads: int = 28
    num_key_value_heads: int = 4
    hidden_act: str = "silu"
    max_position_embeddings: int = 32768
    rms_norm_eps: float = 1e-6
    rope_theta: float = 1_000_000.0
    tie_word_embeddings: bool = False
    attention_dropout: float = 0.0
    initializer_range: float = 0.02
    bos_token_id: int | None = 151643
    eos_token_id: int | None = 151645
    pad_token_id: int | None = None

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def to_qwen2_config(self, attn_implementation: str = "sdpa"):
        """A ``transformers.Qwen2Config`` for these fields.

        ``rope_theta`` is passed through ``rope_parameters`` at construction: in
        transformers 5.x a ``rope_theta`` attribute set afterwards is ignored
        (SPEC §10).
        """
        from transformers import Qwen2Config

        cfg = Qwen2Config(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            num_key_value_heads=self.num_key_value_heads,
            hidden_act=self.hidden_act,
            max_position_embeddings=self.max_position_embeddings,
            rms_norm_eps=self.rms_norm_eps,
            rope_parameters={"rope_type": "default", "rope_theta": float(self.rope_theta)},
            tie_word_embeddings=self.tie_word_embeddings,
            use_sliding_window=False,
            attention_dropout=self.attention_dropout,
            initializer_range=self.initializer_range,
            bos_token_id=self.bos_token_id,
            eos_token_id=self.eos_token_id,
            pad_token_id=self.pad_token_id,
        )
        cfg._attn_implementation = attn_implementation
        return cfg


@dataclass
class VisionConfig:
    """The SigLIP tower. Defaults: ``siglip-so400m-patch14-384``.

    ``num_hidden_layers`` counts the layers of the FULL tower (as its own config
    does); ``select_layer`` is the release's ``mm_vision_select_layer`` counted
    from the end of the full tower, so the model keeps
    ``num_hidden_layers + select_layer + 1`` layers (26 of 27 for so400m) and its
    feature is the output of the last kept layer, before ``post_layernorm``.
    """

    image_size: int = 384
    patch_size: int = 14
    num_channels: int = 3
    hidden_size: int = 1152
    intermediate_size: int = 4304
    num_attention_heads: int = 16
    num_hidden_layers: int = 27
    select_layer: int = -2
    layer_norm_eps: float = 1e-6
    hidden_act: str = "gelu_pytorch_tanh"
    attention_dropout: float = 0.0
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    @property
    def grid_size(self) -> int:
        """Patches per side ``G``: the stride-``patch_size`` convolution drops the remainder (384 // 14 = 27)."""
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid_size**2

    @property
    def num_kept_layers(self) -> int:
        return self.num_hidden_layers + self.select_layer + 1

    def to_siglip_config(self, attn_implementation: str = "sdpa"):
        """A ``transformers.SiglipVisionConfig`` of the KEPT tower, without the pooling head."""
        from transformers import SiglipVisionConfig

        cfg = SiglipVisionConfig(
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_kept_layers,
            num_attention_heads=self.num_attention_heads,
            num_channels=self.num_channels,
            image_size=self.image_size,
            patch_size=self.patch_size,
            hidden_act=self.hidden_act,
            layer_norm_eps=self.layer_norm_eps,
            attention_dropout=self.attention_dropout,
            vision_use_head=False,
        )
        cfg._attn_implementation = attn_implementation
        return cfg

    @classmethod
    def from_siglip_dict(cls, data: Mapping[str, Any], select_layer: int) -> "VisionConfig":
        """Read a SigLIP tower ``config.json`` (vision or full SigLIP layout)."""
        data = data.get("vision_config", data)
        kwargs = {f.name: data[f.name] for f in fields(cls) if f.name in data and f.name not in ("image_mean", "image_std")}
        for name in ("image_mean", "image_std"):
            if name in data:
                kwargs[name] = tuple(float(v) for v in data[name])
        return cls(select_layer=select_layer, **kwargs)


@dataclass
class PackerConfig:
    """The spatial-temporal packer (SPEC §2.6).

    ``spatial_factor``: side of the square region one query of the first
    (spatial) block covers, ``G -> G / spatial_factor`` (27 -> 9).
    ``fast_factor``: the same for the fast block (9 -> 3).
    ``temporal_window``: frames per slot of the slow block, giving
    ``S = max(1, T // temporal_window)`` slots (100 -> 20).
    ``embed_dim``: inner width (the release's ``mm_packer_embed_dim``, 1024);
    ``num_heads`` heads of ``embed_dim / num_heads``.
    """

    embed_dim: int = 1024
    num_heads: int = 8
    spatial_factor: int = 3
    fast_factor: int = 3
    temporal_window: int = 5
    layer_norm_eps: float = 1e-5


@dataclass
class CoordConfig:
    """Coordinate bins (SPEC §1, §2.5, §2.9). Bin ``k`` of an axis with ``n`` bins means ``k / (n - 1)``.

    Defaults: the released checkpoints' counts (:data:`~llava_st.protocol.tokens.RELEASE_BINS`).
    Code that reads or writes coordinates takes :attr:`bins`, never the two numbers.
    """

    num_temporal_bins: int = RELEASE_BINS.time
    num_spatial_bins: int = RELEASE_BINS.space

    @property
    def bins(self) -> BinCounts:
        """The counts as the frozen pair every protocol function takes: ``BinCounts(time, space)``."""
        return BinCounts(self.num_temporal_bins, self.num_spatial_bins)

    @property
    def num_bins(self) -> int:
        """Extra output columns: time + height + width bins."""
        return self.num_temporal_bins + 2 * self.num_spatial_bins


# Release config key -> field, for the parts whose keys are renamed. The
# defaults of a missing key are the dataclasses' own (written once, above).
_PACKER_KEYS = {
    "mm_packer_embed_dim": "embed_dim",
    "packer_num_heads": "num_heads",
    "packer_spatial_factor": "spatial_factor",
    "packer_fast_factor": "fast_factor",
    "packer_temporal_window": "temporal_window",
    "packer_layer_norm_eps": "layer_norm_eps",
}
_COORD_KEYS = {"num_temporal_tokens": "num_temporal_bins", "num_spatial_tokens": "num_spatial_bins"}


def _renamed(cls, data: Mapping[str, Any], keys: Mapping[str, str]):
    """``cls`` built from the release keys present in ``data`` (each cast to its field's default type)."""
    types = {f.name: type(f.default) for f in fields(cls)}
    return cls(**{name: types[name](data[key]) for key, name in keys.items() if key in data})


def _default(cls, name: str) -> Any:
    return next(f.default for f in fields(cls) if f.name == name)


# Keys of the release config that this dataclass owns (everything else goes to ``extra``).
_TEXT_KEYS = {f.name for f in fields(TextConfig)} - {"rope_theta"}
_OWNED_KEYS = _TEXT_KEYS | {
    "model_type",
    "rope_theta",
    "rope_parameters",
    "mm_vision_tower",
    "vision_tower",
    "mm_hidden_size",
    "mm_vision_select_layer",
    "mm_projector_type",
    "mm_resampler_type",
    "mm_perceiver_latents",
    "mm_perceiver_latents_fast",
    # keys that only configs we write carry
    "num_frames",
    "vision_config",
    "inject_width_inputs",
    "inject_fast_stream",
    "use_lape",
    "media_position",
    "special_token_ids",
} | set(_PACKER_KEYS) | set(_COORD_KEYS)


@dataclass
class LlavaSTConfig:
    """Everything that defines a LLaVA-ST model. Defaults: the 7B release.

    ``num_frames`` is ``T``, the frames sampled per video. The two quirk
    switches of SPEC §7 live here: ``inject_width_inputs`` (write interpolated
    width-table rows at ``<WIDTH-INPUT>`` positions) and ``inject_fast_stream``
    (write the fast packer stream into the video's fast span). A release config
    read from disk gets both ``False``; a config we create gets both ``True``.
    ``use_lape`` (ours, for ablations; always true in the release) adds the
    coordinate tables' positional signal to the visual features (SPEC §2.5).
    ``media_position`` (ours) is where the processor puts a turn's media: ``"first"``,
    before the question (the release), or ``"last"``, after it, so that the
    visual positions of the causal LLM can read the question (the embedded
    model, which learns to find the named object there).
    """

    text: TextConfig = field(default_factory=TextConfig)
    vision: VisionConfig = field(default_factory=VisionConfig)
    packer: PackerConfig = field(default_factory=PackerConfig)
    coords: CoordConfig = field(default_factory=CoordConfig)
    num_frames: int = 100
    projector_type: str = "mlp2x_gelu"
    vision_tower: str = "google/siglip-so400m-patch14-384"
    inject_width_inputs: bool = True
    inject_fast_stream: bool = True
    use_lape: bool = True
    media_position: str = "first"
    special_token_ids: SpecialTokenIds | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ sizes
    @property
    def hidden_size(self) -> int:
        """``D``, the LLM width; everything after the projector lives in it."""
        return self.text.hidden_size

    @property
    def slow_grid(self) -> int:
        """Side of the spatial query grid of the first packer block (9)."""
        return self.vision.grid_size // self.packer.spatial_factor

    @property
    def fast_grid(self) -> int:
        """Side of the fast stream's grid (3)."""
        return self.slow_grid // self.packer.fast_factor

    def num_slow_slots(self, num_frames: int | None = None) -> int:
        """Temporal slots ``S`` of the slow stream for ``T`` frames (20 for T = 100)."""
        t = self.num_frames if num_frames is None else num_frames
        return max(1, t // self.packer.temporal_window)

    @property
    def image_token_count(self) -> int:
        """LLM positions of one image: ``G * G`` (729), markers included."""
        return self.vision.num_patches

    def video_fast_token_count(self, num_frames: int | None = None) -> int:
        """Positions of the fast run ``<vid_start> ... <vid_end>`` (900)."""
        t = self.num_frames if num_frames is None else num_frames
        return t * self.fast_grid**2

    def video_slow_token_count(self, num_frames: int | None = None) -> int:
        """Positions of the slow run ``<slow_vid_start> ... <slow_vid_end>`` (1620)."""
        return self.num_slow_slots(num_frames) * self.slow_grid**2

    def video_token_count(self, num_frames: int | None = None) -> int:
        """All positions of one video (2520)."""
        return self.video_fast_token_count(num_frames) + self.video_slow_token_count(num_frames)

    def check_video_frames(self, num_frames: int) -> None:
        """Raise when a video of ``num_frames`` frames cannot be laid out: each of its two
        runs needs room for a start and an end marker (at least 2 positions)."""
        fast, slow = self.video_fast_token_count(num_frames), self.video_slow_token_count(num_frames)
        if num_frames < 1 or fast < 2 or slow < 2:
            raise ConfigError(
                f"a video of {num_frames} frame(s) gives {fast} fast and {slow} slow position(s); each run "
                f"needs at least 2 (start and end markers): use more frames"
            )

    @property
    def extended_vocab_size(self) -> int:
        """Output columns: ``V + bins`` (V + 300 in the release)."""
        return self.text.vocab_size + self.coords.num_bins

    @property
    def token_ids(self) -> SpecialTokenIds:
        """The marker/placeholder ids; the release layout unless the config names others."""
        if self.special_token_ids is not None:
            return self.special_token_ids
        return SpecialTokenIds.release_layout(
            self.text.vocab_size, pad=self.text.pad_token_id, eos=self.text.eos_token_id
        )

    # -------------------------------------------------------------- checking
    def validate(self) -> None:
        """Raise ``ValueError`` naming the field when sizes do not fit together."""
        v, p = self.vision, self.packer
        if v.grid_size < 2:
            # an image run needs room for its start and end markers
            raise ConfigError(
                f"vision.image_size {v.image_size} gives a {v.grid_size}x{v.grid_size} patch grid with patch_size "
                f"{v.patch_size}; at least 2x2 is needed"
            )
        if not 1 <= v.num_kept_layers <= v.num_hidden_layers:
            raise ConfigError(
                f"vision.select_layer {v.select_layer} leaves {v.num_kept_layers} of "
                f"{v.num_hidden_layers} tower layers; it must keep at least one"
            )
        if v.grid_size % p.spatial_factor:
            raise ConfigError(f"tower grid {v.grid_size} is not divisible by packer.spatial_factor {p.spatial_factor}")
        if self.slow_grid % p.fast_factor:
            raise ConfigError(f"packer grid {self.slow_grid} is not divisible by packer.fast_factor {p.fast_factor}")
        if p.embed_dim % p.num_heads:
            raise ConfigError(f"packer.embed_dim {p.embed_dim} is not divisible by packer.num_heads {p.num_heads}")
        if self.num_frames < 1:
            raise ConfigError(f"num_frames must be >= 1, got {self.num_frames}")
        if p.temporal_window < 1:
            raise ConfigError(f"packer.temporal_window must be >= 1, got {p.temporal_window}")
        if self.coords.num_temporal_bins < 2 or self.coords.num_spatial_bins < 2:
            raise ConfigError("coordinate axes need at least 2 bins each")
        if self.media_position not in ("first", "last"):
            raise ConfigError(f"media_position must be 'first' or 'last', got {self.media_position!r}")
        if self.projector_type != "mlp2x_gelu":
            raise ConfigError(f"projector_type {self.projector_type!r} is not supported (only 'mlp2x_gelu')")
        if self.text.hidden_size % self.text.num_attention_heads:
            raise ConfigError("text.hidden_size must be divisible by text.num_attention_heads")

    # ------------------------------------------------------------ release I/O
    @classmethod
    def from_release_dict(
        cls, data: Mapping[str, Any], vision: VisionConfig | None = None
    ) -> "LlavaSTConfig":
        """Read a release-layout ``config.json`` dict.

        Args:
            data: the parsed ``config.json``.
            vision: the tower config when the caller read it from the tower's
                folder; otherwise an inline ``vision_config`` (configs we write)
                or the so400m defaults are used.

        Unknown keys are kept in ``extra``. The quirk switches default to the
        release behaviour (``False``) when the file does not name them.
        """
        if data.get("model_type", MODEL_TYPE) != MODEL_TYPE:
            raise ConfigError(f"config model_type is {data.get('model_type')!r}, expected {MODEL_TYPE!r}")
        text_kwargs = {k: data[k] for k in _TEXT_KEYS if k in data}
        rope = data.get("rope_parameters") or {}
        if "rope_theta" in data:
            text_kwargs["rope_theta"] = float(data["rope_theta"])
        elif "rope_theta" in rope:
            text_kwargs["rope_theta"] = float(rope["rope_theta"])
        if isinstance(text_kwargs.get("eos_token_id"), list):
            text_kwargs["eos_token_id"] = text_kwargs["eos_token_id"][0]
        text = TextConfig(**text_kwargs)

        select_layer = int(data.get("mm_vision_select_layer", _default(VisionConfig, "select_layer")))
        if vision is None:
            if "vision_config" in data:
                vision = VisionConfig(**_vision_kwargs(data["vision_config"]))
            else:
                vision = VisionConfig(select_layer=select_layer)
        elif vision.select_layer != select_layer:
            vision = replace(vision, select_layer=select_layer)
        if "mm_hidden_size" in data and int(data["mm_hidden_size"]) != vision.hidden_size:
            raise ConfigError(
                f"config mm_hidden_size {data['mm_hidden_size']} does not match the vision tower width {vision.hidden_size}"
            )

        packer = _renamed(PackerConfig, data, _PACKER_KEYS)
        coords = _renamed(CoordConfig, data, _COORD_KEYS)
        token_ids = data.get("special_token_ids")
        cfg = cls(
            text=text,
            vision=vision,
            packer=packer,
            coords=coords,
            num_frames=int(data.get("num_frames", _default(cls, "num_frames"))),
            projector_type=data.get("mm_projector_type", _default(cls, "projector_type")),
            vision_tower=data.get("mm_vision_tower", data.get("vision_tower", cls.vision_tower)),
            inject_width_inputs=bool(data.get("inject_width_inputs", False)),
            inject_fast_stream=bool(data.get("inject_fast_stream", False)),
            use_lape=bool(data.get("use_lape", True)),
            media_position=str(data.get("media_position", "first")),
            special_token_ids=SpecialTokenIds.from_dict(token_ids) if token_ids else None,
            extra={k: copy.deepcopy(v) for k, v in data.items() if k not in _OWNED_KEYS},
        )
        resampler = data.get("mm_resampler_type", "fast_slow_resampler")
        if resampler is None:
            raise ConfigError(
                "mm_resampler_type is null: this is a LLaVA-OneVision config, not a LLaVA-ST one; a training "
                "recipe converts such a checkpoint with model.kind: onevision"
            )
        if resampler != "fast_slow_resampler":
            raise ConfigError(f"mm_resampler_type {resampler!r} is not supported (LLaVA-ST uses 'fast_slow_resampler')")
        for key, expected in (
            ("mm_perceiver_latents", cfg.slow_grid**2),
            ("mm_perceiver_latents_fast", cfg.fast_grid**2),
        ):
            if key in data and int(data[key]) != expected:
                raise ConfigError(
                    f"config {key} = {data[key]} does not match the packer sizes (expected {expected} "
                    f"from grid {vision.grid_size}, spatial factor {packer.spatial_factor}, fast factor {packer.fast_factor})"
                )
        return cfg

    def to_release_dict(self) -> dict[str, Any]:
        """The release-layout dict (unknown keys restored, our own fields added)."""
        out: dict[str, Any] = copy.deepcopy(self.extra)
        text = asdict(self.text)
        out.update({k: v for k, v in text.items()})
        out.update(
            {
                "model_type": MODEL_TYPE,
                "architectures": out.get("architectures", ["LlavaQwenForCausalLM"]),
                "use_sliding_window": False,
                "mm_vision_tower": self.vision_tower,
                "mm_hidden_size": self.vision.hidden_size,
                "mm_vision_select_layer": self.vision.select_layer,
                "mm_projector_type": self.projector_type,
                "mm_resampler_type": "fast_slow_resampler",
                "mm_perceiver_latents": self.slow_grid**2,
                "mm_perceiver_latents_fast": self.fast_grid**2,
                "num_frames": self.num_frames,
                "vision_config": _vision_dict(self.vision),
                **{key: getattr(self.packer, name) for key, name in _PACKER_KEYS.items()},
                **{key: getattr(self.coords, name) for key, name in _COORD_KEYS.items()},
                "inject_width_inputs": self.inject_width_inputs,
                "inject_fast_stream": self.inject_fast_stream,
                **({} if self.use_lape else {"use_lape": False}),
                **({} if self.media_position == "first" else {"media_position": self.media_position}),
            }
        )
        if "vision_tower" in self.extra or "vision_tower" not in out:
            out["vision_tower"] = self.vision_tower
        if self.special_token_ids is not None:
            out["special_token_ids"] = self.special_token_ids.to_dict()
        return out

    @classmethod
    def from_pretrained(cls, folder: str | Path, layout: str = "llava_st") -> "LlavaSTConfig":
        """The config of a model folder in the release layout, its tower resolved.

        Configs we write carry the tower inline (``vision_config``). A release
        config names the tower in ``mm_vision_tower``: when that is a local folder
        holding ``config.json`` (relative to the model folder, or absolute), its
        sizes are read from there; otherwise (the release's hub id) the so400m
        defaults of :class:`VisionConfig` apply.

        ``layout="onevision"`` reads a LLaVA-OneVision Qwen2 + SigLIP folder (the
        checkpoint the release's stage 1 starts from) as the config of the
        LLaVA-ST model converted from it: see :func:`onevision_release_dict`.
        """
        if layout not in ("llava_st", "onevision"):
            raise ConfigError(f"layout must be 'llava_st' or 'onevision', got {layout!r}")
        folder = Path(folder)
        path = folder / "config.json"
        if not path.is_file():
            what = "a LLaVA-OneVision checkpoint folder" if layout == "onevision" else "a model folder"
            raise ModelNotFoundError(f"no config.json in {folder}: not {what}")
        data = _read_json(path)
        if layout == "onevision":
            data = onevision_release_dict(data, source=str(path))
        vision = None
        name = data.get("mm_vision_tower") or data.get("vision_tower")
        if "vision_config" not in data and name:
            candidates = (folder / name / "config.json", Path(name) / "config.json")
            found = next((c for c in candidates if c.is_file()), None)
            if found is not None:
                select = int(data.get("mm_vision_select_layer", -2))
                vision = VisionConfig.from_siglip_dict(_read_json(found), select_layer=select)
            elif int(data.get("mm_hidden_size", VisionConfig.hidden_size)) != VisionConfig.hidden_size:
                raise ModelNotFoundError(
                    f"{path} names the vision tower {name!r}, whose width {data['mm_hidden_size']} is not the "
                    f"so400m default, but neither {candidates[0]} nor {candidates[1]} exists to give its sizes"
                )
        return cls.from_release_dict(data, vision=vision)

    @classmethod
    def from_json_file(cls, path: str | Path, vision: VisionConfig | None = None) -> "LlavaSTConfig":
        path = Path(path)
        if not path.is_file():
            raise ModelNotFoundError(f"config file not found: {path}")
        return cls.from_release_dict(_read_json(path), vision=vision)

    def to_json_file(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_release_dict(), indent=2, sort_keys=True) + "\n")

    def replace(self, **changes) -> "LlavaSTConfig":
        """A copy with top-level fields changed (validated again)."""
        return replace(self, **changes)


#: ``model_type`` of LLaVA-OneVision's own (LLaVA-NeXT) configs: lmms-lab's folders say ``llava``,
#: its code's config class ``llava_qwen``.
ONEVISION_MODEL_TYPES = ("llava_qwen", "llava")
#: Keys only LLaVA-ST configs (the release's or ours) carry.
_LLAVA_ST_ONLY_KEYS = ("mm_perceiver_latents", "mm_perceiver_latents_fast", "num_temporal_tokens",
                       "num_spatial_tokens", "inject_width_inputs", "inject_fast_stream", "vision_config")


def onevision_release_dict(data: Mapping[str, Any], source: str = "config.json") -> dict[str, Any]:
    """A LLaVA-OneVision Qwen2 + SigLIP ``config.json`` rewritten as the release-layout dict
    of the LLaVA-ST model converted from it, for :meth:`LlavaSTConfig.from_release_dict`.

    OneVision's config is LLaVA-ST's minus what LLaVA-ST adds (SPEC §6): the
    Qwen2 fields, ``mm_vision_tower``, ``mm_hidden_size``,
    ``mm_vision_select_layer`` and ``mm_projector_type`` mean the same. Changed:

    * ``model_type`` becomes ``llava_qwen``;
    * ``mm_resampler_type`` (null in OneVision) becomes ``fast_slow_resampler``
      and the packer, bin counts and frame count take our defaults (the
      release's), which :meth:`LlavaSTConfig.from_release_dict` fills in;
    * ``mm_patch_merge_type`` becomes ``flat``: LLaVA-ST feeds an image as its
      729 tokens, unmerged, so OneVision's ``image_newline`` is not part of the
      converted model;
    * ``inject_width_inputs`` and ``inject_fast_stream`` are ``true``: the
      converted model is one we train (SPEC §7); a recipe may set them.

    ``vocab_size`` stays the checkpoint's row count; the conversion sizes the
    model to its tokenizer. Every other key is kept (``extra``).

    Raises:
        ConfigError: the config is not OneVision's: a LLaVA-ST config (use
            ``kind: llava_st``), transformers' converted layout
            (``llava_onevision``, nested ``text_config``), or no multimodal keys.
    """
    model_type = data.get("model_type")
    if "text_config" in data or model_type not in ONEVISION_MODEL_TYPES:
        raise ConfigError(
            f"{source}: model_type {model_type!r} is not a LLaVA-OneVision config in its own (LLaVA-NeXT) "
            f"layout (model_type one of {list(ONEVISION_MODEL_TYPES)}, flat mm_* keys, as lmms-lab's "
            "llava-onevision-qwen2-* folders); transformers' converted layout (llava_onevision) is not read"
        )
    st_keys = [k for k in _LLAVA_ST_ONLY_KEYS if k in data]
    if data.get("mm_resampler_type") == "fast_slow_resampler" or st_keys:
        raise ConfigError(
            f"{source} is already a LLaVA-ST config (mm_resampler_type {data.get('mm_resampler_type')!r}"
            f"{', keys ' + str(st_keys) if st_keys else ''}); load it with model.kind: llava_st"
        )
    if not data.get("mm_vision_tower"):
        raise ConfigError(
            f"{source} names no vision tower (mm_vision_tower): not a LLaVA-OneVision checkpoint "
            "(a plain Qwen2 checkpoint cannot be converted)"
        )
    out = {k: copy.deepcopy(v) for k, v in data.items() if k != "mm_resampler_type"}
    out.update(
        model_type=MODEL_TYPE,
        mm_resampler_type="fast_slow_resampler",
        mm_patch_merge_type="flat",
        inject_width_inputs=True,
        inject_fast_stream=True,
    )
    return out


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data


def _vision_dict(v: VisionConfig) -> dict[str, Any]:
    d = asdict(v)
    d["image_mean"] = list(v.image_mean)
    d["image_std"] = list(v.image_std)
    return d


def _vision_kwargs(data: Mapping[str, Any]) -> dict[str, Any]:
    known = {f.name for f in fields(VisionConfig)}
    kwargs = {k: v for k, v in data.items() if k in known}
    for name in ("image_mean", "image_std"):
        if name in kwargs:
            kwargs[name] = tuple(float(x) for x in kwargs[name])
    return kwargs
