"""The ``llava_st`` model of lmms-eval, run by lmms-eval's own command on local tasks.

Two tasks (an image one, with a box in the question, and a video one) are
written here as lmms-eval task YAMLs over a JSONL dataset; ``lmms-eval --model
llava_st`` (found through the package's entry point) answers them with a tiny
random model, offline. Its answers must be what ``LlavaST.ask_batch`` gives for
the same media and questions, with coordinates in the release's decimal form.

It needs lmms-eval in the running interpreter: the side venv ``.venv-lmms``, where
``test_lmms_eval_side.py`` runs it from the main suite (``tests/integrations/conftest.py``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import _truthy, write_test_video

if importlib.util.find_spec("lmms_eval") is None:  # only when this file is named explicitly (see conftest.py)
    _why = (
        "lmms-eval is not importable in this interpreter; test_lmms_eval_side.py runs this file under "
        "$LLAVA_ST_LMMS_PYTHON, the side venv's python (see the README's test command)"
    )
    if _truthy(os.environ.get("CI")):
        pytest.fail(f"CI=true: {_why}", pytrace=False)
    pytest.skip(_why, allow_module_level=True)

REPO = Path(__file__).resolve().parents[2]

UTILS = '''
from PIL import Image


def doc_to_visual(doc):
    if doc["kind"] == "image":
        return [Image.open(doc["media"]).convert("RGB")]
    return [doc["media"]]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    return doc["question"]


def process_results(doc, results):
    return {"exact": float(results[0].strip() == doc["answer"])}
'''

TASK = '''task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_visual: !function utils.doc_to_visual
doc_to_text: !function utils.doc_to_text
doc_to_target: answer
generation_kwargs:
  max_new_tokens: 12
  temperature: 0
  do_sample: false
process_results: !function utils.process_results
metric_list:
  - metric: exact
    aggregation: mean
    higher_is_better: true
metadata:
  version: 0.0
'''


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    d = tmp_path_factory.mktemp("lmms-tasks")
    rng = np.random.default_rng(0)
    images = []
    for i in range(3):
        path = d / f"img{i}.png"
        Image.fromarray(rng.integers(0, 255, size=(48, 64, 3), dtype=np.uint8)).save(path)
        images.append(path)
    video = write_test_video(d / "clip.mp4")
    docs = {
        "llava_st_local_image": [
            {"kind": "image", "media": str(images[0]), "question": "What is the object in the region [0.1, 0.2, 0.5, 0.7]?", "answer": "x"},
            {"kind": "image", "media": str(images[1]), "question": "<image>\nWhere is the red cup in this image?", "answer": "x"},
            {"kind": "image", "media": str(images[2]), "question": "Describe this image.", "answer": "x"},
        ],
        "llava_st_local_video": [
            {"kind": "video", "media": str(video), "question": "When does it get bright? Please return the start and end timestamps.", "answer": "x"},
            {"kind": "video", "media": str(video), "question": "What happens during {0.2, 0.6}?", "answer": "x"},
        ],
    }
    for name, rows in docs.items():
        data = d / f"{name}.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        (d / f"{name}.yaml").write_text(TASK.format(name=name, data=data))
    (d / "utils.py").write_text(UTILS)
    return d, docs


def test_lmms_eval_runs_the_adapter_and_matches_ask_batch(tiny_model_dir, tasks, tmp_path):
    from llava_st import LlavaST
    from llava_st.infer import Request
    from llava_st.protocol.bins import release_rewrite
    from llava_st.protocol.tokens import BIN_TOKEN_RE

    task_dir, docs = tasks
    out = tmp_path / "lmms-out"
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_DATASETS_CACHE=str(tmp_path / "datasets-cache"),
               TOKENIZERS_PARALLELISM="false")
    cmd = [sys.executable, "-m", "lmms_eval", "--model", "llava_st",
           "--model_args", f"pretrained={tiny_model_dir},device=cpu,media_workers=0",
           "--tasks", ",".join(docs), "--include_path", str(task_dir), "--batch_size", "2",
           "--log_samples", "--output_path", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    log = proc.stdout[-4000:] + proc.stderr[-4000:]
    assert proc.returncode == 0 and "Error during evaluation" not in proc.stdout + proc.stderr, log  # it logs errors, exit 0

    got: dict[str, dict[int, str]] = {}
    for name in docs:
        files = sorted(out.rglob(f"*samples_{name}.jsonl"))
        assert files, f"no samples log of {name} under {out}: {sorted(p.name for p in out.rglob('*'))}"
        rows = [json.loads(line) for line in files[-1].read_text().splitlines() if line.strip()]
        got[name] = {int(r["doc_id"]): _response(r) for r in rows}
        assert sorted(got[name]) == list(range(len(docs[name])))

    st = LlavaST.from_pretrained(tiny_model_dir)
    bins = st.config.coords.bins
    for name, rows in docs.items():
        reqs = [
            Request(media=Image.open(r["media"]).convert("RGB") if r["kind"] == "image" else r["media"],
                    question=r["question"].replace("<image>", "").strip(), kind=r["kind"])
            for r in rows
        ]
        answers = st.ask_batch(reqs, batch_size=2, num_workers=0, max_new_tokens=12)
        want = [release_rewrite(a.text, bins).split("\n\n")[0] for a in answers]
        assert [got[name][i] for i in range(len(rows))] == want, name
        assert not any(BIN_TOKEN_RE.search(t) for t in want)  # coordinates come back as decimals


def _response(row: dict) -> str:
    resp = row.get("resps") or row.get("filtered_resps")
    while isinstance(resp, list):
        resp = resp[0]
    return resp


def test_adapter_refuses_what_llava_st_cannot_answer(tiny_model_dir):
    from llava_st.errors import ConfigError, MediaError
    from llava_st.integrations.models.llava_st import LlavaSTLmms

    with pytest.raises(ConfigError, match="unknown llava_st model argument"):
        LlavaSTLmms(pretrained=str(tiny_model_dir), device="cpu", temprature="0")
    with pytest.raises(ConfigError, match="coords"):
        LlavaSTLmms(pretrained=str(tiny_model_dir), device="cpu", coords="pixels")
    with pytest.raises(MediaError, match="task 't', document 3: no image or video"):
        LlavaSTLmms._visual([], "lmms-eval task 't', document 3")
    a, b = Image.new("RGB", (8, 8)), Image.new("RGB", (9, 8))
    assert LlavaSTLmms._visual([a, a.copy()], "w").shape == (2, 8, 8, 3)  # same-size images: the frames of a video
    with pytest.raises(MediaError, match="2 visuals"):
        LlavaSTLmms._visual([a, b], "w")
    lm = LlavaSTLmms(pretrained=str(tiny_model_dir), device="cpu")
    assert lm.answer_text("{<TEMP-012><TEMP-056>} done\n\nmore", ["\n\n"]) == "{0.12121,0.56566} done"
    with pytest.raises(NotImplementedError, match="generation tasks"):
        lm.loglikelihood([])
