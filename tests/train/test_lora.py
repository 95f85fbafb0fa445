"""LoRA on the LLM: targets, merge (logits and greedy ids), and the release's adapter layout
read back by ``load_lora_adapter`` (merged) and ``attach_lora_adapter`` (unmerged)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("peft")

from safetensors.torch import load_file  # noqa: E402

from llava_st.errors import ConfigError  # noqa: E402
from llava_st.model import LlavaSTModel, load_lora_adapter  # noqa: E402
from llava_st.train import (  # noqa: E402
    LoraSettings,
    Trainability,
    add_lora,
    apply_trainability,
    attach_lora_adapter,
    has_lora,
    merge_lora,
    save_lora_adapter,
)
from llava_st.train.lora import llm_linear_suffixes, lora_parameters  # noqa: E402

QWEN2_LINEARS = ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
STAGE = Trainability(packer=["spatial", "slow", "fast"], coord_tables=["time_in", "time_out", "height_in", "height_out", "width_in", "width_out"], embed_tokens="all")


def _model(config, seed: int = 0) -> LlavaSTModel:
    torch.manual_seed(seed)
    return LlavaSTModel(config).eval()


@torch.no_grad()
def _train_a_little(model) -> None:
    """Stand-in for training: random adapters (B is 0 at creation) and moved packer/table weights."""
    gen = torch.Generator().manual_seed(5)
    for _, p in lora_parameters(model):
        p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    for p in list(model.packer.parameters()) + list(model.coord_tables.parameters()):
        p.add_(torch.randn(p.shape, generator=gen) * 0.01)


def test_release_defaults() -> None:
    s = LoraSettings()
    assert (s.r, s.alpha, s.dropout, s.target_modules) == (128, 256.0, 0.05, None)
    assert s.scaling == 2.0


def test_adapters_cover_every_llm_linear_and_nothing_else(debug_config) -> None:
    model = _model(debug_config)
    linears = {f"language_model.{n}" for n, m in model.language_model.named_modules() if isinstance(m, torch.nn.Linear)}
    config = add_lora(model, LoraSettings(enabled=True, r=4, alpha=8))
    assert sorted(config.target_modules) == QWEN2_LINEARS
    adapted = {n.split(".lora_")[0] for n, _ in lora_parameters(model)}
    assert adapted == linears and len(adapted) == 7 * debug_config.text.num_hidden_layers
    assert not any(n.startswith(("lm_head", "vision_tower", "packer", "projector", "coord_tables")) for n in adapted)
    assert isinstance(model.lm_head, torch.nn.Linear)
    with pytest.raises(ConfigError, match="already has LoRA"):
        add_lora(model, LoraSettings(enabled=True, r=4))


def test_bad_settings_are_refused(debug_config) -> None:
    model = _model(debug_config)
    with pytest.raises(ConfigError, match="target_modules"):
        add_lora(model, LoraSettings(enabled=True, r=4, target_modules=["qkv_proj"]))
    with pytest.raises(ConfigError, match="r: must be"):
        add_lora(model, LoraSettings(enabled=True, r=0))
    assert llm_linear_suffixes(model) == QWEN2_LINEARS and not has_lora(model)


def test_fresh_adapters_leave_the_output_unchanged(debug_config, train_batch) -> None:
    model = _model(debug_config)
    with torch.no_grad():
        ref = model(**train_batch).logits
        add_lora(model, LoraSettings(enabled=True, r=4, alpha=8))
        assert torch.equal(model(**train_batch).logits, ref)


def test_merged_model_equals_the_adapter_model_and_saves_as_a_plain_model(debug_config, train_batch, samples, batch_tools, tmp_path: Path) -> None:
    model = _model(debug_config)
    add_lora(model, LoraSettings(enabled=True, r=4, alpha=8, dropout=0.05))
    _train_a_little(model)
    model.eval()  # no adapter dropout
    prompt = batch_tools["prompt_batch"](samples[1])
    with torch.no_grad():
        adapter_logits = model(**train_batch).logits
        adapter_ids = model.generate(**prompt, max_new_tokens=12).sequences
        base_logits = LlavaSTModel.forward(_model(debug_config), **train_batch).logits
    assert (adapter_logits - base_logits).abs().max() > 1e-3, "the adapters should change the output"

    merged = merge_lora(model)
    assert type(merged) is LlavaSTModel and not has_lora(merged)
    assert not any(".base_layer." in n for n, _ in merged.named_parameters())
    with torch.no_grad():
        merged_logits = merged(**train_batch).logits
    assert (merged_logits - adapter_logits).abs().max() <= 1e-5

    merged.save_pretrained(tmp_path / "merged")
    again = LlavaSTModel.from_pretrained(tmp_path / "merged")
    assert again.load_report.ok
    with torch.no_grad():
        again_ids = again.generate(**prompt, max_new_tokens=12).sequences
    assert torch.equal(again_ids, adapter_ids)


def test_merge_without_adapters_is_a_no_op(debug_config) -> None:
    model = _model(debug_config)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    assert merge_lora(model) is model
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())


def test_adapter_layout_round_trips_through_load_lora_adapter(debug_config, train_batch, tmp_path: Path) -> None:
    model = _model(debug_config)
    add_lora(model, LoraSettings(enabled=True, r=4, alpha=8))
    apply_trainability(model, STAGE, lr=2e-4, lr_groups={"packer": 2e-5})
    _train_a_little(model)
    counts = save_lora_adapter(model, tmp_path / "adapter")
    assert counts["lora"] == 2 * 7 * debug_config.text.num_hidden_layers

    # the release's layout: PEFT config and keys, and the non-LoRA trainables by release key
    cfg = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert cfg["r"] == 4 and cfg["lora_alpha"] == 8 and cfg["peft_type"] == "LORA"
    keys = set(load_file(str(tmp_path / "adapter" / "adapter_model.safetensors")))
    assert "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" in keys
    assert "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight" in keys
    extra = torch.load(tmp_path / "adapter" / "non_lora_trainables.bin", weights_only=True)
    assert "base_model.model.model.vision_resampler.token_packer_slow.devide_attention.to_q.0.weight" in extra
    assert "base_model.model.model.temporal_input_embeddings.weight" in extra
    assert "base_model.model.model.embed_tokens.weight" in extra
    assert len(extra) == counts["non_lora"] == sum(1 for n, p in model.named_parameters() if p.requires_grad and ".lora_" not in n)

    with torch.no_grad():
        expected = model.eval()(**train_batch).logits
    merged = merge_lora(model)
    fresh = _model(debug_config)  # the same base weights (same seed)
    report = load_lora_adapter(fresh, tmp_path / "adapter")
    assert report == {"merged": 7 * debug_config.text.num_hidden_layers, "replaced": counts["non_lora"]}
    merged_params = dict(merged.named_parameters())
    for name, param in fresh.named_parameters():
        assert torch.allclose(param, merged_params[name], atol=1e-7, rtol=0), name
    with torch.no_grad():
        assert (fresh(**train_batch).logits - expected).abs().max() <= 1e-5


def test_attach_restores_the_unmerged_adapter(debug_config, train_batch, tmp_path: Path) -> None:
    model = _model(debug_config)
    add_lora(model, LoraSettings(enabled=True, r=4, alpha=8))
    apply_trainability(model, STAGE, lr=2e-4)
    _train_a_little(model)
    save_lora_adapter(model, tmp_path / "adapter")
    fresh = _model(debug_config)
    counts = attach_lora_adapter(fresh, tmp_path / "adapter")
    assert counts["lora"] == 2 * 7 * debug_config.text.num_hidden_layers
    theirs = dict(model.named_parameters())
    for name, param in fresh.named_parameters():
        assert torch.equal(param, theirs[name]), name
    with torch.no_grad():
        assert torch.equal(fresh.eval()(**train_batch).logits, model.eval()(**train_batch).logits)
