"""ELC caption scores against the COCO caption toolkit run directly here (one batch: Java is slow to start)."""

from __future__ import annotations

import pytest

from llava_st.eval.scoring import score
from llava_st.eval.st_align import STAlign
from llava_st.protocol.tokens import RELEASE_BINS

pytest.importorskip("pycocoevalcap")

CAPTIONS = [
    ("a dog runs across the yard.", "Ends in <TEMP-050>, a dog runs in the yard. Object bounding box: "),
    ("the man opens the red door.", "Ends in <TEMP-060>, a man opens the door. Object bounding box: "),
    ("a child throws a ball to the dog.", "Ends in <TEMP-070>, the child throws a ball. Object bounding box: "),
    ("two people sit on a bench.", "Ends in <TEMP-080>, "),  # caption with no '.': see below
]
PAIR = "<TEMP-005>:[<WIDTH-005><HEIGHT-010><WIDTH-015><HEIGHT-030>]"


def toolkit(refs: list[str], hyp_sets: list[list[str]]) -> list[dict]:
    """The release's computation, written out with the toolkit's own classes, for several hypothesis sets."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    lines = {("ref", i): [{"caption": r}] for i, r in enumerate(refs)}
    for k, hyps in enumerate(hyp_sets):
        lines.update({(k, i): [{"caption": h}] for i, h in enumerate(hyps)})
    tok = PTBTokenizer().tokenize(lines)
    gts = {i: tok[("ref", i)] for i in range(len(refs))}
    meteor = Meteor()
    outs = []
    for k in range(len(hyp_sets)):
        res = {i: tok[(k, i)] for i in range(len(refs))}
        out = {f"Bleu_{n}": Bleu(n).compute_score(gts, res, verbose=0)[0] for n in range(1, 5)}
        out["METEOR"] = meteor.compute_score(gts, res)[0]
        out["ROUGE_L"] = Rouge().compute_score(gts, res)[0]
        out["CIDEr"] = Cider().compute_score(gts, res)[0]
        outs.append(out)
    return outs


def test_elc_captions_both_modes_match_the_toolkit(tmp_path, files):
    items = [
        files.st_item(human="<video>\nStarts in <s>, what happens? ", gpt=f"Ends in <e>, {ref} Object bounding box: <bboxes>")
        for ref, _ in CAPTIONS
    ]
    # the last answer has no '.', so the release keeps what follows its last comma; ours too here,
    # with the frame box cut off: both read "two people sit" after tokenisation
    answers = {i: ans + (PAIR if i < 3 else "two people sit " + PAIR) for i, (_, ans) in enumerate(CAPTIONS)}
    bench = STAlign("elc", bins=RELEASE_BINS)
    samples = bench.load(files.write_json(tmp_path / "elc.json", items))
    pub = score(bench, samples, answers, "published")
    can = score(bench, samples, answers, "canonical")

    assert [r["hypothesis"] for r in pub["samples"]] == [
        " a dog runs in the yard",
        " a man opens the door",
        " the child throws a ball",
        " two people sit <TEMP-005>:[<WIDTH-005><HEIGHT-010><WIDTH-015><HEIGHT-030>]",
    ]
    assert [r["hypothesis"] for r in can["samples"]][3] == "two people sit"

    refs = [ref for ref, _ in CAPTIONS]
    want, want_can = toolkit(refs, [[r["hypothesis"] for r in pub["samples"]], [r["hypothesis"] for r in can["samples"]]])
    cap = pub["metrics"]["caption_score"]
    for n in range(1, 5):
        assert cap[f"Bleu_{n}"] == [round(v, 3) for v in want[f"Bleu_{n}"]]
    for name in ("METEOR", "ROUGE_L", "CIDEr"):
        assert cap[name] == round(want[name], 3)

    # canonical: the same corpus except sample 3, whose bin tokens the release kept
    m = can["metrics"]
    for n in range(1, 5):
        assert m[f"BLEU-{n}"] == pytest.approx(want_can[f"Bleu_{n}"][n - 1] * 100, rel=1e-12)
    assert m["METEOR"] == pytest.approx(want_can["METEOR"] * 100, rel=1e-12)
    assert m["ROUGE-L"] == pytest.approx(want_can["ROUGE_L"] * 100, rel=1e-12)
    assert m["CIDEr"] == pytest.approx(want_can["CIDEr"] * 100, rel=1e-12)
    assert set(can["samples"][0]["scores"]["caption"]) == {"Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr"}
