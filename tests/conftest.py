"""Shared test fixtures: the parity fixture folder and small helpers.

Tests never download anything: models and data are either the parity
fixtures (``LLAVA_ST_PARITY_DIR``, default ``../shared/parity`` next to the
checkout) or tiny ones the tests build themselves.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def parity_dir() -> Path:
    """The parity fixture folder: ``$LLAVA_ST_PARITY_DIR`` or ``../shared/parity``."""
    env = os.environ.get("LLAVA_ST_PARITY_DIR")
    return Path(env) if env else (REPO_ROOT.parent / "shared" / "parity")


def parity_cases() -> list[Path]:
    """Every case folder (a folder holding ``case.json``) of the parity fixture set."""
    root = parity_dir()
    if not root.is_dir():
        return []
    return sorted(p.parent for p in root.glob("*/case.json"))


@pytest.fixture(scope="session")
def parity_root() -> Path:
    root = parity_dir()
    if not (root / "model" / "config.json").is_file():
        pytest.fail(
            f"parity fixtures not found at {root}; set LLAVA_ST_PARITY_DIR to the folder holding model/ and the cases"
        )
    return root


def make_tiny_model_dir(folder: Path, num_frames: int = 12, seed: int = 0) -> Path:
    """A tiny random-weight model folder in the release layout (the ``debug`` config) with
    the parity fixture's tokenizer, which has the release token layout for V = 529."""
    import torch

    from llava_st.model import LlavaSTModel
    from llava_st.processor import LlavaSTProcessor
    from llava_st.zoo import debug

    torch.manual_seed(seed)
    model = LlavaSTModel(debug(num_frames=num_frames))
    model.save_pretrained(folder)
    tokenizer_source = LlavaSTProcessor.from_pretrained(parity_dir() / "model")
    LlavaSTProcessor(tokenizer_source.tokenizer, model.config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A saved tiny random model (12 frames, 9x9 patch grid) shared by the tests of a session."""
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny-model"))


def write_test_video(path: Path, num_frames: int = 30, fps: int = 10, size: tuple[int, int] = (64, 48)) -> Path:
    """A small H.264 MP4 whose frame i is a flat grey of level 4 * i (so frames can be told apart)."""
    import av
    import numpy as np

    w, h = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(num_frames):
            img = np.full((h, w, 3), (4 * i) % 256, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def kill_after_records(proc, records_file: Path, count: int, timeout_s: float = 300.0) -> None:
    """SIGKILL ``proc`` once ``records_file`` holds ``count`` lines; fail if it ends first or takes too long."""
    import signal
    import time

    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if records_file.exists() and records_file.read_bytes().count(b"\n") >= count:
                break
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.02)
        else:
            pytest.fail(f"{count} records did not appear in {records_file} within {timeout_s:.0f} s")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
