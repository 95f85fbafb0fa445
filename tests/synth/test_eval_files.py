"""ST-Synth's evaluation files go through the evaluation readers, prompts and processor as real benchmarks do."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from llava_st.eval.benchmarks import default_paths, get_benchmark
from llava_st.media import load_image, load_video
from llava_st.processor import LlavaSTProcessor
from llava_st.synth import PRESETS, generate

BENCHES = ("synth-rec", "synth-tvg", "synth-stvg", "synth-svg", "synth-elc")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth-eval") / "set"
    tiny = PRESETS["tiny"]
    generate(replace(tiny, num_videos=6, num_images=6, split=replace(tiny.split, test_fraction=0.5)), out, preview=False)
    return out


@pytest.mark.parametrize("bench", BENCHES)
def test_every_sample_reads_prompts_and_processes(data, bench, tiny_model_dir) -> None:
    annotations, media_root = default_paths(bench, data)
    proc = LlavaSTProcessor.from_pretrained(tiny_model_dir)
    b = get_benchmark(bench, bins=proc.config.coords.bins)  # the model's counts read its answers
    samples = b.load(annotations)
    assert samples, f"{annotations} holds no samples"
    rng = random.Random(0)
    for sample in samples:
        req = b.request(sample, "canonical", rng, media_root, 12)
        path = Path(req.media.path)
        assert path.is_file(), f"{bench}: sample {req.sample_id} names missing media {path}"
        if req.media.kind == "video":
            frames = load_video(path, req.media.num_frames, frame_range=req.media.split).frames
        else:
            frames = load_image(path)
        out = proc(req.prompt, frames)  # placeholders and values line up, visual slots expand
        assert out["input_ids"].shape[1] > 0
        # a well-formed answer in the task's grammar is scored (its value does not matter here)
        scores = b.score_sample(sample, _well_formed_answer(bench, sample), "canonical", 12)
        assert scores, f"{bench}: no per-sample scores"


def _well_formed_answer(bench: str, sample) -> str:
    """Any well-formed answer: scoring must accept it (the value does not matter here)."""
    return {
        "synth-rec": "[0.1, 0.1, 0.5, 0.5]",
        "synth-tvg": "{0.1, 0.5}",
        "synth-stvg": "During the span of {0.1, 0.5}. Object bounding box: <TEMP-010>:[0.1, 0.1, 0.5, 0.5]",
        "synth-svg": "Object bounding box: <TEMP-010>:[0.1, 0.1, 0.5, 0.5]",
        "synth-elc": "Ends in 0.5, a shape moves. Object bounding box: <TEMP-010>:[0.1, 0.1, 0.5, 0.5]",
    }[bench]
