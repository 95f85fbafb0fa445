"""Parity with the authors' code on a tiny random checkpoint (issue 3).

For every case folder of the fixture set (``LLAVA_ST_PARITY_DIR``, default
``../shared/parity``) the stored ids, variables and pixels are fed to our
model and every array of ``reference.npz`` is compared at the tolerances of
the fixture README. The fixture's checkpoint, config and preprocessed pixels
are checked here too. Without the fixtures these tests are skipped with a
message saying how to get them, and fail under ``CI=true``
(``conftest.locate_parity_fixtures``, whose rule is tested at the end). Official cases run with the release switches, variant
cases with the switches their ``case.json`` names. Nothing here knows a
particular case: shapes, positions, lengths and settings all come from the
fixture files.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from safetensors.torch import load_file

import conftest
from conftest import locate_parity_fixtures, parity_case_params, parity_cases
from llava_st.config import LlavaSTConfig, VisionConfig
from llava_st.media import load_image, preprocess_frames
from llava_st.model import LlavaSTModel
from llava_st.model.lape import add_lape
from llava_st.model.loss import build_targets, soft_target_cross_entropy
from llava_st.protocol.tokens import values_from_variables

# Tolerances of the fixture README ("Suggested bounds").
FEATURE = dict(atol=1e-5, rtol=1e-4)
LOGITS = dict(atol=1e-4, rtol=0.0)
LOGITS_F16 = dict(atol=2e-3, rtol=0.0)
LOSS = dict(atol=1e-5, rtol=0.0)
FRAME_SUM = dict(atol=1e-3, rtol=0.0)
FRAME_L2 = dict(atol=0.0, rtol=1e-6)
WEIGHTS = dict(atol=1e-6, rtol=0.0)

CASES = parity_cases()


def _close(name: str, ours, ref, tol: dict) -> None:
    ours = torch.as_tensor(ours).detach().double().cpu()
    ref = torch.as_tensor(np.asarray(ref)).double()
    assert ours.shape == ref.shape, f"{name}: shape {tuple(ours.shape)} vs reference {tuple(ref.shape)}"
    diff = (ours - ref).abs()
    bound = tol["atol"] + tol["rtol"] * ref.abs()
    worst = float((diff - bound).max()) if diff.numel() else 0.0
    assert worst <= 0, f"{name}: max |diff| {float(diff.max()):.3e} exceeds the bound (atol {tol['atol']}, rtol {tol['rtol']})"


def _exact(name: str, ours, ref) -> None:
    ours = np.asarray(torch.as_tensor(ours).cpu())
    ref = np.asarray(ref)
    assert ours.shape == ref.shape and (ours == ref).all(), f"{name}: {ours.tolist()} != reference {ref.tolist()}"


# LLAVA_ST_TEST_DEVICE=cuda runs the same comparisons on a GPU (TF32 off: the bounds are float32's).
DEVICE = os.environ.get("LLAVA_ST_TEST_DEVICE", "cpu")
if DEVICE.startswith("cuda"):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


@pytest.fixture(scope="module")
def model(parity_root: Path) -> LlavaSTModel:
    root = parity_root
    m = LlavaSTModel.from_pretrained(root / "model", dtype=torch.float32, attn_implementation="eager", device=DEVICE)
    assert m.load_report.ok
    return m


class Case:
    """A case folder: its json, arrays and the inputs (from ``based_on`` for variant cases)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.name = folder.name
        self.meta = json.loads((folder / "case.json").read_text())
        self.ref = dict(np.load(folder / "reference.npz"))
        base_name = self.meta.get("based_on")
        self.base = Case(folder.parent / base_name) if base_name else None
        src = self.base or self
        self.modality = src.meta["modality"]
        self.variables = src.meta.get("variables")
        self.input_ids = torch.from_numpy(src.ref["input_ids"]).long()[None]
        self.pixels = self._pixels(src)

    @staticmethod
    def _pixels(src: "Case") -> torch.Tensor:
        media = Path(src.meta["media"])
        path = src.folder.parent / "media" / f"{media.stem}_pixel_values.npz"
        with np.load(path) as z:
            (array,) = [z[k] for k in z.files]
        want = src.meta.get("pixel_values", {}).get("sha256")
        if want is not None:
            assert hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest() == want, f"{path} does not match case.json"
        return torch.from_numpy(array)


def _with_switches(model: LlavaSTModel, meta: dict) -> LlavaSTModel:
    model.config = replace(
        model.config,
        inject_fast_stream=bool(meta.get("inject_fast_stream", False)),
        inject_width_inputs=bool(meta.get("inject_width_inputs", False)),
    )
    return model


def _intermediates(model: LlavaSTModel, case: Case) -> dict[str, torch.Tensor]:
    """Our value of every intermediate the fixtures may store, computed with the model's named parts."""
    out: dict[str, torch.Tensor] = {}
    t, h, w = model.coord_tables.lape_signal()
    out.update(lape_inj_t=t, lape_inj_h=h, lape_inj_w=w)
    siglip = model.vision_tower(case.pixels)  # [T, G*G, C]
    projector = model.projector(siglip)  # [T, G*G, D]
    after_lape = add_lape(projector, (t, h, w), model.config.vision.grid_size, is_video=case.modality == "video")
    spatial, slow, fast = model.packer(after_lape)
    full = dict(siglip=siglip, projector=projector, after_lape=after_lape, packer_spatial=spatial)
    out.update(full)
    out.update(packer_slow=slow, packer_fast=fast)
    if "frames_sel" in case.ref:
        sel = torch.from_numpy(case.ref["frames_sel"]).long().to(siglip.device)
        for name, value in full.items():
            out[f"{name}_sel"] = value[sel]
            out[f"{name}_frame_sum"] = value.double().sum(dim=(1, 2))
            out[f"{name}_frame_l2"] = value.double().flatten(1).norm(dim=1)
    return out


@pytest.mark.parametrize("folder", parity_case_params())
def test_case(model: LlavaSTModel, folder: Path) -> None:
    case = Case(folder)
    model = _with_switches(model, case.meta)
    ref = case.ref
    ids = model.token_ids
    coord_values = values_from_variables(case.input_ids[0], case.variables, ids)[None]
    batch = dict(input_ids=case.input_ids, coord_values=coord_values, pixel_values=[case.pixels], modalities=[case.modality])
    checked: set[str] = {"input_ids", "frames_sel"}

    with torch.no_grad():
        model.eval()
        mids = _intermediates(model, case)
        for name, value in mids.items():
            if name in ref:
                tol = FRAME_SUM if name.endswith("_frame_sum") else FRAME_L2 if name.endswith("_frame_l2") else FEATURE
                _close(name, value, ref[name], tol)
                checked.add(name)

        embeds = model.embed_inputs(**batch)[0].cpu()
        if "inputs_embeds" in ref:
            _close("inputs_embeds", embeds, ref["inputs_embeds"], FEATURE)
            checked.add("inputs_embeds")
        if "inputs_embeds_changed_positions" in ref:
            base = torch.from_numpy(case.base.ref["inputs_embeds"])
            changed = torch.from_numpy(ref["inputs_embeds_changed_positions"]).long()
            keep = torch.ones(embeds.shape[0], dtype=torch.bool)
            keep[changed] = False
            _close("inputs_embeds (unchanged rows)", embeds[keep], base[keep], FEATURE)
            moved = (embeds[changed] - base[changed]).abs().amax(dim=1)
            assert bool((moved > 1e-3).all()), "a row the variant changes kept its official value"
            checked.add("inputs_embeds_changed_positions")
        if "width_input_rows" in ref:
            width_pos = (case.input_ids[0] == ids.width_input).nonzero().flatten()
            _close("width_input_rows", embeds[width_pos], ref["width_input_rows"], FEATURE)
            checked.add("width_input_rows")

        if case.meta.get("mode") == "inference":
            logits = model(input_ids=case.input_ids, inputs_embeds=embeds[None]).logits[0].cpu()
            if "logits" in ref:
                _close("logits", logits, ref["logits"], LOGITS)
                checked.add("logits")
            if "logits_f16" in ref:
                _close("logits_f16", logits, ref["logits_f16"].astype(np.float32), LOGITS_F16)
                checked.add("logits_f16")
            if "logits_last16" in ref:
                n = ref["logits_last16"].shape[0]
                _close("logits_last16", logits[-n:], ref["logits_last16"], LOGITS)
                checked.add("logits_last16")
            if "gen_ids" in ref:
                gen = case.meta.get("generation", {})
                assert not gen.get("do_sample", False), "parity generation is greedy"
                out = model.generate(case.input_ids, inputs_embeds=embeds[None], max_new_tokens=int(gen.get("max_new_tokens", len(ref["gen_ids"]))),
                                     pad_token_id=gen.get("pad_token_id"), return_scores=True)
                _exact("gen_ids", out.sequences[0].cpu(), ref["gen_ids"])
                checked.add("gen_ids")
                if "gen_scores" in ref:
                    _close("gen_scores", out.scores[0], ref["gen_scores"], LOGITS)
                    checked.add("gen_scores")
                if "gen_top1_top2_gap" in ref:
                    top2 = out.scores[0].topk(2, dim=-1).values
                    _close("gen_top1_top2_gap", top2[:, 0] - top2[:, 1], ref["gen_top1_top2_gap"], LOGITS)
                    checked.add("gen_top1_top2_gap")

    if case.meta.get("mode") == "training":
        labels = torch.from_numpy(ref["labels"]).long()[None]
        checked.add("labels")
        model.train()
        try:
            out = model(**batch, labels=labels, return_logits=False)
            _close("loss", out.loss, ref["loss"], LOSS)
            checked.add("loss")
            c = model.config.coords
            rows, tgt_ids, tgt_w = build_targets(labels, coord_values, ids, c.bins)
            positions = rows[:, 1] + 1
            _exact("loss_positions", positions, ref["loss_positions"])
            checked.add("loss_positions")
            with torch.no_grad():
                sup_logits = model.extended_logits(out.hidden_states[0, rows[:, 1].to(model.device)]).cpu()
            _close("shift_logits_supervised", sup_logits, ref["shift_logits_supervised"], LOGITS)
            per_pos = soft_target_cross_entropy(sup_logits, tgt_ids, tgt_w)
            _close("loss_per_position", per_pos, ref["loss_per_position"], LOSS)
            checked.update({"shift_logits_supervised", "loss_per_position"})
            is_coord = torch.isin(positions, torch.from_numpy(ref["coord_positions"]).long())
            _exact("coord_positions", positions[is_coord], ref["coord_positions"])
            # the fixtures mark an unused second slot with id -1 and weight 0
            ours_ids = torch.where(tgt_w[is_coord] > 0, tgt_ids[is_coord], torch.full_like(tgt_ids[is_coord], -1))
            ours_ids[:, 0] = tgt_ids[is_coord][:, 0]
            _exact("coord_target_ids", ours_ids, ref["coord_target_ids"])
            _close("coord_target_weights", tgt_w[is_coord], ref["coord_target_weights"], WEIGHTS)
            checked.update({"coord_positions", "coord_target_ids", "coord_target_weights"})
            if "loss_batch_of_two_identical" in case.meta:
                # Ours is the mean over all supervised tokens of the batch, so two identical
                # samples give the single-sample loss (the release sums per-sample means).
                two = {k: (torch.cat([v, v]) if torch.is_tensor(v) else v * 2) for k, v in batch.items()}
                out2 = model(**two, labels=torch.cat([labels, labels]), return_logits=False)
                _close("loss of a batch of two identical samples", out2.loss, ref["loss"], LOSS)
        finally:
            model.eval()

    unchecked = set(ref) - checked
    assert not unchecked, f"reference arrays this test does not know how to check: {sorted(unchecked)}"


def test_fixture_set_is_present(parity_root: Path) -> None:
    assert CASES, f"no parity cases (folders with case.json) under {parity_root}"


def test_switches_default_to_release_behaviour(model: LlavaSTModel, parity_root: Path) -> None:
    fresh = LlavaSTModel.from_pretrained(parity_root / "model", attn_implementation="eager")
    assert fresh.config.inject_fast_stream is False and fresh.config.inject_width_inputs is False


# --- the fixture's checkpoint, config and pixels ---------------------------------------------


def _tensors(folder: Path) -> dict[str, torch.Tensor]:
    out = {}
    for f in sorted(folder.glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def test_release_config_reads_release_switches_and_keeps_unknown_keys(parity_root: Path, tmp_path: Path) -> None:
    cfg = LlavaSTConfig.from_pretrained(parity_root / "model")
    raw = json.loads((parity_root / "model" / "config.json").read_text())
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


def test_parity_checkpoint_round_trip_is_bit_exact(parity_root: Path, tmp_path: Path) -> None:
    src = parity_root / "model"
    model = LlavaSTModel.from_pretrained(src, dtype=torch.bfloat16)
    model.save_pretrained(tmp_path / "a")
    original = _tensors(src)
    written = _tensors(tmp_path / "a")
    assert sorted(original) == sorted(written)
    for key, tensor in original.items():
        assert written[key].dtype == tensor.dtype and torch.equal(written[key], tensor), key
    again = LlavaSTModel.from_pretrained(tmp_path / "a", dtype=torch.bfloat16)
    again.save_pretrained(tmp_path / "b")
    for key, tensor in _tensors(tmp_path / "b").items():
        assert torch.equal(tensor, written[key]), key
    # unknown config keys survive; the quirk switches stay the release's
    cfg = json.loads((tmp_path / "a" / "config.json").read_text())
    assert cfg["mm_patch_merge_type"] == json.loads((src / "config.json").read_text())["mm_patch_merge_type"]
    assert cfg["inject_fast_stream"] is False and again.config.inject_fast_stream is False
    assert again.config.vision == model.config.vision


def test_tower_config_comes_from_the_local_tower_folder(parity_root: Path) -> None:
    model = LlavaSTModel.from_pretrained(parity_root / "model")
    tower = json.loads((parity_root / "model" / model.config.vision_tower / "config.json").read_text())
    assert model.config.vision.hidden_size == tower["hidden_size"]
    assert model.config.vision.num_kept_layers == tower["num_hidden_layers"] - 1
    assert len(model.vision_tower.tower.encoder.layers) == tower["num_hidden_layers"] - 1


def test_parity_video_pixels_bitwise(parity_root: Path) -> None:
    frames = np.load(parity_root / "media" / "video.npz")["frames"]
    expected = np.load(parity_root / "media" / "video_pixel_values.npz")["pixel_values"]
    vision = VisionConfig()
    got = preprocess_frames(frames, vision.image_size, vision.image_mean, vision.image_std)
    assert got.dtype == torch.float32 and tuple(got.shape) == expected.shape == (100, 3, 384, 384)
    assert got.numpy().tobytes() == expected.tobytes()


def test_parity_image_pixels_bitwise(parity_root: Path) -> None:
    image = np.load(parity_root / "media" / "image.npz")["image"]
    expected = np.load(parity_root / "media" / "image_pixel_values.npz")["pixel_values"]
    got = preprocess_frames(load_image(image))
    assert tuple(got.shape) == expected.shape == (1, 3, 384, 384)
    assert got.numpy().tobytes() == expected.tobytes()


# --- the skip/fail rule for missing fixtures (runs with or without them) ----------------------


def _fixture_folder(root: Path) -> Path:
    (root / "model").mkdir(parents=True)
    (root / "model" / "config.json").write_text("{}")
    return root


@pytest.mark.parametrize("ci", [None, "", "false", "0"])
def test_missing_fixtures_are_skipped_with_directions_off_ci(tmp_path: Path, ci) -> None:
    repo = tmp_path / "clone"
    repo.mkdir()
    env = {} if ci is None else {"CI": ci}
    found = locate_parity_fixtures(env, repo_root=repo)
    assert found.action == "skip" and not found.found
    assert found.path == tmp_path / "shared" / "parity"
    assert "LLAVA_ST_PARITY_DIR" in found.message and str(tmp_path / "shared" / "parity") in found.message


@pytest.mark.parametrize("ci", ["true", "True", "1", "yes"])
def test_missing_fixtures_fail_under_ci(tmp_path: Path, ci: str) -> None:
    repo = tmp_path / "clone"
    repo.mkdir()
    found = locate_parity_fixtures({"CI": ci}, repo_root=repo)
    assert found.action == "fail"
    assert "CI=true" in found.message and "LLAVA_ST_PARITY_DIR" in found.message


def test_an_explicit_folder_without_fixtures_fails_and_one_with_them_is_used(tmp_path: Path) -> None:
    repo = tmp_path / "clone"
    repo.mkdir()
    wrong = locate_parity_fixtures({"LLAVA_ST_PARITY_DIR": str(tmp_path / "typo")}, repo_root=repo)
    assert wrong.action == "fail" and str(tmp_path / "typo") in wrong.message
    right = _fixture_folder(tmp_path / "elsewhere")
    for ci in ({}, {"CI": "true"}):
        found = locate_parity_fixtures({"LLAVA_ST_PARITY_DIR": str(right), **ci}, repo_root=repo)
        assert found.action == "use" and found.path == right
    # the default location beside the checkout, when the variable is unset or empty
    _fixture_folder(tmp_path / "shared" / "parity")
    for env in ({}, {"LLAVA_ST_PARITY_DIR": ""}, {"CI": "true"}):
        found = locate_parity_fixtures(env, repo_root=repo)
        assert found.action == "use" and found.path == tmp_path / "shared" / "parity"


def test_tests_needing_fixtures_skip_or_fail_by_the_rule(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(conftest, "REPO_ROOT", tmp_path / "clone")
    monkeypatch.delenv("LLAVA_ST_PARITY_DIR", raising=False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="LLAVA_ST_PARITY_DIR"):
        conftest.require_parity_fixtures()
    assert conftest.parity_cases() == []
    assert [p.values for p in conftest.parity_case_params()] == [(None,)]
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        conftest.require_parity_fixtures()
