"""The bundled sample clip and image, and the demo's questions about them with their true answers.

The samples are ST-Synth items of the ``embedded`` preset made with a seed no
training run uses (:data:`SAMPLE_SEED`), so the shipped model never saw them.
:func:`write_samples` regenerates the files in ``samples/`` (they are part of
the package); ``demo.json`` lists, per demo question, the task, the question's arguments
and the true answer as the training file has it (text with placeholders and
their values), which :func:`true_result` writes with the model's bin tokens
and reads with the task's own grammar.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..errors import DataError

SAMPLES = Path(__file__).resolve().parent / "samples"
SAMPLE_SEED = 4242
VIDEO = "clip.mp4"
IMAGE = "image.png"
DEMO = "demo.json"
#: Event kinds the sample clip's demo event may be (events whose span is plain to see).
_CLEAR_EVENTS = ("recolour", "appear", "disappear", "move")


def _answer(sample: dict) -> dict:
    """A sample's answer as written in the training file: text with placeholders, output values."""
    keys = ("temporal_output_locations", "spatial_height_output_locations", "spatial_width_output_locations")
    return {"text": sample["conversations"][1]["value"], "values": {k: sample["variables"][k] for k in keys}}


_OUTPUT = re.compile(r"<(TEMP|HEIGHT|WIDTH)-OUTPUT>")
_LISTS = {"TEMP": "temporal_output_locations", "HEIGHT": "spatial_height_output_locations",
          "WIDTH": "spatial_width_output_locations"}


def answer_in_tokens(answer: dict, bins) -> str:
    """The true answer as the model would write it: each placeholder becomes its value's bin token."""
    from ..protocol.bins import value_to_bin
    from ..protocol.tokens import bin_token

    used = {axis: 0 for axis in _LISTS}

    def token(m: re.Match) -> str:
        axis = m.group(1)
        values = answer["values"][_LISTS[axis]]
        if used[axis] >= len(values):
            raise DataError(f"the demo answer {answer['text']!r} has more {axis} placeholders than values")
        v = values[used[axis]]
        used[axis] += 1
        return bin_token(axis, value_to_bin(axis, v, bins))

    return _OUTPUT.sub(token, answer["text"])


def _pick(samples: list[dict], scene: str, task: str) -> dict:
    for s in samples:
        if s["meta"]["scene"] == scene and s["meta"]["task"] == task:
            return s
    raise DataError(f"ST-Synth wrote no {task} sample for scene {scene}")


def write_samples(out: str | Path = SAMPLES, seed: int = SAMPLE_SEED) -> dict[str, Any]:
    """Generate the sample clip and image with ST-Synth and write ``clip.mp4``, ``image.png`` and
    ``demo.json`` into ``out``; returns the demo description."""
    from ..synth import generate
    from ..synth.config import preset

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "synth"
        generate(preset("embedded").replace(seed=seed, num_videos=8, num_images=8), data, workers=1, preview=False)
        truth = {json.loads(line)["name"]: json.loads(line) for f in ("videos", "images")
                 for line in (data / "ground_truth" / f"{f}.jsonl").read_text().splitlines() if line.strip()}
        pool = {t: [s for sub in ("train", "test") if (data / sub / f"{t}.json").is_file()
                    for s in json.loads((data / sub / f"{t}.json").read_text())] for t in ("tvg", "stvg", "elc", "rec")}
        video_scene = None
        for s in pool["tvg"]:
            ev = truth[s["meta"]["scene"]]["events"][s["meta"]["event"]]
            if ev["kind"] in _CLEAR_EVENTS and any(x["meta"]["scene"] == s["meta"]["scene"] for x in pool["elc"]):
                video_scene = s["meta"]["scene"]
                break
        if video_scene is None:
            raise DataError(f"seed {seed}: no clip with a clear event; choose another seed")
        image_scene = pool["rec"][0]["meta"]["scene"]
        shutil.copyfile(data / truth[video_scene]["media"], out / VIDEO)
        shutil.copyfile(data / truth[image_scene]["media"], out / IMAGE)
        tvg, stvg, elc, rec = (_pick(pool[t], video_scene if t != "rec" else image_scene, t)
                               for t in ("tvg", "stvg", "elc", "rec"))
    event = truth[video_scene]["events"][tvg["meta"]["event"]]
    elc_start = elc["variables"]["temporal_input_locations"][0]
    elc_box = [elc["variables"][k][i] for i, k in ((0, "spatial_width_input_locations"),
                                                   (0, "spatial_height_input_locations"),
                                                   (1, "spatial_width_input_locations"),
                                                   (1, "spatial_height_input_locations"))]
    demo = {
        "seed": seed,
        "video": {"file": VIDEO, "scene": video_scene, "fps": truth[video_scene]["fps"],
                  "num_frames": truth[video_scene]["num_frames"]},
        "image": {"file": IMAGE, "scene": image_scene},
        "questions": [
            {"task": "tvg", "media": VIDEO, "query": event["caption"], "truth": _answer(tvg)},
            {"task": "stvg", "media": VIDEO, "query": _stvg_query(stvg), "truth": _answer(stvg)},
            {"task": "rec", "media": IMAGE, "query": _rec_query(rec, truth[image_scene]), "truth": _answer(rec)},
            {"task": "elc", "media": VIDEO, "start": elc_start, "box": elc_box, "truth": _answer(elc)},
        ],
    }
    (out / DEMO).write_text(json.dumps(demo, indent=1) + "\n")
    return demo


def _stvg_query(sample: dict) -> str:
    text = sample["conversations"][0]["value"]
    if "'" not in text:
        raise DataError(f"cannot find the quoted event of STVG sample {sample['id']}")
    return text.split("'")[1]


def _rec_query(sample: dict, scene: dict) -> str:
    return next(o["phrase"] for o in scene["objects"] if o["index"] == sample["meta"]["object"])


def load_demo(folder: str | Path = SAMPLES) -> dict[str, Any]:
    """``demo.json`` of a samples folder, with absolute media paths."""
    folder = Path(folder)
    path = folder / DEMO
    if not path.is_file():
        raise DataError(f"{path}: no demo description; regenerate the samples with write_samples()")
    demo = json.loads(path.read_text())
    for q in demo["questions"]:
        q["path"] = str(folder / q["media"])
    return demo


def true_result(question: dict, answer, bins) -> Any:
    """The true answer of a demo question, read with the task's grammar on the model answer's
    timeline (so it carries seconds and pixels like the model's result); ``bins``: the model's."""
    from ..protocol.answers import parse_answer

    start = question.get("start") if question["task"] == "elc" else None
    text = answer_in_tokens(question["truth"], bins)
    return parse_answer(text, question["task"], bins=bins, timeline=answer.timeline, start=start)
