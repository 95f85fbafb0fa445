"""Decoding video, then forking: DataLoader workers started with ``fork`` must not hang.

The cause this guards against (see :mod:`llava_st.media.video`, "Fork"): FFmpeg
objects that own threads and outlive the call that made them. A forked child
gets a copy of such an object without its threads, and hangs using it (the RGB
converter's thread pool) or freeing it (a decoder's codec context kept alive by
a reference cycle until the garbage collector frees it, in the child). Each one
alone was enough to hang every worker.

The fork runs in a subprocess in its own session, killed with its workers after
a deadline, so a hang fails in seconds instead of blocking the run.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from llava_st.media import load_video

av = pytest.importorskip("av")

#: seconds the whole fork check may take (it needs about 5 on two busy cores)
DEADLINE_S = 25

_SCRIPT = r"""
import gc, json, sys
import numpy as np
import torch
from llava_st.data.dataset import worker_context
from llava_st.media import load_video

paths = json.loads(sys.argv[1])
# the parent decodes first, with FFmpeg's default decoder threads
expected = [load_video(p, 8).frames for p in paths]


class Videos(torch.utils.data.Dataset):
    def __len__(self):
        return 2 * len(paths)

    def __getitem__(self, i):
        gc.collect()  # whatever the parent left for the collector is freed here, in the child
        return torch.from_numpy(load_video(paths[i % len(paths)], 8).frames)


loader = torch.utils.data.DataLoader(
    Videos(), batch_size=None, num_workers=2, multiprocessing_context=worker_context("fork"), timeout=15
)
for i, frames in enumerate(loader):
    assert np.array_equal(frames.numpy(), expected[i % len(paths)]), i
print("ok", i + 1)
"""


def _threads() -> int:
    return len(os.listdir(f"/proc/{os.getpid()}/task"))


@pytest.fixture
def videos(tmp_path: Path) -> list[Path]:
    from conftest import write_test_video

    return [write_test_video(tmp_path / f"v{i}.mp4", num_frames=30) for i in range(2)]


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads through /proc (Linux)")
def test_decoding_leaves_no_ffmpeg_thread_behind(videos) -> None:
    load_video(videos[0], 4)  # the per-thread RGB converter exists from here on
    gc.collect()
    gc.disable()  # the codec context must be freed by reference counting, not by a later collection
    try:
        before = _threads()
        for path in videos:
            load_video(path, 8)
        assert _threads() <= before  # (another test's idle thread may end meanwhile; none may start)
    finally:
        gc.enable()


@pytest.mark.skipif("fork" not in __import__("multiprocessing").get_all_start_methods(), reason="no fork here")
def test_fork_workers_decode_after_the_parent_decoded(videos) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-c", _SCRIPT, json.dumps([str(p) for p in videos])],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,  # its DataLoader workers share the group: one kill ends them all
    )
    try:
        out, _ = proc.communicate(timeout=DEADLINE_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"forked DataLoader workers hung after the parent decoded video:\n{out[-3000:]}")
    assert proc.returncode == 0, out[-3000:]
    assert out.strip().splitlines()[-1] == "ok 4"
