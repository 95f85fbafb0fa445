"""``model.kind: onevision``: a stage that starts from a LLaVA-OneVision checkpoint (SPEC §6, §8).

The OneVision folder is written here, independently of our key map: a tiny
Qwen2 and SigLIP tower built with transformers, stored under the names of
lmms-lab's ``llava-onevision-qwen2-*`` checkpoints (``model.*``,
``model.vision_tower.vision_tower.*``, ``model.mm_projector.{0,2}.*``,
``lm_head.weight``, ``model.image_newline``) in bfloat16, with every SigLIP
layer (3, of which LLaVA-ST keeps 2 with ``mm_vision_select_layer: -2``), a
text matrix padded past the tokenizer (as Qwen2's is), a flat OneVision
``config.json`` and a plain Qwen2-style tokenizer without the LLaVA-ST tokens.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path

import pytest
import torch

from llava_st.errors import CheckpointError, ConfigError, ModelNotFoundError
from llava_st.model import LlavaSTModel
from llava_st.model.checkpoint import release_to_ours
from llava_st.protocol.tokens import ADDED_TOKENS
from llava_st.train.build import build_stage
from llava_st.train.recipe import recipe_from_dict

PAD_ROWS = 8  # text rows past the tokenizer's tokens (Qwen2-7B: 152,064 rows, 151,646 tokens)
TOWER = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2, image_size=126,
             patch_size=14, num_channels=3, layer_norm_eps=1e-6, hidden_act="gelu_pytorch_tanh")
TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            max_position_embeddings=4096, rms_norm_eps=1e-6, hidden_act="silu", tie_word_embeddings=False)
LAST_TOWER_LAYER = "model.vision_tower.vision_tower.vision_model.encoder.layers.2."


def write_onevision(folder: Path, seed: int = 0, tied: bool = False) -> tuple[Path, dict[str, torch.Tensor]]:
    """A tiny OneVision folder; returns it and its tensors (bfloat16, as stored). ``tied``: the
    LM head is the input embedding (as in the 0.5B OneVision), no ``lm_head.weight`` stored."""
    from safetensors.torch import save_file
    from transformers import Qwen2Config, Qwen2Model, SiglipVisionConfig, SiglipVisionModel

    from conftest import tiny_base_tokenizer

    tokenizer = tiny_base_tokenizer()
    rows = len(tokenizer) + PAD_ROWS
    torch.manual_seed(seed)
    llm = Qwen2Model(Qwen2Config(vocab_size=rows, **TEXT))
    tower = SiglipVisionModel(SiglipVisionConfig(vision_use_head=False, **TOWER))
    d, c = TEXT["hidden_size"], TOWER["hidden_size"]
    tensors = {f"model.{k}": v for k, v in llm.state_dict().items()}
    tensors |= {  # transformers 4 names them vision_model.*, 5 without the prefix
        f"model.vision_tower.vision_tower.vision_model.{k.removeprefix('vision_model.')}": v
        for k, v in tower.state_dict().items()
    }
    tensors |= {
        "lm_head.weight": torch.randn(rows, d) * 0.02,
        "model.mm_projector.0.weight": torch.randn(d, c) * 0.1,
        "model.mm_projector.0.bias": torch.randn(d) * 0.1,
        "model.mm_projector.2.weight": torch.randn(d, d) * 0.1,
        "model.mm_projector.2.bias": torch.randn(d) * 0.1,
        "model.image_newline": torch.randn(d),
    }
    if tied:
        del tensors["lm_head.weight"]
    tensors = {k: v.to(torch.bfloat16).contiguous() for k, v in tensors.items() if v.is_floating_point()}
    assert any(k.startswith(LAST_TOWER_LAYER) for k in tensors)  # the 3rd layer LLaVA-ST drops
    folder.mkdir(parents=True)
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "siglip").mkdir()
    (folder / "siglip" / "config.json").write_text(json.dumps({"model_type": "siglip_vision_model", **TOWER}))
    config = {
        "architectures": ["LlavaQwenForCausalLM"],
        "model_type": "llava_qwen",
        **TEXT,
        "vocab_size": rows,
        "tie_word_embeddings": tied,
        "rope_theta": 1000000.0,
        "bos_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        "eos_token_id": tokenizer.convert_tokens_to_ids("<|im_end|>"),
        "torch_dtype": "bfloat16",
        "use_sliding_window": False,
        "mm_vision_tower": "siglip",
        "mm_hidden_size": c,
        "mm_vision_select_layer": -2,
        "mm_vision_select_feature": "patch",
        "mm_projector_type": "mlp2x_gelu",
        "mm_resampler_type": None,
        "mm_patch_merge_type": "spatial_unpad",
        "mm_newline_position": "one_token",
        "mm_spatial_pool_mode": "bilinear",
        "mm_tunable_parts": "mm_vision_tower,mm_mlp_adapter,mm_language_model",
        "mm_use_im_start_end": False,
        "mm_use_im_patch_token": False,
        "image_aspect_ratio": "anyres_max_9",
        "image_grid_pinpoints": [[126, 126], [126, 252]],
        "tokenizer_model_max_length": 4096,
        "tokenizer_padding_side": "right",
        "use_mm_proj": True,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    tokenizer.save_pretrained(str(folder))
    return folder, tensors


def _recipe(path: Path, out: Path, **model) -> object:
    return recipe_from_dict(
        {
            "name": "onevision-stage1",
            "model": {"kind": "onevision", "path": str(path), "new_tokens": ["image_markers", "video_markers"],
                      "coord_tables_init": "zeros", **model},
            "trainable": {"packer": ["spatial", "slow", "fast"], "embed_tokens": "all"},
            "optim": {"lr": 1e-3},
            "precision": "fp32",
            "gradient_checkpointing": False,
            "seed": 0,
            "data": {"mix": "unused.yaml"},
            "output": {"dir": str(out)},
        }
    )


@pytest.fixture(scope="module")
def onevision(tmp_path_factory):
    return write_onevision(tmp_path_factory.mktemp("onevision") / "llava-onevision-tiny")


@pytest.fixture(scope="module")
def built(onevision, tmp_path_factory):
    folder, _ = onevision
    notes: list[str] = []
    stage = build_stage(_recipe(folder, tmp_path_factory.mktemp("run")), log=notes.append)
    return stage, notes


def test_every_onevision_tensor_of_our_layout_is_loaded_bitwise(onevision, built) -> None:
    _, tensors = onevision
    stage, _ = built
    model = stage.model
    params = dict(model.named_parameters())
    base = len(stage.processor.tokenizer) - model.config.coords.num_bins - len(ADDED_TOKENS)  # the tokenizer's own
    unused = sorted(k for k in tensors if k.startswith(LAST_TOWER_LAYER) or k == "model.image_newline")
    loaded = [k for k in tensors if k not in unused]
    assert len(loaded) > 30
    for key in loaded:
        param = params[release_to_ours(key)].detach()
        stored = tensors[key].float()
        if key in ("model.embed_tokens.weight", "lm_head.weight"):
            param, stored = param[:base], stored[:base]  # rows of the tokenizer's own tokens
        assert torch.equal(param, stored), key
    assert model.vision_tower.config.num_kept_layers == 2 and model.image_newline is None
    conversion_unused = sorted(model.load_report.unexpected)
    assert conversion_unused == unused


def test_the_conversion_reports_what_it_did(built) -> None:
    stage, notes = built
    text = "\n".join(notes)
    assert "tower layer(s) [2] beyond the 2 kept" in text
    assert "unused: model.image_newline" in text
    assert "not in the checkpoint, initialised: coord_tables" in text and "packer.spatial" in text
    assert f"{PAD_ROWS} checkpoint rows past the tokenizer's own tokens dropped" in text
    missing = {release_to_ours(k).split(".")[0] for k in stage.model.load_report.missing}
    assert missing == {"packer", "coord_tables"}
    # the fresh parts are what an adapter of the stage would have to carry
    assert "packer.spatial.to_q.fc1.weight" in stage.modified and "lm_head.weight" in stage.modified


def test_new_token_rows_start_at_the_mean_of_the_old_rows(onevision, built) -> None:
    stage, _ = built
    model = stage.model
    ids = model.config.token_ids
    v = model.config.text.vocab_size
    new = list(range(v - len(ADDED_TOKENS), v))
    assert new == sorted(stage.processor.tokenizer.convert_tokens_to_ids(list(ADDED_TOKENS)))
    assert ids.im_start == new[0] and ids.width_output == new[-1]
    for weight in (model.language_model.embed_tokens.weight, model.lm_head.weight):
        mean = weight[: new[0]].float().mean(dim=0)
        for i in new:
            assert torch.equal(weight[i], mean)
    assert set(stage.new_token_ids) <= set(new)


def test_the_converted_config(built) -> None:
    stage, _ = built
    cfg = stage.model.config
    assert cfg.inject_fast_stream and cfg.inject_width_inputs  # ours: a model we train
    assert cfg.extra["image_aspect_ratio"] == "anyres_max_9" and cfg.extra["mm_patch_merge_type"] == "flat"
    assert all(float(p.abs().max()) == 0 for p in stage.model.coord_tables.parameters())  # coord_tables_init: zeros
    assert cfg.vision.num_hidden_layers == 3 and cfg.vision.hidden_size == 32
    assert stage.processor.tokenizer.convert_tokens_to_ids("<TEMP-000>") == cfg.text.vocab_size


def test_a_converted_stage_trains_exports_and_reloads(built, batch_tools, tmp_path: Path, one_thread) -> None:
    from llava_st.train.export import export_final
    from llava_st.train.step import training_loss

    stage, _ = built
    model = stage.model
    config = dataclasses.replace(model.config, num_frames=10)  # a short video sample
    batch = batch_tools["collate"](config, batch_tools["build_samples"](config))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.AdamW(stage.groups)
    loss = training_loss(model, batch).loss
    assert torch.isfinite(loss)
    loss.backward()
    optimizer.step()
    changed = {n.split(".")[0] for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}
    assert changed == {"packer", "language_model"}  # packer blocks and the input embedding
    folder = export_final(model, stage.processor, tmp_path / "final")
    again = LlavaSTModel.from_pretrained(folder)
    assert again.load_report.ok
    for name, tensor in again.state_dict().items():
        assert torch.equal(tensor, model.state_dict()[name]), name
    saved = json.loads((folder / "config.json").read_text())
    assert saved["model_type"] == "llava_qwen" and saved["mm_resampler_type"] == "fast_slow_resampler"


def test_folders_that_are_not_onevision_are_refused(onevision, tiny_model_dir, tmp_path: Path) -> None:
    folder, _ = onevision
    with pytest.raises(ModelNotFoundError, match="no LLaVA-OneVision folder"):
        build_stage(_recipe(tmp_path / "nowhere", tmp_path / "run"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelNotFoundError, match="no config.json .*LLaVA-OneVision"):
        build_stage(_recipe(empty, tmp_path / "run"))
    with pytest.raises(ConfigError, match="already a LLaVA-ST config.*kind: llava_st"):
        build_stage(_recipe(tiny_model_dir, tmp_path / "run"))
    hf = tmp_path / "hf-layout"
    shutil.copytree(folder, hf)
    (hf / "config.json").write_text(json.dumps({"model_type": "llava_onevision", "text_config": {}}))
    with pytest.raises(ConfigError, match="llava_onevision"):
        build_stage(_recipe(hf, tmp_path / "run"))
    # the other way round: a OneVision folder named as a LLaVA-ST one
    with pytest.raises(ConfigError, match="LLaVA-OneVision config.*kind: onevision"):
        build_stage(dataclasses.replace(_recipe(folder, tmp_path / "run"), model=dataclasses.replace(
            _recipe(folder, tmp_path / "run").model, kind="llava_st")))


def test_missing_llm_tensors_are_an_error_not_an_init(onevision, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    folder, _ = onevision
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    tensors = load_file(str(broken / "model.safetensors"))
    del tensors["model.layers.1.mlp.up_proj.weight"]
    save_file(tensors, str(broken / "model.safetensors"))
    with pytest.raises(CheckpointError, match="missing model.layers.1.mlp.up_proj.weight"):
        build_stage(_recipe(broken, tmp_path / "run"))


def test_non_strict_loads_are_logged(onevision, tmp_path: Path, caplog) -> None:
    folder, _ = onevision
    with caplog.at_level(logging.WARNING, logger="llava_st.model.checkpoint"):
        build_stage(_recipe(folder, tmp_path / "run"))
    assert "loaded non-strictly" in caplog.text and "model.image_newline" in caplog.text


def test_tied_embeddings_convert_too(tmp_path: Path) -> None:
    folder, tensors = write_onevision(tmp_path / "tied", tied=True)
    stage = build_stage(_recipe(folder, tmp_path / "run"))
    model = stage.model
    assert model.lm_head.weight is model.language_model.embed_tokens.weight
    v = model.config.text.vocab_size
    base = v - len(ADDED_TOKENS)
    weight = model.lm_head.weight
    assert torch.equal(weight[:base], tensors["model.embed_tokens.weight"][:base].float())
    assert torch.equal(weight[base:], weight[:base].float().mean(dim=0).expand(len(ADDED_TOKENS), -1))
