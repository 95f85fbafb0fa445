"""Training-stage recipes: typed dataclasses read from YAML, with ``key=value`` overrides.

A recipe says everything one stage of training needs (SPEC §8): where the
model comes from, what trains and at which learning rates, LoRA, NTP, the
schedule, batch and precision, the data mix, where outputs go, periodic
evaluation and the distributed engine. The YAML files live in ``recipes/``
at the repository root; the library never imports one, the training entry
point reads one through :func:`load_recipe`::

    recipe = load_recipe("recipes/release/stage2.yaml", ["optim.lr=1e-4", "batch.per_device=1"])

Every key is checked: an unknown key, a value of the wrong type or an
invalid value raises :class:`RecipeError` (a
:class:`~llava_st.errors.ConfigError`) that names the file and the dotted
key, e.g. ``recipes/x.yaml: optim.lr_groups.packr: not a part name; ...``.
Overrides are typed by the dataclass fields: ``trainable.llm=true``,
``optim.lr=2e-5``, ``trainable.packer=[spatial,slow]``,
``model.path=null``; they may add keys to mapping fields
(``optim.lr_groups.projector=1e-5``).

Paths in a recipe are used as written: relative paths are relative to the
directory training is started from (the repository root for the shipped
recipes).

YAML note: PyYAML reads ``1e-4`` (no dot) as a string; float fields accept
such numeric strings, so ``lr: 1e-4`` works. The checking reader of YAML into
dataclasses and of overrides is :mod:`.typed_yaml`; this module is the schema.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError
from .typed_yaml import RecipeError, _Builder, _describe, _read_yaml, parse_override
from .typed_yaml import apply_overrides as _apply_overrides
from .lora import LoraSettings
from .auxiliary import AuxiliaryConfig
from .trainability import TOKEN_GROUPS, Trainability, validate_lr_groups

PRECISIONS = ("fp32", "bf16", "fp16")
SCHEDULERS = ("cosine", "linear", "constant")
MODEL_KINDS = ("llava_st", "onevision")
TABLE_INITS = ("keep", "zeros", "normal", "sincos")
EVAL_MODES = ("canonical", "published")
ENGINE_SUFFIXES = (".json", ".yaml", ".yml")




# ------------------------------------------------------------------ sections


@dataclass
class ModelSource:
    """Where the stage's model comes from and how it is prepared before training.

    Attributes:
        path: a model folder. ``kind: llava_st`` is a LLaVA-ST folder in the
            release layout (e.g. the previous stage's ``<output.dir>/final``);
            ``kind: onevision`` is a LLaVA-OneVision Qwen2 + SigLIP checkpoint
            (lmms-lab's ``llava-onevision-qwen2-*`` folders), which the
            release's stage 1 starts from: it is converted when the stage is
            built (:mod:`llava_st.train.onevision`: the LLaVA-ST tokens added to
            the tokenizer and their rows at the mean of the others, packer and
            coordinate tables new, the extra tower layer and ``image_newline``
            reported unused).
        zoo: instead of ``path``, a named config of :mod:`llava_st.zoo` with
            random weights (tests, tiny runs); its text vocabulary is sized to
            the tokenizer (``tokenizer``, which training requires with ``zoo``).
        tokenizer: a folder holding the tokenizer files (``tokenizer.json``);
            default: ``path``.
        kind: ``llava_st`` or ``onevision`` (see ``path``).
        merge_adapters: LoRA adapter folders merged into the model before
            training, in order (stage 3 merges stage 2's).
        new_tokens: groups of added tokens that are new in this stage
            (``image_markers``, ``video_markers``, ``placeholders``): their
            input-embedding and head rows start at the mean of the other rows,
            and they are the rows ``trainable.embed_tokens: new`` trains.
        coord_tables_init: ``keep``, ``zeros`` (no LAPE signal, as in the
            release's stage 1, which has no tables), ``normal`` (fresh tables
            for the stage that introduces coordinates) or ``sincos`` (geometric
            rows, :func:`~llava_st.train.trainability.sincos_rows`; ours, for
            models trained from scratch).
        tower_positions_init: ``keep`` or ``sincos`` (the tower's position table
            set to 2-D sine/cosine rows,
            :func:`~llava_st.train.trainability.sincos_grid_rows`; ours, for a tower
            trained from scratch).
        attn_implementation: ``sdpa`` or ``eager``.
        use_lape: add LAPE's positional signal to the visual features (ours, for
            ablations; None keeps the config's, which is true unless a config says otherwise).
        inject_fast_stream, inject_width_inputs: the SPEC §7 switches; None
            keeps the checkpoint's value (a release config reads False, a config
            we write True).
        media_position: ``first`` (the release) or ``last`` (the question before
            the pixels; ours): where the processor puts a turn's media; None
            keeps the config's.
    """

    path: str | None = None
    zoo: str | None = None
    tokenizer: str | None = None
    kind: str = "llava_st"
    merge_adapters: list[str] = field(default_factory=list)
    new_tokens: list[str] = field(default_factory=list)
    coord_tables_init: str = "keep"
    tower_positions_init: str = "keep"
    attn_implementation: str = "sdpa"
    inject_fast_stream: bool | None = None
    use_lape: bool | None = None
    inject_width_inputs: bool | None = None
    media_position: str | None = None

    def validate(self) -> None:
        if (self.path is None) == (self.zoo is None):
            raise ConfigError("path: give exactly one of model.path and model.zoo")
        if self.kind not in MODEL_KINDS:
            raise ConfigError(f"kind: must be one of {list(MODEL_KINDS)}, got {self.kind!r}")
        if self.zoo is not None:
            from ..zoo import REGISTRY

            if self.zoo not in REGISTRY:
                raise ConfigError(f"zoo: unknown model config {self.zoo!r}; known: {sorted(REGISTRY)}")
            if self.kind != "llava_st":
                raise ConfigError("kind: a zoo config builds a LLaVA-ST model; kind must be llava_st")
        bad = [g for g in self.new_tokens if g not in TOKEN_GROUPS]
        if bad:
            raise ConfigError(f"new_tokens: unknown token group(s) {bad}; choose from {list(TOKEN_GROUPS)}")
        if self.media_position not in (None, "first", "last"):
            raise ConfigError(f"media_position: must be 'first' or 'last', got {self.media_position!r}")
        if self.tower_positions_init not in ("keep", "sincos"):
            raise ConfigError(f"tower_positions_init: must be 'keep' or 'sincos', got {self.tower_positions_init!r}")
        if self.coord_tables_init not in TABLE_INITS:
            raise ConfigError(f"coord_tables_init: must be one of {list(TABLE_INITS)}, got {self.coord_tables_init!r}")
        if self.attn_implementation not in ("sdpa", "eager"):
            raise ConfigError(f"attn_implementation: must be 'sdpa' or 'eager', got {self.attn_implementation!r}")


@dataclass
class OptimSettings:
    """AdamW. ``lr`` is the base rate (LoRA and every part no group names);
    ``lr_groups`` maps part names (see :mod:`llava_st.train.trainability`) to their rates."""

    lr: float = 1e-4
    lr_groups: dict[str, float] = field(default_factory=dict)
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    max_grad_norm: float | None = 1.0

    def validate(self) -> None:
        if not self.lr > 0:
            raise ConfigError(f"lr: must be > 0, got {self.lr}")
        try:
            validate_lr_groups(self.lr_groups)
        except ConfigError as exc:
            raise ConfigError(f"lr_groups.{exc}") from None
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay: must be >= 0, got {self.weight_decay}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"betas: must be two numbers in [0, 1), got {self.betas}")
        if not self.eps > 0:
            raise ConfigError(f"eps: must be > 0, got {self.eps}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ConfigError(f"max_grad_norm: must be > 0 or null (no clipping), got {self.max_grad_norm}")


@dataclass
class ScheduleSettings:
    """Learning-rate schedule and length: linear warmup over ``warmup_ratio`` of the
    optimizer steps, then ``scheduler`` down to 0; ``max_steps`` (optimizer steps)
    overrides ``epochs`` when set."""

    scheduler: str = "cosine"
    warmup_ratio: float = 0.03
    epochs: float = 1.0
    max_steps: int | None = None

    def validate(self) -> None:
        if self.scheduler not in SCHEDULERS:
            raise ConfigError(f"scheduler: must be one of {list(SCHEDULERS)}, got {self.scheduler!r}")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio: must be in [0, 1), got {self.warmup_ratio}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps: must be >= 1 or null, got {self.max_steps}")
        if self.max_steps is None and not self.epochs > 0:
            raise ConfigError(f"epochs: must be > 0 when max_steps is not set, got {self.epochs}")


@dataclass
class BatchSettings:
    """Samples per device per micro-batch, micro-batches per optimizer step, the
    longest sequence allowed (tokens: a longer sample is a bad sample, see
    ``data.skip_bad``), data-loader worker processes, and whether a global batch
    gathers samples of similar length (:class:`~llava_st.data.dataset.LengthGroupedBatchSampler`);
    ``worker_start``: how worker processes start (``forkserver``, ``spawn`` or
    ``fork``; see :func:`~llava_st.data.dataset.worker_context`)."""

    per_device: int = 1
    grad_accum: int = 1
    max_length: int = 32768
    num_workers: int = 4
    group_by_length: bool = True
    worker_start: str = "forkserver"

    def validate(self) -> None:
        for name in ("per_device", "grad_accum", "max_length"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.num_workers < 0:
            raise ConfigError(f"num_workers: must be >= 0, got {self.num_workers}")
        if self.worker_start not in ("forkserver", "spawn", "fork"):
            raise ConfigError(f"worker_start: must be forkserver, spawn or fork, got {self.worker_start!r}")


@dataclass
class DataSettings:
    """``mix``: a training-mix YAML (SPEC §4); ``num_frames``: frames sampled from a
    video whose ``meta`` does not state ``sample_frames`` (None: the model
    config's); ``skip_bad``: count, log and skip samples that fail to load instead
    of stopping (``llava-st train --skip-bad``)."""

    mix: str
    num_frames: int | None = None
    skip_bad: bool = False

    def validate(self) -> None:
        if not self.mix:
            raise ConfigError("mix: must name a training-mix YAML file")
        if self.num_frames is not None and self.num_frames < 1:
            raise ConfigError(f"num_frames: must be >= 1 or null, got {self.num_frames}")


@dataclass
class OutputSettings:
    """``dir``: the run folder (the final model goes to ``<dir>/final``, checkpoints to
    ``<dir>/step-<N>``); ``save_every``: optimizer steps between checkpoints (0: only
    the final model); ``keep_last``: checkpoints kept (0: all); ``log_every``: steps
    between log lines; ``save_dtype``: dtype of the final model's weights
    (``float32``, ``bfloat16``, ``float16``; null: the training weights' own)."""

    dir: str
    save_every: int = 0
    keep_last: int = 0
    log_every: int = 1
    save_dtype: str | None = None

    def validate(self) -> None:
        if not self.dir:
            raise ConfigError("dir: must name the output folder")
        for name in ("save_every", "keep_last"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must be >= 0, got {getattr(self, name)}")
        if self.log_every < 1:
            raise ConfigError(f"log_every: must be >= 1, got {self.log_every}")
        if self.save_dtype not in (None, "float32", "bfloat16", "float16"):
            raise ConfigError(f"save_dtype: must be float32, bfloat16, float16 or null, got {self.save_dtype!r}")


@dataclass
class EvalSettings:
    """Evaluation during training: every ``every`` optimizer steps (0: never) and/or
    ``at_end``, on ``benchmarks`` (names of :mod:`llava_st.eval.benchmarks`) whose
    held-out files sit under ``data_root`` in the layout ``llava-st eval
    --data-root`` reads (an ST-Synth dataset folder for the ``synth-*``
    benchmarks), at most ``max_samples`` each, scored in ``mode`` (``canonical``
    or ``published``); ``split``: the RefCOCO split; ``max_new_tokens``: the
    decoding limit."""

    every: int = 0
    at_end: bool = False
    benchmarks: list[str] = field(default_factory=list)
    data_root: str | None = None
    split: str | None = None
    max_samples: int | None = None
    mode: str = "canonical"
    batch_size: int = 1
    max_new_tokens: int = 256

    def validate(self) -> None:
        if self.every < 0:
            raise ConfigError(f"every: must be >= 0, got {self.every}")
        if (self.every or self.at_end) and not self.benchmarks:
            raise ConfigError("benchmarks: evaluation is on (every > 0 or at_end) but no benchmark is named")
        if (self.every or self.at_end) and not self.data_root:
            raise ConfigError("data_root: evaluation is on (every > 0 or at_end) but no data_root holds its files")
        if self.benchmarks:
            from ..eval.benchmarks import BENCHMARKS

            bad = [b for b in self.benchmarks if b not in BENCHMARKS]
            if bad:
                raise ConfigError(f"benchmarks: unknown benchmark(s) {bad}; known: {list(BENCHMARKS)}")
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens: must be >= 1, got {self.max_new_tokens}")
        if self.max_samples is not None and self.max_samples < 1:
            raise ConfigError(f"max_samples: must be >= 1 or null, got {self.max_samples}")
        if self.mode not in EVAL_MODES:
            raise ConfigError(f"mode: must be one of {list(EVAL_MODES)}, got {self.mode!r}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size: must be >= 1, got {self.batch_size}")


@dataclass
class Recipe:
    """One training stage.

    Attributes:
        name: a short identifier of the run.
        model: :class:`ModelSource`.
        trainable: :class:`~llava_st.train.trainability.Trainability`.
        optim: :class:`OptimSettings` (learning-rate groups included).
        data: :class:`DataSettings`.
        output: :class:`OutputSettings`.
        description: free text.
        lora: :class:`~llava_st.train.lora.LoraSettings` (off unless ``enabled``).
        ntp: NTP on the coordinate tables in training (SPEC §2.12).
        schedule: :class:`ScheduleSettings`.
        batch: :class:`BatchSettings`.
        precision: ``fp32``, ``bf16`` or ``fp16``.
        gradient_checkpointing: recompute the LLM's layers in the backward pass.
        seed: for weights created here, data order and dropout.
        eval: :class:`EvalSettings`.
        engine: a DeepSpeed JSON or accelerate YAML config file, or None (plain
            single-process / DDP as launched).
        auxiliary: :class:`~llava_st.train.auxiliary.AuxiliaryConfig`, the dense
            supervision of stage 0 (ours; off unless a weight is set; needs
            ST-Synth data, whose ground truth gives the targets).
    """

    name: str
    model: ModelSource
    trainable: Trainability
    optim: OptimSettings
    data: DataSettings
    output: OutputSettings
    description: str = ""
    lora: LoraSettings = field(default_factory=LoraSettings)
    ntp: bool = True
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    batch: BatchSettings = field(default_factory=BatchSettings)
    precision: str = "bf16"
    gradient_checkpointing: bool = True
    seed: int = 42
    eval: EvalSettings = field(default_factory=EvalSettings)
    engine: str | None = None
    auxiliary: AuxiliaryConfig = field(default_factory=AuxiliaryConfig)

    def validate(self) -> None:
        """Checks that involve several sections."""
        if not self.name:
            raise ConfigError("name: must not be empty")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision: must be one of {list(PRECISIONS)}, got {self.precision!r}")
        if self.trainable.embed_tokens == "new":
            if not self.model.new_tokens:
                raise ConfigError("trainable.embed_tokens: 'new' trains the rows of model.new_tokens, which is empty")
            if self.optim.weight_decay:
                raise ConfigError(
                    "trainable.embed_tokens: 'new' with optim.weight_decay > 0 would decay the frozen rows too"
                )
        if self.auxiliary.tower_only:
            beyond = [p for p in self.trainable.parts() if p not in ("vision_tower", "projector")]
            if beyond or self.lora.enabled:
                raise ConfigError(
                    "auxiliary.answers: 0 runs the tower and projector only, so nothing else can train, but "
                    f"trainable names {beyond + (['lora'] if self.lora.enabled else [])}"
                )
        if not self.trainable.parts() and not self.lora.enabled:
            raise ConfigError("trainable: nothing trains (no part is on and lora.enabled is false)")
        if self.trainable.llm and self.lora.enabled:
            raise ConfigError("trainable.llm: the LLM base trains in full and through LoRA at once; choose one")
        if "lora" in self.optim.lr_groups and not self.lora.enabled:
            raise ConfigError("optim.lr_groups.lora: a LoRA rate is set but lora.enabled is false")
        if self.engine is not None and not self.engine.endswith(ENGINE_SUFFIXES):
            raise ConfigError(
                f"engine: must be a DeepSpeed .json or an accelerate .yaml config file, got {self.engine!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the YAML form), e.g. to store beside the run's outputs."""
        return dataclasses.asdict(self)


def apply_overrides(data: dict, overrides: Sequence[str], cls: type | None = None, where: str | None = None) -> dict:
    """:func:`.typed_yaml.apply_overrides` on a recipe (``cls`` defaults to :class:`Recipe`)."""
    return _apply_overrides(data, overrides, cls or Recipe, where)


def recipe_from_dict(data: Any, where: str = "<recipe>") -> Recipe:
    """Build and validate a :class:`Recipe` from parsed YAML; errors name ``where``."""
    return _Builder(where).build(Recipe, data)


def load_recipe(path: str | Path, overrides: Sequence[str] = ()) -> Recipe:
    """Read a recipe YAML file, apply ``key=value`` overrides and validate it.

    Raises:
        RecipeError: a missing or malformed file, an unknown key, a value of the
            wrong type or an invalid value (the message names the file and key).
    """
    path = Path(path)
    data = _read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError(f"a recipe must be a mapping at the top level, got {_describe(data)}", path=str(path))
    where = str(path)
    if overrides:
        apply_overrides(data, overrides, where=str(path))
        where = f"{path} (with overrides {' '.join(overrides)})"
    return recipe_from_dict(data, where)


def dump_recipe(recipe: Recipe, path: str | Path) -> None:
    """Write ``recipe`` as YAML (it loads back equal)."""
    import yaml

    Path(path).write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False))


__all__ = [
    "BatchSettings",
    "DataSettings",
    "EvalSettings",
    "ModelSource",
    "OptimSettings",
    "OutputSettings",
    "Recipe",
    "RecipeError",
    "ScheduleSettings",
    "apply_overrides",
    "dump_recipe",
    "load_recipe",
    "parse_override",
    "recipe_from_dict",
]
