"""DGC: phrase grounding (GLaMM-style matching, mIoU, recall) and caption quality, against computations written here."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llava_st.eval.benchmarks import get_benchmark
from llava_st.eval.scoring import score
from llava_st.protocol.tokens import RELEASE_BINS

from eval_references import slow_box_iou, toolkit

Q = "<image>\nDescribe this image in detail, and give the bounding box of every object you mention."
TRUTH = [
    # (answer in the release's markup, caption with the boxes removed, boxes)
    ("A red circle [0.1, 0.1, 0.3, 0.3] and a blue square [0.5, 0.5, 0.9, 0.9] on a grey background.",
     "A red circle and a blue square on a grey background.", [[0.1, 0.1, 0.3, 0.3], [0.5, 0.5, 0.9, 0.9]]),
    ("A thin line [0.2, 0.5, 0.8, 0.5] crosses a green star [0.4, 0.2, 0.6, 0.8].",
     "A thin line crosses a green star.", [[0.2, 0.5, 0.8, 0.5], [0.4, 0.2, 0.6, 0.8]]),  # a zero-area truth box
    ("An empty white picture.", "An empty white picture.", []),  # no phrase at all
    ("A dot [0.0, 0.0, 0.1, 0.1], a dot [0.2, 0.0, 0.3, 0.1] and one more dot [0.4, 0.0, 0.5, 0.1].",
     "A dot, a dot and one more dot.", [[0.0, 0.0, 0.1, 0.1], [0.2, 0.0, 0.3, 0.1], [0.4, 0.0, 0.5, 0.1]]),
]
ANSWERS = {
    0: "A blue square [0.5, 0.45, 0.9, 0.9] next to a red circle [0.12, 0.1, 0.3, 0.32].<|im_end|>",  # order swapped
    1: "A star [0.4, 0.2, 0.6, 0.8], a line [0.2, 0.5, 0.8, 0.5] and a ghost [0.0, 0.0, 1.0, 1.0].",  # an extra phrase
    2: "A white picture [0.3, 0.3, 0.3, 0.3].",  # a zero-area box where there is nothing
    3: "A dot [0.5, 0.2, 0.1, 0.9].",  # a box ending before it starts: unreadable, a miss
}


def dgc_file(path):
    items = [{"id": i, "image": f"images/{i}.png", "conversations": [{"from": "human", "value": Q}, {"from": "gpt", "value": a}],
              "meta": {"task": "dgc"}} for i, (a, _, _) in enumerate(TRUTH)]
    path.write_text(json.dumps(items))
    return path


def glamm_miou(pred, truth) -> tuple[float, int]:
    """GLaMM's per-image mIoU (pair the largest IoU, delete its row and column, repeat while > 0) and the pairs >= 0.5."""
    m = np.array([[slow_box_iou(p, g) for g in truth] for p in pred]).reshape(len(pred), len(truth))
    paired = []
    while m.size > 0 and np.max(m) > 0:
        r, c = np.unravel_index(np.argmax(m, axis=None), m.shape)
        paired.append(m[r, c])
        m = np.delete(np.delete(m, r, axis=0), c, axis=1)
    return (float(np.mean(paired)) if paired else 0.0), sum(1 for v in paired if v >= 0.5)


def test_dgc_scores_against_the_reference(tmp_path):
    pytest.importorskip("pycocoevalcap")
    bench = get_benchmark("synth-dgc", bins=RELEASE_BINS)
    samples = bench.load(dgc_file(tmp_path / "dgc.json"))
    assert [s.caption for s in samples] == [c for _, c, _ in TRUTH]
    assert [list(map(list, s.boxes)) for s in samples] == [b for _, _, b in TRUTH]
    assert samples[0].question == Q and samples[0].image == "images/0.png"

    rep = score(bench, samples, ANSWERS, "canonical")
    preds = [
        [[0.5, 0.45, 0.9, 0.9], [0.12, 0.1, 0.3, 0.32]],
        [[0.4, 0.2, 0.6, 0.8], [0.2, 0.5, 0.8, 0.5], [0.0, 0.0, 1.0, 1.0]],
        [[0.3, 0.3, 0.3, 0.3]],
        [],
    ]
    per_image = [glamm_miou(p, b) for p, (_, _, b) in zip(preds, TRUTH)]
    n_truth = sum(len(b) for _, _, b in TRUTH)
    n_pred = sum(len(p) for p in preds)
    m = rep["metrics"]
    assert m["mIoU"] == pytest.approx(100 * np.mean([v for v, _ in per_image]), rel=1e-12)
    assert m["Recall@0.5"] == pytest.approx(100 * sum(h for _, h in per_image) / n_truth, rel=1e-12)
    assert m["Precision@0.5"] == pytest.approx(100 * sum(h for _, h in per_image) / n_pred, rel=1e-12)
    assert [r["scores"]["mIoU"] for r in rep["samples"]][2:] == [0.0, 0.0]
    assert rep["samples"][3]["readable"] is False and rep["samples"][3]["hypothesis"] == ""
    hyps = ["A blue square next to a red circle.", "A star, a line and a ghost.", "A white picture.", ""]
    assert [r["hypothesis"] for r in rep["samples"]] == hyps
    want = toolkit([[c] for _, c, _ in TRUTH], hyps)
    for key, value in want.items():
        assert m[key] == pytest.approx(value, rel=1e-12), key


def test_dgc_file_of_another_task_is_refused(tmp_path):
    path = dgc_file(tmp_path / "dgc.json")
    items = json.loads(path.read_text())
    items[1]["meta"]["task"] = "reg"
    path.write_text(json.dumps(items))
    with pytest.raises(ValueError, match=r"sample 1.*meta\.task.*reg samples, not dgc"):
        get_benchmark("synth-dgc", bins=RELEASE_BINS).load(path)
