"""Training: stage recipes, trainability, LoRA and the training forward (SPEC §8).

* :mod:`.recipe`: typed stage recipes read from YAML (``recipes/`` at the
  repository root) with ``key=value`` overrides.
* :mod:`.typed_yaml`: the checking reader of YAML into dataclasses and overrides.
* :mod:`.trainability`: the one function that says what trains, with
  per-part learning rates, and new-token initialisation.
* :mod:`.lora`: LoRA on the LLM through ``peft``; merge, save and attach
  adapters in the release's layout.
* :mod:`.step`: the training forward and loss shared by the loop and the
  gradient-parity tests.
* :mod:`.build`: a stage's model, processor and optimizer groups from its recipe.
* :mod:`.loop`: :func:`train`, the one trainer (accelerate: one CPU to many GPUs).
* :mod:`.engine`: the accelerate set-up a recipe asks for; :mod:`.report`: the
  run's log, metrics and periodic evaluation.
* :mod:`.schedule`: warmup + cosine (linear, constant) learning-rate schedules.
* :mod:`.checkpoint`: resumable checkpoints in safetensors and JSON.
* :mod:`.export`: the final model folder, LoRA adapters, ``merge-lora``.

``peft`` (LoRA) and ``accelerate`` (the trainer) come with ``pip install 'llava-st[train]'``.
"""

from .lora import LoraSettings, add_lora, attach_lora_adapter, has_lora, merge_lora, save_lora_adapter
from .recipe import Recipe, RecipeError, apply_overrides, dump_recipe, load_recipe, recipe_from_dict
from .build import BuiltStage, build_stage
from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from .export import export_final, load_adapter, merge_adapter_folder, save_adapter
from .loop import TrainResult, train
from .schedule import WarmupSchedule, make_scheduler
from .step import LossOutput, enable_gradient_checkpointing, keep_trainables_in_graph, set_ntp, training_loss
from .trainability import (
    Trainability,
    apply_trainability,
    describe_groups,
    init_coordinate_tables,
    init_new_token_rows,
    new_token_ids,
    part_of,
)

__all__ = [
    "BuiltStage",
    "LossOutput",
    "LoraSettings",
    "Recipe",
    "RecipeError",
    "Trainability",
    "TrainResult",
    "WarmupSchedule",
    "add_lora",
    "apply_overrides",
    "apply_trainability",
    "attach_lora_adapter",
    "build_stage",
    "describe_groups",
    "dump_recipe",
    "enable_gradient_checkpointing",
    "export_final",
    "has_lora",
    "init_coordinate_tables",
    "init_new_token_rows",
    "keep_trainables_in_graph",
    "latest_checkpoint",
    "load_adapter",
    "load_checkpoint",
    "load_recipe",
    "make_scheduler",
    "merge_adapter_folder",
    "merge_lora",
    "new_token_ids",
    "part_of",
    "recipe_from_dict",
    "save_adapter",
    "save_checkpoint",
    "save_lora_adapter",
    "set_ntp",
    "train",
    "training_loss",
]
