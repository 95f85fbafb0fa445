"""Config: release layout in and out, unknown keys kept, switches, size checks."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from conftest import parity_dir
from llava_st.config import LlavaSTConfig, PackerConfig, VisionConfig
from llava_st.zoo import REGISTRY, get_config


def test_release_config_reads_release_switches_and_keeps_unknown_keys(tmp_path) -> None:
    cfg = LlavaSTConfig.from_pretrained(parity_dir() / "model")
    raw = json.loads((parity_dir() / "model" / "config.json").read_text())
    assert cfg.inject_fast_stream is False and cfg.inject_width_inputs is False
    assert cfg.text.vocab_size == raw["vocab_size"] and cfg.text.rope_theta == raw["rope_theta"]
    assert cfg.packer.embed_dim == raw["mm_packer_embed_dim"]
    assert cfg.slow_grid**2 == raw["mm_perceiver_latents"] and cfg.fast_grid**2 == raw["mm_perceiver_latents_fast"]
    written = cfg.to_release_dict()
    for key, value in raw.items():
        if key not in ("rope_theta",):
            assert written[key] == value, key
    cfg.to_json_file(tmp_path / "config.json")
    again = LlavaSTConfig.from_json_file(tmp_path / "config.json")
    assert again == cfg


def test_configs_we_create_use_the_corrected_behaviour() -> None:
    cfg = LlavaSTConfig()
    assert cfg.inject_fast_stream and cfg.inject_width_inputs
    data = cfg.to_release_dict()
    assert data["inject_fast_stream"] is True
    assert LlavaSTConfig.from_release_dict(data).inject_fast_stream is True


def test_release_7b_sizes() -> None:
    cfg = get_config("llava-st-qwen2-7b")
    assert cfg.vision.grid_size == 27 and cfg.vision.num_kept_layers == 26
    assert cfg.image_token_count == 729
    assert cfg.video_fast_token_count() == 900 and cfg.video_slow_token_count() == 1620
    assert cfg.extended_vocab_size == cfg.text.vocab_size + 300
    assert not cfg.inject_fast_stream
    assert set(REGISTRY) >= {"llava-st-qwen2-7b", "debug"}
    with pytest.raises(KeyError, match="unknown model name"):
        get_config("nope")


def test_qwen2_config_carries_rope_theta() -> None:
    q = get_config("debug").text.to_qwen2_config()
    assert q.rope_parameters["rope_theta"] == 1e6 and q.use_sliding_window is False


@pytest.mark.parametrize(
    "change,message",
    [
        (dict(packer=PackerConfig(spatial_factor=4)), "not divisible by packer.spatial_factor"),
        (dict(packer=PackerConfig(fast_factor=2)), "not divisible by packer.fast_factor"),
        (dict(packer=PackerConfig(embed_dim=30, num_heads=8)), "embed_dim 30"),
        (dict(vision=VisionConfig(select_layer=-30)), "select_layer"),
        (dict(num_frames=0), "num_frames"),
        (dict(projector_type="linear"), "projector_type"),
    ],
)
def test_invalid_sizes_are_named(change, message) -> None:
    with pytest.raises(ValueError, match=message):
        replace(LlavaSTConfig(), **change)


def test_mismatched_release_fields_are_errors() -> None:
    data = LlavaSTConfig().to_release_dict()
    with pytest.raises(ValueError, match="mm_perceiver_latents = 64"):
        LlavaSTConfig.from_release_dict({**data, "mm_perceiver_latents": 64})
    with pytest.raises(ValueError, match="mm_hidden_size"):
        LlavaSTConfig.from_release_dict({k: v for k, v in {**data, "mm_hidden_size": 7}.items() if k != "vision_config"})
    with pytest.raises(ValueError, match="model_type"):
        LlavaSTConfig.from_release_dict({**data, "model_type": "llama"})
