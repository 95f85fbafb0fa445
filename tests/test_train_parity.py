"""Gradient parity with the authors' training code on the tiny parity checkpoint.

For every training case of the parity fixtures (``case.json`` ``mode:
"training"`` with a ``grads.npz``), the fixture model is loaded with the
release switches, made trainable through :func:`apply_trainability` (every
part except the tower, as the official gradients were made: every parameter
requiring grad, the tower under ``no_grad``), run through the trainer's
forward and loss (:func:`llava_st.train.training_loss`) and differentiated.
Each parameter's gradient is compared with ``grads.npz`` under the bounds of
the fixture README ("Gradients"):

* recorded noise below 0.05: ``max|ours - ref| / (max|ref| + 1e-12) <= max(1e-4, 10 x noise)``;
* recorded noise 0.05 or more (pure rounding): ``max|ours| <= 1e-6 x`` the case's largest gradient;
* no gradient in the reference (absent or all zero): none or all zero in ours;
* the loss of the backward pass: ``atol 1e-5``.

The fixtures are found, and their absence skipped or failed, exactly as in
``tests/test_parity.py`` (``conftest.locate_parity_fixtures``); like the other parity modules it lives at the top of tests/, the only place that reads fixtures.
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

from conftest import parity_case_params, parity_cases
from llava_st.model import LlavaSTModel
from llava_st.model.checkpoint import release_to_ours
from llava_st.protocol.tokens import values_from_variables
from llava_st.train import Trainability, apply_trainability, load_recipe, set_ntp, training_loss

REPO = Path(__file__).resolve().parents[1]
LOSS_ATOL = 1e-5
REL_FLOOR = 1e-4
NOISE_FACTOR = 10.0
ROUNDING_NOISE = 0.05
TINY_FRACTION = 1e-6

DEVICE = os.environ.get("LLAVA_ST_TEST_DEVICE", "cpu")
if DEVICE.startswith("cuda"):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def _is_gradient_case(folder: Path) -> bool:
    meta = json.loads((folder / "case.json").read_text())
    return meta.get("mode") == "training" and (folder / "grads.npz").is_file()


def _gradient_case_params() -> list:
    cases = parity_cases()
    if not cases:  # no fixtures: one placeholder that reaches parity_root and skips/fails by the rule
        return parity_case_params()
    return [pytest.param(c, id=c.name) for c in cases if _is_gradient_case(c)]


def test_fixture_set_has_gradient_cases(parity_root: Path) -> None:
    assert any(_is_gradient_case(c) for c in parity_cases()), f"no training case with grads.npz under {parity_root}"


def _pixels(root: Path, meta: dict) -> torch.Tensor:
    path = root / "media" / f"{Path(meta['media']).stem}_pixel_values.npz"
    with np.load(path) as z:
        (array,) = [z[k] for k in z.files]
    want = meta.get("pixel_values", {}).get("sha256")
    if want is not None:
        assert hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest() == want, f"{path} does not match case.json"
    return torch.from_numpy(array)


def _noise(meta: dict) -> dict[str, float]:
    """Per tensor, the largest recorded rerun difference (float64 and SDPA reruns)."""
    out: dict[str, float] = {}
    for rerun in meta.get("noise", {}).values():
        for key, rel in rerun.get("per_tensor_rel", {}).items():
            out[key] = max(out.get(key, 0.0), float(rel))
    return out


def _release_stage_trainability() -> Trainability:
    """The release stage-2 trainability with every part switched on except the tower (see the module docstring)."""
    stage = load_recipe(REPO / "recipes" / "release" / "stage2.yaml").trainable
    everything = Trainability.everything(vision_tower=False)
    return replace(stage, **{k: getattr(everything, k) for k in ("projector", "packer", "coord_tables", "embed_tokens", "lm_head", "llm")})


@pytest.mark.parametrize("folder", _gradient_case_params())
def test_gradients_match_the_release(parity_root: Path, folder: Path) -> None:
    meta = json.loads((folder / "case.json").read_text())
    ref = np.load(folder / "reference.npz")
    grads_meta = json.loads((folder / "grads_meta.json").read_text())
    with np.load(folder / "grads.npz") as z:
        ref_grads = {k: z[k] for k in z.files}

    model = LlavaSTModel.from_pretrained(parity_root / "model", dtype=torch.float32, attn_implementation="eager", device=DEVICE)
    model.config = replace(
        model.config,
        inject_fast_stream=bool(meta.get("inject_fast_stream", False)),
        inject_width_inputs=bool(meta.get("inject_width_inputs", False)),
    )
    spec = _release_stage_trainability()
    apply_trainability(model, spec, lr=1e-4)
    assert model.vision_tower_grad is False
    assert not any(p.requires_grad for p in model.vision_tower.parameters())
    set_ntp(model, True)
    model.train()

    input_ids = torch.from_numpy(ref["input_ids"]).long()[None]
    batch = {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "coord_values": values_from_variables(input_ids[0], meta["variables"], model.token_ids)[None],
        "labels": torch.from_numpy(ref["labels"]).long()[None],
        "pixel_values": [_pixels(parity_root, meta).to(DEVICE)],
        "modalities": [meta["modality"]],
    }
    out = training_loss(model, batch)
    out.loss.backward()
    loss = out.loss.item()
    assert abs(loss - float(grads_meta["loss"])) <= LOSS_ATOL and abs(loss - float(ref["loss"])) <= LOSS_ATOL

    params = dict(model.named_parameters())
    noise = _noise(grads_meta)
    largest = max(float(np.abs(g).max()) for g in ref_grads.values())
    failures: list[str] = []
    compared = 0
    for key, info in grads_meta["parameters"].items():
        assert info.get("stored", "full") in ("full", "none"), f"{key}: summary-stored gradients are not handled"
        name = release_to_ours(key)
        assert name in params, f"{key}: the reference names a tensor our model does not have"
        grad = params[name].grad
        ours = None if grad is None else grad.detach().double().cpu().numpy()
        theirs = ref_grads.get(key)
        if theirs is None or not np.any(theirs):
            if ours is not None and np.any(ours):
                failures.append(f"{key}: the reference has no gradient, ours has max |g| {np.abs(ours).max():.3e}")
            continue
        if ours is None:
            failures.append(f"{key}: the reference has a gradient, ours has none")
            continue
        compared += 1
        tensor_noise = noise.get(key, 0.0)
        if tensor_noise >= ROUNDING_NOISE:
            if np.abs(ours).max() > TINY_FRACTION * largest:
                failures.append(f"{key}: max |g| {np.abs(ours).max():.3e} for a gradient that is rounding only")
            continue
        theirs = theirs.astype(np.float64)
        rel = np.abs(ours - theirs).max() / (np.abs(theirs).max() + 1e-12)
        bound = max(REL_FLOOR, NOISE_FACTOR * tensor_noise)
        if rel > bound:
            failures.append(f"{key}: rel {rel:.3e} > bound {bound:.1e} (noise {tensor_noise:.1e})")
    assert compared > 0
    assert not failures, "gradients differ from the release:\n  " + "\n  ".join(failures)
