"""``llava-st eval`` end to end on ST-Synth's REG, TR, DVC and DGC files with a tiny random model,
and ``llava-st score`` on the run's predictions giving the same report."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from llava_st.cli import main
from llava_st.synth import PRESETS, generate

LIMIT = 3


@pytest.fixture(scope="module")
def synth_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("st-synth-cap") / "data"
    tiny = PRESETS["tiny"]
    generate(replace(tiny, num_videos=6, num_images=5, split=replace(tiny.split, test_fraction=0.6)), out, workers=1,
             preview=False)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("task", ["reg", "tr", "dvc", "dgc"])
def test_eval_then_score_on_synth(tiny_model_dir, synth_set, tmp_path, task, capsys):
    pytest.importorskip("pycocoevalcap")
    bench = f"synth-{task}"
    run = tmp_path / "run"
    rc = main(["eval", "--model", str(tiny_model_dir), "--bench", bench, "--data-root", str(synth_set), "--out", str(run),
               "--limit", str(LIMIT), "--batch-size", "2", "--no-progress", "--predictor-arg", "max_new_tokens=16"])
    assert rc == 0, capsys.readouterr().err
    report = json.loads((run / "report.json").read_text())
    assert report["bench"] == bench and report["task"] == task and report["mode"] == "canonical"
    assert report["num_scored"] == LIMIT and report["published"] == []
    assert "METEOR" in report["metrics"] and "CIDEr" in report["metrics"]
    if task == "dvc":
        assert {"Precision@0.5", "Recall@0.9", "F1", "SODA_c"} <= set(report["metrics"])
    if task == "dgc":
        assert {"mIoU", "Recall@0.5", "Precision@0.5"} <= set(report["metrics"])
    records = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == list(range(LIMIT)) and all(isinstance(r["answer"], str) for r in records)
    assert all(r["media"]["num_frames"] == (12 if task in ("tr", "dvc") else 1) for r in records)

    out = tmp_path / "score.json"
    rc = main(["score", "--bench", bench, "--data", str(synth_set / "test" / f"{task}.json"),
               "--predictions", str(run / "predictions.jsonl"), "--out", str(out), "--limit", str(LIMIT)])
    assert rc == 0, capsys.readouterr().err
    scored = json.loads(out.read_text())
    assert scored["metrics"] == pytest.approx(report["metrics"])
    assert "| METEOR |" in out.with_suffix(".md").read_text()

    rc = main(["eval", "--model", str(tiny_model_dir), "--bench", bench, "--data-root", str(synth_set),
               "--out", str(tmp_path / "pub"), "--published-compat", "--no-progress"])
    assert rc == 2 and "no published-compatible mode" in capsys.readouterr().err
