"""A load test on the loopback address: ``llava-st serve`` in its own process on the tiny model,
200 requests at concurrency 16 (a quarter of them uploads).

No error other than the intended 429s, and every accepted answer equal to the
single-request answer of the same input (that input sent alone). A second run
with a queue of 4 makes 429s happen and checks that the accepted requests are
still answered right. ``bench/serve_load.py`` measures the same load.
"""

from __future__ import annotations

import asyncio
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import write_test_video
from llava_st.serve.loadgen import ServerProcess, build_calls, mismatches, reference_answers, run_load, summarise

pytestmark = pytest.mark.slow

QUESTIONS = ["What happens?", "Where is the object?"]


@pytest.fixture(scope="module")
def load_root(tmp_path_factory):
    from llava_st.serve.samples import render_samples

    root = tmp_path_factory.mktemp("load-media")
    names = []
    for s in render_samples(root / "synth"):
        names.append(f"{s.kind}.{s.path.suffix.lstrip('.')}")
        shutil.copy(s.path, root / names[-1])
    write_test_video(root / "grey.mp4", num_frames=20, fps=10, size=(48, 32))
    Image.fromarray(np.full((30, 40, 3), 77, dtype=np.uint8)).save(root / "flat.png")
    return root, names + ["grey.mp4", "flat.png"]


def test_200_requests_at_concurrency_16(tiny_model_dir, load_root, tmp_path) -> None:
    root, names = load_root
    calls = build_calls(root, names, QUESTIONS, 200, upload_every=4, max_new_tokens=8)
    args = ["--model", str(tiny_model_dir), "--media-root", str(root), "--max-batch", "16",
            "--upload-dir", str(tmp_path)]
    with ServerProcess(args, tmp_path.parent / "load-server.log") as server:
        reference = reference_answers(server.url, calls)
        assert len(reference) == 2 * len(names) * len(QUESTIONS)
        outcomes, wall = asyncio.run(run_load(server.url, calls, 16))
        stats = server.health()["stats"]
    summary = summarise(outcomes, wall)
    print("load:", summary, "batches:", stats)
    assert mismatches(outcomes, reference) == []
    assert summary["requests"] == 200 and set(summary["statuses"]) <= {"200", "429"}
    assert stats["mean_batch"] > 1.5, stats  # concurrent requests were batched
    assert list(tmp_path.iterdir()) == []  # no upload left behind

    with ServerProcess(args + ["--max-queue", "4"], tmp_path.parent / "load-server-small-queue.log") as server:
        outcomes, wall = asyncio.run(run_load(server.url, calls[:100], 16))
    summary = summarise(outcomes, wall)
    print("small queue:", summary)
    assert mismatches(outcomes, reference) == []
    assert summary["statuses"].get("429", 0) > 0 and summary["statuses"].get("200", 0) > 0
    assert all(o.body["error"]["code"] == "queue_full" for o in outcomes if o.status == 429)
    assert list(tmp_path.iterdir()) == []
