"""The trainer end to end on the debug model and a small ST-Synth set (one CPU thread per process).

* stage 1 with a pinned seed: the loss falls by a stated margin, parameters the
  stage freezes are bitwise unchanged and every trained part changed; data loads
  in worker processes; the periodic evaluation hook writes its report; the final
  folder loads with ``LlavaSTModel.from_pretrained`` and ``LlavaST.from_pretrained``;
* resume: a real ``llava-st train`` process is SIGKILLed mid-run and continued
  with ``--resume``; its final weights equal an uninterrupted run's BITWISE
  (same process layout, one thread, deterministic CPU kernels: nothing may
  differ, so nothing is tolerated);
* DDP: two processes (``accelerate launch --config_file recipes/engines/ddp.yaml``,
  gloo) with one sample each give the weights of one process with both samples
  (same global batch), within float tolerance (the sums run in another order);
* FSDP: accelerate does not run FSDP on CPU (its FSDP mode needs a GPU-type
  device; without one it falls back to a single-device setup), so the trainer
  refuses an FSDP engine unless launched under it; what can be tested here is
  that the model, trainability and loss of a stage shard with torch's FSDP2
  (``fully_shard``) over two gloo processes and reach the trainer's weights;
* ``--skip-bad`` counts and reports; without it a bad sample stops the run naming file and index;
* a LoRA stage end to end, then ``llava-st merge-lora``: the merged export loads and
  generates the same ids as the base model with the adapter attached.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("accelerate")
pytest.importorskip("peft")

from llava_st.errors import ConfigError, DataError  # noqa: E402
from llava_st.model import LlavaSTModel  # noqa: E402
from llava_st.train.loop import train  # noqa: E402
from llava_st.train.recipe import load_recipe  # noqa: E402
from llava_st.train.step import keep_trainables_in_graph  # noqa: E402

#: The stage-1 run must lower its mean loss over the last 3 steps by this share of the first 3 steps' mean.
LOSS_DROP = 0.20
STAGE1_STEPS = 24


def _recipe(tools, tokenizer_dir, name: str, mix: Path, out: Path, **more):
    return load_recipe(tools["recipes"] / name, tools["overrides"](tokenizer_dir, mix, out, **more))


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]



def _train_on_one_thread(recipe):
    """``train(recipe)`` with one torch thread (deterministic kernels; module fixtures outlive ``one_thread``)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train(recipe, echo=None, progress=False)
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def stage1(tmp_path_factory, synth_data, tokenizer_dir, train_tools):
    """A 24-step stage-1 run (packer + input embedding), data in 2 worker processes,
    evaluation of synth-rec every 12 steps."""
    out = tmp_path_factory.mktemp("stage1") / "run"
    overrides = {
        "schedule.max_steps": STAGE1_STEPS,
        "optim.lr": 3e-3,
        "batch.num_workers": 2,
        "output.save_every": 0,
        "eval.every": 12,
        "eval.benchmarks": "[synth-rec]",
        "eval.data_root": str(synth_data),
        "eval.max_samples": 2,
        "eval.max_new_tokens": 6,
    }
    recipe = load_recipe(
        train_tools["recipes"] / "stage1.yaml",
        train_tools["overrides"](tokenizer_dir, synth_data / "stage1.yaml", out, **overrides),
    )
    result = _train_on_one_thread(recipe)
    return recipe, result


def test_stage1_loss_falls_and_only_the_recipe_trains(stage1, one_thread) -> None:
    from llava_st import LlavaST
    from llava_st.train.build import build_stage
    from llava_st.train.trainability import part_of

    recipe, result = stage1
    losses = [m["loss"] for m in _metrics(result.run_dir) if "loss" in m]
    assert len(losses) == STAGE1_STEPS == result.steps
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < (1 - LOSS_DROP) * first, (first, last)

    initial = build_stage(recipe).model.state_dict()
    trained = LlavaSTModel.from_pretrained(result.final_dir).state_dict()
    trains = set(recipe.trainable.parts())  # packer.* and embed_tokens
    changed = {part_of(n) for n in initial if not torch.equal(initial[n], trained[n])}
    assert changed == trains
    for name, tensor in initial.items():
        if part_of(name) not in trains:
            assert torch.equal(tensor, trained[name]), f"{name} is frozen in stage 1 but changed"
    st = LlavaST.from_pretrained(result.final_dir)
    assert st.model.config.text.vocab_size == initial["lm_head.weight"].shape[0]


def test_stage1_reports_progress_loader_and_evaluation(stage1) -> None:
    recipe, result = stage1
    records = _metrics(result.run_dir)
    steps = [r for r in records if "loss" in r]
    assert [r["step"] for r in steps] == list(range(1, STAGE1_STEPS + 1))
    assert all(r["tokens_per_s"] > 0 and 0 <= r["loader_wait_share"] <= 1 for r in steps)
    # the learning rate warms up for ceil(3% of 24) = 1 step, then follows the cosine to near 0
    lrs = [r["lr"]["packer.spatial"] for r in steps]
    assert lrs[0] == pytest.approx(3e-3) and lrs[-1] < 0.02 * 3e-3 and lrs == sorted(lrs, reverse=True)
    evals = [r for r in records if "eval" in r]
    assert [r["step"] for r in evals] == [12, 24] and "synth-rec" in evals[0]["eval"]
    assert (result.run_dir / "eval" / "step-12" / "synth-rec" / "report.json").is_file()
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["steps"] == STAGE1_STEPS and summary["skipped"] == 0
    assert 0 <= summary["loader_wait_share"] < 1


# ------------------------------------------------------------------ stage 2 (LoRA): resume, DDP, merge


@pytest.fixture(scope="module")
def stage2_reference(stage1, tmp_path_factory, synth_data, tokenizer_dir, train_tools):
    """An uninterrupted 8-step LoRA stage (dropout 0.05, NTP), checkpoints every 3 steps."""
    _, s1 = stage1
    out = tmp_path_factory.mktemp("stage2") / "reference"
    overrides = train_tools["overrides"](
        tokenizer_dir,
        synth_data / "stage2.yaml",
        out,
        **{"model.path": str(s1.final_dir), "schedule.max_steps": 8, "output.save_every": 3, "output.keep_last": 2},
    )
    recipe = load_recipe(train_tools["recipes"] / "stage2.yaml", overrides)
    result = _train_on_one_thread(recipe)
    return overrides, result


def test_resume_after_a_kill_ends_with_the_same_weights(stage2_reference, train_tools, tmp_path: Path) -> None:
    from conftest import kill_after_records

    overrides, reference = stage2_reference
    out = tmp_path / "killed"
    args = [a if not a.startswith("output.dir=") else f"output.dir={out}" for a in overrides]
    cmd = [sys.executable, "-m", "llava_st", "train", "--recipe", str(train_tools["recipes"] / "stage2.yaml"),
           *args, "--no-progress"]
    proc = subprocess.Popen(cmd, env=train_tools["env"](), cwd=train_tools["repo"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    kill_after_records(proc, out / "metrics.jsonl", 4)  # step 3's checkpoint is written before step 3's line
    assert not (out / "final").exists()
    saved = sorted(p.name for p in out.iterdir() if p.name.startswith("step-") and not p.name.endswith(".tmp"))
    assert saved in (["step-3"], ["step-3", "step-6"])
    done = train_tools["run_cli"](["train", "--recipe", str(train_tools["recipes"] / "stage2.yaml"), *args,
                                   "--resume", "--no-progress"])
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed_from"] in (3, 6) and summary["steps"] == 8
    a, b = train_tools["weights"](reference.final_dir), train_tools["weights"](out / "final")
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ after resume, e.g. {different[:3]}"
    # each step is in the metrics once, with the uninterrupted run's loss
    losses = {r["step"]: r["loss"] for r in _metrics(out) if "loss" in r}
    assert losses == {r["step"]: r["loss"] for r in _metrics(reference.run_dir) if "loss" in r}
    assert sorted(p.name for p in out.glob("step-*")) == ["step-6", "step-8"]  # keep_last 2


def test_two_process_ddp_matches_one_process(stage1, train_tools, tokenizer_dir, synth_data, tmp_path, one_thread):
    _, s1 = stage1
    common = {"model.path": str(s1.final_dir), "schedule.max_steps": 3, "lora.dropout": 0.0, "output.save_every": 0}
    single = train(
        _recipe(train_tools, tokenizer_dir, "stage2.yaml", synth_data / "stage2.yaml", tmp_path / "one",
                **common, **{"batch.per_device": 2}),
        echo=None, progress=False,
    )
    two = tmp_path / "two"
    args = train_tools["overrides"](tokenizer_dir, synth_data / "stage2.yaml", two, **common, **{"batch.per_device": 1})
    cmd = [str(Path(sys.executable).parent / "accelerate"), "launch", "--config_file",
           str(train_tools["repo"] / "recipes/engines/ddp.yaml"), "--num_processes", "2", "--mixed_precision", "no",
           "--main_process_port", "29631", "-m", "llava_st", "train", "--recipe",
           str(train_tools["recipes"] / "stage2.yaml"), *args, "--no-progress"]
    done = subprocess.run(cmd, env=train_tools["env"](), cwd=train_tools["repo"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((two / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["global_batch"] == single.extra["global_batch"] == 2
    a, b = train_tools["weights"](single.final_dir), train_tools["weights"](two / "final")
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst < 2e-5, worst
    la = [r["loss"] for r in _metrics(single.run_dir) if "loss" in r]
    lb = [r["loss"] for r in _metrics(two) if "loss" in r]
    assert la == pytest.approx(lb, rel=1e-5, abs=1e-6)


def test_merge_lora_export_loads_and_generates_like_the_adapter(stage1, stage2_reference, train_tools, tmp_path,
                                                                 synth_data, one_thread) -> None:
    from llava_st import LlavaST
    from llava_st.media import load_image
    from llava_st.processor import LlavaSTProcessor
    from llava_st.train.export import load_adapter

    _, s1 = stage1
    _, s2 = stage2_reference
    adapter = s2.final_dir / "adapter"
    assert sorted(p.name for p in adapter.iterdir()) == [
        "adapter_config.json", "adapter_model.safetensors", "non_lora_trainables.safetensors"
    ]
    assert json.loads((s2.final_dir / "training.json").read_text())["lora_merged"] is True
    merged = tmp_path / "merged"
    done = train_tools["run_cli"](["merge-lora", "--base", str(s1.final_dir), "--adapter", str(adapter), "--out",
                                   str(merged)])
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = train_tools["weights"](s2.final_dir), train_tools["weights"](merged)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # same float32 arithmetic

    processor = LlavaSTProcessor.from_pretrained(merged)
    image = load_image(synth_data / "images" / "000000.png")
    batch = processor("<image>\nWhere is the red circle?", image)
    with_adapter = LlavaSTModel.from_pretrained(s1.final_dir)
    load_adapter(with_adapter, adapter, merge=False)
    with_adapter.eval()
    exported = LlavaSTModel.from_pretrained(merged)
    ids_a = with_adapter.generate(**batch, max_new_tokens=12).sequences
    ids_b = exported.generate(**batch, max_new_tokens=12).sequences
    assert torch.equal(ids_a, ids_b)
    assert LlavaST.from_pretrained(merged).model.config == exported.config


# ------------------------------------------------------------------ bad samples


def _bad_mix(synth_data: Path, folder: Path, malformed: bool) -> Path:
    import yaml

    records = json.loads((synth_data / "train" / "rec.json").read_text())
    records[1]["image"] = "images/missing.png"
    if malformed:
        records[2]["variables"] = {"spatial_width_output_locations": [2.0]}
    path = folder / "rec_bad.json"
    path.write_text(json.dumps(records))
    mix = folder / "bad.yaml"
    mix.write_text(yaml.safe_dump({"datasets": [{"json_path": str(path), "data_folder": str(synth_data)}]}))
    return mix


def test_skip_bad_counts_and_reports(stage1, train_tools, tokenizer_dir, synth_data, tmp_path) -> None:
    mix = _bad_mix(synth_data, tmp_path, malformed=True)
    n = len(json.loads((synth_data / "train" / "rec.json").read_text()))
    out = tmp_path / "run"
    args = train_tools["overrides"](tokenizer_dir, mix, out, **{"batch.per_device": 1, "schedule.max_steps": n - 1})
    done = train_tools["run_cli"](["train", "--recipe", str(train_tools["recipes"] / "stage1.yaml"), *args,
                                   "--skip-bad", "--no-progress"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["skipped"] == 2  # the malformed record (read) and the missing image (load)
    log = (out / "train.log").read_text()
    assert "rec_bad.json: sample 2" in log and "rec_bad.json: sample 1" in log and "missing.png" in log
    assert _metrics(out)[-1]["skipped"] == 2


def test_a_bad_sample_stops_the_run_naming_file_and_index(stage1, train_tools, tokenizer_dir, synth_data,
                                                          tmp_path, one_thread) -> None:
    mix = _bad_mix(synth_data, tmp_path, malformed=False)
    recipe = _recipe(train_tools, tokenizer_dir, "stage1.yaml", mix, tmp_path / "run",
                     **{"batch.per_device": 1, "schedule.max_steps": 6, "batch.num_workers": 1})
    with pytest.raises(DataError, match=r"rec_bad.json: sample 1 .*images/missing.png"):
        train(recipe, echo=None, progress=False)


# ------------------------------------------------------------------ FSDP


def test_the_trainer_refuses_an_fsdp_engine_it_was_not_launched_with(train_tools, tokenizer_dir, synth_data,
                                                                    tmp_path, monkeypatch) -> None:
    from llava_st.train.loop import make_accelerator

    monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)
    recipe = _recipe(train_tools, tokenizer_dir, "stage1.yaml", synth_data / "stage1.yaml", tmp_path / "r",
                     engine="recipes/engines/fsdp.yaml")
    with pytest.raises(ConfigError, match="accelerate launch --config_file recipes/engines/fsdp.yaml"):
        make_accelerator(recipe)


FSDP_SCRIPT = r'''
import json, sys, torch, torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from llava_st.data.dataset import LengthGroupedBatchSampler, TrainCollator, build_mix_dataset
from llava_st.train.build import build_stage
from llava_st.train.recipe import load_recipe
from llava_st.train.schedule import make_scheduler
from llava_st.train.step import keep_trainables_in_graph, supervised_tokens, training_loss

recipe = load_recipe(sys.argv[1], sys.argv[3:])
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
torch.manual_seed(recipe.seed)
built = build_stage(recipe)
model = built.model
names = {id(p): n for n, p in model.named_parameters()}
group_names = [[names[id(p)] for p in g["params"]] for g in built.groups]
keep_trainables_in_graph(model)  # as the trainer does under FSDP, before sharding
mesh = init_device_mesh("cpu", (world,))
for layer in model.language_model.layers:
    fully_shard(layer, mesh=mesh)
fully_shard(model, mesh=mesh)
params = dict(model.named_parameters())  # now DTensors, sharded over the two processes
groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": [params[n] for n in ns]}
          for g, ns in zip(built.groups, group_names)]
opt = torch.optim.AdamW(groups, lr=recipe.optim.lr, betas=tuple(recipe.optim.betas), eps=recipe.optim.eps)
sched = make_scheduler(opt, recipe.schedule.max_steps, recipe.schedule.warmup_ratio, recipe.schedule.scheduler)
ds = build_mix_dataset(recipe.data.mix, built.processor, seed=recipe.seed)
sampler = LengthGroupedBatchSampler(ds.lengths, recipe.batch.per_device, world, rank, 1, recipe.seed, 0)
collate = TrainCollator(built.processor)
trainable = [p for p in model.parameters() if p.requires_grad]
for step, idx in zip(range(recipe.schedule.max_steps), sampler):
    batch = collate([ds[i] for i in idx])
    n = supervised_tokens(batch["labels"])
    total = torch.tensor(float(n)); dist.all_reduce(total)
    out = training_loss(model, batch)
    (out.loss * n * world / total).backward()  # FSDP averages the gradients over the processes
    torch.nn.utils.clip_grad_norm_(trainable, recipe.optim.max_grad_norm)
    opt.step(); opt.zero_grad(set_to_none=True); sched.step()
full = {n: p.full_tensor() for n, p in model.named_parameters() if p.requires_grad}
if rank == 0:
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in full.items()}, sys.argv[2])
dist.barrier()
dist.destroy_process_group()
# Leave at once: background threads that decoding and gloo started can abort
# the interpreter's normal shutdown ("terminate called without an active exception").
sys.stdout.flush(); sys.stderr.flush()
import os; os._exit(0)
'''


def test_fsdp2_shards_a_stage_over_two_cpu_processes(stage1, train_tools, tokenizer_dir, synth_data, tmp_path,
                                                     one_thread) -> None:
    """Video samples only: every step then uses every trainable parameter on every process, so the
    zero gradients FSDP needs (keep_trainables_in_graph) change nothing and the weights must match."""
    import yaml
    from safetensors.torch import load_file

    from llava_st.train.checkpoint import latest_checkpoint

    _, s1 = stage1
    mix = tmp_path / "videos.yaml"
    mix.write_text(yaml.safe_dump({"datasets": [
        {"json_path": str(synth_data / "train" / f"{task}.json"), "data_folder": str(synth_data), "source": task}
        for task in ("tvg", "tr", "dvc")
    ]}))
    common = {"model.path": str(s1.final_dir), "schedule.max_steps": 3, "lora.dropout": 0.0, "output.save_every": 3}
    single = train(
        _recipe(train_tools, tokenizer_dir, "stage2.yaml", mix, tmp_path / "one", **common, **{"batch.per_device": 2}),
        echo=None, progress=False,
    )
    script = tmp_path / "fsdp_run.py"
    script.write_text(FSDP_SCRIPT)
    out = tmp_path / "fsdp.safetensors"
    args = train_tools["overrides"](tokenizer_dir, mix, tmp_path / "unused", **common, **{"batch.per_device": 1})
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29633",
           str(script), str(train_tools["recipes"] / "stage2.yaml"), str(out), *args]
    done = subprocess.run(cmd, env=train_tools["env"](), cwd=train_tools["repo"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    sharded = load_file(str(out))
    trained = load_file(str(latest_checkpoint(single.run_dir) / "trainable.safetensors"))
    assert sharded.keys() == trained.keys() and any(".lora_" in k for k in sharded)
    worst = max(float((sharded[k] - trained[k]).abs().max()) for k in trained)
    assert worst < 2e-5, worst


def test_keep_trainables_in_graph_gives_unused_parts_zero_gradients(debug_config, samples, batch_tools) -> None:
    from llava_st.train import Trainability, apply_trainability

    torch.manual_seed(0)
    model = LlavaSTModel(debug_config).train()
    apply_trainability(model, Trainability(packer=["spatial", "slow", "fast"], embed_tokens="all"), lr=1e-4)
    image_only = batch_tools["collate"](debug_config, [samples[0]])
    plain = model(**image_only, return_logits=False).loss
    plain.backward()
    assert model.packer.spatial.to_q.fc1.weight.grad is None  # an image never reaches the packer
    model.zero_grad(set_to_none=True)
    handle = keep_trainables_in_graph(model)
    touched = model(**image_only, return_logits=False).loss
    touched.backward()
    handle.remove()
    assert torch.equal(touched.detach(), plain.detach())
    grads = [p.grad for p in model.packer.parameters()]
    assert all(g is not None and not g.any() for g in grads)


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _running(pid: int) -> bool:
    """``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process tree from /proc")
def test_sigterm_stops_the_run_and_its_data_workers(synth_data, tokenizer_dir, train_tools, tmp_path) -> None:
    """``kill`` of a training run (SIGTERM) unwinds it, so its DataLoader worker processes (forked
    by a forkserver) end with it instead of running on, orphaned."""
    import signal
    import time

    out = tmp_path / "run"
    args = train_tools["overrides"](tokenizer_dir, synth_data / "stage1.yaml", out, **{
        "schedule.max_steps": 100000, "batch.num_workers": 2, "output.save_every": 0})
    cmd = [sys.executable, "-m", "llava_st", "train", "--recipe", str(train_tools["recipes"] / "stage1.yaml"),
           *args, "--no-progress"]
    proc = subprocess.Popen(cmd, env=train_tools["env"](), cwd=train_tools["repo"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while not ((out / "metrics.jsonl").exists() and (out / "metrics.jsonl").read_bytes().count(b"\n") >= 2):
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the run wrote no metrics in 240 s"
            time.sleep(0.05)
        workers = _descendants(proc.pid)
        assert workers, "the run has no worker processes to check"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 30
        while workers & _descendants(1) and time.monotonic() < deadline:
            time.sleep(0.2)
        alive = {p for p in workers if _running(p)}
        assert not alive, f"worker processes {sorted(alive)} outlived the run"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_checkpoint_loads_as_the_model_it_held(stage2_reference, synth_data, tmp_path: Path, one_thread) -> None:
    """load_checkpoint_model rebuilds the stage from its recipe and puts the checkpoint's tensors in:
    the last step's checkpoint scores like the exported final model, an earlier one does not."""
    from llava_st.errors import CheckpointError
    from llava_st.processor import LlavaSTProcessor
    from llava_st.train.checkpoint import list_checkpoints, load_checkpoint_model
    from llava_st.train.validation import answer_loss

    _, reference = stage2_reference
    saved = dict(list_checkpoints(reference.run_dir))
    assert {6, 8} <= set(saved)
    held_out = synth_data / "test" / "rec.json"
    final = answer_loss(LlavaSTModel.from_pretrained(reference.final_dir),
                        LlavaSTProcessor.from_pretrained(reference.final_dir), held_out).loss
    model, processor = load_checkpoint_model(saved[8])
    assert not model.training
    assert answer_loss(model, processor, held_out).loss == pytest.approx(final, rel=1e-4)
    assert answer_loss(*load_checkpoint_model(saved[6]), held_out).loss != pytest.approx(final, rel=1e-4)
    copy = tmp_path / "run" / "step-8"
    shutil.copytree(saved[8], copy)
    with pytest.raises(CheckpointError, match="recipe.yaml"):
        load_checkpoint_model(copy)
    # a checkpoint without one of the trainable tensors is refused, not half loaded
    from safetensors.torch import load_file, save_file

    shutil.copy(reference.run_dir / "recipe.yaml", copy.parent / "recipe.yaml")
    weights = load_file(str(copy / "trainable.safetensors"))
    dropped = sorted(weights)[0]
    save_file({k: v for k, v in weights.items() if k != dropped}, str(copy / "trainable.safetensors"))
    with pytest.raises(CheckpointError, match="trainable tensors the checkpoint lacks"):
        load_checkpoint_model(copy)
