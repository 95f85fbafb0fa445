"""The benchmark registry: names, data-root layouts, ST-Synth files through the same readers."""

from __future__ import annotations

import pytest

from llava_st.eval.benchmarks import BENCHMARKS, default_paths, get_benchmark, infer_split
from llava_st.eval.scoring import score
from llava_st.protocol.tokens import RELEASE_BINS


def test_released_layout(tmp_path):
    assert default_paths("refcoco+", tmp_path, "testA") == (tmp_path / "refcoco/refcoco+_testA.json", tmp_path / "refcoco/sources")
    assert default_paths("charades-sta", tmp_path) == (tmp_path / "charades/test.json", tmp_path / "charades/sources")
    assert default_paths("elc", tmp_path) == (tmp_path / "st-align/elc.json", tmp_path / "st-align/sources")
    with pytest.raises(ValueError, match="--split"):
        default_paths("refcocog", tmp_path, "testA")
    assert infer_split("refcocog", "x/refcocog_test.json") == "test"
    assert infer_split("refcoco", "x/refcoco+_val.json") is None
    assert default_paths("refcocog-reg", tmp_path, "val") == (tmp_path / "refcoco/refcocog_val.json", tmp_path / "refcoco/sources")
    assert default_paths("activitynet-dvc", tmp_path, "val_2") == (
        tmp_path / "activitynet/val_2.json", tmp_path / "activitynet/videos")
    assert default_paths("charades-tr", tmp_path) == (tmp_path / "charades/test.json", tmp_path / "charades/sources")
    assert default_paths("synth-dgc", tmp_path) == (tmp_path / "test/dgc.json", tmp_path)
    with pytest.raises(ValueError, match="val_1"):
        default_paths("activitynet-tr", tmp_path)
    assert infer_split("activitynet-tr", "x/val_1.json") == "val_1"
    assert infer_split("refcocog-reg", "x/refcocog_test.json") == "test"
    with pytest.raises(ValueError, match="unknown benchmark"):
        get_benchmark("vidstg", bins=RELEASE_BINS)


def test_every_benchmark_builds():
    for name in BENCHMARKS:
        bench = get_benchmark(name, bins=RELEASE_BINS)
        assert bench.name == name and bench.task in ("rec", "tvg", "stvg", "svg", "elc", "reg", "tr", "dvc", "dgc")
        # only the benchmarks the release scores have a published-compatible mode
        assert bench.published_scorer == (bench.task in ("rec", "tvg", "stvg", "svg", "elc"))


def test_synth_files_read_and_score_like_the_released_format(tmp_path, files):
    root = tmp_path / "st-synth"
    (root / "eval").mkdir(parents=True)
    item = files.st_item(
        human="<video>\nStarts in <s>, what does the object in <box> do? ",
        gpt="Ends in <e>, the red circle moves right. Object bounding box: <bboxes>",
        boxes={"<box>": [10, 10, 20, 20]},
        video="videos/000003.mp4",
    )
    files.write_json(root / "eval/st_align_elc.json", [item])
    data, media = default_paths("synth-elc", root)
    assert (data, media) == (root / "eval/st_align_elc.json", root)
    bench = get_benchmark("synth-elc", bins=RELEASE_BINS)
    samples = bench.load(data)
    rec = bench.score_sample(samples[0], "Ends in <TEMP-050>, the red circle moves. <TEMP-005>:[<WIDTH-005><HEIGHT-010><WIDTH-015><HEIGHT-030>]", "canonical", 100)
    assert rec["reference"] == "the red circle moves right." and rec["scores"]["siou"] == pytest.approx(1.0)
    assert default_paths("synth-tvg", root)[1] == root / "videos"
    tvg = files.write_json(tmp_path / "tvg.json", [{"image_id": "000001.mp4", "caption": "A square appears.", "timestamp": [0.2, 0.4]}])
    rep = score(get_benchmark("synth-tvg", bins=RELEASE_BINS), get_benchmark("synth-tvg", bins=RELEASE_BINS).load(tvg), {0: "{0.2, 0.4}"}, "canonical")
    assert rep["bench"] == "synth-tvg" and rep["published"] == [] and rep["metrics"]["mIoU"] == pytest.approx(100.0)
