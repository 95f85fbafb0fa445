"""bench/embedded_ablations.py's variants: every one is a valid build of the plan's recipes, the
ones that leave a step out keep stage 0's budget of LLM steps, and each change reaches the stage
where it acts (the model is made in the first stage, so architecture options go there)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llava_st.embedded.reproduce import STAGES, BuildSettings, stage_overrides
from llava_st.train.recipe import load_recipe

SCALE = 0.2


@pytest.fixture(scope="module")
def ablations(load_bench):
    return load_bench("embedded_ablations")


def _recipes(tmp_path: Path, stages, overrides) -> dict:
    settings = BuildSettings(out=tmp_path / "run", scale=SCALE, overrides=list(overrides), stages=stages)
    return {s: load_recipe(settings.recipes / f"{s}.yaml",
                           stage_overrides(settings, s, load_recipe(settings.recipes / f"{s}.yaml")))
            for s in settings.stages}


def test_every_variant_builds_valid_recipes_at_one_budget(ablations, tmp_path):
    table = ablations.variants(SCALE, tmp_path / "ours", BuildSettings(out=tmp_path).recipes)
    ours = _recipes(tmp_path, *table["ours"])
    assert tuple(ours) == ablations.STAGE0 == tuple(s for s in STAGES if s.startswith("stage0"))
    budget = sum(r.schedule.max_steps for s, r in ours.items() if s != "stage0-tower")
    for name, (stages, overrides) in table.items():
        recipes = _recipes(tmp_path, stages, overrides)
        llm_steps = sum(r.schedule.max_steps for s, r in recipes.items() if s != "stage0-tower")
        assert llm_steps == pytest.approx(budget, abs=2), name  # no-stage0 rounds its three shares
        # each step of stage 0 starts from the one run before it, the first from a fresh model
        first, *rest = recipes.values()
        assert first.model.zoo == "tiny" and first.model.path is None, name
        for before, (stage, recipe) in zip(stages, list(recipes.items())[1:]):
            if stage.startswith("stage0"):
                assert recipe.model.path == str((tmp_path / "run" / before / "final").resolve()), name


def test_changes_reach_the_stage_they_act_in(ablations, tmp_path):
    table = ablations.variants(SCALE, tmp_path / "ours", BuildSettings(out=tmp_path).recipes)
    first = lambda name: next(iter(_recipes(tmp_path, *table[name]).values()))  # noqa: E731
    assert first("no-lape").model.use_lape is False
    assert first("no-fast-stream").model.inject_fast_stream is False
    assert first("random-tables").model.coord_tables_init == "keep"
    assert first("ours").model.coord_tables_init == "sincos"
    assert first("media-last").model.media_position == "last"
    tower_less = _recipes(tmp_path, *table["no-tower-step"])
    assert tower_less["stage0-single"].trainable.vision_tower is True
    assert tower_less["stage0-single"].model.coord_tables_init == "sincos"
    assert first("ours").auxiliary.grey > 0
    assert first("no-grey").auxiliary.grey == 0
    no_aux = _recipes(tmp_path, *table["no-aux"])
    assert all(r.auxiliary.pointer == 0 and r.auxiliary.attributes == 0 for s, r in no_aux.items() if s != "stage0-tower")
    assert no_aux["stage0-tower"].auxiliary.attributes > 0  # the tower step has nothing else to learn from
    assert not any(r.ntp for r in _recipes(tmp_path, *table["no-ntp"]).values())
