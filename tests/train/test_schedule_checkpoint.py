"""The learning-rate schedule, and the checkpoint pieces that must round-trip exactly."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from llava_st.train.checkpoint import (
    _join_optimizer_state,
    _split_optimizer_state,
    latest_checkpoint,
    list_checkpoints,
    prune_checkpoints,
    rng_state,
    set_rng_state,
)
from llava_st.train.schedule import WarmupSchedule, make_scheduler


def test_warmup_then_cosine() -> None:
    s = WarmupSchedule(100, 0.03, "cosine")
    assert s.warmup_steps == 3
    assert [s(i) for i in range(3)] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert s(3) == 1.0 and s(100) == pytest.approx(0.0, abs=1e-12)
    assert s(3 + 97 // 2) == pytest.approx(0.5 * (1 + math.cos(math.pi * (97 // 2) / 97)))
    assert WarmupSchedule(10, 0.0, "linear")(5) == pytest.approx(0.5)
    assert WarmupSchedule(10, 0.2, "constant")(9) == 1.0


def test_scheduler_state_is_json_and_resumes() -> None:
    import json

    p = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.AdamW([{"params": [p], "lr": 1e-3}, {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 1e-4}])
    a = make_scheduler(opt, 20, 0.1, "cosine")
    for _ in range(7):
        opt.step()
        a.step()
    state = json.loads(json.dumps(a.state_dict()))
    opt2 = torch.optim.AdamW([{"params": [p], "lr": 1e-3}, {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 1e-4}])
    b = make_scheduler(opt2, 20, 0.1, "cosine")
    b.load_state_dict(state)
    opt.step(), a.step(), opt2.step(), b.step()
    assert a.get_last_lr() == b.get_last_lr()


def test_optimizer_state_round_trips_through_tensors_and_json() -> None:
    import json

    w = torch.nn.Parameter(torch.randn(3, 2))
    opt = torch.optim.AdamW([{"params": [w], "lr": 1e-3, "name": "packer"}], betas=(0.8, 0.9))
    w.grad = torch.randn(3, 2)
    opt.step()
    osd = {"state": {"w": opt.state_dict()["state"][0]}, "param_groups": [{**opt.state_dict()["param_groups"][0], "params": ["w"]}]}
    tensors, plain = _split_optimizer_state(osd)
    back = _join_optimizer_state(tensors, json.loads(json.dumps(plain)))
    assert back["param_groups"][0]["betas"] == (0.8, 0.9) and back["param_groups"][0]["name"] == "packer"
    for key, value in osd["state"]["w"].items():
        assert torch.equal(back["state"]["w"][key], value)


def test_generator_states_round_trip() -> None:
    plain, tensors = rng_state()
    expected = (random.random(), float(np.random.rand()), torch.rand(3))
    random.random(), np.random.rand(), torch.rand(3)
    set_rng_state(plain, tensors)
    got = (random.random(), float(np.random.rand()), torch.rand(3))
    assert got[:2] == expected[:2] and torch.equal(got[2], expected[2])


def test_only_complete_checkpoints_count_and_the_last_k_are_kept(tmp_path: Path) -> None:
    for step in (3, 6, 9, 12):
        (tmp_path / f"step-{step}").mkdir()
        (tmp_path / f"step-{step}" / "trainer_state.json").write_text("{}")
    (tmp_path / "step-15.tmp").mkdir()  # an interrupted save
    (tmp_path / "step-18").mkdir()  # no trainer_state.json: not complete
    assert latest_checkpoint(tmp_path) == tmp_path / "step-12"
    assert [p.name for p in prune_checkpoints(tmp_path, 2)] == ["step-3", "step-6"]
    assert [s for s, _ in list_checkpoints(tmp_path)] == [9, 12]
    assert prune_checkpoints(tmp_path, 0) == []
