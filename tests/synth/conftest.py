"""Fixtures of the ST-Synth tests: small generated datasets, shared by the test modules.

``tiny_dataset``: the tiny preset with sub-sampled clips (T = 16 of 24 frames),
several samples per task and frequent sub-clips, made by two worker processes.
``luma_dataset``: scenes on a black background whose objects never share a
colour and whose colours have luma values at least 25 apart, so that each
object can be found in the decoded video by its luma alone.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace
from pathlib import Path

import pytest

from llava_st.synth import (
    PRESETS,
    Colour,
    Difficulty,
    ImageSettings,
    SceneSettings,
    SplitSettings,
    SynthConfig,
    TaskSettings,
    VideoSettings,
    generate,
)

_spec = importlib.util.spec_from_file_location("synth_schema", Path(__file__).with_name("_schema.py"))
schema_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(schema_module)

#: Colours at the corners of the RGB cube: BT.601 luma 81, 145, 41, 170, 106, 210, 235; black is 16.
LUMA_PALETTE = (
    Colour("red", (255, 0, 0)),
    Colour("green", (0, 255, 0)),
    Colour("blue", (0, 0, 255)),
    Colour("cyan", (0, 255, 255)),
    Colour("magenta", (255, 0, 255)),
    Colour("yellow", (255, 255, 0)),
    Colour("white", (255, 255, 255)),
)


def tiny_config(seed: int = 11) -> SynthConfig:
    base = PRESETS["tiny"]
    return base.replace(
        seed=seed,
        num_videos=6,
        num_images=6,
        video=replace(base.video, sample_frames=16),
        split=SplitSettings(test_fraction=0.34),
        tasks=TaskSettings(tvg=2, stvg=2, elc=2, svg=2, rec=2, reg=2, subclip_prob=0.5),
    )


def luma_config(seed: int = 3) -> SynthConfig:
    difficulty = Difficulty(
        name="luma-test",
        distractors=(1, 1),
        extra_objects=(1, 1),
        occluder_prob=0.5,
        pan_prob=0.5,
        events=(1, 2),
        backgrounds=("solid",),
    )
    return SynthConfig(
        seed=seed,
        num_videos=6,
        num_images=4,
        video=VideoSettings(width=160, height=120, num_frames=30, fps=6.0, sample_frames=16),
        image=ImageSettings(width=160, height=120),
        scene=SceneSettings(colours=LUMA_PALETTE, unique_colours=True, background_value=(0.0, 0.0)),
        difficulty=difficulty,
        split=SplitSettings(test_fraction=0.34),
    )


@pytest.fixture(scope="session")
def schema():
    return schema_module


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "tiny"
    generate(tiny_config(), out, workers=2, preview=True)
    return out


@pytest.fixture(scope="session")
def luma_dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "luma"
    generate(luma_config(), out, workers=1, preview=False)
    return out


def read_truth(root: Path, kind: str) -> list[dict]:
    """The ground-truth lines of ``videos`` or ``images``."""
    return [json.loads(line) for line in (root / f"ground_truth/{kind}.jsonl").read_text().splitlines()]


@pytest.fixture(scope="session")
def truth():
    return read_truth


class _Configs:
    tiny = staticmethod(tiny_config)
    luma = staticmethod(luma_config)
    luma_palette = LUMA_PALETTE


@pytest.fixture(scope="session")
def configs():
    """The configs the datasets above were made from (``configs.tiny()``, ``configs.luma()``)."""
    return _Configs
