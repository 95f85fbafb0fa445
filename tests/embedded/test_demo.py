"""``llava-st demo`` on the bundled samples, and the samples' true answers against ST-Synth's ground truth."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llava_st.embedded.samples import SAMPLES, answer_in_tokens, load_demo
from llava_st.protocol.answers import parse_answer
from llava_st.protocol.timebase import Timeline, sample_frame_indices
from llava_st.protocol.tokens import BinCounts

REPO = Path(__file__).resolve().parents[2]


def test_bundled_samples_are_complete():
    demo = load_demo()
    assert {q["task"] for q in demo["questions"]} == {"tvg", "stvg", "rec", "elc"}
    for q in demo["questions"]:
        assert Path(q["path"]).is_file()
    assert (SAMPLES / demo["video"]["file"]).stat().st_size < 200_000


def test_true_answers_read_in_seconds_and_pixels():
    """The tvg truth, read on the clip's timeline, is the sampled frames of the event's span."""
    demo = load_demo()
    v = demo["video"]
    frames = sample_frame_indices(0, v["num_frames"] - 1, 16)
    timeline = Timeline(96, 96, timestamps=tuple(float(f) / v["fps"] for f in frames), frame_ids=tuple(int(f) for f in frames))
    tvg = next(q for q in demo["questions"] if q["task"] == "tvg")
    bins = BinCounts(16, 100)
    result = parse_answer(answer_in_tokens(tvg["truth"], bins), "tvg", bins=bins, timeline=timeline)
    start, end = tvg["truth"]["values"]["temporal_output_locations"]
    assert result.span.start_s == pytest.approx(frames[round(start * 15)] / v["fps"])
    assert result.span.end_s == pytest.approx(frames[round(end * 15)] / v["fps"])
    rec = next(q for q in demo["questions"] if q["task"] == "rec")
    image = Timeline(96, 96, timestamps=(0.0,), frame_ids=(0,))
    box = parse_answer(answer_in_tokens(rec["truth"], bins), "rec", bins=bins, timeline=image).box
    assert all(0 <= p <= 96 for p in box.pixels) and box.pixels[2] > box.pixels[0]


def test_demo_runs_on_any_model_and_writes_pictures(tiny_model_dir, tmp_path):
    out = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "llava_st", "demo", "--model", str(tiny_model_dir), "--out", str(out), "--json"],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [a["task"] for a in report["answers"]] == ["tvg", "stvg", "rec", "elc"]
    for a in report["answers"]:
        assert (out / f"{a['task']}.json").is_file()
        assert " s" in a["truth"] or " px" in a["truth"]
    assert json.loads((out / "demo.json").read_text())["answers"] == report["answers"]
