"""``llava-st demo``: the embedded model on the bundled sample clip and image.

Example (the README's first command)::

    llava-st demo --out demo

Asks four questions (when does an event happen, track the object of that
event, where is an object in the image, what happens from a given object and
time on) and prints each answer in seconds and pixels beside the true answer
and its IoU; writes a picture of each answer (the sampled frames with the
model's boxes and the true ones, and the timeline) and the annotated clip of
the track into ``--out``. ``--model`` takes any model (a folder, a shipped
name, a Hub id); the samples are ST-Synth items the shipped model never saw.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..eval.metrics import box_iou, temporal_iou


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="tiny", help="model folder, shipped model name or Hub id (default: tiny)")
    parser.add_argument("--out", default="demo", help="folder for the pictures and answers (default: ./demo)")
    parser.add_argument("--samples", help="a samples folder with demo.json (default: the bundled one)")
    parser.add_argument("--json", action="store_true", help="print the answers as JSON instead of text")


def _iou_1d(a, b) -> float:
    return float(temporal_iou(a, b, zero_hull="one"))


def _iou_2d(a, b) -> float:
    return float(box_iou(a, b))


def _span_text(span) -> str:
    return f"{span.start_s:.2f}-{span.end_s:.2f} s" if span.start_s is not None else f"{span.start:.3f}-{span.end:.3f}"


def _box_text(box) -> str:
    return "[" + ", ".join(f"{v:.0f}" for v in box.pixels) + "] px" if box.pixels else str(box.xyxy)


def _track_iou(result, truth) -> float:
    """Mean box IoU over the frames both tracks have (0 when they share none)."""
    mine = {f.frame: f.box.xyxy for f in result.track.frames}
    ious = [_iou_2d(mine[f.frame], f.box.xyxy) for f in truth.track.frames if f.frame in mine]
    return sum(ious) / len(ious) if ious else 0.0


def describe(task: str, result, truth) -> tuple[str, str, dict]:
    """``(answer line, truth line, scores)`` of one demo answer."""
    from ..protocol.answers import ParseFailure

    if isinstance(result, ParseFailure):
        return f"unreadable answer ({result.reason})", "", {}
    if task == "tvg":
        return _span_text(result.span), _span_text(truth.span), {
            "tIoU": _iou_1d((result.span.start, result.span.end), (truth.span.start, truth.span.end))}
    if task == "rec":
        return _box_text(result.box), _box_text(truth.box), {"IoU": _iou_2d(result.box.xyxy, truth.box.xyxy)}
    span_iou = _iou_1d((result.span.start, result.span.end), (truth.span.start, truth.span.end))
    first = result.track.frames[0] if result.track.frames else None
    mine = f"{_span_text(result.span)}, {len(result.track)} boxes" + (
        f", first {_box_text(first.box)} at {first.seconds:.2f} s" if first is not None and first.seconds is not None else "")
    true_first = truth.track.frames[0]
    theirs = f"{_span_text(truth.span)}, {len(truth.track)} boxes, first {_box_text(true_first.box)} at {true_first.seconds:.2f} s"
    if task == "elc" and getattr(result, "caption", None):
        mine += f'; "{result.caption}"'
        theirs += f'; "{truth.caption}"'
    return mine, theirs, {"tIoU": span_iou, "mean box IoU": _track_iou(result, truth)}


def run(args: argparse.Namespace) -> int:
    from .. import LlavaST
    from ..embedded.samples import SAMPLES, load_demo, true_result

    started = time.perf_counter()
    demo = load_demo(args.samples or SAMPLES)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    st = LlavaST.from_pretrained(args.model)
    bins = st.config.coords.bins
    report = []
    for q in demo["questions"]:
        task = q["task"]
        if task == "tvg":
            answer = st.ground_time(q["path"], q["query"])
            ask = f'When does "{q["query"]}" happen?'
        elif task == "stvg":
            answer = st.track(q["path"], q["query"])
            ask = f'Track the object of "{q["query"]}".'
        elif task == "rec":
            answer = st.refer(q["path"], q["query"])
            ask = f'Where is "{q["query"]}"?'
        else:
            answer = st.caption_event(q["path"], q["start"], q["box"], units="normalised")
            ask = f"What happens to the object at {q['start']:.2f} (of the clip) in box {q['box']}?"
        truth = true_result(q, answer, bins)
        mine, theirs, scores = describe(task, answer.result, truth)
        picture = answer.save(out / f"{task}.png", ground_truth=truth) if answer.ok else None
        if task == "stvg" and answer.ok:
            answer.save(out / "track.mp4", ground_truth=truth)
        answer.save(out / f"{task}.json")
        entry = {"task": task, "question": ask, "answer": mine, "truth": theirs,
                 "scores": {k: round(v, 3) for k, v in scores.items()}, "text": answer.text,
                 "picture": str(picture) if picture else None}
        report.append(entry)
        if not args.json:
            print(f"[{task}] {ask}\n    model: {mine}\n    truth: {theirs}")
            if scores:
                print("    " + ", ".join(f"{k} {v:.2f}" for k, v in scores.items()))
    elapsed = time.perf_counter() - started
    (out / "demo.json").write_text(json.dumps({"model": str(args.model), "seconds": elapsed, "answers": report},
                                              indent=1) + "\n")
    if args.json:
        print(json.dumps({"model": str(args.model), "seconds": round(elapsed, 1), "answers": report}, indent=1))
    else:
        print(f"pictures and answers in {out}/ ({elapsed:.1f} s)")
    return 0
