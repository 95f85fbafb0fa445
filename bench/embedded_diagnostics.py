"""Where the embedded model fails: finding objects, choosing the named one, or seeing them; in time.

Reads a ``llava-st build-tiny`` folder and reports, on its held-out set:

* ``rec_answers`` (from the finished evaluation's REC predictions, ``eval/synth-rec``): how
  often the centre of the answered box lies inside the named object's box, inside some
  object's box, and what picking one of the image's objects at random would give
  (``named_if_random_object``: the share inside some object times the mean of 1 / objects);
  Acc@0.5 against the named object and against the best-fitting object, and Acc@0.5 among
  the answers whose centre is inside the named object (how precise the box is once found);
  and, for the answers centred on another object (the smallest box holding the centre), the
  share of all samples by the attributes in which that object differs from the named one
  (``wrong_object_differs_in``: the distractors of ST-Synth differ in exactly one);
* ``tower`` (from a training checkpoint that holds stage 0's auxiliary heads, by default the
  last one of ``stage0``, or ``--checkpoint``): per-patch accuracy of the attribute head on
  the projected tower features, over the patches an object covers, for colour, shape and
  size, next to the most frequent class's share (what a head that ignores the pixels gets);
  the same on the patches of objects whose colour-shape pair the training split never shows
  (``heldout_pair``) and of the others (``seen_pair``), and on training images
  (``training_images``): the gap between them is what the tower failed to compose;
* ``pointer`` (same checkpoint): the mean probability mass the pointer head puts on the
  named object's visual tokens and on any object's, at the answer positions that predict
  a box coordinate;
* ``stvg_answers``, ``svg_answers`` (from the evaluation's predictions): per answered frame on
  which the asked object is drawn, how often the box is centred on it or on another object,
  the mean IoU, and Acc@0.5 among the boxes centred on it (finding against fitting, in video);
* ``tvg_by_event``: held-out TVG by the kind of the asked event (appear, move, recolour, ...),
  the model beside the best constant span;
* ``memorisation`` (with ``--memorisation N``): the REC answer analysis above for the REC
  step's model (``stage0-rec/final``) on the first N images of the REC step's own training
  set and on N fresh images of the same preset (seed :data:`FRESH_SEED`, used nowhere else,
  training split, so no held-out pair): a model that learnt the images rather than the
  choosing scores far higher on the first.

Writes ``bench/results/embedded_diagnostics.json`` (or ``--out``). ``--tower-only`` reports
the tower alone, for a tower-step checkpoint (whose LLM and pointer never trained).

    python bench/embedded_diagnostics.py --run runs/embedded --samples 128
    python bench/embedded_diagnostics.py --run runs/embedded --tower-only \
        --checkpoint runs/embedded/stage0-tower/step-2500 --out bench/results/embedded_tower.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections import Counter
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import RESULTS, machine  # noqa: E402

ATTRIBUTES = ("colour", "shape", "size")
#: ST-Synth seed of the fresh images of the memorisation check (no build uses it).
FRESH_SEED = 2000


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def scenes_by_media(data: Path, kind: str = "images") -> dict[str, dict]:
    """The ``kind`` (``images`` or ``videos``) scenes of an ST-Synth folder's ground truth, by
    media path (``images/000007.png``, ``videos/000120.mp4``)."""
    scenes = {}
    for line in (data / "ground_truth" / f"{kind}.jsonl").read_text().splitlines():
        if line.strip():
            scene = json.loads(line)
            scenes[scene["media"]] = scene
    return scenes


def rec_answers(run: Path) -> dict:
    """The REC answer analysis of the module docstring, over every scored prediction."""
    data = run / "eval-data"
    images = json.loads((data / "eval" / "refcoco_style_rec.json").read_text())["images"]
    by_id = {im["id"]: im for im in images}
    scenes = scenes_by_media(data)
    counts, wrong = Counter(), Counter()
    precise = []
    for line in (run / "eval" / "synth-rec" / "predictions.jsonl").read_text().splitlines():
        pred = json.loads(line)
        image = by_id[pred["id"]]
        scene = scenes[image["file_name"]]
        named = [o for o in scene["objects"] if o["phrase"] == image["caption"]]
        if len(named) != 1:
            raise SystemExit(f"image {image['file_name']}: {len(named)} objects have the phrase {image['caption']!r}")
        counts["samples"] += 1
        counts["inverse_objects"] += 1 / len(scene["objects"])
        parsed = pred.get("parsed") if pred.get("readable", True) else None
        if not parsed or "box" not in parsed:  # unreadable (the scorer's parse failure record has no box)
            continue
        w, h = scene["width"], scene["height"]
        box = [v * s for v, s in zip(parsed["box"], (w, h, w, h))]
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        boxes = [o["boxes_xyxy"][0] for o in scene["objects"]]
        inside = [b[0] <= cx <= b[2] and b[1] <= cy <= b[3] for b in boxes]
        target = named[0]["boxes_xyxy"][0]
        in_named = target[0] <= cx <= target[2] and target[1] <= cy <= target[3]
        counts["in_named"] += in_named
        counts["in_some_object"] += any(inside)
        counts["hit_named"] += _iou(box, target) >= 0.5
        counts["hit_some_object"] += max(_iou(box, b) for b in boxes) >= 0.5
        if in_named:
            precise.append(_iou(box, target) >= 0.5)
        elif any(inside):
            chosen = min((o for o, hit in zip(scene["objects"], inside) if hit),
                         key=lambda o: (o["boxes_xyxy"][0][2] - o["boxes_xyxy"][0][0])
                         * (o["boxes_xyxy"][0][3] - o["boxes_xyxy"][0][1]))
            differs = [a for a in ATTRIBUTES if chosen.get(a) != named[0].get(a)]
            wrong["+".join(differs) or "nothing"] += 1
    n = counts["samples"]
    return {
        "samples": n,
        "centre_in_named": counts["in_named"] / n,
        "centre_in_some_object": counts["in_some_object"] / n,
        "named_if_random_object": counts["in_some_object"] / n * counts["inverse_objects"] / n,
        "acc50_named": counts["hit_named"] / n,
        "acc50_some_object": counts["hit_some_object"] / n,
        "acc50_when_centre_in_named": sum(precise) / len(precise) if precise else None,
        "wrong_object_differs_in": {k: v / n for k, v in sorted(wrong.items())},
    }


def _target(scene: dict, prompt: str) -> dict:
    """The object a held-out video question is about: ST-Synth's test split asks about object 0."""
    target = scene["objects"][0]
    if target["phrase"].removeprefix("the ") not in prompt:
        raise SystemExit(f"{scene['media']}: the question {prompt!r} does not name object 0 ({target['phrase']!r})")
    return target


def track_answers(run: Path, bench: str) -> dict:
    """Per answered frame of the held-out STVG or SVG answers (``eval/<bench>``), on the frames
    where the asked object is drawn: how often the box's centre lies inside it, inside another
    object only, or on neither; the mean IoU; and Acc@0.5 among the boxes centred on it."""
    scenes = scenes_by_media(run / "eval-data", "videos")
    counts, ious, precise = Counter(), [], []
    for line in (run / "eval" / bench / "predictions.jsonl").read_text().splitlines():
        pred = json.loads(line)
        scene = scenes[f"videos/{Path(pred['media']['path']).name}"]
        target = _target(scene, pred["prompt"])
        counts["samples"] += 1
        boxes = ((pred.get("parsed") or {}).get("boxes") or {}) if pred.get("readable", True) else {}
        for frame, box in boxes.items():
            truth = target["boxes_xyxy"][int(frame)]
            if truth is None:
                continue
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            inside = lambda b: b is not None and b[0] <= cx <= b[2] and b[1] <= cy <= b[3]  # noqa: E731
            counts["frames"] += 1
            if inside(truth):
                counts["in_named"] += 1
                precise.append(_iou(box, truth) >= 0.5)
            elif any(inside(o["boxes_xyxy"][int(frame)]) for o in scene["objects"][1:]):
                counts["in_other_object"] += 1
            ious.append(_iou(box, truth))
    n = counts["frames"]
    return {
        "samples": counts["samples"],
        "frames": n,
        "centre_in_named": counts["in_named"] / n,
        "centre_in_other_object": counts["in_other_object"] / n,
        "mean_iou": sum(ious) / n,
        "acc50_when_centre_in_named": sum(precise) / len(precise) if precise else None,
    }


def tvg_by_event(run: Path) -> dict:
    """Held-out TVG by the kind of the asked event: mIoU and R@0.5 of the model and of the best
    constant span (``eval/constant-synth-tvg``), and the mean length of the true span."""
    scenes = scenes_by_media(run / "eval-data", "videos")
    truth = json.loads((run / "eval-data" / "eval" / "charades_sta_style_tvg.json").read_text())
    rows: dict[str, list] = {}
    paths = (run / "eval" / "synth-tvg" / "predictions.jsonl", run / "eval" / "constant-synth-tvg" / "predictions.jsonl")
    model, constant = ([json.loads(x) for x in p.read_text().splitlines() if x.strip()] for p in paths)
    for ours, const in zip(model, constant):
        item = truth[ours["id"]]
        if const["id"] != ours["id"]:
            raise SystemExit(f"{paths[1]}: predictions are not in the model's order")
        caption = item["caption"].rstrip(".").lower()
        kinds = [e["kind"] for e in scenes[f"videos/{item['image_id']}"]["events"] if e["caption"].lower() == caption]
        if not kinds:
            raise SystemExit(f"{item['image_id']}: no event has the caption {item['caption']!r}")
        score = lambda p: p["scores"]["iou"] if p.get("readable", True) else 0.0  # noqa: E731
        rows.setdefault(kinds[0], []).append((score(ours), score(const), item["timestamp"][1] - item["timestamp"][0]))
    out = {}
    for kind, r in sorted(rows.items()):
        out[kind] = {
            "samples": len(r),
            "miou": sum(a for a, _, _ in r) / len(r), "r50": sum(a >= 0.5 for a, _, _ in r) / len(r),
            "constant_miou": sum(b for _, b, _ in r) / len(r), "constant_r50": sum(b >= 0.5 for _, b, _ in r) / len(r),
            "mean_span": sum(c for _, _, c in r) / len(r),
        }
    return out


def heldout_pair_ids(data: Path) -> torch.Tensor:
    """int64 ``[K]``: the held-out colour-shape pairs of an ST-Synth folder (its manifest) as
    ``colour_id * 100 + shape_id`` in the ids of the dense targets."""
    from llava_st.synth.targets import COLOUR_IDS, SHAPE_IDS

    pairs = json.loads((data / "manifest.json").read_text())["heldout_pairs"]
    return torch.tensor([COLOUR_IDS[c] * 100 + SHAPE_IDS[s] for c, s in pairs], dtype=torch.long)


def count_patches(scores, target, heldout: torch.Tensor, right: Counter, total: Counter) -> None:
    """Add one sample's per-patch attribute hits to ``right`` and ``total``, keyed
    ``(part, attribute)`` with part ``all``, ``heldout_pair`` or ``seen_pair`` (the patches
    of objects whose colour-shape pair is, or is not, in ``heldout``); ``scores``: the
    attribute head's colour, shape and size logits ``[P, classes]``."""
    held = torch.isin(target.colour.reshape(-1) * 100 + target.shape.reshape(-1), heldout)
    for c, name in enumerate(ATTRIBUTES):
        goal = getattr(target, name).reshape(-1)
        hit = scores[c].argmax(-1) == goal
        covered = goal > 0
        for part, mask in (("all", covered), ("heldout_pair", covered & held), ("seen_pair", covered & ~held)):
            right[part, name] += int(hit[mask].sum())
            total[part, name] += int(mask.sum())


def _batches(model, processor, files: tuple[Path, Path], samples: int):
    """The first ``samples`` REC samples of ``files`` (``(task file, its ST-Synth folder)``),
    collated 16 at a time, with their dense targets."""
    from llava_st.data.dataset import TrainCollator, file_dataset
    from llava_st.train.auxiliary import DenseTargetSource

    json_path, root = files
    dataset = file_dataset(json_path, root, processor, limit=samples, targets=DenseTargetSource(model.config))
    collate = TrainCollator(processor)
    for start in range(0, len(dataset), 16):
        yield collate([dataset[i] for i in range(start, min(start + 16, len(dataset)))])


def _accuracy(right: Counter, total: Counter, part: str) -> dict | None:
    if not all(total[part, a] for a in ATTRIBUTES):
        return None
    return {a: right[part, a] / total[part, a] for a in ATTRIBUTES}


@torch.no_grad()
def tower_and_pointer(checkpoint: Path, data: Path, samples: int, training: Path | None = None) -> tuple[dict, dict]:
    """Per-patch attribute accuracy and pointer mass on the first ``samples`` held-out REC samples
    of ``data`` (and the attribute accuracy on the first ``samples`` training images of
    ``training``, an ST-Synth folder, when given)."""
    from llava_st.model.modeling import written_positions
    from llava_st.train.auxiliary import ATTRIBUTE, Capture, per_sample_features
    from llava_st.train.checkpoint import load_checkpoint_model

    model, processor = load_checkpoint_model(checkpoint)
    heads = getattr(model, ATTRIBUTE, None)
    if heads is None:
        raise SystemExit(f"{checkpoint}: its recipe has no auxiliary heads (not a stage-0 checkpoint)")
    heldout = heldout_pair_ids(data)
    keys = ("input_ids", "attention_mask", "coord_values", "pixel_values", "modalities")
    tower = {"checkpoint": str(checkpoint)}
    named_mass, object_mass, rows = 0.0, 0.0, 0
    sets = [("held_out_images", (data / "test" / "rec.json", data))]
    if training is not None:
        sets.append(("training_images", (training / "train" / "rec.json", training)))
    for name, files in sets:
        right, total, count = Counter(), Counter(), 0
        classes = {a: Counter() for a in ATTRIBUTES}
        for batch in _batches(model, processor, files, samples):
            capture = Capture(model, heads.config.pointer_layer)
            try:
                model(**{k: batch[k] for k in keys}, return_logits=False)
            finally:
                capture.remove()
            feats = per_sample_features(capture.projected, batch["pixel_values"], batch["modalities"])
            visual = written_positions(batch["input_ids"], model.config)
            for b, target in enumerate(batch["dense_targets"]):
                count += 1
                scores = heads.attributes(feats[b].reshape(-1, feats[b].shape[-1])).split(heads.classes, dim=-1)
                count_patches(scores, target, heldout, right, total)
                for a in ATTRIBUTES:
                    goal = getattr(target, a)
                    classes[a].update(goal[goal > 0].tolist())
                positions, goal = target.pointer
                if name == "held_out_images" and len(positions):
                    hidden = capture.hidden[b]
                    query, key = heads.query(hidden[positions]), heads.key(hidden[visual[b]])
                    prob = (query @ key.T / heads.config.pointer_dim**0.5).softmax(-1)  # [C, N]
                    objects = (target.colour.reshape(-1) > 0).float()  # an image's visual tokens are its patches
                    named_mass += float((prob * (goal > 0).float()).sum(-1).sum())
                    object_mass += float((prob * objects).sum(-1).sum())
                    rows += len(positions)
        tower[name] = {"samples": count, "per_patch_accuracy": _accuracy(right, total, "all"),
                       "heldout_pair": _accuracy(right, total, "heldout_pair"),
                       "seen_pair": _accuracy(right, total, "seen_pair"),
                       "most_frequent_class_share": {a: max(classes[a].values()) / total["all", a] for a in ATTRIBUTES}}
    pointer = {"coordinates": rows, "mass_on_named": named_mass / rows, "mass_on_some_object": object_mass / rows}
    return tower, pointer


def rec_file_from_training_split(data: Path, samples: int) -> None:
    """Write ``data/eval/refcoco_style_rec.json`` (what ``llava-st eval --bench synth-rec`` reads)
    for the first ``samples`` images of ``data``'s training REC file: each image's first
    question, its object's phrase and box from the ground truth."""
    from llava_st.data.formats.refcoco import RefSample, write_refcoco
    from llava_st.synth.formats import number_refcoco

    items = json.loads((data / "train" / "rec.json").read_text())
    scenes = scenes_by_media(data)
    records, seen = [], set()
    for item in items:
        if len(records) == samples:
            break
        if item["image"] in seen:
            continue
        seen.add(item["image"])
        scene = scenes[item["image"]]
        obj = scene["objects"][item["meta"]["object"]]
        x0, y0, x1, y1 = obj["boxes_xyxy"][0]
        coco = {"area": (x1 - x0) * (y1 - y0), "category_id": 1, "iscrowd": 0}
        records.append(RefSample(None, item["image"], scene["width"], scene["height"], obj["phrase"],
                                 (x0, y0, x1 - x0, y1 - y0), annotation_extra=coco))
    if len(records) < samples:
        raise SystemExit(f"{data}: only {len(records)} training REC images, {samples} asked for")
    write_refcoco(data / "eval" / "refcoco_style_rec.json", number_refcoco(records))


def memorisation(run: Path, samples: int, work: Path) -> dict:
    """The REC answer analysis of the REC step's model on its own training images and on fresh ones."""
    import yaml

    from llava_st.embedded.reproduce import _eval, _synth

    model = run / "stage0-rec" / "final"
    mix = yaml.safe_load((run / "mixes" / "stage0-rec.yaml").read_text())["datasets"]
    trained = Path(mix[0]["data_folder"])
    result = {"model": str(model), "training_set": str(trained), "fresh_seed": FRESH_SEED}
    for name in ("training_images", "fresh_images"):
        folder = work / name
        data = folder / "eval-data"
        if folder.exists():
            shutil.rmtree(folder)
        if name == "fresh_images":
            _synth(data, FRESH_SEED, 0, samples, None, 1, 0.0)
        else:
            data.mkdir(parents=True)
            for part in ("train", "images", "ground_truth"):
                (data / part).symlink_to(trained / part, target_is_directory=True)
        rec_file_from_training_split(data, samples)
        _eval(["eval", "--model", str(model), "--bench", "synth-rec", "--data-root", str(data),
               "--out", str(folder / "eval" / "synth-rec"), "--no-progress"], folder / "eval" / "synth-rec")
        result[name] = rec_answers(folder)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a finished build-tiny folder")
    parser.add_argument("--checkpoint", type=Path, help="a stage-0 checkpoint (default: the last one of <run>/stage0)")
    parser.add_argument("--samples", type=int, default=128, help="held-out REC samples for the tower and pointer")
    parser.add_argument("--tower-only", action="store_true",
                        help="the tower's per-patch accuracy alone (for a tower-step checkpoint, whose LLM is untrained)")
    parser.add_argument("--memorisation", type=int, default=0, metavar="N",
                        help="also score the REC step's model on N of its training images and N fresh ones")
    parser.add_argument("--work", type=Path, default=Path("runs/diagnostics"), help="where --memorisation writes")
    parser.add_argument("--out", type=Path, default=RESULTS / "embedded_diagnostics.json")
    args = parser.parse_args()
    from llava_st.train.checkpoint import latest_checkpoint

    checkpoint = args.checkpoint or latest_checkpoint(args.run / "stage0")
    if checkpoint is None:
        raise SystemExit(f"{args.run / 'stage0'}: no checkpoint")
    tower, pointer = tower_and_pointer(checkpoint, args.run / "eval-data", args.samples, args.run / "data")
    result = {"benchmark": "embedded_diagnostics", "run": str(args.run), "tower": tower}
    if not args.tower_only:
        result.update(rec_answers=rec_answers(args.run), pointer=pointer,
                      stvg_answers=track_answers(args.run, "synth-stvg"), svg_answers=track_answers(args.run, "synth-svg"),
                      tvg_by_event=tvg_by_event(args.run))
    if args.memorisation:
        result["memorisation"] = memorisation(args.run, args.memorisation, args.work)
    result["machine"] = machine()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
