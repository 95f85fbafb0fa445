"""``llava-st build-tiny`` end to end at toy size: every step runs once, a second run skips them all,
and the model it writes answers through the public API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("accelerate")
pytest.importorskip("peft")

from llava_st.embedded.reproduce import MIXES, STAGES, BuildSettings, build, stage_overrides  # noqa: E402
from llava_st.errors import ConfigError  # noqa: E402
from llava_st.train.recipe import load_recipe  # noqa: E402


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("build-tiny") / "run"
    settings = BuildSettings(out=out, videos=6, images=6, scale=0.001, workers=1, evaluate=False,
                             overrides=["batch.per_device=2", "batch.num_workers=0"])
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
    names = ["data", "data-single", "data-images", "eval-data", "tokenizer", *STAGES, "model"]
    for name in names:
        info = json.loads((settings.out / "done" / f"{name}.json").read_text())
        assert info["seconds"] >= 0
    for stage in STAGES:
        planned = load_recipe(settings.recipes / f"{stage}.yaml").schedule.max_steps
        steps = json.loads((settings.out / "done" / f"{stage}.json").read_text())["steps"]
        assert steps == max(1, round(planned * settings.scale))
    again: list[str] = []
    build(settings, echo=again.append)
    assert all(f"[{n}] done earlier" in again for n in names)


def test_mixes_point_at_the_run_folder(built):
    settings, _, _ = built
    import yaml

    for stage, parts in MIXES.items():
        data = yaml.safe_load((settings.out / "mixes" / f"{stage}.yaml").read_text())["datasets"]
        assert len(data) == sum(part.times for part in parts)
        assert all(Path(d["json_path"]).is_file() and str(settings.out.resolve()) in d["json_path"] for d in data)


def test_the_rec_image_set_is_images_only_training_and_without_held_out_pairs(built):
    """data-images: rec_image_factor times the training set's images, no videos, no test split,
    and (like every training split) no object of a held-out colour-shape pair."""
    settings, _, _ = built
    folder = settings.out / "data-images"
    manifest = json.loads((folder / "manifest.json").read_text())
    held = {tuple(p) for p in manifest["heldout_pairs"]}
    assert json.loads((folder / "test" / "rec.json").read_text()) == []
    assert json.loads((folder / "train" / "tvg.json").read_text()) == []
    rec = json.loads((folder / "train" / "rec.json").read_text())
    assert len({item["image"] for item in rec}) == round(settings.images * settings.rec_image_factor)
    scenes = [json.loads(line) for line in (folder / "ground_truth" / "images.jsonl").read_text().splitlines() if line]
    assert scenes and all((o["colour"], o["shape"]) not in held for s in scenes for o in s["objects"])


def test_stage_overrides_redirect_paths_and_scale_steps(tmp_path):
    settings = BuildSettings(out=tmp_path, scale=0.5)
    base = load_recipe(settings.recipes / "stage3.yaml")
    recipe = load_recipe(settings.recipes / "stage3.yaml", stage_overrides(settings, "stage3", base))
    assert recipe.model.path == str(tmp_path.resolve() / "stage1" / "final")
    assert recipe.model.merge_adapters == [str(tmp_path.resolve() / "stage2" / "final" / "adapter")]
    assert recipe.output.dir == str(tmp_path.resolve() / "stage3")
    assert recipe.schedule.max_steps == round(base.schedule.max_steps * 0.5)
    only = BuildSettings(out=tmp_path, overrides=["stage0-tower:model.coord_tables_init=normal", "ntp=false"])
    first = load_recipe(only.recipes / "stage0-tower.yaml",
                        stage_overrides(only, "stage0-tower", load_recipe(only.recipes / "stage0-tower.yaml")))
    later = load_recipe(only.recipes / "stage1.yaml", stage_overrides(only, "stage1", load_recipe(only.recipes / "stage1.yaml")))
    assert first.model.coord_tables_init == "normal" and later.model.coord_tables_init == "keep"
    assert not first.ntp and not later.ntp
    with pytest.raises(ConfigError, match="names no stage"):
        stage_overrides(BuildSettings(out=tmp_path, overrides=["stage9:ntp=false"]), "stage1", base)


def test_each_stage_starts_from_the_one_before(built, tmp_path):
    settings, _, _ = built
    tower = json.loads((settings.out / "stage0-tower" / "metrics.jsonl").read_text().splitlines()[0])
    assert "lm" not in tower["loss_parts"] and "aux_attributes" in tower["loss_parts"]  # the LLM did not run
    run = settings.out.resolve()
    for stage, start in (("stage0-single", "stage0-tower"), ("stage0-rec", "stage0-single"), ("stage0-video", "stage0-rec"),
                         ("stage0", "stage0-video"),
                         ("stage1", "stage0")):
        recipe = load_recipe(settings.out / stage / "recipe.yaml")
        assert recipe.model.zoo is None and recipe.model.path == str(run / start / "final")
    # asked for in any order, the stages run in plan order
    assert BuildSettings(out=tmp_path, stages=("stage0", "stage0-tower")).stages == ("stage0-tower", "stage0")
    # a stage left out: the next one starts from the last one run before it
    skip = BuildSettings(out=tmp_path, stages=("stage0-tower", "stage0-single", "stage0"))
    base = load_recipe(skip.recipes / "stage0.yaml")
    recipe = load_recipe(skip.recipes / "stage0.yaml", stage_overrides(skip, "stage0", base))
    assert recipe.model.path == str(tmp_path.resolve() / "stage0-single" / "final")
    with pytest.raises(ConfigError, match="unknown stages"):
        BuildSettings(out=tmp_path, stages=("stage9",))
    with pytest.raises(ConfigError, match="at least one stage"):
        BuildSettings(out=tmp_path, stages=())


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
