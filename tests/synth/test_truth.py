"""Ground truth: event spans agree with what is visible, captions and phrases name the right object."""

from __future__ import annotations

import pytest

SIZES = ("small", "medium", "large")


def _visible(obj: dict) -> list[bool]:
    return [b is not None for b in obj["boxes_xyxy"]]


@pytest.mark.parametrize("dataset", ["tiny_dataset", "luma_dataset"])
def test_spans_agree_with_visibility(dataset, request, truth):
    root = request.getfixturevalue(dataset)
    seen_kinds = set()
    for gt in truth(root, "videos"):
        F, fps = gt["num_frames"], gt["fps"]
        assert gt["events"], f"{gt['name']} has no event"
        for ev in gt["events"]:
            s, e = ev["start_frame"], ev["end_frame"]
            vis = _visible(gt["objects"][ev["object"]])
            assert 0 <= s < e < F
            assert ev["start_s"] == pytest.approx(s / fps) and ev["end_s"] == pytest.approx(e / fps)
            assert vis[s] and vis[e], f"{gt['name']} {ev['kind']}: object hidden at an end of [{s}, {e}]"
            if ev["kind"] in ("appear", "enter"):
                assert not any(vis[:s]), f"{gt['name']} {ev['kind']}: visible before frame {s}"
            if ev["kind"] in ("disappear", "leave"):
                assert not any(vis[e + 1 :]), f"{gt['name']} {ev['kind']}: visible after frame {e}"
            if ev["kind"] == "enter":
                box = gt["objects"][ev["object"]]["boxes_xyxy"][s]
                W, H = gt["width"], gt["height"]
                assert box[0] == 0 or box[1] == 0 or box[2] == W or box[3] == H, "an entering object touches the border"
            seen_kinds.add(ev["kind"])
    assert len(seen_kinds) >= 3


def _matches(obj: dict, words: list[str]) -> bool:
    size = next((w for w in words if w in SIZES), None)
    shape = words[-1]
    colours = [w for w in words[:-1] if w not in SIZES]
    if obj["shape"] != shape or (size and obj["size"] != size):
        return False
    return all(c in obj["colours"] for c in colours)


@pytest.mark.parametrize("kind", ["videos", "images"])
def test_phrases_are_unambiguous_and_captions_name_their_object(tiny_dataset, truth, kind):
    for gt in truth(tiny_dataset, kind):
        for obj in gt["objects"]:
            words = obj["phrase"].split()
            assert words[0] == "the" and words[-1] == obj["shape"]
            matching = [o["index"] for o in gt["objects"] if _matches(o, words[1:])]
            assert matching == [obj["index"]], f"{gt['name']}: {obj['phrase']!r} matches objects {matching}"
            assert set(words[1:-1]) <= {obj["size"], obj["colour"]}
        for ev in gt["events"]:
            obj = gt["objects"][ev["object"]]
            assert ev["caption"].startswith(obj["phrase"] + " "), (ev["caption"], obj["phrase"])
            if ev["kind"] == "recolour":
                assert ev["detail"]["colour"] in ev["caption"] and ev["detail"]["colour"] in obj["colours"]
            if ev["kind"] in ("enter", "leave"):
                assert ev["detail"]["side"] in ev["caption"]


def test_no_two_objects_share_all_attributes(tiny_dataset, truth):
    for kind in ("videos", "images"):
        for gt in truth(tiny_dataset, kind):
            triples = [(o["size"], c, o["shape"]) for o in gt["objects"] for c in o["colours"]]
            assert len(triples) == len(set(triples)), gt["name"]


def test_distractors_differ_from_the_target_in_one_attribute(tiny_dataset, truth):
    found = 0
    for kind in ("videos", "images"):
        for gt in truth(tiny_dataset, kind):
            target = next(o for o in gt["objects"] if o["role"] == "target")
            for o in gt["objects"]:
                if o["role"] == "distractor":
                    diff = sum(o[a] != target[a] for a in ("size", "colour", "shape"))
                    assert diff == 1, (gt["name"], o, target)
                    found += 1
    assert found > 0


DIRECTIONS = {
    "to the right": 0,
    "toward the upper right": 45,
    "upward": 90,
    "toward the upper left": 135,
    "to the left": 180,
    "toward the lower left": 225,
    "downward": 270,
    "toward the lower right": 315,
}


def test_motion_events_move_when_and_where_they_say():
    """Rest and motion follow the event span; the caption's direction is the direction of travel."""
    import math

    import numpy as np

    from llava_st.synth import PRESETS, DIFFICULTIES
    from llava_st.synth.sampler import SceneError, sample_scene
    from llava_st.synth.split import heldout_pairs

    cfg = PRESETS["standard"].replace(difficulty=DIFFICULTIES["normal"])
    kinds = set()
    for seed in range(80):
        try:
            scene, _ = sample_scene(np.random.default_rng([seed, 5]), cfg, "video", "train", heldout_pairs(cfg))
        except SceneError:
            continue
        for ev in scene.events:
            if ev.kind not in ("move", "start_moving", "stop_moving"):
                continue
            c = scene.objects[ev.object].centre  # world pixels, [F, 2]
            step = np.linalg.norm(np.diff(c, axis=0), axis=1)  # step[f - 1]: from frame f - 1 to f
            s, e = ev.start, ev.end
            assert np.all(step[s : e] > 0), "moving on every frame of (start, end]"
            if ev.kind in ("move", "start_moving"):
                assert np.all(step[:s] == 0), "at rest up to the start"
            if ev.kind in ("move", "stop_moving"):
                assert np.all(step[e:] == 0), "at rest after the end"
            if ev.kind != "stop_moving":
                d = c[-1] - c[0]
                angle = math.degrees(math.atan2(-d[1], d[0])) % 360
                said = DIRECTIONS[ev.detail["direction"]]
                assert min(abs(angle - said), 360 - abs(angle - said)) <= 22.5 + 1e-9, (ev, angle)
                assert ev.detail["direction"] in ev.caption or ev.kind == "stop_moving"
            kinds.add(ev.kind)
    assert kinds == {"move", "start_moving", "stop_moving"}
