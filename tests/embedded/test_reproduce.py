"""``llava-st build-tiny`` end to end at toy size: every step runs once, a second run skips them all,
and the model it writes answers through the public API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("accelerate")
pytest.importorskip("peft")

from llava_st.embedded.reproduce import ALL_STAGES, MIXES, BuildSettings, build, stage_overrides  # noqa: E402
from llava_st.errors import ConfigError  # noqa: E402
from llava_st.train.recipe import load_recipe  # noqa: E402


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("build-tiny") / "run"
    # every stage, the optional tower step included
    settings = BuildSettings(out=out, videos=6, images=6, scale=0.001, workers=1, evaluate=False,
                             overrides=["batch.per_device=2", "batch.num_workers=0"], stages=ALL_STAGES)
    lines: list[str] = []
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = build(settings, echo=lines.append)
    finally:
        torch.set_num_threads(before)
    return settings, model, lines


def test_every_step_runs_and_a_second_run_skips_them(built):
    settings, model, lines = built
    names = ["data", "data-single", "eval-data", "tokenizer", *ALL_STAGES, "model"]
    for name in names:
        info = json.loads((settings.out / "done" / f"{name}.json").read_text())
        assert info["seconds"] >= 0
    for stage in ALL_STAGES:
        planned = load_recipe(settings.recipes / f"{stage}.yaml").schedule.max_steps
        steps = json.loads((settings.out / "done" / f"{stage}.json").read_text())["steps"]
        assert steps == max(1, round(planned * settings.scale))
    again: list[str] = []
    build(settings, echo=again.append)
    assert all(f"[{n}] done earlier" in again for n in names)


def test_mixes_point_at_the_run_folder(built):
    settings, _, _ = built
    import yaml

    for stage, files in MIXES.items():
        data = yaml.safe_load((settings.out / "mixes" / f"{stage}.yaml").read_text())["datasets"]
        assert len(data) == sum(times for _, _, times in files)
        assert all(Path(d["json_path"]).is_file() and str(settings.out.resolve()) in d["json_path"] for d in data)


def test_stage_overrides_redirect_paths_and_scale_steps(tmp_path):
    settings = BuildSettings(out=tmp_path, scale=0.5)
    base = load_recipe(settings.recipes / "stage3.yaml")
    recipe = load_recipe(settings.recipes / "stage3.yaml", stage_overrides(settings, "stage3", base))
    assert recipe.model.path == str(tmp_path.resolve() / "stage1" / "final")
    assert recipe.model.merge_adapters == [str(tmp_path.resolve() / "stage2" / "final" / "adapter")]
    assert recipe.output.dir == str(tmp_path.resolve() / "stage3")
    assert recipe.schedule.max_steps == round(base.schedule.max_steps * 0.5)
    only = BuildSettings(out=tmp_path, overrides=["stage0-single:model.coord_tables_init=normal", "ntp=false"])
    first = load_recipe(only.recipes / "stage0-single.yaml",
                        stage_overrides(only, "stage0-single", load_recipe(only.recipes / "stage0-single.yaml")))
    later = load_recipe(only.recipes / "stage1.yaml", stage_overrides(only, "stage1", load_recipe(only.recipes / "stage1.yaml")))
    assert first.model.coord_tables_init == "normal" and later.model.coord_tables_init == "keep"
    assert not first.ntp and not later.ntp
    with pytest.raises(ConfigError, match="names no stage"):
        stage_overrides(BuildSettings(out=tmp_path, overrides=["stage9:ntp=false"]), "stage1", base)


def test_the_tower_step_runs_first_and_the_one_object_step_starts_from_it(built, tmp_path):
    settings, _, _ = built
    tower = json.loads((settings.out / "stage0-tower" / "metrics.jsonl").read_text().splitlines()[0])
    assert "lm" not in tower["loss_parts"] and "aux_attributes" in tower["loss_parts"]  # the LLM did not run
    single = load_recipe(settings.out / "stage0-single" / "recipe.yaml")
    assert single.model.zoo is None and single.model.path == str(settings.out.resolve() / "stage0-tower" / "final")
    # asked for in any order, the stages run in plan order; the default plan leaves the tower step out
    assert BuildSettings(out=tmp_path, stages=("stage0", "stage0-tower")).stages == ("stage0-tower", "stage0")
    assert "stage0-tower" not in BuildSettings(out=tmp_path).stages
    plain = BuildSettings(out=tmp_path)
    base = load_recipe(plain.recipes / "stage0-single.yaml")
    assert load_recipe(plain.recipes / "stage0-single.yaml", stage_overrides(plain, "stage0-single", base)).model.zoo == "tiny"
    with pytest.raises(ConfigError, match="unknown stages"):
        BuildSettings(out=tmp_path, stages=("stage9",))


def test_the_built_model_answers(built, tmp_path):
    from PIL import Image

    from llava_st import LlavaST

    _, model, _ = built
    st = LlavaST.from_pretrained(model)
    assert st.config.num_frames == 16 and st.config.vision.image_size == 96
    assert not any("auxiliary" in n for n, _ in st.model.named_parameters())
    img = tmp_path / "x.png"
    Image.new("RGB", (96, 96), (40, 40, 40)).save(img)
    answer = st.ask(img, "Where is the red circle?", max_new_tokens=6)
    assert isinstance(answer.text, str)


def test_ship_installs_the_model_with_its_heldout_summary(built, tmp_path):
    import shutil

    from llava_st import LlavaST
    from llava_st.embedded.reproduce import ship

    settings, model, _ = built
    out = tmp_path / "run"
    shutil.copytree(settings.out / "model", out / "model")
    shutil.copytree(settings.out / "done", out / "done")
    with pytest.raises(ConfigError, match="held-out evaluation"):
        ship(out, tmp_path / "pkg" / "model")
    headline = {"synth-rec": ["Acc@0.5", {"model": 1.0, "constant": 0.5, "target": 80.0}]}
    (out / "eval").mkdir()
    (out / "eval" / "summary.json").write_text(json.dumps({"headline": headline}))
    target = ship(out, tmp_path / "pkg" / "model")
    record = json.loads((target / "EVAL.json").read_text())
    assert record["heldout"] == headline and record["seconds"]["stage0"] >= 0
    assert not (target / "training.json").exists()  # only what the loaders read, plus EVAL.json
    assert LlavaST.from_pretrained(target).config.num_frames == 16
    with pytest.raises(ConfigError, match="not a model folder"):
        ship(tmp_path / "nothing", tmp_path / "pkg2")
