"""``llava-st eval`` end to end with the built-in predictor: a tiny random model on a small ST-Synth set.

A run is killed for real mid-way and resumed; its report must equal that of an
uninterrupted run, and a two-process sharded run must give the same report.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import kill_after_records
from llava_st.eval.store import MANIFEST, read_records, shard_path
from llava_st.synth import PRESETS, generate

REPO = Path(__file__).resolve().parents[1]
LIMIT = 6  # samples scored per run


@pytest.fixture(scope="module")
def synth_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("st-synth") / "data"
    tiny = PRESETS["tiny"]
    cfg = replace(tiny, num_videos=12, num_images=4, split=replace(tiny.split, test_fraction=0.6))
    generate(cfg, out, workers=1, preview=False)
    n = len(json.loads((out / "eval" / "st_align_stvg.json").read_text()))
    assert n >= LIMIT, f"the set has only {n} STVG evaluation samples"
    return out


def _cmd(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "llava_st", "eval", "--model", str(model), "--bench", "synth-stvg",
        "--data-root", str(data), "--out", str(out), "--limit", str(LIMIT),
        "--batch-size", "1", "--no-progress", "--predictor-arg", "max_new_tokens=24", *extra,
    ]  # fmt: skip


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(extra)
    return env


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def reference(tiny_model_dir, synth_set, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("ref") / "run"
    proc = subprocess.run(_cmd(tiny_model_dir, synth_set, out), env=_env(), cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "stvg" in proc.stdout  # the markdown table
    records = read_records(shard_path(out, 0, 1))
    assert sorted(r["id"] for r in records) == list(range(LIMIT))
    assert all(isinstance(r.get("answer", r.get("raw")), str) for r in records)
    # no --num-frames: videos are sampled at the tiny model's own 12 frames, not the release's 100
    assert json.loads((out / MANIFEST).read_text())["num_frames"] == 12
    assert {r["media"]["num_frames"] for r in records} == {12}
    return _report(out)


def test_killed_run_resumes_to_the_uninterrupted_report(tiny_model_dir, synth_set, reference, tmp_path) -> None:
    out = tmp_path / "killed"
    own = shard_path(out, 0, 1)
    proc = subprocess.Popen(_cmd(tiny_model_dir, synth_set, out), env=_env(), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_after_records(proc, own, 2)
    done = len(read_records(own))
    assert 2 <= done < LIMIT and not (out / "report.json").exists()
    resumed = subprocess.run(_cmd(tiny_model_dir, synth_set, out, "--resume"), env=_env(), cwd=REPO,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert _report(out) == reference


def test_two_processes_give_the_one_process_report(tiny_model_dir, synth_set, reference, tmp_path) -> None:
    out = tmp_path / "sharded"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    procs = [
        subprocess.Popen(_cmd(tiny_model_dir, synth_set, out),
                         env=_env(RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=port),
                         cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for r in range(2)
    ]
    results = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err
    assert _report(out) == reference


def test_bad_inputs_fail_before_the_model_loads(synth_set, tmp_path) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / MANIFEST).write_text("{}")
    missing_model = tmp_path / "no-model"  # never reached: the checks come first
    for args, message in (
        (["--data", str(tmp_path / "nope.json"), "--media-root", str(synth_set)], "nope.json"),
        (["--data-root", str(synth_set), "--out", str(used)], "holds a previous run"),
    ):
        cmd = [sys.executable, "-m", "llava_st", "eval", "--model", str(missing_model), "--bench", "synth-stvg",
               "--num-frames", "12", "--no-progress", *args]
        if "--out" not in args:
            cmd += ["--out", str(tmp_path / "run")]
        proc = subprocess.run(cmd, env=_env(), cwd=REPO, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr  # bad input
