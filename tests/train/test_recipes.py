"""Every file under recipes/ is valid, and the recipe loader reports bad files clearly.

* stage recipes (``recipes/<set>/*.yaml``) load through :func:`llava_st.train.load_recipe`;
* DeepSpeed configs (``recipes/engines/*.json``) are checked against the keys and
  types DeepSpeed documents for its configuration file (ZeRO stages 0-3), with
  ``"auto"`` only where accelerate fills the value in, and read by accelerate's
  ``HfDeepSpeedConfig``;
* accelerate configs (``recipes/engines/*.yaml``) load through accelerate's own
  ``load_config_from_file`` (which refuses unknown top-level keys), and every
  ``fsdp_config`` key is an option of ``accelerate launch``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from llava_st.errors import ConfigError
from llava_st.train import RecipeError, dump_recipe, load_recipe
from llava_st.train.recipe import recipe_from_dict

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "recipes"
ALL_FILES = sorted(p for p in RECIPES.rglob("*") if p.is_file())
STAGE_RECIPES = [p for p in ALL_FILES if p.suffix in (".yaml", ".yml") and p.parent.name != "engines"]
DS_CONFIGS = [p for p in ALL_FILES if p.parent.name == "engines" and p.suffix == ".json"]
ACCELERATE_CONFIGS = [p for p in ALL_FILES if p.parent.name == "engines" and p.suffix in (".yaml", ".yml")]


def _ids(paths):
    return [str(p.relative_to(RECIPES)) for p in paths]


def test_every_file_under_recipes_is_checked_here() -> None:
    checked = set(STAGE_RECIPES) | set(DS_CONFIGS) | set(ACCELERATE_CONFIGS)
    others = [p for p in ALL_FILES if p not in checked and p.suffix != ".md"]
    assert not others, f"files under recipes/ that no test validates: {others}"
    assert {p.stem for p in STAGE_RECIPES if p.parent.name == "release"} == {"stage1", "stage2", "stage3"}
    assert {p.stem for p in STAGE_RECIPES if p.parent.name == "tiny"} == {"stage1", "stage2", "stage3"}
    assert {p.name for p in DS_CONFIGS} >= {"deepspeed_zero2.json", "deepspeed_zero3.json"}
    assert {p.name for p in ACCELERATE_CONFIGS} >= {"fsdp.yaml", "ddp.yaml"}


# ------------------------------------------------------------------ stage recipes


@pytest.mark.parametrize("path", STAGE_RECIPES, ids=_ids(STAGE_RECIPES))
def test_stage_recipe_is_valid(path: Path, tmp_path: Path) -> None:
    recipe = load_recipe(path)
    if recipe.engine is not None:
        assert (REPO / recipe.engine).is_file(), f"{path}: engine {recipe.engine} does not exist"
    # a dumped recipe loads back equal
    dump_recipe(recipe, tmp_path / "dumped.yaml")
    assert load_recipe(tmp_path / "dumped.yaml") == recipe


ALL_TABLES = ["time_in", "time_out", "height_in", "height_out", "width_in", "width_out"]
PACKER = ["spatial", "slow", "fast"]


def test_release_recipes_follow_spec_section_8() -> None:
    s1, s2, s3 = (load_recipe(RECIPES / "release" / f"stage{i}.yaml") for i in (1, 2, 3))
    for r in (s1, s2, s3):
        assert r.schedule.scheduler == "cosine" and r.schedule.warmup_ratio == 0.03 and r.schedule.epochs == 1
        assert r.schedule.max_steps is None
        assert r.precision == "bf16" and r.gradient_checkpointing and r.ntp
        assert r.optim.weight_decay == 0.0
        assert r.engine == "recipes/engines/deepspeed_zero2.json"
        assert r.data.num_frames == 100 and r.batch.max_length == 32768
        t = r.trainable
        assert not (t.vision_tower or t.projector or t.lm_head or t.llm)
        assert t.packer == PACKER and t.embed_tokens == "all"
    assert s1.optim.lr == 1e-4 and s1.optim.lr_groups == {} and not s1.lora.enabled
    assert s1.trainable.coord_tables == [] and s1.model.kind == "onevision"
    assert s1.model.new_tokens == ["image_markers", "video_markers"]
    for r in (s2, s3):
        assert r.lora.enabled and (r.lora.r, r.lora.alpha, r.lora.dropout) == (128, 256.0, 0.05)
        assert r.lora.target_modules is None  # every LLM linear; the head is outside the LLM
        assert r.optim.lr == 2e-4
        assert r.optim.lr_groups == {"packer": 2e-5, "coord_tables": 2e-5, "embed_tokens": 2e-5}
        assert r.trainable.coord_tables == ALL_TABLES
    assert s2.model.new_tokens == ["placeholders"] and s2.model.coord_tables_init == "normal"
    assert s2.model.path == f"{s1.output.dir}/final"
    assert s3.model.path == f"{s1.output.dir}/final" and s3.model.merge_adapters == [f"{s2.output.dir}/final/adapter"]
    assert s3.model.new_tokens == []
    # the authors' batch and checkpoint settings
    assert (s1.batch.per_device, s1.batch.grad_accum, s1.output.save_every, s1.output.keep_last) == (4, 2, 200, 3)
    assert (s2.batch.per_device, s2.batch.grad_accum, s2.output.save_every, s2.output.keep_last) == (2, 2, 500, 3)
    assert (s3.batch.per_device, s3.batch.grad_accum, s3.output.save_every, s3.output.keep_last) == (2, 2, 200, 5)


def test_tiny_recipes_mirror_the_release_on_the_debug_model() -> None:
    for i in (1, 2, 3):
        tiny = load_recipe(RECIPES / "tiny" / f"stage{i}.yaml")
        release = load_recipe(RECIPES / "release" / f"stage{i}.yaml")
        assert tiny.trainable == release.trainable
        assert tiny.lora.enabled == release.lora.enabled
        assert set(tiny.optim.lr_groups) == set(release.optim.lr_groups)
        assert tiny.model.new_tokens == release.model.new_tokens
        assert tiny.model.coord_tables_init == release.model.coord_tables_init
        assert tiny.schedule.max_steps is not None and tiny.precision == "fp32"
    s1, s2, s3 = (load_recipe(RECIPES / "tiny" / f"stage{i}.yaml") for i in (1, 2, 3))
    assert s1.model.zoo == "debug"
    assert s2.model.path == f"{s1.output.dir}/final"
    assert s3.model.merge_adapters == [f"{s2.output.dir}/final/adapter"]  # where a LoRA stage writes its adapter


# ------------------------------------------------------------------ DeepSpeed configs

AUTO = "auto"
# Keys whose "auto" accelerate fills in (accelerate.Accelerator._prepare_deepspeed and
# DeepSpeedPlugin.set_mixed_precision); "auto" anywhere else reaches DeepSpeed as is.
AUTO_FILLED = {
    "train_batch_size",
    "train_micro_batch_size_per_gpu",
    "gradient_accumulation_steps",
    "gradient_clipping",
    "fp16.enabled",
    "bf16.enabled",
    "zero_optimization.reduce_bucket_size",
    "zero_optimization.stage3_prefetch_bucket_size",
    "zero_optimization.stage3_param_persistence_threshold",
    "zero_optimization.stage3_gather_16bit_weights_on_model_save",
}
INT, NUM, BOOL, STR, DICT = int, (int, float), bool, str, dict
OFFLOAD_DEVICES = ("none", "cpu", "nvme")
# The configuration keys DeepSpeed documents (deepspeed.ai/docs/config-json), with their types.
DS_TOP = {
    "train_batch_size": INT, "train_micro_batch_size_per_gpu": INT, "gradient_accumulation_steps": INT,
    "optimizer": DICT, "scheduler": DICT, "communication_data_type": STR, "prescale_gradients": BOOL,
    "gradient_predivide_factor": NUM, "sparse_gradients": BOOL, "fp16": DICT, "bf16": DICT, "amp": DICT,
    "gradient_clipping": NUM, "zero_optimization": DICT, "zero_allow_untested_optimizer": BOOL,
    "zero_force_ds_cpu_optimizer": BOOL, "steps_per_print": INT, "wall_clock_breakdown": BOOL, "dump_state": BOOL,
    "memory_breakdown": BOOL, "activation_checkpointing": DICT, "flops_profiler": DICT, "comms_logger": DICT,
    "tensorboard": DICT, "wandb": DICT, "csv_monitor": DICT, "aio": DICT, "data_types": DICT,
}
DS_FP16 = {
    "enabled": BOOL, "auto_cast": BOOL, "loss_scale": NUM, "initial_scale_power": INT, "loss_scale_window": INT,
    "hysteresis": INT, "consecutive_hysteresis": BOOL, "min_loss_scale": NUM,
}
DS_BF16 = {"enabled": BOOL, "immediate_grad_update": BOOL, "check_grad_overflow": BOOL}
DS_ZERO_ANY_STAGE = {
    "stage": INT, "allgather_partitions": BOOL, "allgather_bucket_size": INT, "overlap_comm": BOOL,
    "reduce_scatter": BOOL, "reduce_bucket_size": INT, "contiguous_gradients": BOOL, "offload_optimizer": DICT,
    "round_robin_gradients": BOOL, "elastic_checkpoint": BOOL, "ignore_unused_parameters": BOOL,
    "load_from_fp32_weights": BOOL, "memory_efficient_linear": BOOL,
}
DS_ZERO_STAGE3 = {
    "offload_param": DICT, "sub_group_size": INT, "stage3_max_live_parameters": INT,
    "stage3_max_reuse_distance": INT, "stage3_prefetch_bucket_size": INT,
    "stage3_param_persistence_threshold": INT, "stage3_gather_16bit_weights_on_model_save": BOOL,
    "stage3_gather_fp16_weights_on_model_save": BOOL, "stage3_module_granularity_threshold": INT,
    "zero_hpz_partition_size": INT, "zero_quantized_weights": BOOL, "zero_quantized_gradients": BOOL,
    "mics_shard_size": INT, "mics_hierarchical_params_gather": BOOL,
}
DS_OFFLOAD_OPTIMIZER = {"device": STR, "nvme_path": STR, "pin_memory": BOOL, "ratio": NUM, "buffer_count": INT, "fast_init": BOOL}
DS_OFFLOAD_PARAM = {"device": STR, "nvme_path": STR, "pin_memory": BOOL, "buffer_count": INT, "buffer_size": INT, "max_in_cpu": INT}


def _check_keys(section: dict, schema: dict, where: str, problems: list[str]) -> None:
    for key, value in section.items():
        path = f"{where}.{key}" if where else key
        if key not in schema:
            problems.append(f"{path}: not a DeepSpeed configuration key here")
            continue
        if value == AUTO:
            if path not in AUTO_FILLED:
                problems.append(f"{path}: 'auto' but accelerate does not fill this key")
            continue
        want = schema[key]
        ok = isinstance(value, want) and not (isinstance(value, bool) and want in (INT, NUM))
        if not ok:
            problems.append(f"{path}: {value!r} is not of type {want}")


def ds_problems(config: dict) -> list[str]:
    problems: list[str] = []
    _check_keys(config, DS_TOP, "", problems)
    for name, schema in (("fp16", DS_FP16), ("bf16", DS_BF16)):
        if isinstance(config.get(name), dict):
            _check_keys(config[name], schema, name, problems)
    zero = config.get("zero_optimization", {})
    stage = zero.get("stage", 0)
    if stage not in (0, 1, 2, 3):
        problems.append(f"zero_optimization.stage: {stage!r} is not 0, 1, 2 or 3")
    allowed = {**DS_ZERO_ANY_STAGE, **(DS_ZERO_STAGE3 if stage == 3 else {})}
    _check_keys(zero, allowed, "zero_optimization", problems)
    for name, schema in (("offload_optimizer", DS_OFFLOAD_OPTIMIZER), ("offload_param", DS_OFFLOAD_PARAM)):
        if isinstance(zero.get(name), dict):
            _check_keys(zero[name], schema, f"zero_optimization.{name}", problems)
            if zero[name].get("device", "none") not in OFFLOAD_DEVICES:
                problems.append(f"zero_optimization.{name}.device: must be one of {OFFLOAD_DEVICES}")
    return problems


@pytest.mark.parametrize("path", DS_CONFIGS, ids=_ids(DS_CONFIGS))
def test_deepspeed_config_uses_documented_keys(path: Path) -> None:
    config = json.loads(path.read_text())
    assert ds_problems(config) == []
    # our trainer builds the AdamW optimizer and the scheduler (per-part learning rates);
    # accelerate refuses a config that names its own next to them
    assert "optimizer" not in config and "scheduler" not in config
    from accelerate.utils.deepspeed import HfDeepSpeedConfig

    parsed = HfDeepSpeedConfig(str(path))
    stage = config["zero_optimization"]["stage"]
    assert f"zero{stage}" in path.stem
    assert parsed.is_zero2() == (stage == 2) and parsed.is_zero3() == (stage == 3)
    assert not parsed.is_offload()


def test_deepspeed_schema_check_catches_mistakes() -> None:
    good = json.loads((RECIPES / "engines" / "deepspeed_zero2.json").read_text())
    assert ds_problems(good) == []
    bad = json.loads(json.dumps(good))
    bad["zero_optimization"]["stage3_max_live_parameters"] = 10  # a stage-3 key in a stage-2 file
    bad["zero_optimization"]["overlap_comm"] = "yes"
    bad["steps_per_print"] = AUTO
    bad["gradient_clip"] = 1.0
    found = "\n".join(ds_problems(bad))
    for key in ("stage3_max_live_parameters", "overlap_comm", "steps_per_print", "gradient_clip"):
        assert key in found


# ------------------------------------------------------------------ accelerate configs


@pytest.mark.parametrize("path", ACCELERATE_CONFIGS, ids=_ids(ACCELERATE_CONFIGS))
def test_accelerate_config_loads_with_accelerate(path: Path) -> None:
    from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file
    from accelerate.commands.launch import launch_command_parser
    from accelerate.utils import DistributedType

    config = load_config_from_file(str(path))
    assert isinstance(config, ClusterConfig)
    assert config.mixed_precision in ("no", "fp16", "bf16")
    options = {action.dest for action in launch_command_parser()._actions}
    for key in config.fsdp_config or {}:
        assert (key if key.startswith("fsdp") else f"fsdp_{key}") in options, f"{path}: fsdp_config.{key} is not an accelerate option"
    expected = {"fsdp.yaml": DistributedType.FSDP, "ddp.yaml": DistributedType.MULTI_GPU}.get(path.name)
    if expected is not None:
        assert config.distributed_type == expected
    if config.distributed_type == DistributedType.FSDP:
        fsdp = config.fsdp_config
        assert fsdp["fsdp_auto_wrap_policy"] in ("TRANSFORMER_BASED_WRAP", "SIZE_BASED_WRAP", "NO_WRAP")
        import transformers

        for cls in str(fsdp.get("fsdp_transformer_layer_cls_to_wrap", "")).split(","):
            assert cls in ("Qwen2DecoderLayer", "SiglipEncoderLayer") and hasattr(transformers, "Qwen2Model")


# ------------------------------------------------------------------ the loader's errors


def _minimal() -> dict:
    return {
        "name": "t",
        "model": {"zoo": "debug"},
        "trainable": {"packer": ["spatial"]},
        "optim": {"lr": 1e-3},
        "data": {"mix": "mix.yaml"},
        "output": {"dir": "out"},
    }


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return path


def test_minimal_recipe_and_defaults() -> None:
    r = recipe_from_dict(_minimal())
    assert r.schedule.scheduler == "cosine" and r.schedule.warmup_ratio == 0.03
    assert r.precision == "bf16" and r.ntp and not r.lora.enabled and r.optim.weight_decay == 0.0


@pytest.mark.parametrize(
    "change, key, words",
    [
        (lambda d: d.update(epochs=1), "epochs", "unknown key"),
        (lambda d: d["optim"].update(lr_group={"packer": 1e-5}), "optim.lr_group", "did you mean 'lr_groups'"),
        (lambda d: d["trainable"].update(llm="yes"), "trainable.llm", "true/false"),
        (lambda d: d["trainable"].update(llm=1), "trainable.llm", "true/false"),
        (lambda d: d["trainable"].update(packer="spatial"), "trainable.packer", "a list of strings"),
        (lambda d: d.update(batch={"per_device": 2.5}), "batch.per_device", "an integer"),
        (lambda d: d["optim"].update(lr="fast"), "optim.lr", "a number"),
        (lambda d: d["optim"].update(lr=-1.0), "optim.lr", "> 0"),
        (lambda d: d["optim"].update(lr_groups={"packr": 1e-5}), "optim.lr_groups.packr", "not a part name"),
        (lambda d: d["trainable"].update(coord_tables=["time"]), "trainable.coord_tables", "unknown name"),
        (lambda d: d["trainable"].update(embed_tokens="rows"), "trainable.embed_tokens", "must be one of"),
        (lambda d: d.update(precision="bf32"), "precision", "must be one of"),
        (lambda d: d.update(schedule={"warmup_ratio": 1.5}), "schedule.warmup_ratio", "[0, 1)"),
        (lambda d: d["model"].update(path="x"), "model.path", "exactly one"),
        (lambda d: d["model"].update(zoo="huge"), "model.zoo", "unknown model config"),
        (lambda d: d["model"].update(new_tokens=["bins"]), "model.new_tokens", "unknown token group"),
        (lambda d: d["trainable"].update(embed_tokens="new"), "trainable.embed_tokens", "model.new_tokens"),
        (lambda d: d.update(trainable={}), "trainable", "nothing trains"),
        (lambda d: d.update(lora={"enabled": True}, trainable={"llm": True}), "trainable.llm", "choose one"),
        (lambda d: d["optim"].update(lr_groups={"lora": 1e-4}), "optim.lr_groups.lora", "lora.enabled"),
        (lambda d: d.update(eval={"every": 100}), "eval.benchmarks", "no benchmark"),
        (lambda d: d.update(engine="deepspeed.cfg"), "engine", ".json"),
        (lambda d: d.pop("output"), "output", "required key is missing"),
        (lambda d: d["output"].pop("dir"), "output.dir", "required key is missing"),
        (lambda d: d.update(model=None), "model", "must not be null"),
        (lambda d: d.update(lora=[1]), "lora", "expected a mapping"),
    ],
)
def test_invalid_recipes_name_the_file_and_key(tmp_path: Path, change, key: str, words: str) -> None:
    import yaml

    data = _minimal()
    change(data)
    path = _write(tmp_path, yaml.safe_dump(data))
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    err = info.value
    assert isinstance(err, ConfigError)
    assert err.path == str(path) and err.key == key, str(err)
    assert str(path) in str(err) and key in str(err) and words in str(err), str(err)


def test_yaml_problems_are_reported_with_the_file(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="no such recipe file"):
        load_recipe(tmp_path / "missing.yaml")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(_write(tmp_path, "name: [unclosed\n"))
    with pytest.raises(RecipeError, match="repeated key 'name'"):
        load_recipe(_write(tmp_path, "name: a\nname: b\n"))
    with pytest.raises(RecipeError, match="mapping at the top level"):
        load_recipe(_write(tmp_path, "- a\n- b\n"))


def test_overrides_are_typed_by_the_fields(tmp_path: Path) -> None:
    import yaml

    path = _write(tmp_path, yaml.safe_dump(_minimal()))
    r = load_recipe(
        path,
        [
            "optim.lr=2e-5",  # PyYAML reads this as a string; the float field takes it
            "trainable.llm=true",
            "trainable.packer=[spatial, slow]",
            "optim.lr_groups.packer=1e-6",
            "schedule.max_steps=7",
            "engine=null",
            "lora.target_modules=[q_proj, v_proj]",
            "name=renamed",
        ],
    )
    assert r.optim.lr == 2e-5 and r.trainable.llm is True and r.trainable.packer == ["spatial", "slow"]
    assert r.optim.lr_groups == {"packer": 1e-6} and r.schedule.max_steps == 7 and r.engine is None
    assert r.lora.target_modules == ["q_proj", "v_proj"] and r.name == "renamed"
    assert r == replace(r)  # a plain dataclass


@pytest.mark.parametrize(
    "override, key, words",
    [
        ("optim.lrr=1", "optim.lrr", "did you mean 'lr'"),
        ("optim.lr.x=1", "optim.lr", "not a section"),
        ("optim.lr_groups.packer.x=1", "optim.lr_groups.packer", "cannot go deeper"),
        ("trainable.llm=maybe", "trainable.llm", "true/false"),
        ("batch.per_device=two", "batch.per_device", "an integer"),
        ("nokey", "nokey", "key=value"),
    ],
)
def test_bad_overrides_name_the_key(tmp_path: Path, override: str, key: str, words: str) -> None:
    import yaml

    path = _write(tmp_path, yaml.safe_dump(_minimal()))
    with pytest.raises(RecipeError) as info:
        load_recipe(path, [override])
    assert info.value.key == key and words in str(info.value) and str(path) in str(info.value), str(info.value)
