"""Dense video captioning (ActivityNet Captions protocol, SODA_c) against slow computations written here.

The reference below follows the protocol's definitions loop by loop: the
scalar tIoU, sets of covered events, per-video dictionaries handed to the COCO
toolkit's own scorer classes, and SODA's best order-keeping matching found by
trying every matching. The toolkit runs Java, so the cases that need it are few
and small.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from llava_st.eval import dense_captioning as dc
from llava_st.eval.benchmarks import get_benchmark
from llava_st.eval.scoring import score
from llava_st.protocol.tokens import RELEASE_BINS

THRESHOLDS = (0.3, 0.5, 0.7, 0.9)
JUNK = "abc123!@#"


def ref_tiou(a, b) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = min(max(a[1], b[1]) - min(a[0], b[0]), (a[1] - a[0]) + (b[1] - b[0]))
    return inter / (union + 1e-8)


def ref_detection(pred_spans, gt_spans, t):
    covered_gt, covered_pred = set(), set()
    for i, p in enumerate(pred_spans):
        for j, g in enumerate(gt_spans):
            if ref_tiou(p, g) > t:
                covered_gt.add(j)
                covered_pred.add(i)
    precision = len(covered_pred) / len(pred_spans) if pred_spans else 0.0
    return precision, len(covered_gt) / len(gt_spans)


def ascii_only(text):
    return "".join(c if ord(c) < 128 else " " for c in text)


def ref_protocol(videos):
    """videos: list of (pred [(span, caption)], truth [(span, caption)]) -> the set's numbers (fractions)."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    out = {}
    precisions = {t: [] for t in THRESHOLDS}
    recalls = {t: [] for t in THRESHOLDS}
    for pred, truth in videos:
        for t in THRESHOLDS:
            p, r = ref_detection([s for s, _ in pred], [s for s, _ in truth], t)
            precisions[t].append(p)
            recalls[t].append(r)
    for t in THRESHOLDS:
        out[f"Precision@{t}"] = sum(precisions[t]) / len(videos)
    for t in THRESHOLDS:
        out[f"Recall@{t}"] = sum(recalls[t]) / len(videos)
    out["Precision"] = sum(out[f"Precision@{t}"] for t in THRESHOLDS) / len(THRESHOLDS)
    out["Recall"] = sum(out[f"Recall@{t}"] for t in THRESHOLDS) / len(THRESHOLDS)
    out["F1"] = 2 * out["Precision"] * out["Recall"] / (out["Precision"] + out["Recall"])

    # every caption tokenized in one run, keyed by (video, side, index)
    lines = {("junk",): [{"caption": JUNK}]}
    for v, (pred, truth) in enumerate(videos):
        lines.update({(v, "p", i): [{"caption": ascii_only(c)}] for i, (_, c) in enumerate(pred)})
        lines.update({(v, "g", j): [{"caption": ascii_only(c)}] for j, (_, c) in enumerate(truth)})
    tok = PTBTokenizer().tokenize(lines)
    meteor = Meteor()
    names = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr")
    per_t = {n: [] for n in names}
    for t in THRESHOLDS:
        video_scores = {n: [] for n in names}
        for v, (pred, truth) in enumerate(videos):
            res, gts, k = {}, {}, 0
            for i, (ps, _) in enumerate(pred):
                added = False
                for j, (gs, _) in enumerate(truth):
                    if ref_tiou(ps, gs) >= t:
                        res[k], gts[k] = tok[(v, "p", i)], tok[(v, "g", j)]
                        k += 1
                        added = True
                if not added:
                    res[k], gts[k] = tok[(v, "p", i)], tok[("junk",)]
                    k += 1
            if not res:
                for n in names:
                    video_scores[n].append(0.0)
                continue
            bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
            for n in range(4):
                video_scores[f"Bleu_{n + 1}"].append(bleu[n])
            video_scores["METEOR"].append(meteor.compute_score(gts, res)[0])
            video_scores["ROUGE_L"].append(Rouge().compute_score(gts, res)[0])
            video_scores["CIDEr"].append(Cider().compute_score(gts, res)[0])
        for n in names:
            per_t[n].append(sum(video_scores[n]) / len(videos))
    for n in names:
        out[n] = sum(per_t[n]) / len(THRESHOLDS)

    # SODA_c: predictions sorted by start; METEOR of each pair on its own (truth as hypothesis, as SODA calls it)
    fs = []
    for v, (pred, truth) in enumerate(videos):
        if not pred:
            fs.append(0.0)
            continue
        order = sorted(range(len(pred)), key=lambda i: pred[i][0][0])
        s = np.zeros((len(truth), len(pred)))
        for g in range(len(truth)):
            for col, p in enumerate(order):
                m = meteor.compute_score({0: tok[(v, "p", p)]}, {0: tok[(v, "g", g)]})[1][0]
                s[g, col] = ref_tiou(truth[g][0], pred[p][0]) * m
        best = 0.0
        for k in range(1, min(s.shape) + 1):
            for rows in itertools.combinations(range(s.shape[0]), k):
                for cols in itertools.combinations(range(s.shape[1]), k):
                    best = max(best, sum(s[r, c] for r, c in zip(rows, cols)))
        p, r = best / len(pred), best / len(truth)
        fs.append(2 * p * r / (p + r) if p + r > 0 else 0.0)
    out["SODA_c"] = sum(fs) / len(videos)
    return out


def random_spans(rng, n, length=10.0):
    a = rng.uniform(0, length, size=n)
    b = a + rng.uniform(0, length / 2, size=n) * (rng.uniform(size=n) > 0.15)  # some zero-length spans
    return [(float(x), float(y)) for x, y in zip(a, b)]


def test_tiou_matrix_is_the_protocol_formula():
    rng = np.random.default_rng(0)
    a, b = random_spans(rng, 6), random_spans(rng, 5)
    want = np.array([[ref_tiou(x, y) for y in b] for x in a])
    np.testing.assert_allclose(dc.tiou_matrix(a, b), want, rtol=0, atol=1e-15)
    # half the union overlaps: just below 0.5 because of the 1e-8 (so not a hit at 0.5)
    assert dc.tiou_matrix([[0, 1]], [[0, 2]])[0, 0] < 0.5
    # zero-length spans never overlap, not even themselves
    assert dc.tiou_matrix([[3, 3]], [[3, 3], [2, 4]]).tolist() == [[0.0, 0.0]]


@pytest.mark.parametrize("seed", range(25))
def test_detection_against_the_loop(seed):
    rng = np.random.default_rng(seed)
    pred = random_spans(rng, int(rng.integers(0, 6)))
    truth = random_spans(rng, int(rng.integers(1, 5)))
    p, r = dc.detection(dc.Events.of(pred, ["x"] * len(pred)), dc.Events.of(truth, ["y"] * len(truth)), THRESHOLDS)
    for k, t in enumerate(THRESHOLDS):
        assert (p[k], r[k]) == pytest.approx(ref_detection(pred, truth, t), abs=1e-12)


def test_detection_degenerate_inputs():
    truth = dc.Events.of([[1, 4]], ["a dog runs"])
    assert [v.tolist() for v in dc.detection(dc.Events.of([], []), truth)] == [[0.0] * 4, [0.0] * 4]  # no events
    zero = dc.detection(dc.Events.of([[2, 2]], ["x"]), truth)
    assert zero[0].tolist() == [0.0] * 4  # a zero-length prediction overlaps nothing
    with pytest.raises(ValueError, match="at least one ground-truth event"):
        dc.detection(truth, dc.Events.of([], []))


def test_caption_pairs_follow_the_protocol():
    pred = dc.Events.of([[0, 4], [10, 11], [1, 3]], ["a", "b", "c"])
    truth = dc.Events.of([[0, 4], [1, 3]], ["x", "y"])
    assert dc.caption_pairs(pred, truth, 0.3) == [(0, 0), (0, 1), (1, None), (2, 0), (2, 1)]
    assert dc.caption_pairs(pred, truth, 0.9) == [(0, 0), (1, None), (2, 1)]
    assert dc.caption_pairs(dc.Events.of([], []), truth, 0.5) == []


VIDEOS = [
    (  # a good prediction, a partial one, and one that overlaps nothing; a non-ASCII caption
        [((0.0, 4.0), "a man plays a guitar on stage."), ((4.5, 9.0), "the crowd claps and cheers."),
         ((20.0, 22.0), "a café sign is shown.")],
        [((0.0, 4.5), "a man is playing the guitar."), ((5.0, 10.0), "people in the crowd cheer loudly.")],
    ),
    (  # no predicted event
        [],
        [((1.0, 3.0), "a woman opens a door.")],
    ),
    (  # zero-length spans on both sides, an empty caption, one prediction over two events (out of order)
        [((6.0, 9.0), ""), ((2.0, 2.0), "a dog sits."), ((0.0, 8.0), "a dog runs around and sits down.")],
        [((0.0, 5.0), "a dog runs in the park."), ((5.0, 5.0), "the dog stops."), ((5.0, 9.0), "the dog sits down.")],
    ),
]


def test_evaluate_matches_the_reference_protocol():
    pytest.importorskip("pycocoevalcap")
    videos = [(dc.Events.of([s for s, _ in p], [c for _, c in p]), dc.Events.of([s for s, _ in g], [c for _, c in g]))
              for p, g in VIDEOS]
    got = dc.evaluate(videos)
    want = ref_protocol(VIDEOS)
    assert set(got.metrics) == set(want)
    for key, value in want.items():
        assert got.metrics[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert got.per_video[1] == {"Precision": 0.0, "Recall": 0.0, "METEOR": 0.0, "CIDEr": 0.0, "SODA_c": 0.0}
    assert 0 < got.metrics["SODA_c"] < 1 and 0 < got.metrics["METEOR"] < 1
    with pytest.raises(ValueError, match="at least one ground-truth event"):
        dc.evaluate([(videos[0][0], dc.Events.of([], []))])


def activitynet_file(path, videos):
    data = {f"v_{i:03d}": {"duration": 30.0, "timestamps": [list(s) for s, _ in g], "sentences": [c for _, c in g]}
            for i, (_, g) in enumerate(videos)}
    path.write_text(json.dumps(data))
    return path


def answer(events, duration=30.0):
    """A DVC answer with times normalised to the video (plain decimals, as the release's rewrite gives them)."""
    return " ".join(f"{{{s / duration:.5f}, {e / duration:.5f}}}, {c}" for (s, e), c in events)


def test_activitynet_benchmark_reads_seconds_and_counts_misses(tmp_path):
    pytest.importorskip("pycocoevalcap")
    bench = get_benchmark("activitynet-dvc", bins=RELEASE_BINS)
    samples = bench.load(activitynet_file(tmp_path / "val_1.json", VIDEOS[:1] + VIDEOS[2:]))
    answers = {0: answer(VIDEOS[0][0]) + "<|im_end|>", 1: "I see a dog."}  # the second: unreadable, a miss
    rep = score(bench, samples, answers, "canonical")
    m = rep["metrics"]
    # times come back as seconds (time x duration), up to the 5-decimal answer
    got = rep["samples"][0]["parsed"]["events"]
    assert [v for e in got for v in e["span"]] == pytest.approx([v for s, _ in VIDEOS[0][0] for v in s], abs=1e-3)
    assert rep["samples"][1]["readable"] is False and rep["unreadable_answers"] == 1
    assert rep["samples"][1]["scores"]["SODA_c"] == 0.0 and rep["samples"][1]["scores"]["METEOR"] == 0.0
    videos = [([((round(s / 30, 5) * 30, round(e / 30, 5) * 30), c) for (s, e), c in VIDEOS[0][0]], VIDEOS[0][1]),
              ([], VIDEOS[2][1])]
    want = ref_protocol(videos)
    names = {"Bleu_1": "BLEU-1", "Bleu_2": "BLEU-2", "Bleu_3": "BLEU-3", "Bleu_4": "BLEU-4", "ROUGE_L": "ROUGE-L"}
    for key, value in want.items():
        assert m[names.get(key, key)] == pytest.approx(value * 100, rel=1e-9, abs=1e-9), key
    with pytest.raises(ValueError, match="no published-compatible mode"):
        score(bench, samples, answers, "published")


def test_a_video_without_events_is_refused(tmp_path):
    path = tmp_path / "val_1.json"
    path.write_text(json.dumps({"v_a": {"duration": 10, "timestamps": [], "sentences": []}}))
    with pytest.raises(ValueError, match=r"v_a\.timestamps.*at least one event"):
        get_benchmark("activitynet-dvc", bins=RELEASE_BINS).load(path)
    path.write_text(json.dumps({"v_a": {"duration": 10, "timestamps": [[5, 2]], "sentences": ["x"]}}))
    with pytest.raises(ValueError, match="ends before it starts"):
        get_benchmark("activitynet-dvc", bins=RELEASE_BINS).load(path)
