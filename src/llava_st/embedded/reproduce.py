"""The embedded model from nothing: data, tokenizer, the training stages and the held-out evaluation.

``llava-st build-tiny --out runs/embedded`` runs these steps in order; each one
writes a marker when it is complete, so running the same command again skips
what is done and continues a stage from its last checkpoint (a long run may
be done in several parts):

1. ``data``: ST-Synth, preset ``embedded``, seed :data:`TRAIN_SEED` (training
   split only is trained on; its held-out split is the first evaluation set);
2. ``data-single``: the same preset with difficulty ``embedded-single`` (one
   object per scene), seed :data:`SINGLE_SEED`, for the first curriculum step;
3. ``data-images``: many more many-object images of the same preset (no videos), seed
   :data:`IMAGES_SEED`, all in the training split, for the REC steps: on the training set's
   7200 images, seen 13 times each by the REC step, the model reached Acc@0.5 78% on those
   images but 51% on fresh ones (it learnt the images more than the choosing);
4. ``eval-data``: the preset with seed :data:`EVAL_SEED`, whose test split
   (:data:`EVAL_TEST_FRACTION` of its items, built around held-out colour/shape
   pairs, from a seed never trained on) is the reported evaluation;
5. ``tokenizer``: byte-level BPE on the training text (``llava-st tokenizer``);
6. the training mixes (``mixes/*.yaml``);
7. the stages of ``recipes/embedded``, each starting from the previous one's model: stage 0
   (ours) in five steps, ``stage0-tower`` (the tower and projector alone on their per-patch
   targets, no LLM, half of the images in grey), ``stage0-single`` (one-object images, tower frozen), ``stage0-rec``
   (REC on every image scene), ``stage0-video`` (TVG, STVG and SVG, with a quarter of REC) and
   ``stage0`` (every task, dense auxiliary supervision), then
   the release's stages 1, 2 and 3 (LoRA merged between them as the release does). A plan
   that leaves a stage out starts the next one from the last stage it ran (the first stage
   of such a plan needs ``model.*`` overrides: it has nothing to start from);
8. ``model``: stage 3's final folder with stage 3's adapter merged, copied to
   ``<out>/model``;
9. ``eval``: ``llava-st eval`` of ``<out>/model`` on the evaluation set's
   REC, TVG, STVG and SVG files (canonical mode), report in ``<out>/eval``;
10. ``baselines``: the best constant answers (chosen on the training split,
   :mod:`llava_st.embedded.baselines`) scored the same way; ``<out>/eval/summary.json``
   puts each headline metric of the model beside the constant's and the target.

Every random choice is seeded (ST-Synth's seeds, each recipe's ``seed``), so
the command reproduces the model on the same machine type; ``scale`` multiplies
every stage's step count (for ablations at a smaller budget and for tests).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import ConfigError

TRAIN_SEED = 0
SINGLE_SEED = 1
IMAGES_SEED = 2
EVAL_SEED = 1000
#: Share of the evaluation set's items in its held-out split (the ones scored).
EVAL_TEST_FRACTION = 0.8
#: The plan, in order; a build runs all of them or the ones it names (in this order).
STAGES = ("stage0-tower", "stage0-single", "stage0-rec", "stage0-video", "stage0", "stage1", "stage2", "stage3")
#: The benchmarks the embedded model is evaluated on (ST-Synth's test files, canonical mode).
EVAL_BENCHMARKS = ("synth-rec", "synth-tvg", "synth-stvg", "synth-svg")
RECIPES = Path(__file__).resolve().parents[3] / "recipes" / "embedded"


@dataclass
class BuildSettings:
    """What :func:`build` makes and how big.

    ``videos``/``images``: items of the training set (``data``); the one-object
    set and the evaluation set get ``single_fraction`` and ``eval_fraction`` of
    them, the REC image set (``data-images``) ``rec_image_factor`` times the images. ``scale``: multiplies every stage's ``max_steps`` (at least 1 step).
    ``overrides``: extra ``key=value`` recipe overrides given to every stage
    (e.g. ``batch.num_workers=0``), or ``stage:key=value`` to one stage only (e.g.
    ``stage0-single:model.coord_tables_init=normal``). ``recipes``: the folder of the stage recipes.
    ``evaluate``: run the last step (the held-out evaluation).
    """

    out: Path
    videos: int = 4000
    images: int = 8000
    single_fraction: float = 0.25
    eval_fraction: float = 0.15
    rec_image_factor: float = 7.5
    scale: float = 1.0
    workers: int = 2
    overrides: list[str] = field(default_factory=list)
    recipes: Path = RECIPES
    stages: tuple[str, ...] = STAGES
    evaluate: bool = True

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.recipes = Path(self.recipes)
        if self.scale <= 0:
            raise ConfigError(f"scale must be > 0, got {self.scale}")
        unknown = [s for s in self.stages if s not in STAGES]
        if unknown:
            raise ConfigError(f"unknown stages {unknown}; the stages are {list(STAGES)}")
        if not self.stages:
            raise ConfigError("stages: name at least one stage")
        self.stages = tuple(s for s in STAGES if s in self.stages)


def _done(marker: Path) -> bool:
    return marker.is_file()


def _mark(marker: Path, info: dict) -> None:
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(info, indent=1, default=str) + "\n")


def _synth(out: Path, seed: int, videos: int, images: int, difficulty: str | None, workers: int,
           test_fraction: float | None = None) -> None:
    from dataclasses import replace

    from ..synth import generate
    from ..synth.config import difficulty as named_difficulty
    from ..synth.config import preset

    config = preset("embedded").replace(seed=seed, num_videos=videos, num_images=images)
    if test_fraction is not None:
        config = config.replace(split=replace(config.split, test_fraction=test_fraction))
    if difficulty is not None:
        config = config.replace(difficulty=named_difficulty(difficulty))
    generate(config, out, workers=workers, overwrite=True, preview=True)


@dataclass(frozen=True)
class Part:
    """One training file of a stage's mix: ``<data>/train/<task>.json``, listed ``times`` times
    (a file listed twice is drawn twice as often), sampled by ``strategy`` (a
    ``sampling_strategy`` of :mod:`llava_st.data.mix`)."""

    data: str
    task: str
    times: int = 1
    strategy: str = "all"

    @property
    def name(self) -> str:
        return f"{self.data}/{self.task}"


def _parts(data: str, tasks: tuple[str, ...] | str, times: int = 1, **kw) -> list[Part]:
    return [Part(data, t, times, **kw) for t in ((tasks,) if isinstance(tasks, str) else tasks)]


GROUNDING = ("tvg", "stvg", "svg")
#: Per stage, the parts of its training mix: the evaluated grounding tasks are weighted up in stage 0.
MIXES: dict[str, list[Part]] = {
    # the many-object images of the training set (their per-patch targets are the whole scene's)
    "stage0-tower": _parts("data", "rec"),
    # one-object images: locating before choosing
    "stage0-single": _parts("data-single", "rec", 2) + _parts("data-single", ("reg", "dgc", "image_caption")),
    # choosing the named object among several: REC alone, on images (cheap steps, many of them)
    "stage0-rec": _parts("data-images", "rec"),
    # grounding in videos: TVG, STVG and SVG, each clip once an epoch, and REC on 3600 images
    # (6% of the REC image set: a quarter of the mix) so that the choosing is kept in use
    "stage0-video": _parts("data-images", "rec", strategy="first:6%") + _parts("data", GROUNDING),
    # REC keeps the share of the mix it had on the training set (its 7200 images listed twice):
    # 24% of the REC image set, 14400 different images
    "stage0": _parts("data-images", "rec", strategy="first:24%") + _parts("data", GROUNDING, 2)
    + _parts("data", ("elc", "dvc", "tr", "reg", "dgc", "video_caption", "image_caption")),
    "stage1": _parts("data", ("video_caption", "image_caption")),
    "stage2": _parts("data", ("tvg", "dvc", "tr", "rec", "dgc", "reg")),
    "stage3": _parts("data", ("tvg", "dvc", "tr", "rec", "dgc", "reg", "stvg", "svg", "elc", "video_caption",
                              "image_caption")),
}


def write_mixes(out: Path) -> dict[str, Path]:
    """The training mix YAML of every stage under ``<out>/mixes`` (absolute paths)."""
    import yaml

    folder = out / "mixes"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for stage, parts in MIXES.items():
        datasets = []
        for part in parts:
            for k in range(part.times):
                datasets.append({
                    "json_path": str((out / part.data / "train" / f"{part.task}.json").resolve()),
                    "data_folder": str((out / part.data).resolve()),
                    "source": part.name + (f"#{k + 1}" if part.times > 1 else ""),
                    "sampling_strategy": part.strategy,
                })
        path = folder / f"{stage}.yaml"
        path.write_text(yaml.safe_dump({"datasets": datasets}, sort_keys=False))
        paths[stage] = path
    return paths


#: The run folder the recipes of ``recipes/embedded`` name; build-tiny moves their paths into its own.
RECIPE_ROOT = Path("runs/embedded")


def _in_run(path: str, out: Path) -> str:
    try:
        return str(out / Path(path).relative_to(RECIPE_ROOT))
    except ValueError:
        raise ConfigError(f"recipe path {path!r} is not under {RECIPE_ROOT}/, where build-tiny expects a stage's inputs")


def stage_overrides(settings: BuildSettings, stage: str, recipe) -> list[str]:
    """Paths of a stage's recipe pointed into ``settings.out``, its steps scaled."""
    out = settings.out.resolve()
    items = {
        "data.mix": str(out / "mixes" / f"{stage}.yaml"),
        "output.dir": str(out / stage),
        "schedule.max_steps": max(1, round(recipe.schedule.max_steps * settings.scale)),
    }
    if recipe.model.path:
        # stageN's "runs/embedded/<stage>/final" and adapters, relative to the recipes' default root
        items["model.path"] = _in_run(recipe.model.path, out)
        start = Path(recipe.model.path).relative_to(RECIPE_ROOT).parts[0]
        if start in STAGES and start not in settings.stages:
            # the stage this one starts from is not in the plan: start from the last one run before
            earlier = [s for s in settings.stages if STAGES.index(s) < STAGES.index(stage)]
            if earlier:
                items["model.path"] = str(out / earlier[-1] / "final")
    if recipe.model.tokenizer:
        items["model.tokenizer"] = str(out / "tokenizer")
    if recipe.eval.data_root:
        items["eval.data_root"] = _in_run(recipe.eval.data_root, out)
    overrides = [f"{k}={v}" for k, v in items.items()]
    if recipe.model.merge_adapters:
        adapters = [_in_run(a, out) for a in recipe.model.merge_adapters]
        overrides.append("model.merge_adapters=[" + ",".join(adapters) + "]")
    mine = []
    for o in settings.overrides:
        head, sep, rest = o.partition(":")
        if sep and "=" not in head:  # "<stage>:key=value" applies to that stage only
            if head not in STAGES:
                raise ConfigError(f"override {o!r} names no stage; the stages are {list(STAGES)}")
            if head == stage:
                mine.append(rest)
        else:
            mine.append(o)
    return overrides + mine


def build(settings: BuildSettings, echo: Callable[[str], None] = print) -> Path:
    """Run every step not yet done (see the module docstring); returns ``<out>/model``."""
    from ..train.loop import train
    from ..train.recipe import load_recipe

    out = settings.out
    out.mkdir(parents=True, exist_ok=True)
    marks = out / "done"
    total = time.perf_counter()

    def step(name: str, fn: Callable[[], dict | None]) -> None:
        marker = marks / f"{name}.json"
        if _done(marker):
            echo(f"[{name}] done earlier")
            return
        echo(f"[{name}] ...")
        t0 = time.perf_counter()
        info = fn() or {}
        _mark(marker, {"seconds": round(time.perf_counter() - t0, 1), **info})
        echo(f"[{name}] done in {time.perf_counter() - t0:.0f} s")

    n_single = max(1, round(settings.videos * settings.single_fraction)), max(1, round(settings.images * settings.single_fraction))
    n_eval = max(4, round(settings.videos * settings.eval_fraction)), max(4, round(settings.images * settings.eval_fraction))
    step("data", lambda: _synth(out / "data", TRAIN_SEED, settings.videos, settings.images, None, settings.workers))
    step("data-single", lambda: _synth(out / "data-single", SINGLE_SEED, *n_single, "embedded-single", settings.workers))
    n_rec = max(4, round(settings.images * settings.rec_image_factor))
    step("data-images", lambda: _synth(out / "data-images", IMAGES_SEED, 0, n_rec, None, settings.workers, 0.0))
    # the evaluation set: most of it held out (its own seed; held-out colour/shape pairs)
    step("eval-data", lambda: _synth(out / "eval-data", EVAL_SEED, *n_eval, None, settings.workers, EVAL_TEST_FRACTION))

    def tokenizer() -> dict:
        from ..config import CoordConfig
        from ..zoo import tiny
        from .tokenizer import train_tokenizer_on_folder

        coords: CoordConfig = tiny().coords
        tok = train_tokenizer_on_folder(out / "data", coords.bins)
        tok.save_pretrained(str(out / "tokenizer"))
        return {"tokens": len(tok)}

    step("tokenizer", tokenizer)
    write_mixes(out)
    for stage in settings.stages:
        def run_stage(stage=stage) -> dict:
            base = load_recipe(settings.recipes / f"{stage}.yaml")
            recipe = load_recipe(settings.recipes / f"{stage}.yaml", stage_overrides(settings, stage, base))
            result = train(recipe, resume=(out / stage).is_dir(), echo=echo)
            return {"steps": result.steps, "loss_first": result.loss_first, "loss_last": result.loss_last,
                    "wall_s": result.wall_s}

        step(stage, run_stage)

    def final() -> dict:
        last = settings.stages[-1]
        folder = out / last / "final"
        target = out / "model"
        if target.exists():
            shutil.rmtree(target)
        # a LoRA stage's final folder holds the merged model; its adapter (kept beside it) is not needed
        shutil.copytree(folder, target, ignore=shutil.ignore_patterns("adapter"))
        return {"from": str(folder)}

    step("model", final)
    if not settings.evaluate:
        return out / "model"
    step("eval", lambda: {"reports": {k: v.get("metrics", v) for k, v in
                                      evaluate(out / "model", out / "eval-data", out / "eval").items()}})
    step("baselines", lambda: {"reports": {k: v.get("metrics", v) for k, v in
                                           evaluate_constants(out / "data", out / "eval-data", out / "eval").items()}})
    summary = write_summary(out)
    echo("held-out evaluation (model / best constant answer): " + ", ".join(
        f"{b} {m} {v['model']:.1f} / {v['constant']:.1f}" for b, (m, v) in summary["headline"].items()))
    echo(f"model: {out / 'model'} ({time.perf_counter() - total:.0f} s this run)")
    return out / "model"


#: Files of a model folder that the package ships (the loaders read nothing else).
SHIPPED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "llava_st_processor.json", "special_tokens_map.json")
#: The most the shipped folder may weigh (weights, tokenizer and config).
SHIPPED_MAX_BYTES = 25 * 2**20


def ship(out: Path, target: Path | None = None) -> Path:
    """Install ``<out>/model`` as the package's ``tiny`` model (``target``, default the folder
    :data:`llava_st.zoo.WEIGHTS` names), with ``EVAL.json``: the held-out summary it was
    built with and the build's step times. Refuses a model without its held-out evaluation,
    or one heavier than :data:`SHIPPED_MAX_BYTES`."""
    from ..zoo import WEIGHTS

    model, summary = out / "model", out / "eval" / "summary.json"
    if not (model / "config.json").is_file():
        raise ConfigError(f"{model} is not a model folder; run llava-st build-tiny --out {out} first")
    if not summary.is_file():
        raise ConfigError(f"{summary} is missing: a model is shipped with its held-out evaluation (run without --no-eval)")
    files = [model / name for name in SHIPPED_FILES if (model / name).is_file()]
    size = sum(f.stat().st_size for f in files)
    if size > SHIPPED_MAX_BYTES:
        raise ConfigError(f"{model} weighs {size / 2**20:.1f} MB; the package ships at most {SHIPPED_MAX_BYTES / 2**20:.0f} MB")
    target = Path(target) if target is not None else WEIGHTS["tiny"]()
    tmp = target.with_name(target.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for f in files:
        shutil.copyfile(f, tmp / f.name)  # plain 0644-style files, whatever the run folder's modes
    steps = {m.stem: json.loads(m.read_text()) for m in sorted((out / "done").glob("*.json"))}
    record = {"built_by": f"llava-st build-tiny --out {out}",
              "heldout": json.loads(summary.read_text())["headline"],
              "seconds": {name: info.get("seconds") for name, info in steps.items()}}
    (tmp / "EVAL.json").write_text(json.dumps(record, indent=1) + "\n")
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
    return target


#: Each benchmark's headline metric, and the target the embedded model is held to (percent).
HEADLINE = {"synth-rec": ("Acc@0.5", 80.0), "synth-tvg": ("R@0.5", 70.0), "synth-stvg": ("m_vIoU", 40.0),
            "synth-svg": ("m_sIoU", 45.0)}


def held_out_losses(model, processor, data: Path, limit: int | None = None) -> dict:
    """Per benchmark of :data:`EVAL_BENCHMARKS`, the held-out answer loss
    (:func:`llava_st.train.validation.answer_loss`) of ``model`` on the training-format file of
    its task in the ST-Synth folder ``data`` (``test/<task>.json``, the samples the benchmark
    scores), the first ``limit`` samples of it (default all)."""
    from ..train.validation import answer_loss

    return {bench: answer_loss(model, processor, data / "test" / f"{bench.removeprefix('synth-')}.json", data,
                               limit=limit)
            for bench in EVAL_BENCHMARKS}


def evaluate_constants(train: Path, data: Path, out: Path) -> dict:
    """The best constant answers (:mod:`llava_st.embedded.baselines`) fitted on ``train`` and scored
    like the model on ``data``; reports in ``<out>/constant-<bench>``."""
    from ..zoo import tiny
    from .baselines import fit_constants

    config = tiny()
    constants = fit_constants(train, config.num_frames)
    out.mkdir(parents=True, exist_ok=True)
    constants.save(out / "constants.json")
    reports = {}
    for bench in EVAL_BENCHMARKS:
        folder = out / f"constant-{bench}"
        if folder.exists():
            shutil.rmtree(folder)
        args = ["eval", "--predictor", "llava_st.embedded.baselines:load",
                "--predictor-arg", f"constants={out / 'constants.json'}", "--predictor-arg", f"task={bench.split('-')[1]}",
                "--predictor-arg", f"time_bins={config.coords.bins.time}",
                "--predictor-arg", f"space_bins={config.coords.bins.space}",
                "--predictor-arg", f"num_frames={config.num_frames}",
                "--bench", bench, "--data-root", str(data), "--out", str(folder), "--no-progress",
                "--num-frames", str(config.num_frames), "--num-bins", f"{config.coords.bins.time},{config.coords.bins.space}"]
        reports[bench] = _eval(args, folder)
    return reports


def write_summary(out: Path) -> dict:
    """``<out>/eval/summary.json``: per benchmark, the headline metric of the model and of the
    best constant answer, and the target."""
    summary: dict = {"headline": {}}
    for bench, (metric, target) in HEADLINE.items():
        model = json.loads((out / "eval" / bench / "report.json").read_text())["metrics"][metric]
        const = json.loads((out / "eval" / f"constant-{bench}" / "report.json").read_text())["metrics"][metric]
        summary["headline"][bench] = (metric, {"model": model, "constant": const, "target": target})
    (out / "eval" / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def evaluate(model: Path, data: Path, out: Path, limit: int | None = None, batch_size: int = 16) -> dict:
    """``llava-st eval`` of ``model`` on the ST-Synth folder ``data`` (REC, TVG, STVG, SVG; canonical
    mode); returns each benchmark's report (``<out>/<bench>/report.json``)."""
    reports = {}
    for bench in EVAL_BENCHMARKS:
        args = ["eval", "--model", str(model), "--bench", bench, "--data-root", str(data), "--out", str(out / bench),
                "--batch-size", str(batch_size), "--no-progress"]
        if limit:
            args += ["--limit", str(limit)]
        if (out / bench).is_dir():
            args.append("--resume")
        reports[bench] = _eval(args, out / bench)
    return reports


def _eval(args: list[str], folder: Path) -> dict:
    """Run ``llava-st ARGS`` (an eval writing to ``folder``) in this process; its report."""
    from ..cli import main

    code = main(args)
    if code:
        raise ConfigError(f"llava-st {' '.join(args)} failed with exit code {code}")
    return json.loads((folder / "report.json").read_text())
