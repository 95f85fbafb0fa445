"""``llava-st score``: both answer forms, both modes, the report files, and clear errors."""

from __future__ import annotations

import json

import pytest

from llava_st.cli import main
from llava_st.protocol.bins import release_rewrite
from llava_st.eval.base import PredictionError
from llava_st.eval.scoring import read_predictions
from llava_st.protocol.tokens import RELEASE_BINS

TOKENS = {
    0: "{<TEMP-020><TEMP-070>}",
    1: "{<TEMP-010>,<TEMP-030>}",
    2: "no idea",
    3: "{<TEMP-050><TEMP-099>} ",
}


@pytest.fixture
def tvg_file(tmp_path, files):
    items = [{"image_id": f"V{i}.mp4", "caption": "someone laughs.", "timestamp": [0.1 * i, 0.1 * i + 0.5]} for i in range(4)]
    return files.write_json(tmp_path / "test.json", items)


def run_score(tmp_path, data, preds, name, *extra):
    out = tmp_path / f"{name}.json"
    rc = main(["score", "--bench", "charades-sta", "--data", str(data), "--predictions", str(preds), "--out", str(out), *extra])
    return rc, out


@pytest.mark.parametrize("flag", [[], ["--published-compat"]])
def test_both_forms_give_the_same_report(tmp_path, files, tvg_file, flag, capsys):
    tok = files.write_predictions(tmp_path / "tok.jsonl", TOKENS)
    dec = files.write_predictions(tmp_path / "dec.jsonl", {i: release_rewrite(t, RELEASE_BINS) for i, t in TOKENS.items()})
    rc1, out1 = run_score(tmp_path, tvg_file, tok, "a", *flag)
    rc2, out2 = run_score(tmp_path, tvg_file, dec, "b", *flag)
    assert rc1 == rc2 == 0
    a, b = json.loads(out1.read_text()), json.loads(out2.read_text())
    assert a["metrics"] == b["metrics"]
    assert [s["scores"] for s in a["samples"]] == [s["scores"] for s in b["samples"]]
    assert a["mode"] == ("published-compat" if flag else "canonical")
    assert a["mode_notes"] and a["published"][0]["published"] == 63.1
    md = out1.with_suffix(".md").read_text()
    assert "| R@0.3 |" in md and "63.1" in md
    assert "LLaVA-ST-7B" in capsys.readouterr().out


def test_published_comparison_uses_paper_units(tmp_path, files, tvg_file):
    preds = files.write_predictions(tmp_path / "p.jsonl", TOKENS)
    rc, out = run_score(tmp_path, tvg_file, preds, "r", "--published-compat")
    rep = json.loads(out.read_text())
    rows = {r["metric"]: r for r in rep["published"]}
    assert rows["mIoU"]["ours"] == pytest.approx(rep["metrics"]["miou"] * 100)
    assert rows["R@0.5"]["ours"] == rep["metrics"]["R1@(0.5)"]


def test_refcoco_split_from_file_name(tmp_path, files):
    data = files.refcoco_file(tmp_path / "refcoco+_testB.json", [(100, 100, [0, 0, 50, 50], "a dog")])
    preds = files.write_predictions(tmp_path / "p.jsonl", {0: "[0, 0, 0.5, 0.5]"})
    out = tmp_path / "r.json"
    assert main(["score", "--bench", "refcoco+", "--data", str(data), "--predictions", str(preds), "--out", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["split"] == "testB"
    assert rep["published"] == [{"metric": "Acc@0.5", "ours": 100.0, "published": 78.8}]


@pytest.mark.parametrize(
    "lines,message",
    [
        (['{"id": 0, "answer": "x"}', '{"id": 1, "answer": "x"}', '{"id": 2, "answer": "x"}'], "no answer for 1 sample(s): id(s) 3"),
        ([f'{{"id": {i}, "answer": "x"}}' for i in range(4)] + ['{"id": 2, "answer": "y"}'], "line 5: id 2 is given twice"),
        ([f'{{"id": {i}, "answer": "x"}}' for i in range(4)] + ['{"id": 9, "answer": "y"}'], "id(s) 9 are not positions of the 4 samples"),
        (['{"id": "0", "answer": "x"}'], "line 1: id must be a non-negative whole number"),
        (['{"id": 0, "answer": 5}'], "line 1: answer of id 0 must be text"),
        (['{"id": 0, "answer": "x"'], "line 1: not valid JSON"),
        (['{"answer": "x"}'], "line 1: each line must be an object with 'id' and 'answer'"),
    ],
)
def test_prediction_errors_are_clear(tmp_path, tvg_file, lines, message, capsys):
    preds = tmp_path / "p.jsonl"
    preds.write_text("\n".join(lines) + "\n")
    rc, out = run_score(tmp_path, tvg_file, preds, "r")
    assert rc == 1 and not out.exists()
    err = capsys.readouterr().err
    assert message in err and str(preds) in err


def test_annotation_error_and_release_crash_exit_cleanly(tmp_path, files, capsys):
    bad = files.write_json(tmp_path / "bad.json", [{"image_id": "a.mp4", "caption": "x", "timestamp": [2.0, 9.5]}])
    preds = files.write_predictions(tmp_path / "p.jsonl", {0: "{0.1, 0.2}"})
    rc, _ = run_score(tmp_path, bad, preds, "r")
    assert rc == 1 and "sample 0, field 'timestamp'" in capsys.readouterr().err
    zero = files.write_json(tmp_path / "z.json", [{"image_id": "a.mp4", "caption": "x", "timestamp": [1.0, 1.0]}])
    preds = files.write_predictions(tmp_path / "q.jsonl", {0: "{<TEMP-099><TEMP-099>}"})
    rc, _ = run_score(tmp_path, zero, preds, "z", "--published-compat")
    assert rc == 1 and "crashes" in capsys.readouterr().err
    rc, out = run_score(tmp_path, zero, preds, "z")
    assert rc == 0 and json.loads(out.read_text())["metrics"]["mIoU"] == 100.0


def test_read_predictions_skips_blank_lines(tmp_path):
    p = tmp_path / "p.jsonl"
    p.write_text('{"id": 1, "answer": "b", "extra": 3}\n\n{"id": 0, "answer": "a"}\n')
    assert read_predictions(p) == {1: "b", 0: "a"}
    with pytest.raises(PredictionError, match="no such predictions file"):
        read_predictions(tmp_path / "missing.jsonl")
