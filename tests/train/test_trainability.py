"""Trainability: which parameters train, their learning-rate groups, new-token rows, the tower switch,
and one optimizer step that moves exactly the recipe's parameters."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from llava_st.errors import ConfigError
from llava_st.model import LlavaSTModel
from llava_st.train import (
    Trainability,
    add_lora,
    apply_trainability,
    init_coordinate_tables,
    init_new_token_rows,
    load_recipe,
    new_token_ids,
    part_of,
    set_ntp,
    training_loss,
)
from llava_st.train.trainability import PARTS

REPO = Path(__file__).resolve().parents[2]
TINY = sorted((REPO / "recipes" / "tiny").glob("stage*.yaml"))


@pytest.fixture
def model(debug_config) -> LlavaSTModel:
    torch.manual_seed(0)
    return LlavaSTModel(debug_config)


def _trainable(model) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_every_parameter_has_a_part_except_image_newline(model) -> None:
    for name, _ in model.named_parameters():
        assert part_of(name) is not None, name
    assert part_of("packer.slow.to_q.fc1.weight") == "packer.slow"
    assert part_of("language_model.embed_tokens.weight") == "embed_tokens"
    assert part_of("language_model.layers.0.mlp.up_proj.weight") == "llm"
    assert part_of("language_model.layers.0.mlp.up_proj.lora_B.default.weight") == "lora"
    assert part_of("coord_tables.width_out") == "coord_tables.width_out"
    assert part_of("image_newline") is None


def test_stage_trainability_freezes_everything_else_and_groups_rates(model) -> None:
    spec = Trainability(packer=["spatial", "slow"], coord_tables=["time_in", "width_out"], embed_tokens="all")
    groups = apply_trainability(model, spec, lr=1e-3, lr_groups={"packer": 2e-4, "coord_tables.width_out": 5e-5})
    expected = {
        n
        for n, _ in model.named_parameters()
        if n.startswith(("packer.spatial.", "packer.slow.", "language_model.embed_tokens."))
        or n in ("coord_tables.time_in", "coord_tables.width_out")
    }
    assert _trainable(model) == expected
    rates = {g["name"]: g["lr"] for g in groups}
    assert rates == {
        "packer.spatial": 2e-4,
        "packer.slow": 2e-4,
        "coord_tables.time_in": 1e-3,
        "coord_tables.width_out": 5e-5,
        "embed_tokens": 1e-3,
    }
    assert all(g["weight_decay"] == 0.0 for g in groups)
    grouped = [id(p) for g in groups for p in g["params"]]
    assert len(grouped) == len(set(grouped)) == len(expected)
    # AdamW takes the groups as they are
    torch.optim.AdamW(groups)


def test_reapplying_replaces_the_previous_state(model) -> None:
    apply_trainability(model, Trainability.everything(), lr=1e-4)
    apply_trainability(model, Trainability(projector=True), lr=1e-4)
    assert _trainable(model) == {n for n, _ in model.named_parameters() if n.startswith("projector.")}


def test_invalid_specs_raise_config_errors(model) -> None:
    with pytest.raises(ConfigError, match="packer"):
        apply_trainability(model, Trainability(packer=["slowest"]), lr=1e-4)
    with pytest.raises(ConfigError, match="embed_tokens"):
        apply_trainability(model, Trainability(embed_tokens="some"), lr=1e-4)
    with pytest.raises(ConfigError, match="not a part name"):
        apply_trainability(model, Trainability(projector=True), lr=1e-4, lr_groups={"projecter": 1e-5})
    with pytest.raises(ConfigError, match="nothing trains"):
        apply_trainability(model, Trainability(), lr=1e-4)
    with pytest.raises(ConfigError, match="ids of the new tokens"):
        apply_trainability(model, Trainability(embed_tokens="new"), lr=1e-4)
    with pytest.raises(ConfigError, match="weight decay"):
        apply_trainability(model, Trainability(embed_tokens="new"), lr=1e-4, weight_decay=0.1, new_token_ids=[515])


def test_new_token_ids_follow_the_config_layout(model) -> None:
    ids = model.config.token_ids
    assert new_token_ids(model, ["image_markers"]) == sorted([ids.im_start, ids.im_end, ids.im_patch])
    assert new_token_ids(model, ["placeholders"]) == list(range(ids.vocab_size - 6, ids.vocab_size))
    assert len(new_token_ids(model, ["image_markers", "video_markers", "placeholders"])) == 14
    with pytest.raises(ConfigError):
        new_token_ids(model, ["bins"])


def test_new_token_rows_start_at_the_mean_of_the_existing_rows(model) -> None:
    new = new_token_ids(model, ["placeholders"])
    embed = model.language_model.embed_tokens.weight
    head = model.lm_head.weight
    keep = torch.ones(embed.shape[0], dtype=torch.bool)
    keep[new] = False
    before_embed, before_head = embed.detach().clone(), head.detach().clone()
    init_new_token_rows(model, new)
    for weight, before in ((embed, before_embed), (head, before_head)):
        mean = before[keep].mean(dim=0)
        assert torch.allclose(weight[new], mean.expand(len(new), -1), atol=1e-7)
        assert torch.equal(weight[keep], before[keep])


def test_coordinate_table_init(model) -> None:
    init_coordinate_tables(model, "zeros")
    assert all(bool((p == 0).all()) for p in model.coord_tables.parameters())
    torch.manual_seed(1)
    init_coordinate_tables(model, "normal", std=0.02)
    assert all(0.01 < float(p.detach().std()) < 0.03 for p in model.coord_tables.parameters())
    with pytest.raises(ConfigError):
        init_coordinate_tables(model, "xavier")


def _one_step_new_rows(model, batch, rows) -> list[int]:
    model.zero_grad(set_to_none=True)
    groups = apply_trainability(model, Trainability(embed_tokens="new"), lr=1e-2, new_token_ids=rows)
    before = model.language_model.embed_tokens.weight.detach().clone()
    model.train()
    training_loss(model, batch).loss.backward()
    torch.optim.AdamW(groups).step()
    after = model.language_model.embed_tokens.weight.detach()
    return (after != before).any(dim=1).nonzero().flatten().tolist()


def test_new_rows_mode_updates_only_the_new_rows(model, train_batch) -> None:
    ids = train_batch["input_ids"]
    text = sorted(set(ids[train_batch["labels"] != -100].tolist()) - set(model.config.token_ids.placeholder_ids))
    rows = text[:3] + [0, 1]  # three rows the batch uses, two it may not
    changed = _one_step_new_rows(model, train_batch, rows)
    assert set(text[:3]) <= set(changed) <= set(rows), changed


def test_placeholder_rows_learn_only_where_the_release_keeps_them(model, train_batch) -> None:
    # Injected placeholders pass no gradient to their text rows; with the release switch
    # the <WIDTH-INPUT> row stays in the sequence and is the one placeholder row that learns.
    from dataclasses import replace

    new = new_token_ids(model, ["placeholders"])
    assert _one_step_new_rows(model, train_batch, new) == []
    model.config = replace(model.config, inject_width_inputs=False)
    assert _one_step_new_rows(model, train_batch, new) == [model.config.token_ids.width_input]


def test_frozen_tower_runs_without_autograd_even_if_flags_say_otherwise(model, train_batch) -> None:
    apply_trainability(model, Trainability(projector=True, tower_grad=False), lr=1e-4)
    model.vision_tower.requires_grad_(True)  # as the fixture's official run did
    model.train()
    training_loss(model, train_batch).loss.backward()
    assert all(p.grad is None for p in model.vision_tower.parameters())
    assert model.projector.fc1.weight.grad is not None


def test_a_trained_tower_gets_gradients(model, train_batch) -> None:
    apply_trainability(model, Trainability(vision_tower=True, projector=True), lr=1e-4)
    assert model.vision_tower_grad is True
    model.train()
    training_loss(model, train_batch).loss.backward()
    grads = [p.grad for n, p in model.vision_tower.named_parameters() if "post_layernorm" not in n]
    assert all(g is not None and bool(g.abs().sum() > 0) for g in grads)


@pytest.mark.parametrize("recipe_path", TINY, ids=[p.stem for p in TINY])
def test_one_step_moves_exactly_the_recipes_parameters(recipe_path: Path, debug_config, train_batch) -> None:
    recipe = load_recipe(recipe_path)
    torch.manual_seed(recipe.seed)
    model = LlavaSTModel(debug_config)
    if recipe.lora.enabled:
        add_lora(model, recipe.lora)
    set_ntp(model, recipe.ntp)
    groups = apply_trainability(
        model,
        recipe.trainable,
        recipe.optim.lr,
        recipe.optim.lr_groups,
        recipe.optim.weight_decay,
        new_token_ids(model, recipe.model.new_tokens),
    )
    trainable = _trainable(model)
    # the recipe's parts, plus LoRA weights, and nothing else
    parts = set(recipe.trainable.parts()) | ({"lora"} if recipe.lora.enabled else set())
    assert {part_of(n) for n in trainable} == parts
    assert all(part_of(n) in parts for n in trainable)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.AdamW(groups, betas=tuple(recipe.optim.betas), eps=recipe.optim.eps)
    model.train()
    out = training_loss(model, train_batch)
    assert torch.isfinite(out.loss) and out.num_tokens > 0
    out.loss.backward()
    optimizer.step()

    moved = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None and bool(p.grad.abs().sum() > 0)}
    frozen = set(before) - trainable
    for name, param in model.named_parameters():
        if name in frozen:
            assert param.grad is None, f"{name} is frozen but got a gradient"
            assert torch.equal(param.detach(), before[name]), f"{name} is frozen but changed"
    assert moved <= trainable
    # every trained tensor that received a gradient moved (LoRA A stays put on the first step: B is 0)
    assert moved == with_grad
    assert set(recipe.trainable.parts()) <= {part_of(n) for n in moved}
    for part in PARTS:
        if part in ("vision_tower", "projector", "lm_head", "llm"):
            assert part not in {part_of(n) for n in moved}, f"{part} moved in a release-style stage"


def test_sincos_tables_are_geometric():
    """``coord_tables_init: sincos``: the dot product of two rows depends on the distance of their
    bins only and peaks at the same bin; the three axes use disjoint thirds of the width."""
    import math

    from llava_st.model import LlavaSTModel
    from llava_st.train.trainability import init_coordinate_tables, sincos_rows
    from llava_st.zoo import tiny

    model = LlavaSTModel(tiny())
    init_coordinate_tables(model, "sincos")
    tables = model.coord_tables
    for t_in, t_out in zip(tables.inputs(), tables.outputs()):
        assert torch.equal(t_in, t_out)
        assert torch.allclose(t_in.norm(dim=1), torch.ones(t_in.shape[0]), atol=1e-5)
        gram = t_in @ t_in.T
        assert torch.equal(gram.argmax(dim=1), torch.arange(t_in.shape[0]))
        # shift invariance, checked against the formula: sum over frequencies of cos(2 pi f (v - v'))
        k = t_in.shape[0]
        pairs = (t_in.shape[1] // 3) // 2
        freqs = torch.logspace(math.log10(0.25), math.log10((k - 1) / 4), pairs, dtype=torch.float64)
        pairs_ij = [(1, 4), (k // 2, k - 1)]
        d = torch.tensor([j - i for i, j in pairs_ij], dtype=torch.float64) / (k - 1)
        expect = (torch.cos(2 * math.pi * freqs[None] * d[:, None]).sum(1) / pairs).float()
        assert torch.allclose(torch.stack([gram[i, j] for i, j in pairs_ij]), expect, atol=1e-5)
    used = [(sincos_rows(100, 128, a).abs().sum(0) > 0) for a in range(3)]
    assert not (used[0] & used[1]).any() and not (used[1] & used[2]).any() and not (used[0] & used[2]).any()


def test_sincos_tower_positions_make_the_patch_place_linearly_readable():
    """``tower_positions_init: sincos``: rows of norm 1, and a least-squares map from a row to its
    patch's (row, column) recovers every patch's place (random rows cannot do that with few dims)."""
    from llava_st.model import LlavaSTModel
    from llava_st.train.trainability import init_tower_positions, sincos_grid_rows
    from llava_st.zoo import tiny

    model = LlavaSTModel(tiny())
    init_tower_positions(model, "sincos")
    table = dict(model.vision_tower.named_parameters())[
        next(n for n, _ in model.vision_tower.named_parameters() if n.endswith("position_embedding.weight"))
    ]
    g = model.config.vision.grid_size
    assert torch.equal(table.detach(), sincos_grid_rows(g, table.shape[1]))
    assert torch.allclose(table.norm(dim=1), torch.ones(g * g), atol=1e-5)
    r, c = torch.meshgrid(torch.arange(g), torch.arange(g), indexing="ij")
    place = torch.stack([r.flatten(), c.flatten()], 1).double()
    x = torch.cat([table.detach().double(), torch.ones(g * g, 1, dtype=torch.float64)], 1)
    fit = x @ (torch.linalg.pinv(x) @ place)
    assert torch.equal(fit.round(), place)
    with pytest.raises(ConfigError):
        init_tower_positions(model, "learned")
