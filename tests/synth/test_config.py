"""Settings: presets are valid, impossible settings fail early with a message naming the problem."""

from __future__ import annotations

from dataclasses import replace

import pytest

from llava_st.synth import (
    DIFFICULTIES,
    PRESETS,
    Colour,
    ConfigError,
    SceneSettings,
    SplitSettings,
    SynthConfig,
    VideoSettings,
    heldout_pairs,
)
from llava_st.synth.split import num_test, split_of


def test_presets_and_difficulties_build():
    assert set(PRESETS) == {"tiny", "standard", "embedded"}
    assert set(DIFFICULTIES) == {"easy", "normal", "hard", "embedded", "embedded-single"}
    emb = PRESETS["embedded"]
    assert (emb.video.width, emb.video.height, emb.video.num_frames, emb.video.sample_frames) == (96, 96, 48, 16)
    assert DIFFICULTIES["embedded-single"].distractors == (0, 0) and DIFFICULTIES["embedded-single"].extra_objects == (0, 0)
    std = PRESETS["standard"]
    assert (std.video.width, std.video.height, std.video.num_frames, std.video.sample_frames) == (320, 240, 100, 100)
    for d in DIFFICULTIES.values():
        PRESETS["tiny"].replace(difficulty=d)  # every difficulty fits the tiny sizes


def test_config_round_trips_to_plain_data():
    d = PRESETS["tiny"].to_dict()
    assert d["video"]["width"] == 128 and d["scene"]["colours"][0] == {"name": "red", "rgb": [225, 45, 45]}


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: VideoSettings(width=321), "even"),
        (lambda: VideoSettings(height=16), "32..4096"),
        (lambda: VideoSettings(num_frames=4), "num_frames"),
        (lambda: VideoSettings(fps=0), "fps"),
        (lambda: VideoSettings(sample_frames=1), "sample_frames"),
        (lambda: VideoSettings(crf=60), "crf"),
        (lambda: VideoSettings(preset="fastest"), "preset"),
        (lambda: SplitSettings(test_fraction=1.0), "test_fraction"),
        (lambda: SceneSettings(colours=(Colour("red", (1, 2, 3)),)), "two distinct"),
        (lambda: SceneSettings(shapes=("circle", "hexagon")), "shapes"),
        (lambda: PRESETS["tiny"].replace(num_videos=0, num_images=0), "nothing to generate"),
        (lambda: PRESETS["tiny"].replace(num_videos=-1), "num_videos"),
        (lambda: PRESETS["tiny"].replace(seed=-5), "seed"),
    ],
)
def test_bad_values_raise_with_the_field_named(make, words):
    with pytest.raises(ConfigError, match=words):
        make()


def test_frames_too_small_for_the_objects():
    with pytest.raises(ConfigError, match="too small for the smallest objects"):
        PRESETS["tiny"].replace(video=VideoSettings(width=40, height=40, num_frames=24, sample_frames=24))
    with pytest.raises(ConfigError, match="too small"):
        PRESETS["tiny"].replace(difficulty=DIFFICULTIES["hard"], image=replace(PRESETS["tiny"].image, width=64, height=64))


def test_videos_too_short_for_their_events():
    # 8 frames: an event must last 3 frames but the longest events last 0.35 * 8 = 2.8 frames
    with pytest.raises(ConfigError, match="too short"):
        PRESETS["tiny"].replace(video=VideoSettings(width=128, height=96, num_frames=8, sample_frames=8))


def test_unique_colours_needs_enough_colours():
    few = tuple(PRESETS["tiny"].scene.colours[:4])
    with pytest.raises(ConfigError, match="unique_colours"):
        PRESETS["tiny"].replace(scene=SceneSettings(colours=few, unique_colours=True))


def test_heldout_pairs_default_and_checks():
    cfg = PRESETS["standard"]
    held = heldout_pairs(cfg)
    colours = [c.name for c in cfg.scene.colours]
    assert len(held) == len(colours) and {c for c, _ in held} == set(colours)  # one shape per colour
    assert heldout_pairs(cfg.replace(seed=123)) == held  # independent of the seed
    assert ("red", "square") in held and ("orange", "circle") in held
    with pytest.raises(ConfigError, match="not in the scene vocabulary"):
        cfg.replace(split=SplitSettings(heldout_pairs=(("mauve", "circle"),)))
    every_shape_of_red = tuple(("red", s) for s in cfg.scene.shapes)
    with pytest.raises(ConfigError, match="every shape of colour 'red'"):
        cfg.replace(split=SplitSettings(heldout_pairs=every_shape_of_red))


def test_split_assignment_counts():
    assert num_test(10, 0.25) == 2  # round(2.5) = 2
    assert [split_of(i, 10, 0.25) for i in range(10)] == ["train"] * 8 + ["test"] * 2
    assert num_test(3, 0.1) == 1  # a positive fraction keeps at least one test item
    assert num_test(1, 0.5) == 0 and num_test(10, 0.0) == 0


def test_synth_config_is_frozen():
    with pytest.raises(Exception):
        PRESETS["tiny"].seed = 3  # type: ignore[misc]
    assert isinstance(PRESETS["tiny"].replace(seed=3), SynthConfig)
