"""bench/embedded_diagnostics.py's REC answer analysis on a hand-made run folder whose answers
land on the named object, on another object and on the background."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def diagnostics(load_bench):
    return load_bench("embedded_diagnostics")


def _object(phrase: str, box: list[int]) -> dict:
    colour, shape = phrase.split()[-2:] if len(phrase.split()) == 3 else ("grey", phrase.split()[-1])
    return {"phrase": phrase, "boxes_xyxy": [box], "colour": colour, "shape": shape, "size": "medium"}


def _run(tmp_path: Path, answers: list[list[float] | None]) -> Path:
    """Image 0: a red square (named) at the left, a blue circle at the right; image 1: three objects,
    the named green star at the top left. ``answers``: boxes in [0, 1] (None: unreadable)."""
    scenes = [
        {"media": "images/0.png", "width": 100, "height": 100,
         "objects": [_object("the red square", [0, 0, 40, 40]), _object("the blue circle", [60, 60, 100, 100])]},
        {"media": "images/1.png", "width": 100, "height": 100,
         "objects": [_object("the green star", [0, 0, 20, 20]), _object("the star", [50, 0, 70, 20]),
                     _object("the ring", [0, 50, 20, 70])]},
    ]
    images = [{"id": 0, "file_name": "images/0.png", "caption": "the red square"},
              {"id": 1, "file_name": "images/1.png", "caption": "the green star"}]
    data = tmp_path / "eval-data"
    (data / "eval").mkdir(parents=True)
    (data / "ground_truth").mkdir()
    (data / "eval" / "refcoco_style_rec.json").write_text(json.dumps({"images": images, "annotations": []}))
    (data / "ground_truth" / "images.jsonl").write_text("".join(json.dumps(s) + "\n" for s in scenes))
    preds = tmp_path / "eval" / "synth-rec"
    preds.mkdir(parents=True)
    lines = [{"id": i % 2, "parsed": {"box": box} if box else None} for i, box in enumerate(answers)]
    (preds / "predictions.jsonl").write_text("".join(json.dumps(p) + "\n" for p in lines))
    return tmp_path


def test_answers_are_split_into_named_other_object_and_background(diagnostics, tmp_path):
    run = _run(tmp_path, [
        [0.0, 0.0, 0.4, 0.4],    # image 0: exactly the named square (IoU 1)
        [0.5, 0.0, 0.7, 0.2],    # image 1: exactly the other star (centre in it, not in the named one)
        [0.4, 0.4, 0.6, 0.6],    # image 0: the background between the two objects
        [0.0, 0.0, 0.1, 0.1],    # image 1: a quarter of the named star (centre inside, IoU 0.25)
        None,                    # image 0: unreadable
    ])
    # the scorer writes a parse failure as a record without a box
    path = run / "eval" / "synth-rec" / "predictions.jsonl"
    lines = path.read_text().splitlines()
    lines[-1] = json.dumps({"id": 0, "readable": False, "parsed": {"type": "ParseFailure", "reason": "ends before"}})
    path.write_text("\n".join(lines) + "\n")
    got = diagnostics.rec_answers(run)
    assert got["samples"] == 5
    assert got["centre_in_named"] == pytest.approx(2 / 5)
    assert got["centre_in_some_object"] == pytest.approx(3 / 5)
    # picking one of the image's objects at random: 3/5 inside some object times the mean of 1/objects
    assert got["named_if_random_object"] == pytest.approx(3 / 5 * (1 / 2 + 1 / 3 + 1 / 2 + 1 / 3 + 1 / 2) / 5)
    assert got["acc50_named"] == pytest.approx(1 / 5)
    assert got["acc50_some_object"] == pytest.approx(2 / 5)
    assert got["acc50_when_centre_in_named"] == pytest.approx(1 / 2)
    # the one answer on another object: "the star" (grey) against the named green star
    assert got["wrong_object_differs_in"] == {"colour": pytest.approx(1 / 5)}


def test_a_wrong_object_is_the_smallest_box_holding_the_centre(diagnostics, tmp_path):
    run = _run(tmp_path, [[0.55, 0.55, 0.65, 0.65]])
    path = run / "eval-data" / "ground_truth" / "images.jsonl"
    scenes = [json.loads(line) for line in path.read_text().splitlines()]
    # a large red circle under the blue circle: the answer's centre is in both
    scenes[0]["objects"].append(_object("the red circle", [40, 40, 100, 100]))
    path.write_text("".join(json.dumps(s) + "\n" for s in scenes))
    got = diagnostics.rec_answers(run)
    assert got["wrong_object_differs_in"] == {"colour+shape": 1.0}


def test_patches_are_counted_by_whether_their_pair_is_held_out(diagnostics):
    """Four object patches (two of a held-out pair) and a background patch; the head is right on
    three of the four colours and on the seen pair's shapes only."""
    import torch

    from llava_st.synth.targets import DenseTargets

    colour = torch.tensor([[1, 1, 2, 2, 0]])
    shape = torch.tensor([[3, 3, 4, 4, 0]])
    size = torch.tensor([[1, 1, 1, 1, 0]])
    target = DenseTargets(colour=colour, shape=shape, size=size, box=torch.zeros(1, 5, 4),
                          referred=torch.zeros(1, 5), visible=torch.ones(1), has_object=True)
    heldout = torch.tensor([1 * 100 + 3])  # colour 1 with shape 3
    onehot = lambda ids, n: torch.nn.functional.one_hot(torch.tensor(ids), n).float()  # noqa: E731
    scores = (onehot([1, 5, 2, 2, 0], 9), onehot([2, 2, 4, 4, 0], 7), onehot([1, 1, 1, 1, 0], 4))
    right, total = diagnostics.Counter(), diagnostics.Counter()
    diagnostics.count_patches(scores, target, heldout, right, total)
    assert total["all", "colour"] == 4 and right["all", "colour"] == 3
    assert (right["heldout_pair", "colour"], total["heldout_pair", "colour"]) == (1, 2)
    assert (right["heldout_pair", "shape"], total["heldout_pair", "shape"]) == (0, 2)
    assert (right["seen_pair", "shape"], total["seen_pair", "shape"]) == (2, 2)
    assert right["all", "size"] == total["all", "size"] == 4


def test_an_ambiguous_phrase_is_an_error(diagnostics, tmp_path):
    run = _run(tmp_path, [[0.0, 0.0, 0.4, 0.4]])
    path = run / "eval-data" / "ground_truth" / "images.jsonl"
    scenes = [json.loads(line) for line in path.read_text().splitlines()]
    scenes[0]["objects"][1]["phrase"] = "the red square"
    path.write_text("".join(json.dumps(s) + "\n" for s in scenes))
    with pytest.raises(SystemExit, match="2 objects have the phrase"):
        diagnostics.rec_answers(run)


def test_the_memorisation_check_asks_for_each_training_image_once(diagnostics, tmp_path):
    """The REC file written from a training split: one question per image (the first), its
    object's phrase and its box as [x, y, w, h]; asking for more images than exist is an error."""
    data = tmp_path / "data"
    (data / "train").mkdir(parents=True)
    (data / "ground_truth").mkdir()
    scenes = [{"media": f"images/{i}.png", "width": 96, "height": 96,
               "objects": [_object("the red square", [10, 20, 30, 50]), _object("the blue circle", [60, 60, 90, 80])]}
              for i in range(2)]
    (data / "ground_truth" / "images.jsonl").write_text("".join(json.dumps(s) + "\n" for s in scenes))
    items = [{"image": "images/0.png", "meta": {"object": 1}}, {"image": "images/0.png", "meta": {"object": 0}},
             {"image": "images/1.png", "meta": {"object": 0}}]
    (data / "train" / "rec.json").write_text(json.dumps(items))
    diagnostics.rec_file_from_training_split(data, 2)
    got = json.loads((data / "eval" / "refcoco_style_rec.json").read_text())
    assert [(i["file_name"], i["caption"]) for i in got["images"]] == [("images/0.png", "the blue circle"),
                                                                      ("images/1.png", "the red square")]
    assert [a["bbox"] for a in got["annotations"]] == [[60, 60, 30, 20], [10, 20, 20, 30]]
    with pytest.raises(SystemExit, match="only 2 training REC images"):
        diagnostics.rec_file_from_training_split(data, 3)


def _video_run(tmp_path: Path) -> Path:
    """One held-out clip: object 0 "the red square" at [0, 0, 20, 20] on frames 0-2 (not drawn on
    frame 3), object 1 "the blue circle" at [50, 50, 70, 70]; its event is an appear, a second
    clip's a move. Answers: STVG boxes on frames 0 (exactly the square), 1 (on the circle),
    2 (the background) and 3 (the square is not drawn: not counted); TVG spans for both clips."""
    square = {"phrase": "the red square", "boxes_xyxy": [[0, 0, 20, 20]] * 3 + [None]}
    circle = {"phrase": "the blue circle", "boxes_xyxy": [[50, 50, 70, 70]] * 4}
    scenes = [{"media": f"videos/{n}.mp4", "objects": [square, circle],
               "events": [{"kind": kind, "object": 0, "caption": f"the red square {verb}"}]}
              for n, (kind, verb) in enumerate((("appear", "appears"), ("move", "moves left")))]
    data = tmp_path / "eval-data"
    (data / "eval").mkdir(parents=True)
    (data / "ground_truth").mkdir()
    (data / "ground_truth" / "videos.jsonl").write_text("".join(json.dumps(s) + "\n" for s in scenes))
    truth = [{"image_id": "0.mp4", "caption": "The red square appears.", "timestamp": [0.0, 0.5]},
             {"image_id": "1.mp4", "caption": "The red square moves left.", "timestamp": [0.2, 0.6]}]
    (data / "eval" / "charades_sta_style_tvg.json").write_text(json.dumps(truth))
    boxes = {"0": [0, 0, 20, 20], "1": [55, 55, 65, 65], "2": [30, 30, 40, 40], "3": [0, 0, 20, 20]}
    stvg = {"id": 0, "prompt": "<video>\nWhen and where: the red square appears?",
            "media": {"path": "x/videos/0.mp4"}, "parsed": {"boxes": boxes}}
    for bench, lines in (("synth-stvg", [stvg]),
                         ("synth-tvg", [{"id": 0, "scores": {"iou": 0.8}}, {"id": 1, "scores": {"iou": 0.2}}]),
                         ("constant-synth-tvg", [{"id": 0, "scores": {"iou": 0.4}}, {"id": 1, "readable": False}])):
        (tmp_path / "eval" / bench).mkdir(parents=True)
        (tmp_path / "eval" / bench / "predictions.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return tmp_path


def test_track_answers_count_frames_where_the_object_is_drawn(diagnostics, tmp_path):
    got = diagnostics.track_answers(_video_run(tmp_path), "synth-stvg")
    assert (got["samples"], got["frames"]) == (1, 3)
    assert got["centre_in_named"] == pytest.approx(1 / 3) and got["centre_in_other_object"] == pytest.approx(1 / 3)
    assert got["mean_iou"] == pytest.approx(1 / 3) and got["acc50_when_centre_in_named"] == 1.0


def test_tvg_by_event_splits_model_and_constant_by_the_events_kind(diagnostics, tmp_path):
    got = diagnostics.tvg_by_event(_video_run(tmp_path))
    assert got["appear"] == pytest.approx({"samples": 1, "miou": 0.8, "r50": 1.0, "constant_miou": 0.4,
                                           "constant_r50": 0.0, "mean_span": 0.5})
    # an unreadable constant answer scores 0
    assert got["move"]["constant_miou"] == 0.0 and got["move"]["miou"] == pytest.approx(0.2)


def test_a_video_question_about_another_object_is_an_error(diagnostics, tmp_path):
    run = _video_run(tmp_path)
    path = run / "eval" / "synth-stvg" / "predictions.jsonl"
    path.write_text(path.read_text().replace("the red square appears", "the blue circle appears"))
    with pytest.raises(SystemExit, match="does not name object 0"):
        diagnostics.track_answers(run, "synth-stvg")
