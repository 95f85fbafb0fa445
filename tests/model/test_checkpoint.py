"""Release-layout checkpoint I/O: round trips, sharding, strict reports, LoRA merging."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from llava_st.model import CheckpointError, LlavaSTModel, load_lora_adapter
from llava_st.model.adapters import convert_pickle_to_safetensors
from llava_st.model.checkpoint import KEY_MAP, ours_to_release, release_to_ours
from llava_st.zoo import debug


def _tensors(folder: Path) -> dict[str, torch.Tensor]:
    out = {}
    for f in sorted(folder.glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


@pytest.fixture(scope="module")
def saved_debug(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = LlavaSTModel(debug())
    folder = tmp_path_factory.mktemp("debug")
    model.save_pretrained(folder)
    return folder


def test_key_map_is_a_bijection_on_every_parameter() -> None:
    model = LlavaSTModel(replace(debug(), extra={"mm_patch_merge_type": "spatial_unpad"}))
    names = [n for n, _ in model.named_parameters()]
    release = [ours_to_release(n) for n in names]
    assert len(set(release)) == len(names)
    assert [release_to_ours(k) for k in release] == names
    assert release_to_ours("model.vision_resampler.token_packer_slow.devide_attention.to_k.2.bias") == "packer.slow.to_k.fc2.bias"
    assert len({src for src, _ in KEY_MAP}) == len(KEY_MAP)


def test_sharded_save_and_load(saved_debug: Path, tmp_path: Path) -> None:
    model = LlavaSTModel.from_pretrained(saved_debug)
    model.save_pretrained(tmp_path, max_shard_bytes=200_000)
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    shards = set(index["weight_map"].values())
    assert len(shards) > 1 and not (tmp_path / "model.safetensors").exists()
    reloaded = LlavaSTModel.from_pretrained(tmp_path)
    for (n, a), (_, b) in zip(model.state_dict().items(), reloaded.state_dict().items()):
        assert torch.equal(a, b), n


def test_dtype_and_attention_arguments(saved_debug: Path) -> None:
    model = LlavaSTModel.from_pretrained(saved_debug, dtype="bfloat16", attn_implementation="eager")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert model.language_model.config._attn_implementation == "eager"
    with pytest.raises(ValueError, match="unsupported dtype"):
        LlavaSTModel.from_pretrained(saved_debug, dtype="int8")
    with pytest.raises(ValueError, match="attn_implementation"):
        LlavaSTModel.from_pretrained(saved_debug, attn_implementation="flash")


def _edit_checkpoint(src: Path, dst: Path, edit) -> Path:
    shutil.copytree(src, dst)
    tensors = load_file(str(dst / "model.safetensors"))
    edit(tensors)
    save_file(tensors, str(dst / "model.safetensors"))
    return dst


def test_strict_load_lists_missing_unexpected_and_misshaped_keys(saved_debug: Path, tmp_path: Path) -> None:
    def edit(t):
        del t["model.temporal_output_embeddings.weight"]
        t["model.extra_head.weight"] = torch.zeros(2)
        t["model.mm_projector.2.bias"] = torch.zeros(3)

    folder = _edit_checkpoint(saved_debug, tmp_path / "bad", edit)
    with pytest.raises(CheckpointError) as err:
        LlavaSTModel.from_pretrained(folder)
    text = str(err.value)
    assert "missing" in text and "model.temporal_output_embeddings.weight" in text
    assert "unexpected" in text and "model.extra_head.weight" in text
    assert "mis-shaped" in text and "model.mm_projector.2.bias: (3,)" in text
    loose = LlavaSTModel.from_pretrained(folder, strict=False)
    assert loose.load_report.missing == ["model.temporal_output_embeddings.weight"]
    assert loose.load_report.unexpected == ["model.extra_head.weight"]
    assert len(loose.load_report.mismatched) == 1
    for p in (loose.coord_tables.time_out, loose.projector.fc2.bias):
        assert not p.is_meta and p.device.type == "cpu" and torch.isfinite(p).all()
    assert torch.equal(loose.projector.fc2.bias, torch.zeros_like(loose.projector.fc2.bias))


def test_missing_norm_parameters_get_the_identity_init(saved_debug: Path, tmp_path: Path) -> None:
    def edit(t):
        for k in [k for k in t if ".ln_q." in k or k == "model.norm.weight"]:
            del t[k]

    loose = LlavaSTModel.from_pretrained(_edit_checkpoint(saved_debug, tmp_path / "no-norms", edit), strict=False)
    ln = loose.packer.spatial.ln_q
    assert torch.equal(ln.weight, torch.ones_like(ln.weight)) and torch.equal(ln.bias, torch.zeros_like(ln.bias))
    assert torch.equal(loose.language_model.norm.weight, torch.ones_like(loose.language_model.norm.weight))


def test_missing_files_are_named(tmp_path: Path, saved_debug: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no model folder"):
        LlavaSTModel.from_pretrained(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        LlavaSTModel.from_pretrained(empty)
    shutil.copy(saved_debug / "config.json", empty / "config.json")
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        LlavaSTModel.from_pretrained(empty)
    (empty / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "gone.safetensors"}}))
    with pytest.raises(CheckpointError, match="gone.safetensors"):
        LlavaSTModel.from_pretrained(empty)


def _lora_folder(model: LlavaSTModel, folder: Path, prefix: str, rank: int = 2, alpha: float = 8.0, rslora=False):
    g = torch.Generator().manual_seed(5)
    adapter = {}
    targets = ["layers.0.self_attn.q_proj", "layers.1.mlp.down_proj"]
    for t in targets:
        w = model.get_parameter(f"language_model.{t}.weight")
        adapter[f"base_model.model.{prefix}{t}.lora_A.weight"] = torch.randn(rank, w.shape[1], generator=g)
        adapter[f"base_model.model.{prefix}{t}.lora_B.weight"] = torch.randn(w.shape[0], rank, generator=g)
    folder.mkdir()
    save_file(adapter, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps({"r": rank, "lora_alpha": alpha, "use_rslora": rslora,
                                                            "target_modules": ["q_proj", "down_proj"]}))
    return adapter, targets


@pytest.mark.parametrize("prefix,rslora", [("model.", False), ("language_model.", True)])
def test_lora_merge_and_non_lora_trainables(saved_debug: Path, tmp_path: Path, prefix: str, rslora: bool) -> None:
    model = LlavaSTModel.from_pretrained(saved_debug)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    adapter, targets = _lora_folder(model, tmp_path / "lora", prefix, rslora=rslora)
    new_proj = torch.randn_like(model.projector.fc1.weight)
    torch.save({"base_model.model.model.mm_projector.0.weight": new_proj}, tmp_path / "lora" / "non_lora_trainables.bin")
    counts = load_lora_adapter(model, tmp_path / "lora")
    assert counts == {"merged": 2, "replaced": 1}
    scale = 8.0 / (2 ** 0.5) if rslora else 8.0 / 2
    for t in targets:
        a = adapter[f"base_model.model.{prefix}{t}.lora_A.weight"]
        b = adapter[f"base_model.model.{prefix}{t}.lora_B.weight"]
        name = f"language_model.{t}.weight"
        torch.testing.assert_close(model.get_parameter(name), before[name] + scale * b @ a)
    assert torch.equal(model.projector.fc1.weight, new_proj)
    untouched = "language_model.layers.0.self_attn.k_proj.weight"
    assert torch.equal(model.get_parameter(untouched), before[untouched])


def test_lora_adapter_that_does_not_fit_is_refused(saved_debug: Path, tmp_path: Path) -> None:
    model = LlavaSTModel.from_pretrained(saved_debug)
    folder = tmp_path / "bad"
    folder.mkdir()
    save_file({"base_model.model.model.layers.0.self_attn.nope.lora_A.weight": torch.zeros(2, 64),
               "base_model.model.model.layers.0.self_attn.nope.lora_B.weight": torch.zeros(64, 2)},
              str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps({"r": 2, "lora_alpha": 4}))
    with pytest.raises(CheckpointError, match="names no weight"):
        load_lora_adapter(model, folder)


def test_pickles_load_only_plain_tensors(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"w": Evil()}, tmp_path / "evil.bin")
    with pytest.raises(Exception, match="[Ww]eights only"):
        convert_pickle_to_safetensors(tmp_path / "evil.bin", tmp_path / "out.safetensors")
    torch.save({"w": torch.ones(2)}, tmp_path / "ok.bin")
    assert convert_pickle_to_safetensors(tmp_path / "ok.bin", tmp_path / "ok.safetensors") == 1
    with safe_open(str(tmp_path / "ok.safetensors"), framework="pt") as f:
        assert list(f.keys()) == ["w"]
