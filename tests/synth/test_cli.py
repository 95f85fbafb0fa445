"""``llava-st synth``: runs end to end, prints a summary, and refuses bad input with a clear message."""

from __future__ import annotations

import json

import pytest

from llava_st.cli import main

SMALL = ["--preset", "tiny", "--videos", "2", "--images", "2", "--workers", "1", "--no-progress"]


def test_cli_writes_a_dataset_and_a_summary(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["synth", "--out", str(out), "--seed", "4", *SMALL, "--frames", "30", "--sample-frames", "12"]) == 0
    printed = capsys.readouterr().out
    assert "ST-Synth wrote 2 videos and 2 images" in printed and "train/stvg.json" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["seed"] == 4 and manifest["config"]["video"]["num_frames"] == 30
    assert manifest["config"]["video"]["sample_frames"] == 12
    assert (out / "preview.png").is_file() and len(list((out / "videos").glob("*.mp4"))) == 2


def test_cli_difficulty_options_reach_the_scenes(tmp_path, capsys):
    out = tmp_path / "ds"
    args = ["--difficulty", "easy", "--distractors", "2", "--size-scale", "0.9", "--speed-scale", "2", "--no-preview"]
    assert main(["synth", "--out", str(out), *SMALL, *args]) == 0
    d = json.loads((out / "manifest.json").read_text())["config"]["difficulty"]
    assert d["name"] == "easy+custom" and d["distractors"] == [2, 2] and d["size_scale"] == 0.9
    assert d["speed"] == [0.012, 0.028]
    for line in (out / "ground_truth/videos.jsonl").read_text().splitlines():
        roles = [o["role"] for o in json.loads(line)["objects"]]
        assert roles.count("distractor") == 2


def test_cli_refuses_a_non_empty_folder_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["synth", "--out", str(out), *SMALL, "--no-preview"]) == 0
    capsys.readouterr()
    assert main(["synth", "--out", str(out), *SMALL]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["synth", "--out", str(out), *SMALL, "--overwrite", "--seed", "9", "--no-preview"]) == 0
    assert json.loads((out / "manifest.json").read_text())["config"]["seed"] == 9


def test_cli_never_deletes_foreign_files(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    assert main(["synth", "--out", str(out), *SMALL, "--overwrite"]) == 2
    assert "does not look like an ST-Synth output" in capsys.readouterr().err
    assert (out / "thesis.tex").read_text() == "precious"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--width", "129"], "even"),
        (["--width", "40", "--height", "40"], "too small"),
        (["--frames", "8"], "too short"),
        (["--videos", "0", "--images", "0"], "nothing to generate"),
        (["--size-scale", "5"], "size_scale"),
        (["--distractors", "9"], "distractors"),
    ],
)
def test_cli_reports_impossible_settings(tmp_path, capsys, args, message):
    assert main(["synth", "--out", str(tmp_path / "x"), *SMALL, *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("args", [["--videos", "-1"], ["--seed", "abc"], ["--test-fraction", "1.5"], ["--preset", "huge"]])
def test_cli_rejects_malformed_arguments(tmp_path, capsys, args):
    with pytest.raises(SystemExit) as exc:
        main(["synth", "--out", str(tmp_path / "x"), *args])
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err
