"""REG, TR, DVC and DGC samples read from ST-Synth's held-out training-format files (and any file of that format)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from llava_st.data.formats import read_release_sft
from llava_st.eval.benchmarks import default_paths, get_benchmark
from llava_st.eval.release_format import read_question_answers
from llava_st.eval.runner import prompt_rng
from llava_st.protocol.coords import convert_conversation
from llava_st.protocol.tokens import RELEASE_BINS
from llava_st.synth import PRESETS, generate

TASKS = ("reg", "tr", "dvc", "dgc")


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    out = tmp_path_factory.mktemp("st-synth-rf") / "data"
    tiny = PRESETS["tiny"]
    generate(replace(tiny, num_videos=5, num_images=4, split=replace(tiny.split, test_fraction=0.6)), out, workers=1, preview=False)
    return out


@pytest.mark.parametrize("task", TASKS)
def test_questions_and_answers_are_the_training_text(synth_root, task):
    path = synth_root / "test" / f"{task}.json"
    raw = read_release_sft(path)
    qas = read_question_answers(path, task)
    assert len(qas) == len(raw) > 0
    for qa, s in zip(qas, raw):
        # the question and the markup answer convert back to exactly the file's sample
        turns, values = convert_conversation([{"from": "human", "value": qa.question}, {"from": "gpt", "value": qa.answer}])
        assert [t["value"] for t in turns] == [t.text for t in s.conversations]
        assert values.to_dict() == s.variables.to_dict()
        assert "<TEMP-OUTPUT" not in qa.answer and "<WIDTH-OUTPUT" not in qa.answer
        assert (qa.media, qa.split) == (s.media, s.split)


@pytest.mark.parametrize("task", TASKS)
def test_synth_benchmarks_read_the_test_split(synth_root, task):
    name = f"synth-{task}"
    data, media = default_paths(name, synth_root)
    bench = get_benchmark(name, bins=RELEASE_BINS)
    samples = bench.load(data)
    raw = read_release_sft(data)
    req = bench.request(samples[0], "canonical", prompt_rng(0, name, 0, "canonical"), media, 12)
    assert req.media.path == str(synth_root / raw[0].media)
    assert req.media.kind == ("video" if task in ("tr", "dvc") else "image")
    if task in ("tr", "dvc"):
        assert req.media.split == raw[0].split and req.media.num_frames == 12
    if task == "dvc":
        first = samples[0]
        assert first.duration == 1.0 and len(first.spans) == len(first.captions) >= 1
        assert all(0 <= s < e <= 1 for s, e in first.spans)
    if task == "dgc":
        assert all(len(s.boxes) == len(s.phrases) >= 1 for s in samples)


def test_evaluation_samples_must_be_one_question(tmp_path):
    item = {"image": "a.png", "conversations": [{"from": "human", "value": "<image>\nWhat is in [0.1, 0.1, 0.5, 0.5]?"},
                                                  {"from": "gpt", "value": "A cat."}]}
    two = dict(item, conversations=item["conversations"] + [{"from": "human", "value": "And then?"}, {"from": "gpt", "value": "Nothing."}])
    path = tmp_path / "reg.json"
    path.write_text(json.dumps([item, two]))
    with pytest.raises(ValueError, match="sample 1.*one question and its answer, got 4 turns"):
        read_question_answers(path, "reg")
    path.write_text(json.dumps([item]))
    with pytest.raises(ValueError, match="a tr sample is about one video, got image"):
        read_question_answers(path, "tr")
    qa = read_question_answers(path, "reg")[0]
    assert qa.question == "<image>\nWhat is in  [<WIDTH-INPUT0.1><HEIGHT-INPUT0.1><WIDTH-INPUT0.5><HEIGHT-INPUT0.5>]?"
    assert qa.answer == "A cat."
