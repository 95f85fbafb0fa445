"""Building a model on the meta device: buffers computed, other threads untouched."""

from __future__ import annotations

import threading

import torch

from llava_st.model import LlavaSTModel
from llava_st.model.checkpoint import build_empty
from llava_st.zoo import debug


def test_meta_build_has_meta_parameters_and_the_real_buffers():
    cfg = debug()
    real = LlavaSTModel(cfg)
    empty = build_empty(cfg)
    assert all(p.is_meta for p in empty.parameters())
    real_buffers = dict(real.named_buffers())
    got = dict(empty.named_buffers())
    assert set(got) == set(real_buffers) and got
    for name, buf in got.items():
        assert buf.device.type == "cpu", name
        assert torch.equal(buf, real_buffers[name]), name


def test_meta_build_in_one_thread_leaves_models_built_in_another_real():
    # The meta device is a thread-local mode: a model built in another thread
    # at the same time must get real parameters (a process-wide patch of
    # nn.Module.register_parameter would put them on meta).
    cfg = debug()
    stop = threading.Event()
    errors: list[BaseException] = []

    def build_meta_models():
        try:
            while not stop.is_set():
                build_empty(cfg)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    worker = threading.Thread(target=build_meta_models)
    worker.start()
    try:
        for _ in range(3):
            model = LlavaSTModel(cfg)
            meta = [n for n, p in model.named_parameters() if p.is_meta]
            assert not meta, meta[:5]
    finally:
        stop.set()
        worker.join()
    assert not errors, errors
