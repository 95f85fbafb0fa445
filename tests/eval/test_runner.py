"""The evaluation runner with a fake deterministic predictor: records, resume, kill, sharding."""

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
from llava_st.cli import main as cli_main
from llava_st.cli.eval import load_factory
from llava_st.eval.runner import RELEASE_NUM_FRAMES, EvalConfig, resolve_num_frames, run_eval
from llava_st.eval.shards import DistEnv, dist_env, shard
from llava_st.eval.store import MANIFEST, StoreError, read_records, shard_path
from llava_st.protocol.tokens import RELEASE_BINS

HERE = Path(__file__).resolve().parent
FAKE = HERE / "fake_predictor.py"
REPO = HERE.parents[1]
N = 16


@pytest.fixture
def stvg_file(tmp_path, files):
    items = []
    for i in range(N):
        s = 4 * i
        e = s + 20 + 3 * i
        track = {str(f): [f % 40, 5 + i, 30 + i, 20] for f in range(s, e + 1, 2)}
        human = "<video>\nFrom <s> to <e>, where is the dog? "  # a phrase is drawn per sample
        items.append(files.st_item(s=s, e=e, track=track, video=f"v{i}.mp4", human=human))
    return files.write_json(tmp_path / "stvg.json", items)


def config(stvg_file, out, **kw) -> EvalConfig:
    base = dict(bench="stvg", data=stvg_file, media_root=stvg_file.parent / "sources", out_dir=out, bins=RELEASE_BINS, batch_size=3, progress=False)
    base.update(kw)
    return EvalConfig(**base)


def fake(delay: float = 0.0):
    return load_factory(f"{FAKE}:make")(delay=str(delay))


def report_of(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


@pytest.fixture
def reference(stvg_file, tmp_path):
    """An uninterrupted single-process run."""
    out = tmp_path / "ref"
    rep = run_eval(fake(), config(stvg_file, out), DistEnv())
    return out, rep


def test_single_run_records_and_report_equal_score_cli(reference, stvg_file, tmp_path):
    out, rep = reference
    assert rep == report_of(out)
    assert rep["num_scored"] == N and rep["predictions"] == "predictions.jsonl"
    merged = read_records(out / "predictions.jsonl")
    assert [r["id"] for r in merged] == list(range(N))
    first = merged[0]
    assert {"id", "prompt", "media", "answer", "parsed", "scores", "readable"} <= set(first)
    assert first["prompt"].startswith("<video>\n") and first["media"]["split"] == [0, 198]
    answers = [r["answer"] for r in merged]
    assert any(a.endswith("<|im_end|>") for a in answers) and "I cannot tell." in answers
    assert 0 < rep["unreadable_answers"] < N
    assert (out / "report.md").read_text().startswith("# stvg: canonical")
    # the per-sample scores written during the run are those of the final report
    assert [r["scores"] for r in merged] == [r["scores"] for r in rep["samples"]]
    # scoring the merged file from the command line gives the same report
    cli_out = tmp_path / "cli.json"
    assert cli_main(["score", "--bench", "stvg", "--data", str(stvg_file), "--predictions", str(out / "predictions.jsonl"), "--out", str(cli_out)]) == 0
    cli_rep = json.loads(cli_out.read_text())
    cli_rep["predictions"] = rep["predictions"]
    assert cli_rep == rep


def test_limit_then_resume_asks_only_the_rest(reference, stvg_file, tmp_path):
    out = tmp_path / "run"
    p1 = fake()
    rep5 = run_eval(p1, config(stvg_file, out, limit=5), DistEnv())
    assert sorted(p1.asked) == [0, 1, 2, 3, 4] and p1.batches == [3, 2] and rep5["num_scored"] == 5
    p2 = fake()
    rep = run_eval(p2, config(stvg_file, out, resume=True), DistEnv())
    assert sorted(p2.asked) == list(range(5, N))
    assert rep == reference[1]


def test_resume_tolerates_a_cut_last_line(reference, stvg_file, tmp_path):
    out = tmp_path / "run"
    run_eval(fake(), config(stvg_file, out), DistEnv())
    own = shard_path(out, 0, 1)
    lines = own.read_bytes().split(b"\n")[:-1]
    # keep all but the last two records, and half of the next one without its newline
    own.write_bytes(b"\n".join(lines[:-2]) + b"\n" + lines[-2][: len(lines[-2]) // 2])
    p = fake()
    rep = run_eval(p, config(stvg_file, out, resume=True), DistEnv())
    assert sorted(p.asked) == sorted(json.loads(line)["id"] for line in lines[-2:])
    assert rep == reference[1]
    assert sorted(r["id"] for r in read_records(own)) == list(range(N))


def test_folder_checks(reference, stvg_file, tmp_path):
    out, _ = reference
    with pytest.raises(RuntimeError, match="pass --resume"):
        run_eval(fake(), config(stvg_file, out), DistEnv())
    with pytest.raises(RuntimeError, match="seed"):
        run_eval(fake(), config(stvg_file, out, resume=True, seed=5), DistEnv())
    with pytest.raises(RuntimeError, match="mode"):
        run_eval(fake(), config(stvg_file, out, resume=True, mode="published"), DistEnv())
    # resuming a finished run asks nothing and gives the same report
    p = fake()
    assert run_eval(p, config(stvg_file, out, resume=True), DistEnv()) == reference[1]
    assert p.asked == []


def test_published_run_scores_like_the_score_command(stvg_file, tmp_path):
    out = tmp_path / "pub"
    rep = run_eval(fake(), config(stvg_file, out, mode="published", limit=6), DistEnv())
    assert rep["mode"] == "published-compat" and rep["num_scored"] == 6 and "mstiou" in rep["metrics"]
    answers = {r["id"]: r["answer"] for r in read_records(out / "predictions.jsonl")}
    from llava_st.eval.benchmarks import get_benchmark
    from llava_st.eval.scoring import score

    bench = get_benchmark("stvg", bins=RELEASE_BINS)
    again = score(bench, bench.load(stvg_file), answers, "published", limit=6, data=stvg_file, predictions="predictions.jsonl")
    assert again == rep
    with pytest.raises(ValueError, match="100 frames"):
        run_eval(fake(), config(stvg_file, tmp_path / "x", mode="published", num_frames=50), DistEnv())


def test_predictor_answer_count_is_checked(stvg_file, tmp_path):
    class Short:
        def ask_batch(self, requests):
            return ["x"] * (len(requests) - 1)

    with pytest.raises(RuntimeError, match="answered 2 for 3 requests"):
        run_eval(Short(), config(stvg_file, tmp_path / "r"), DistEnv())


def test_canonical_prompts_are_seeded_per_sample(stvg_file, tmp_path):
    a = run_eval(fake(), config(stvg_file, tmp_path / "a", batch_size=1), DistEnv())
    b = run_eval(fake(), config(stvg_file, tmp_path / "b", batch_size=5), DistEnv())
    c = run_eval(fake(), config(stvg_file, tmp_path / "c", seed=1), DistEnv())
    prompts = lambda d: [r["prompt"] for r in read_records(d / "predictions.jsonl")]  # noqa: E731
    assert prompts(tmp_path / "a") == prompts(tmp_path / "b")
    assert a == b
    assert prompts(tmp_path / "a") != prompts(tmp_path / "c")
    assert c["num_scored"] == N


def test_shard_partitions_ids_for_any_world_size():
    for n in range(0, 23):
        ids = list(range(100, 100 + n))
        for world in range(1, 9):
            parts = [shard(ids, r, world) for r in range(world)]
            flat = [i for p in parts for i in p]
            assert sorted(flat) == ids and len(flat) == len(set(flat))
            assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 1


def test_dist_env_reads_launcher_variables():
    assert dist_env({}) == DistEnv(0, 1, 0)
    assert dist_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == DistEnv(3, 4, 1)
    with pytest.raises(ValueError, match="outside"):
        dist_env({"RANK": "4", "WORLD_SIZE": "4"})
    with pytest.raises(ValueError, match="whole number"):
        dist_env({"WORLD_SIZE": "two"})


# ----------------------------------------------------------------- real processes


def eval_cmd(stvg_file: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "llava_st", "eval",
        "--predictor", f"{FAKE}:make",
        "--bench", "stvg", "--data", str(stvg_file), "--media-root", str(stvg_file.parent / "sources"),
        "--out", str(out), "--batch-size", "3", "--no-progress", *extra,
    ]  # fmt: skip


def proc_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(extra)
    return env


def test_kill_mid_run_then_resume_gives_the_same_report(reference, stvg_file, tmp_path):
    out = tmp_path / "killed"
    own = shard_path(out, 0, 1)
    proc = subprocess.Popen(eval_cmd(stvg_file, out, "--predictor-arg", "delay=0.4"), env=proc_env(), cwd=REPO)
    kill_after_records(proc, own, 3, timeout_s=120)
    done = len(read_records(own))
    assert 3 <= done < N and not (out / "report.json").exists()
    with own.open("ab") as fh:  # as if the kill had cut a write
        fh.write(b'{"id": 15, "prompt": "<vid')
    resumed = subprocess.run(eval_cmd(stvg_file, out, "--resume"), env=proc_env(), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert report_of(out) == reference[1]
    assert sorted(r["id"] for r in read_records(own)) == list(range(N))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_sharded_run_equals_one_process(reference, stvg_file, tmp_path):
    out = tmp_path / "sharded"
    port = str(free_port())
    procs = [
        subprocess.Popen(
            eval_cmd(stvg_file, out),
            env=proc_env(RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=port),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in range(2)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err
    ids = [sorted(r["id"] for r in read_records(shard_path(out, r, 2))) for r in range(2)]
    assert ids == [list(range(0, N, 2)), list(range(1, N, 2))]
    assert report_of(out) == reference[1]
    assert "# stvg: canonical" in results[0][0] and results[1][0] == ""


def test_runner_announces_each_batch_before_asking_the_one_ahead_of_it(stvg_file, tmp_path):
    inner = fake()
    calls: list[tuple[str, list[int]]] = []

    class Prefetching:
        def prefetch(self, requests):
            calls.append(("prefetch", [r.sample_id for r in requests]))

        def ask_batch(self, requests):
            calls.append(("ask", [r.sample_id for r in requests]))
            return inner.ask_batch(requests)

    run_eval(Prefetching(), config(stvg_file, tmp_path / "run", batch_size=5), DistEnv())
    ids = list(range(N))
    b = [ids[i : i + 5] for i in range(0, N, 5)]
    # the first batch loads on the pool too, and each later one while the model answers the one before
    assert calls == [("prefetch", b[0]), ("prefetch", b[1]), ("ask", b[0]), ("prefetch", b[2]), ("ask", b[1]),
                     ("prefetch", b[3]), ("ask", b[2]), ("ask", b[3])]


# ----------------------------------------------------------------- frames per video


class WithFrames:
    """The fake predictor, sampling ``num_frames`` frames per video by default."""

    def __init__(self, num_frames):
        self.num_frames = num_frames
        self.inner = fake()
        self.frames: list[int] = []

    def ask_batch(self, requests):
        self.frames.extend(r.media.num_frames for r in requests)
        return self.inner.ask_batch(requests)


def test_frames_default_to_the_predictor_s_own(stvg_file, tmp_path):
    p = WithFrames(12)
    run_eval(p, config(stvg_file, tmp_path / "own", limit=4), DistEnv())
    assert p.frames == [12] * 4
    assert json.loads((tmp_path / "own" / MANIFEST).read_text())["num_frames"] == 12
    p = WithFrames(12)
    run_eval(p, config(stvg_file, tmp_path / "given", limit=4, num_frames=20), DistEnv())
    assert p.frames == [20] * 4  # given explicitly: that count
    p = WithFrames(12)
    run_eval(p, config(stvg_file, tmp_path / "pub", limit=4, mode="published"), DistEnv())
    assert p.frames == [RELEASE_NUM_FRAMES] * 4  # the release's, whatever the model
    plain = fake()
    run_eval(plain, config(stvg_file, tmp_path / "plain", limit=2), DistEnv())
    assert json.loads((tmp_path / "plain" / MANIFEST).read_text())["num_frames"] == RELEASE_NUM_FRAMES
    # a resume with a model of another frame count is refused
    with pytest.raises(StoreError, match="num_frames=12"):
        run_eval(WithFrames(10), config(stvg_file, tmp_path / "own", resume=True), DistEnv())


def test_resolve_num_frames():
    cfg = EvalConfig(bench="stvg", data=Path("d"), media_root=Path("m"), out_dir=Path("o"), bins=RELEASE_BINS)
    assert cfg.num_frames is None
    assert resolve_num_frames(cfg, WithFrames(16)).num_frames == 16
    assert resolve_num_frames(cfg, object()).num_frames == RELEASE_NUM_FRAMES == 100
    assert resolve_num_frames(replace(cfg, num_frames=7), WithFrames(16)).num_frames == 7
    assert resolve_num_frames(replace(cfg, mode="published"), WithFrames(16)).num_frames == 100


def test_bins_default_to_the_predictor_s_own_and_a_resume_checks_them(stvg_file, tmp_path):
    from llava_st.protocol.tokens import BinCounts

    class WithBins:
        num_frames = 16
        bins = BinCounts(50, 20)

    cfg = EvalConfig(bench="stvg", data=Path("d"), media_root=Path("m"), out_dir=Path("o"))
    assert resolve_num_frames(cfg, WithBins()).bins == BinCounts(50, 20)
    assert resolve_num_frames(cfg, object()).bins == RELEASE_BINS
    assert resolve_num_frames(replace(cfg, mode="published"), WithBins()).bins == RELEASE_BINS
    assert resolve_num_frames(replace(cfg, bins=BinCounts(10, 10)), WithBins()).bins == BinCounts(10, 10)
    assert resolve_num_frames(cfg, WithBins()).manifest()["bins"] == [50, 20]


def test_cli_samples_at_the_model_s_frame_count(stvg_file, tmp_path, monkeypatch):
    from llava_st.zoo import debug

    model = tmp_path / "model"
    model.mkdir()
    debug(num_frames=10).to_json_file(model / "config.json")  # the CLI reads only the config before loading
    made = []

    def load(model, **options):
        made.append(model)
        return fake()  # has no num_frames: the 10 must come from the config

    monkeypatch.setattr("llava_st.eval.predictor.load", load)
    out = tmp_path / "run"
    args = ["eval", "--model", str(model), "--bench", "stvg", "--data", str(stvg_file), "--media-root",
            str(stvg_file.parent), "--out", str(out), "--limit", "3", "--no-progress"]
    assert cli_main(args) == 0
    assert made == [str(model)]
    assert json.loads((out / MANIFEST).read_text())["num_frames"] == 10
    assert {r["media"]["num_frames"] for r in read_records(out / "predictions.jsonl")} == {10}


# ----------------------------------------------------------------- failures


def test_media_that_do_not_load_stop_the_run_after_recording_the_rest(stvg_file, tmp_path):
    from llava_st.infer.pipeline import BatchError
    from llava_st.media import MediaNotFoundError

    inner = fake()

    class OneBad:
        def ask_batch(self, requests):
            answers = inner.ask_batch(requests)
            bad = [i for i, r in enumerate(requests) if r.sample_id == 4]
            if bad:
                failures = {i: MediaNotFoundError("media file not found: v4.mp4") for i in bad}
                raise BatchError(failures, [None if i in bad else a for i, a in enumerate(answers)], {bad[0]: "sample 4"})
            return answers

    out = tmp_path / "run"
    with pytest.raises(BatchError, match="sample 4"):
        run_eval(OneBad(), config(stvg_file, out), DistEnv())  # batches of 3: [0, 1, 2], [3, 4, 5] ...
    assert sorted(r["id"] for r in read_records(shard_path(out, 0, 1))) == [0, 1, 2, 3, 5]
    p = fake()
    run_eval(p, config(stvg_file, out, resume=True), DistEnv())
    assert sorted(p.asked) == [4] + list(range(6, N))


def test_command_line_errors_exit_2_with_the_message(stvg_file, tmp_path, capsys):
    def run(*extra):
        code = cli_main(["eval", "--bench", "stvg", "--out", str(tmp_path / "o"), "--no-progress", *extra])
        return code, capsys.readouterr().err

    code, err = run("--predictor", f"{FAKE}:make")
    assert code == 2 and err.startswith("llava-st eval: give --data-root")
    code, err = run("--data", str(stvg_file), "--media-root", str(tmp_path), "--model", str(tmp_path / "no-model"))
    assert code == 2 and "no-model" in err
    code, err = run("--data", str(tmp_path / "none.json"), "--media-root", str(tmp_path), "--predictor", f"{FAKE}:make")
    assert code == 2 and "none.json" in err
    code, err = run("--data", str(stvg_file), "--media-root", str(tmp_path), "--predictor", "no_such_module_xyz:make")
    assert code == 2 and "cannot import no_such_module_xyz" in err
    code, err = run("--data", str(stvg_file), "--media-root", str(tmp_path), "--predictor", f"{FAKE}:make",
                    "--predictor-arg", "novalue")
    assert code == 2 and "KEY=VALUE" in err
    code, err = run("--data", str(stvg_file), "--media-root", str(tmp_path), "--model", str(tmp_path / "no-model"))
    assert code == 2 and "no-model" in err
