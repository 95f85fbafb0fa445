"""Training data: mix YAML and sampling strategies, the dataset over a mix (frames, labels,
bad samples), the collate, and the length-grouped batch sampler."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
import yaml

from llava_st.data.dataset import (
    LengthGroupedBatchSampler,
    SkippedSample,
    TrainCollator,
    build_mix_dataset,
    worker_context,
)
from llava_st.data.mix import Strategy, read_mix, select_entry
from llava_st.errors import DataError


@pytest.fixture(scope="module")
def processor(tokenizer_dir):
    from llava_st.processor import LlavaSTProcessor

    return LlavaSTProcessor.from_pretrained(tokenizer_dir)


def _mix(folder: Path, entries: list[dict], name: str = "mix.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump({"datasets": entries}))
    return path


# ------------------------------------------------------------------ strategies


@pytest.mark.parametrize(
    "text, n, expected",
    [
        ("all", 7, list(range(7))),
        ("first:3", 7, [0, 1, 2]),
        ("end:2", 7, [5, 6]),
        ("first:10", 4, [0, 1, 2, 3]),  # more than the file holds: all of it
        ("end:50%", 5, [2, 3, 4]),  # ceil(2.5) = 3
        ("first:10%", 95, list(range(10))),  # ceil(9.5) = 10, as the release rounds
    ],
)
def test_fixed_strategies(text, n, expected) -> None:
    assert Strategy.parse(text).select(n, random.Random(0)) == expected


def test_random_strategy_is_seeded_and_sized(tmp_path: Path) -> None:
    s = Strategy.parse("random:10%")
    assert s.size(95) == 10 and str(s) == "random:10%"
    for n in (1, 20, 95):
        picked = s.select(n, random.Random(3))
        assert len(picked) == s.size(n) and picked == sorted(set(picked)) and all(0 <= i < n for i in picked)
    (tmp_path / "a.json").write_text("[]")
    mix = _mix(tmp_path, [{"json_path": "a.json", "sampling_strategy": "random:4", "source": "a"}])
    (entry,) = read_mix(mix)
    first = select_entry(entry, 50, seed=1)
    assert first == select_entry(entry, 50, seed=1)  # same seed: same samples (every rank, every resume)
    assert first != select_entry(entry, 50, seed=2)
    assert len(first) == 4


@pytest.mark.parametrize("bad", ["some", "random", "first:-1", "random:120%", "end:1.5", 3])
def test_bad_strategies_are_refused(bad) -> None:
    with pytest.raises(ValueError):
        Strategy.parse(bad)


def test_mix_paths_are_relative_to_the_mix_file(tmp_path: Path) -> None:
    sub = tmp_path / "d"
    sub.mkdir()
    (sub / "t.json").write_text("[]")
    mix = _mix(sub, [{"json_path": "t.json", "data_folder": "media", "source": "t", "sampling_strategy": "end:3"}])
    (entry,) = read_mix(mix)
    assert entry.json_path == sub / "t.json" and entry.data_folder == sub / "media"
    assert entry.source == "t" and entry.strategy == Strategy("end", 3)


@pytest.mark.parametrize(
    "entries, message",
    [
        ([{"json_path": "missing.json"}], "no such file"),
        ([{"json_path": "t.json", "sampling": "all"}], "unknown keys"),
        ([{"json_path": "t.json", "sampling_strategy": "half"}], "sampling_strategy"),
        ([], "non-empty 'datasets'"),
    ],
)
def test_bad_mixes_name_the_file_and_entry(tmp_path: Path, entries, message) -> None:
    (tmp_path / "t.json").write_text("[]")
    mix = _mix(tmp_path, entries)
    with pytest.raises(DataError, match=message) as info:
        read_mix(mix)
    assert str(mix) in str(info.value)


# ------------------------------------------------------------------ dataset


def test_video_samples_use_their_stated_frames_and_range(synth_data: Path, processor) -> None:
    from llava_st.media import load_video
    from llava_st.processor import media_pixels

    ds = build_mix_dataset(synth_data / "stage3.yaml", processor, seed=0)
    videos = [i for i, (_, s) in enumerate(ds.items) if s.media_kind == "video" and s.split and s.split[0] > 0]
    assert videos, "the synth set should hold sub-clip samples"
    i = videos[0]
    source, sample = ds.items[i]
    t = sample.meta["sample_frames"]
    assert t == 16 != processor.config.num_frames  # the sample's own count, not the model's default
    enc = ds[i]
    clip = load_video(ds.entries[source].data_folder / sample.media, t, frame_range=sample.split)
    assert enc.pixel_values.shape[0] == t
    assert torch.equal(enc.pixel_values, media_pixels(clip.frames, "video", processor.config.vision))
    assert clip.indices[0] == sample.split[0] and clip.indices[-1] == sample.split[1]
    # labels and coordinate values are the processor's
    ref = processor.encode(
        [x.to_dict() for x in sample.conversations], clip.frames, variables=sample.variables.to_dict()
    )
    assert torch.equal(enc.input_ids, ref.input_ids) and torch.equal(enc.labels, ref.labels)
    assert torch.equal(torch.nan_to_num(enc.coord_values, -1.0), torch.nan_to_num(ref.coord_values, -1.0))
    n_out = sum(len(sample.variables.to_dict()[k]) for k in sample.variables.to_dict() if "output" in k)
    supervised_coords = int((~torch.isnan(enc.coord_values) & (enc.labels != -100)).sum())
    assert supervised_coords == n_out > 0


def test_collate_pads_right_with_masks(synth_data: Path, processor) -> None:
    ds = build_mix_dataset(synth_data / "stage2.yaml", processor, seed=0)
    items = [ds[0], ds[len(ds) - 1], SkippedSample("f.json", 3, "broken")]
    batch = TrainCollator(processor)(items)
    lengths = [len(items[0].input_ids), len(items[1].input_ids)]
    assert batch["size"] == 2 and batch["skipped"] == [{"file": "f.json", "index": 3, "reason": "broken"}]
    assert batch["input_ids"].shape == (2, max(lengths))
    for row, n in enumerate(lengths):
        assert batch["attention_mask"][row].tolist() == [1] * n + [0] * (max(lengths) - n)
        assert (batch["labels"][row, n:] == -100).all() and (batch["input_ids"][row, n:] == processor.pad_token_id).all()
    assert TrainCollator(processor)([SkippedSample("f.json", 1, "x")]) == {
        "skipped": [{"file": "f.json", "index": 1, "reason": "x"}],
        "size": 0,
    }


def _bad_copy(synth_data: Path, folder: Path) -> tuple[Path, Path, int, int]:
    """A copy of the REC training file whose sample 1 names a missing image and whose sample 2 is
    malformed; returns (mix, file, index of the missing image, index of the malformed one)."""
    records = json.loads((synth_data / "train" / "rec.json").read_text())
    records[1]["image"] = "images/missing.png"
    records[2]["conversations"] = [{"from": "human", "value": "<image>\nhi"}]  # no answer
    path = folder / "rec_bad.json"
    path.write_text(json.dumps(records))
    mix = _mix(folder, [{"json_path": str(path), "data_folder": str(synth_data), "source": "rec"}], "bad.yaml")
    return mix, path, 1, 2


def test_a_bad_sample_raises_naming_file_and_index(synth_data: Path, processor, tmp_path: Path) -> None:
    mix, path, missing, malformed = _bad_copy(synth_data, tmp_path)
    with pytest.raises(DataError, match=rf"{path.name}: sample {malformed}, field 'conversations'"):
        build_mix_dataset(mix, processor, seed=0)
    records = json.loads(path.read_text())
    del records[malformed]
    path.write_text(json.dumps(records))
    ds = build_mix_dataset(mix, processor, seed=0)
    with pytest.raises(DataError, match=rf"{path.name}: sample {missing} .*images/missing.png"):
        ds[missing]
    # the same error, raised in a DataLoader worker process, still names them
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=1, collate_fn=TrainCollator(processor),
                                         multiprocessing_context=worker_context())
    with pytest.raises(DataError, match=rf"{path.name}: sample {missing}"):
        list(loader)


def test_skip_bad_counts_instead_of_raising(synth_data: Path, processor, tmp_path: Path) -> None:
    mix, path, missing, malformed = _bad_copy(synth_data, tmp_path)
    ds = build_mix_dataset(mix, processor, seed=0, skip_bad=True)
    assert [(s.file, s.index) for s in ds.read_skips] == [(str(path), malformed)]
    pos = [k for k, (_, s) in enumerate(ds.items) if s.index == missing][0]
    skipped = ds[pos]
    assert isinstance(skipped, SkippedSample) and skipped.index == missing and "missing.png" in skipped.reason
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=1, collate_fn=TrainCollator(processor),
                                         multiprocessing_context=worker_context())
    seen = [s for b in loader for s in b["skipped"]]
    assert [(s["file"], s["index"]) for s in seen] == [(str(path), missing)]


# ------------------------------------------------------------------ sampler


def _sampler(lengths, **kw) -> LengthGroupedBatchSampler:
    args = dict(per_device=2, world_size=1, rank=0, grad_accum=1, seed=7, epoch=0)
    args.update(kw)
    return LengthGroupedBatchSampler(lengths, **args)


def test_sampler_is_deterministic_and_covers_each_sample_once() -> None:
    lengths = [random.Random(i).randint(10, 500) for i in range(103)]
    a = list(_sampler(lengths, grad_accum=2))
    assert a == list(_sampler(lengths, grad_accum=2))  # same seed and epoch: same batches
    assert a != list(_sampler(lengths, grad_accum=2, epoch=1))
    flat = [i for mb in a for i in mb]
    assert len(flat) == len(set(flat)) == 100  # 103 // 4 = 25 steps of 4; the last 3 samples wait
    assert len(_sampler(lengths, grad_accum=2)) == 50


def test_sampler_resumes_at_a_step() -> None:
    lengths = list(range(40))
    full = list(_sampler(lengths, grad_accum=2))
    assert list(_sampler(lengths, grad_accum=2, start_step=3)) == full[3 * 2 :]
    assert list(_sampler(lengths, grad_accum=2, start_step=10)) == []


def test_global_batches_do_not_depend_on_the_number_of_ranks() -> None:
    lengths = [random.Random(i).randint(10, 500) for i in range(64)]
    one = _sampler(lengths, per_device=4)
    ranks = [_sampler(lengths, per_device=1, world_size=2, rank=r, grad_accum=2) for r in (0, 1)]
    assert one.global_batches() == ranks[0].global_batches()
    per_rank = [list(r) for r in ranks]
    for step, batch in enumerate(one.global_batches()):
        # micro-batch a of rank r is slice (a * world + r) of the global batch
        got = [per_rank[r][step * 2 + a] for a in range(2) for r in range(2)]
        assert [i for mb in got for i in mb] == batch


def test_length_grouping_cuts_padding() -> None:
    lengths = [random.Random(i).choice([100, 3000]) + i % 7 for i in range(256)]

    def padding(s):
        return sum(len(mb) * max(lengths[i] for i in mb) - sum(lengths[i] for i in mb) for mb in s)

    grouped, plain = _sampler(lengths, per_device=4), _sampler(lengths, per_device=4, group_by_length=False)
    assert sorted(i for mb in grouped for i in mb) == sorted(i for mb in plain for i in mb)
    assert padding(grouped) < 0.1 * padding(plain)


def test_sampler_refuses_a_set_smaller_than_one_global_batch() -> None:
    with pytest.raises(DataError, match="do not fill one global batch"):
        _sampler([1, 2, 3], per_device=2, world_size=2)
