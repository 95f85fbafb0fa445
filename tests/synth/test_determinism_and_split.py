"""Same seed -> byte-identical files (whatever the number of workers); the compositional split holds out
its (colour, shape) pairs from every training item."""

from __future__ import annotations

import json
from pathlib import Path

from llava_st.synth import generate

ANNOTATIONS = ("*.json", "*/*.json", "*/*.jsonl", "*.yaml")


def _files(root: Path, patterns) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for pat in patterns for p in sorted(root.glob(pat))}


def test_same_seed_gives_identical_files_with_one_or_two_workers(tiny_dataset, configs, tmp_path):
    again = tmp_path / "again"
    generate(configs.tiny(), again, workers=1, preview=False)
    first, second = _files(tiny_dataset, ANNOTATIONS), _files(again, ANNOTATIONS)
    assert len(first) > 25 and first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []
    media = ("videos/*.mp4", "images/*.png")
    assert _files(tiny_dataset, media) == _files(again, media)


def test_another_seed_gives_other_data(tiny_dataset, configs, tmp_path):
    other = tmp_path / "other"
    generate(configs.tiny(seed=12), other, workers=1, preview=False)
    a, b = _files(tiny_dataset, ANNOTATIONS), _files(other, ANNOTATIONS)
    assert a["train/stvg.json"] != b["train/stvg.json"]
    assert a["stage1.yaml"] == b["stage1.yaml"]  # the mixes name files, not content


def _truth(root: Path):
    for kind in ("videos", "images"):
        for line in (root / f"ground_truth/{kind}.jsonl").read_text().splitlines():
            yield json.loads(line)


def test_training_items_never_show_a_heldout_pair(tiny_dataset):
    held = {tuple(p) for p in json.loads((tiny_dataset / "manifest.json").read_text())["heldout_pairs"]}
    assert held
    train_items = test_items = 0
    for gt in _truth(tiny_dataset):
        shown = {(c, o["shape"]) for o in gt["objects"] for c in o["colours"]}
        if gt["subset"] == "train":
            assert not shown & held, f"{gt['name']} shows held-out pairs {shown & held}"
            train_items += 1
        else:
            target = next(o for o in gt["objects"] if o["role"] == "target")
            assert (target["colour"], target["shape"]) in held, gt["name"]
            test_items += 1
    assert train_items and test_items
    # nor does any training text name one
    for path in sorted((tiny_dataset / "train").glob("*.json")):
        text = path.read_text()
        for colour, shape in held:
            assert f"{colour} {shape}" not in text, (path.name, colour, shape)


def test_test_questions_ask_about_the_heldout_target(tiny_dataset):
    names = {gt["name"]: gt for gt in _truth(tiny_dataset)}
    asked = 0
    for task in ("rec", "reg", "tvg", "tr", "stvg", "svg", "elc"):
        for r in json.loads((tiny_dataset / f"test/{task}.json").read_text()):
            gt = names[r["meta"]["scene"]]
            assert gt["subset"] == "test"
            assert gt["objects"][r["meta"]["object"]]["role"] == "target", (task, r["id"])
            asked += 1
    assert asked >= 14
    train_media = {gt["media"] for gt in names.values() if gt["subset"] == "train"}
    for name in ("st_align_stvg", "st_align_svg", "st_align_elc"):
        for e in json.loads((tiny_dataset / f"eval/{name}.json").read_text()):
            assert e["video_path"] not in train_media
    for im in json.loads((tiny_dataset / "eval/refcoco_style_rec.json").read_text())["images"]:
        assert im["file_name"] not in train_media
