"""Stage 0's dense targets and auxiliary objective (llava_st.synth.targets, llava_st.train.auxiliary).

* the targets of a hand-written scene, computed here patch by patch with plain loops;
* the pointer target pools onto exactly the visual tokens the model writes, in its order;
* the projector's outputs are split back into samples in a batch that mixes images
  and videos of two lengths;
* a short stage-0 run through the trainer: the three losses are logged, the heads train,
  and the exported model has no trace of them and loads.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from llava_st.model.modeling import written_positions
from llava_st.synth.targets import COLOUR_IDS, SHAPE_IDS, SIZE_IDS, dense_targets
from llava_st.train.auxiliary import (
    AuxiliaryConfig,
    AuxiliaryHeads,
    Capture,
    auxiliary_loss,
    per_sample_features,
    frame_token_maps,
    pointer_targets,
)
from llava_st.zoo import tiny

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_tokenizer_dir(tmp_path_factory, synth_data) -> Path:
    """A tokenizer with the ``tiny`` config's bin counts, trained on the test's ST-Synth text."""
    from llava_st.embedded.tokenizer import train_tokenizer_on_folder

    folder = tmp_path_factory.mktemp("tiny-tok")
    train_tokenizer_on_folder(synth_data, tiny().coords.bins, vocab_size=400).save_pretrained(str(folder))
    return folder


def _scene():
    """A 40x20 video of 6 frames: a red square under a blue circle that turns green on frames 2-3."""
    square = {"index": 0, "shape": "square", "colour": "red", "size": "large", "z": 0,
              "boxes_xyxy": [[0, 0, 20, 20]] * 6}
    circle = {"index": 1, "shape": "circle", "colour": "blue", "size": "small", "z": 1,
              "boxes_xyxy": [None, [10, 0, 30, 10], [10, 0, 30, 10], [10, 0, 30, 10], [10, 0, 30, 10], None]}
    events = [{"kind": "recolour", "object": 1, "start_frame": 2, "end_frame": 3, "detail": {"colour": "green"}}]
    return {"name": "v0", "kind": "video", "width": 40, "height": 20, "num_frames": 6, "objects": [square, circle],
            "events": events}


def test_dense_targets_match_a_patch_by_patch_computation():
    scene = _scene()
    meta = {"split": [0, 5], "sample_frames": 6, "object": 1, "event": 0}
    grid = 4
    t = dense_targets(scene, meta, grid)
    for f in range(6):
        for r in range(grid):
            for c in range(grid):
                x, y = (c + 0.5) * 40 / grid, (r + 0.5) * 20 / grid
                top = None
                for o in sorted(scene["objects"], key=lambda o: o["z"]):
                    b = o["boxes_xyxy"][f]
                    if b is not None and b[0] <= x < b[2] and b[1] <= y < b[3]:
                        top = o
                p = r * grid + c
                if top is None:
                    assert t.colour[f, p] == 0 and t.shape[f, p] == 0 and t.size[f, p] == 0
                    assert torch.equal(t.box[f, p], torch.zeros(4))
                    continue
                colour = "green" if top["index"] == 1 and 2 <= f <= 3 else top["colour"]
                assert t.colour[f, p] == COLOUR_IDS[colour]
                assert t.shape[f, p] == SHAPE_IDS[top["shape"]] and t.size[f, p] == SIZE_IDS[top["size"]]
                b = top["boxes_xyxy"][f]
                assert torch.allclose(t.box[f, p], torch.tensor([b[0] / 40, b[1] / 20, b[2] / 40, b[3] / 20]))
                circle = scene["objects"][1]["boxes_xyxy"][f]
                on_circle = circle is not None and circle[0] <= x < circle[2] and circle[1] <= y < circle[3]
                assert t.referred[f, p] == float(on_circle and 2 <= f <= 3)  # the event's span only
    assert t.visible.tolist() == [0, 1, 1, 1, 1, 0] and t.has_object


def test_an_image_sample_without_object_has_no_pointer():
    scene = dict(_scene(), kind="image", num_frames=1)
    t = dense_targets(scene, {}, 2)
    assert t.colour.shape == (1, 4) and not t.has_object and t.referred.sum() == 0


def test_frame_maps_cover_the_visual_tokens_in_model_order():
    config = tiny()
    g = config.vision.grid_size
    frames = 16
    referred = torch.zeros(frames, g * g)
    referred[5, 0] = 1.0  # one patch at the top-left of frame 5
    maps = frame_token_maps(referred, "video", config)
    fast, slow = config.video_fast_token_count(frames), config.video_slow_token_count(frames)
    assert maps.shape == (frames, fast + slow)
    assert maps[torch.arange(frames) != 5].abs().sum() == 0  # only frame 5 feeds anything
    per_fast = config.video_fast_token_count(1)
    block = (g * g) // per_fast
    row = maps[5]
    assert row[5 * per_fast] == pytest.approx(1 / block) and row[:fast].sum() == pytest.approx(1 / block)
    window = config.packer.temporal_window
    per_slot = slow // (frames // window)
    assert row[fast + (5 // window) * per_slot] == pytest.approx(1 / config.packer.spatial_factor**2 / window)
    assert row[fast:].sum() == pytest.approx(1 / config.packer.spatial_factor**2 / window)
    ones = frame_token_maps(torch.ones(frames, g * g), "video", config)
    assert torch.allclose(ones.sum(0)[:fast], torch.ones(fast))  # each fast token belongs to one frame
    assert torch.allclose(ones.sum(0)[fast:], torch.ones(slow))  # each slow token averages its slot's frames
    assert frame_token_maps(referred[:1], "image", config).shape == (1, config.image_token_count)


def test_pointer_targets_follow_the_answer_coordinates():
    """A track answer ``{t0 t1} t0: [x y x y]``: each time points at its frame, each box coordinate
    at the referred object on the frame of the latest time before it."""
    from llava_st.protocol.tokens import IGNORE_INDEX

    config = tiny()
    ids = config.token_ids
    g, frames = config.vision.grid_size, 16
    referred = torch.zeros(frames, g * g)
    referred[3, 9] = 1.0  # the object is drawn on frames 3 and 7 only
    referred[7, 10] = 1.0
    from llava_st.synth.targets import DenseTargets

    target = DenseTargets(colour=torch.zeros(frames, g * g, dtype=torch.long), shape=torch.zeros(frames, g * g, dtype=torch.long),
                          size=torch.zeros(frames, g * g, dtype=torch.long), box=torch.zeros(frames, g * g, 4),
                          referred=referred, visible=torch.zeros(frames), has_object=True)
    T, W, H = ids.temp_output, ids.width_output, ids.height_output
    seq = [11, 12, T, T, 13, T, W, H, W, H, 14, T, W, ids.eos]
    vals = [None, None, 3 / 15, 7 / 15, None, 3 / 15, .1, .2, .3, .4, None, 1 / 15, .5, None]
    labels = torch.tensor(seq)
    labels[:2] = IGNORE_INDEX
    values = torch.tensor([float("nan") if v is None else v for v in vals], dtype=torch.float64)
    pos, tgt = pointer_targets(target, "video", labels, values, config)
    maps = frame_token_maps(referred, "video", config)
    uniform = frame_token_maps(torch.ones(frames, g * g), "video", config)
    # every coordinate but the last width (frame 1 has no object) has a target, read one position earlier
    assert pos.tolist() == [1, 2, 4, 5, 6, 7, 8, 10]
    expect = [maps[3], maps[7], maps[3], maps[3], maps[3], maps[3], maps[3], uniform[1]]
    for row, e in zip(tgt, expect):
        assert torch.allclose(row, e / e.sum())


def test_projector_outputs_are_split_back_into_samples():
    config = tiny()
    px = config.vision.image_size
    pixels = [torch.zeros(8, 3, px, px), None, torch.zeros(1, 3, px, px), torch.zeros(4, 3, px, px),
              torch.zeros(8, 3, px, px)]
    mods = ["video", None, "image", "video", "video"]
    # the model's call order: the 8-frame videos (samples 0 and 4), then the image, then the 4-frame video
    calls = [torch.arange(16.0)[:, None, None].expand(16, 2, 3), torch.full((1, 2, 3), 100.0),
             torch.full((4, 2, 3), 200.0)]
    out = per_sample_features(calls, pixels, mods)
    assert out[1] is None
    assert out[0][:, 0, 0].tolist() == list(range(8)) and out[4][:, 0, 0].tolist() == list(range(8, 16))
    assert out[2].shape[0] == 1 and out[2][0, 0, 0] == 100 and out[3].shape[0] == 4 and out[3][0, 0, 0] == 200


def test_auxiliary_loss_on_a_real_batch_reaches_tower_and_llm(one_thread):
    from llava_st.model import LlavaSTModel
    from llava_st.protocol.tokens import IGNORE_INDEX

    torch.manual_seed(0)
    config = tiny()
    model = LlavaSTModel(config).train()
    model.vision_tower_grad = True
    ids = config.token_ids
    heads = AuxiliaryHeads(AuxiliaryConfig(attributes=1, boxes=1, pointer=1, referred=1, pointer_layer=1),
                           config.text.hidden_size)
    n = config.image_token_count
    seq = [5, ids.im_start] + [ids.im_patch] * (n - 2) + [ids.im_end, 7, 8, 9, ids.width_output, 3, ids.eos]
    input_ids = torch.tensor([seq])
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    labels[0, -3:] = input_ids[0, -3:]
    values = torch.full(input_ids.shape, float("nan"), dtype=torch.float64)
    values[0, -3] = 0.4
    scene = dict(_scene(), kind="image", num_frames=1)
    targets = [dense_targets(scene, {"object": 0}, config.vision.grid_size)]  # the square (the circle is hidden on frame 0)
    batch = {"input_ids": input_ids, "labels": labels, "coord_values": values,
             "pixel_values": [torch.randn(1, 3, 96, 96)], "modalities": ["image"]}
    assert int(written_positions(input_ids, config).sum()) == n
    capture = Capture(model, heads.config.pointer_layer)
    out = model(**batch, return_logits=False)
    aux, parts = auxiliary_loss(heads, capture, batch, targets, model)
    capture.remove()
    assert set(parts) == {"aux_attributes", "aux_boxes", "aux_pointer", "aux_referred"} and torch.isfinite(aux)
    # the referred loss, by hand: the state after layer 1 at each of the image's n positions
    # against the fraction of that patch the square covers (its patches, in raster order)
    hidden = capture.hidden[0, 1 : 1 + n]
    logits = hidden @ heads.referred.weight[0] + heads.referred.bias[0]
    goal = targets[0].referred[0]
    probs = torch.sigmoid(logits)
    expected = -(goal * probs.log() + (1 - goal) * (1 - probs).log()).mean()
    assert goal.sum() > 0 and parts["aux_referred"] == pytest.approx(float(expected.detach()), rel=1e-4)
    (out.loss + aux).backward()
    tower = [p for p in model.vision_tower.parameters() if p.grad is not None]
    assert tower and sum(float(p.grad.abs().sum()) for p in tower) > 0
    assert model.language_model.layers[0].self_attn.q_proj.weight.grad.abs().sum() > 0
    assert heads.query.weight.grad.abs().sum() > 0
    assert heads.referred.weight.grad.abs().sum() > 0


def test_stage0_trains_through_the_trainer_and_exports_without_heads(tmp_path, synth_data, tiny_tokenizer_dir, train_tools):
    from llava_st.model import LlavaSTModel
    from llava_st.train.loop import train
    from llava_st.train.recipe import load_recipe

    mix = tmp_path / "mix.yaml"
    mix.write_text(
        "datasets:\n"
        f"  - json_path: {synth_data / 'train' / 'rec.json'}\n    data_folder: {synth_data}\n    sampling_strategy: all\n"
        f"  - json_path: {synth_data / 'train' / 'stvg.json'}\n    data_folder: {synth_data}\n    sampling_strategy: all\n"
    )
    overrides = train_tools["overrides"](
        tiny_tokenizer_dir, mix, tmp_path / "run",
        **{"schedule.max_steps": 4, "batch.per_device": 2, "batch.num_workers": 0, "output.save_every": 0,
           # a fresh model instead of the tower step's
           "model.path": "null", "model.zoo": "tiny", "model.tokenizer": tiny_tokenizer_dir},
    )
    recipe = load_recipe(REPO / "recipes" / "embedded" / "stage0-single.yaml", overrides)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = train(recipe, echo=None, progress=False)
    finally:
        torch.set_num_threads(before)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    parts = [r["loss_parts"] for r in records if "loss_parts" in r]
    assert parts and all("lm" in p and "aux_attributes" in p and "aux_boxes" in p for p in parts)
    assert any("aux_pointer" in p for p in parts)
    from safetensors.torch import load_file

    keys = [k for f in result.final_dir.glob("model*.safetensors") for k in load_file(str(f))]
    assert keys and not any("auxiliary" in k for k in keys)
    LlavaSTModel.from_pretrained(result.final_dir)


def test_the_data_pipeline_precomputes_the_pointer_targets(synth_data, tiny_tokenizer_dir):
    """What DenseTargetSource computes in the worker equals what the loss would compute from the batch."""
    from llava_st.data.dataset import build_mix_dataset
    from llava_st.processor import LlavaSTProcessor
    from llava_st.train.auxiliary import DenseTargetSource
    from llava_st.train.build import _tokenizer, fit_config_to_tokenizer

    config = tiny()
    tok = _tokenizer(tiny_tokenizer_dir, config)
    config = fit_config_to_tokenizer(config, tok)
    processor = LlavaSTProcessor(tok, config)
    mix = synth_data / "stage3.yaml"
    dataset = build_mix_dataset(mix, processor, seed=0, targets=DenseTargetSource(config))
    checked = 0
    for i in range(len(dataset)):
        encoded, target = dataset[i]
        if target is None or target.pointer is None or not len(target.pointer[0]):
            continue
        batch = processor.collate([encoded], padding_side="right")
        pos, rows = pointer_targets(target, encoded.modality, batch["labels"][0], batch["coord_values"][0], config)
        assert torch.equal(pos, target.pointer[0]) and torch.allclose(rows, target.pointer[1])
        checked += 1
    assert checked >= 3


def test_heads_without_a_target_in_the_batch_still_get_a_gradient(one_thread):
    """DDP needs every trainable parameter in the graph: a batch with no pointer target (a caption)
    gives the pointer heads a zero gradient, not none."""
    from llava_st.model import LlavaSTModel
    from llava_st.protocol.tokens import IGNORE_INDEX

    torch.manual_seed(0)
    config = tiny()
    model = LlavaSTModel(config).train()
    heads = AuxiliaryHeads(AuxiliaryConfig(attributes=1, boxes=1, pointer=1, referred=1), config.text.hidden_size)
    ids = config.token_ids
    n = config.image_token_count
    input_ids = torch.tensor([[5, ids.im_start] + [ids.im_patch] * (n - 2) + [ids.im_end, 7, 8, 9, ids.eos]])
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    labels[0, -2:] = input_ids[0, -2:]
    batch = {"input_ids": input_ids, "labels": labels,
             "coord_values": torch.full(input_ids.shape, float("nan"), dtype=torch.float64),
             "pixel_values": [torch.randn(1, 3, 96, 96)], "modalities": ["image"]}
    targets = [dense_targets(dict(_scene(), kind="image", num_frames=1), {}, config.vision.grid_size)]
    capture = Capture(model, heads.config.pointer_layer)
    out = model(**batch, return_logits=False)
    aux, parts = auxiliary_loss(heads, capture, batch, targets, model)
    capture.remove()
    assert "aux_pointer" not in parts and "aux_referred" not in parts
    (out.loss + aux).backward()
    assert heads.query.weight.grad is not None and heads.query.weight.grad.abs().sum() == 0
    assert heads.referred.weight.grad is not None and heads.referred.weight.grad.abs().sum() == 0
    assert heads.attributes.weight.grad.abs().sum() > 0


def test_frame_maps_follow_the_packers_uneven_slots():
    """10 frames in 4-frame windows: 2 slots of 5 frames (the packer's bounds i*T//S)."""
    import dataclasses

    from llava_st.config import PackerConfig

    config = dataclasses.replace(tiny(), num_frames=10)
    g = config.vision.grid_size
    maps = frame_token_maps(torch.ones(10, g * g), "video", config)
    fast = config.video_fast_token_count(10)
    per_slot = config.video_slow_token_count(10) // 2
    for frame in range(10):
        slot = 0 if frame < 5 else 1
        row = maps[frame, fast:]
        assert row[slot * per_slot:(slot + 1) * per_slot].sum() == pytest.approx(per_slot / 5)
        assert row.sum() == pytest.approx(per_slot / 5)
    uneven = dataclasses.replace(config, packer=PackerConfig(embed_dim=64, num_heads=4, spatial_factor=2, fast_factor=2,
                                                             temporal_window=3))  # S = 3: frames 0-2, 3-5, 6-9
    m = frame_token_maps(torch.ones(10, g * g), "video", uneven)
    per = uneven.video_slow_token_count(10) // 3
    owner = [int(m[f, fast:].reshape(3, per).sum(1).argmax()) for f in range(10)]
    assert owner == [0, 0, 0, 1, 1, 1, 2, 2, 2, 2]


def test_the_words_loss_classifies_each_attribute_word_with_the_patch_head(one_thread, tiny_tokenizer_dir):
    """Each colour, shape and size word's input embedding (the mean of its tokens') goes through the
    attribute head that reads the patches; the loss is the mean over the three attributes of the
    cross-entropy over the words that name that attribute, computed here word by word."""
    from llava_st.model import LlavaSTModel
    from llava_st.processor import load_tokenizer
    from llava_st.synth.targets import COLOUR_IDS, SHAPE_IDS, SIZE_IDS
    from llava_st.train.auxiliary import attribute_words
    from llava_st.train.build import fit_config_to_tokenizer

    tokenizer = load_tokenizer(tiny_tokenizer_dir)
    torch.manual_seed(0)
    config = fit_config_to_tokenizer(tiny(), tokenizer)
    model = LlavaSTModel(config).train()
    words, classes = attribute_words(tokenizer)
    assert len(words) == len(COLOUR_IDS) + len(SHAPE_IDS) + len(SIZE_IDS)
    assert tokenizer.decode(words[0]) == " " + next(iter(COLOUR_IDS)) and classes[0, 0] == 1
    heads = AuxiliaryHeads(AuxiliaryConfig(words=1), config.text.hidden_size, tokenizer)
    assert "word_tokens" not in heads.state_dict()  # rebuilt from the tokenizer, never saved
    batch = {"input_ids": torch.tensor([[5, 6]]), "labels": torch.tensor([[5, 6]]),
             "coord_values": torch.full((1, 2), float("nan"), dtype=torch.float64),
             "pixel_values": None, "modalities": [None]}
    capture = Capture(model, -2)
    model(**batch, return_logits=False)
    aux, parts = auxiliary_loss(heads, capture, batch, [None], model)
    capture.remove()
    table = model.language_model.embed_tokens.weight
    per_attribute = [[], [], []]
    sizes = heads.classes
    for ids, row in zip(words, classes.tolist()):
        x = table[torch.tensor(ids)].mean(0)
        logits = heads.attributes(x)
        start = 0
        for c, n in enumerate(sizes):
            if row[c] != -100:
                per_attribute[c].append(-torch.log_softmax(logits[start : start + n], -1)[row[c]])
            start += n
    expected = sum(torch.stack(v).mean() for v in per_attribute) / 3
    assert parts == {"aux_words": pytest.approx(float(expected.detach()), rel=1e-5)}
    aux.backward()
    assert table.grad is not None and table.grad[words[0]].abs().sum() > 0


def test_the_words_loss_needs_the_tokenizer():
    from llava_st.errors import ConfigError

    with pytest.raises(ConfigError, match="needs the tokenizer"):
        AuxiliaryHeads(AuxiliaryConfig(words=1), 128)


def test_asked_attributes_reads_the_phrase_words():
    from llava_st.synth.targets import COLOUR_IDS, SHAPE_IDS, SIZE_IDS
    from llava_st.train.auxiliary import asked_attributes

    assert asked_attributes("the small red square").tolist() == [COLOUR_IDS["red"], SHAPE_IDS["square"], SIZE_IDS["small"]]
    assert asked_attributes("The large circle.").tolist() == [0, SHAPE_IDS["circle"], SIZE_IDS["large"]]
    assert asked_attributes("a caption without objects").tolist() == [0, 0, 0]


def test_the_asked_loss_is_each_visual_positions_cross_entropy(one_thread):
    """Every visual position's state after the capture layer classifies the phrase's three
    attributes; checked against a position-by-position computation."""
    from llava_st.model import LlavaSTModel
    from llava_st.protocol.tokens import IGNORE_INDEX
    from llava_st.train.auxiliary import asked_attributes

    torch.manual_seed(0)
    config = tiny()
    model = LlavaSTModel(config).train()
    ids = config.token_ids
    heads = AuxiliaryHeads(AuxiliaryConfig(asked=1, pointer_layer=1), config.text.hidden_size)
    n = config.image_token_count
    input_ids = torch.tensor([[7, 8, ids.im_start] + [ids.im_patch] * (n - 2) + [ids.im_end, 9, ids.eos]])
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    labels[0, -1] = ids.eos
    batch = {"input_ids": input_ids, "labels": labels,
             "coord_values": torch.full(input_ids.shape, float("nan"), dtype=torch.float64),
             "pixel_values": [torch.randn(1, 3, 96, 96)], "modalities": ["image"]}
    target = dense_targets(dict(_scene(), kind="image", num_frames=1), {"object": 0}, config.vision.grid_size)
    target.asked = asked_attributes("the large red square")
    capture = Capture(model, 1)
    model(**batch, return_logits=False)
    aux, parts = auxiliary_loss(heads, capture, batch, [target], model)
    capture.remove()
    expected = []
    for pos in range(2, 2 + n):
        logits = heads.asked(capture.hidden[0, pos])
        start, per = 0, []
        for c, k in enumerate(heads.classes):
            per.append(-torch.log_softmax(logits[start : start + k], -1)[target.asked[c]])
            start += k
        expected.append(sum(per) / 3)
    assert parts == {"aux_asked": pytest.approx(float(torch.stack(expected).mean().detach()), rel=1e-5)}
    aux.backward()
    assert heads.asked.weight.grad.abs().sum() > 0


def test_asked_targets_come_from_the_phrase_only_when_the_question_uses_it():
    from llava_st.synth.targets import COLOUR_IDS, SHAPE_IDS, SIZE_IDS
    from llava_st.train.auxiliary import asked_in_question

    scene = {"objects": [{"phrase": "the large blue circle"}, {"phrase": "the red square"}]}
    by_phrase = asked_in_question(scene, {"object": 0}, ["<video>\nWhen does the large blue circle turn green?"])
    assert by_phrase.tolist() == [COLOUR_IDS["blue"], SHAPE_IDS["circle"], SIZE_IDS["large"]]  # not the event's green
    assert asked_in_question(scene, {"object": 1}, ["What is the object in the region [0.1, 0.2, 0.3, 0.4]?"]) is None
    assert asked_in_question(scene, {}, ["Describe this video."]) is None
    assert asked_in_question(scene, {"object": 5}, ["the red square"]) is None


def _pipeline_batch(synth_data, tokenizer_dir):
    """``(config, batch)``: the first REC image and the first video sample with dense targets of the
    test's ST-Synth set, through the training data pipeline (collated, pointer targets precomputed)."""
    from llava_st.data.dataset import TrainCollator, build_mix_dataset
    from llava_st.processor import LlavaSTProcessor
    from llava_st.train.auxiliary import DenseTargetSource
    from llava_st.train.build import _tokenizer, fit_config_to_tokenizer

    config = tiny()
    tok = _tokenizer(tokenizer_dir, config)
    config = fit_config_to_tokenizer(config, tok)
    dataset = build_mix_dataset(synth_data / "stage3.yaml", LlavaSTProcessor(tok, config), seed=0,
                                targets=DenseTargetSource(config))
    first = {}
    for i in range(len(dataset)):
        encoded, target = dataset[i]
        if target is not None and encoded.modality not in first:
            first[encoded.modality] = (encoded, target)
    return config, TrainCollator(dataset.processor)([first["image"], first["video"]])


def test_a_tower_only_step_runs_no_llm_and_gives_the_full_forwards_tower_losses(one_thread, synth_data,
                                                                                 tiny_tokenizer_dir):
    """answers: 0 skips the LLM; its loss is the weighted attribute and box losses of the same
    projected features a full forward captures (a batch of an image and a video), and only the
    visual side gets gradients."""
    from llava_st.model import LlavaSTModel
    from llava_st.train.auxiliary import ATTRIBUTE
    from llava_st.train.step import training_loss

    config, batch = _pipeline_batch(synth_data, tiny_tokenizer_dir)
    torch.manual_seed(0)
    model = LlavaSTModel(config).train()
    model.vision_tower_grad = True

    full = AuxiliaryHeads(AuxiliaryConfig(attributes=1.0, boxes=0.5), config.text.hidden_size)
    setattr(model, ATTRIBUTE, full)
    reference = training_loss(model, batch).parts
    want = reference["aux_attributes"] * 1.0 + reference["aux_boxes"] * 0.5

    calls = []
    hook = model.language_model.register_forward_pre_hook(lambda m, a, k: calls.append(1), with_kwargs=True)
    tower_only = AuxiliaryHeads(AuxiliaryConfig(attributes=1.0, boxes=0.5, answers=0), config.text.hidden_size)
    tower_only.load_state_dict(full.state_dict())
    setattr(model, ATTRIBUTE, tower_only)
    model.zero_grad()
    out = training_loss(model, batch)
    hook.remove()
    assert not calls, "the LLM ran in a tower-only step"
    assert set(out.parts) == {"aux_attributes", "aux_boxes"}
    assert float(out.loss.detach()) == pytest.approx(want, rel=1e-5)
    out.loss.backward()
    assert sum(float(p.grad.abs().sum()) for p in model.vision_tower.parameters() if p.grad is not None) > 0
    assert model.projector.fc1.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.language_model.parameters())


def test_a_tower_only_step_is_checked_against_what_it_cannot_train(tmp_path):
    from llava_st.errors import ConfigError
    from llava_st.train.recipe import load_recipe

    with pytest.raises(ConfigError, match="pointer"):
        AuxiliaryConfig(attributes=1, pointer=1, answers=0)
    with pytest.raises(ConfigError, match="nothing to train"):
        AuxiliaryConfig(answers=0)
    with pytest.raises(ConfigError, match="answers"):
        AuxiliaryConfig(answers=-1)
    tower = REPO / "recipes" / "embedded" / "stage0-tower.yaml"
    assert load_recipe(tower).auxiliary.tower_only
    with pytest.raises(ConfigError, match=r"trainable names \['llm'\]"):
        load_recipe(tower, ["trainable.llm=true"])


def test_the_attend_loss_is_the_models_own_attention_mass_on_the_target(one_thread, synth_data, tiny_tokenizer_dir):
    """aux_attend equals minus the log of the attention mass that head ``attend_head`` of the last
    layer puts on the pointer target's tokens, read from the eager attention's own weights, and
    it trains the layers below through the model's own queries and keys."""
    from llava_st.model import LlavaSTModel
    from llava_st.train.auxiliary import ATTRIBUTE
    from llava_st.train.step import training_loss

    config, batch = _pipeline_batch(synth_data, tiny_tokenizer_dir)
    torch.manual_seed(0)
    model = LlavaSTModel(config, attn_implementation="eager").train()
    setattr(model, ATTRIBUTE, AuxiliaryHeads(AuxiliaryConfig(attend=1.0, attend_head=1), config.text.hidden_size))
    weights = []
    hook = model.language_model.layers[-1].self_attn.register_forward_hook(lambda m, i, o: weights.append(o[1]))
    out = training_loss(model, batch)
    hook.remove()
    probs = weights[0].detach()  # [B, H, L, L]
    vis = written_positions(batch["input_ids"], config)
    expected = []
    for b, target in enumerate(batch["dense_targets"]):
        positions, goal = target.pointer
        where = vis[b].nonzero().flatten()
        for p, row in zip(positions.tolist(), goal):
            expected.append(-torch.log(probs[b, 1, p, where][row > 0].sum()))
    assert len(expected) >= 2 and set(out.parts) == {"lm", "aux_attend"}
    assert out.parts["aux_attend"] == pytest.approx(float(torch.stack(expected).mean()), rel=1e-4)
    out.loss.backward()
    assert model.language_model.layers[-1].self_attn.q_proj.weight.grad.abs().sum() > 0
    assert model.language_model.layers[0].self_attn.k_proj.weight.grad.abs().sum() > 0
    with pytest.raises(Exception, match="attend_head"):
        AuxiliaryConfig(attend=1.0, attend_head=-1)


def test_without_the_fast_stream_the_losses_see_only_the_written_positions(one_thread, synth_data, tiny_tokenizer_dir):
    """The release's layout keeps the fast run's slots as token embeddings: the visual positions the
    pointer reads are then the image and slow runs only, as many as the pooled targets have."""
    from llava_st.model import LlavaSTModel
    from llava_st.train.auxiliary import ATTRIBUTE
    from llava_st.train.step import training_loss

    config, batch = _pipeline_batch(synth_data, tiny_tokenizer_dir)
    slow_only = replace(config, inject_fast_stream=False)
    frames = int(batch["pixel_values"][1].shape[0])
    assert int(written_positions(batch["input_ids"], config)[1].sum()) == (
        config.video_fast_token_count(frames) + config.video_slow_token_count(frames))
    vis = written_positions(batch["input_ids"], slow_only)
    pooled = frame_token_maps(batch["dense_targets"][1].referred, "video", slow_only).shape[1]
    assert int(vis[1].sum()) == config.video_slow_token_count(frames) == pooled
    torch.manual_seed(0)
    model = LlavaSTModel(slow_only).train()
    setattr(model, ATTRIBUTE, AuxiliaryHeads(AuxiliaryConfig(pointer=1.0, attend=1.0), slow_only.text.hidden_size))
    # the pipeline computed the pointer targets for the fast-stream config: recompute them for this one
    for t in batch["dense_targets"]:
        t.pointer = None
    parts = training_loss(model, batch).parts
    assert {"aux_pointer", "aux_attend"} <= set(parts)


def test_grey_samples_are_the_luminance_of_the_denormalised_pixels():
    """share 1 turns every sample with media grey: each channel holds the BT.601 luminance of the
    pixels in [0, 1], normalised again; share 0 keeps them; a sample without media stays None."""
    from llava_st.train.auxiliary import grey_samples

    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    g = torch.Generator().manual_seed(0)
    raw = [torch.rand(2, 3, 4, 4, generator=g), None, torch.rand(1, 3, 4, 4, generator=g)]
    pixels = [None if r is None else (r - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
              for r in raw]
    out, greyed = grey_samples(pixels, 1.0, mean, std)
    assert greyed.tolist() == [True, False, True]
    assert out[1] is None
    for r, o in zip((raw[0], raw[2]), (out[0], out[2])):
        rgb = r.numpy()
        luma = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]
        for c in range(3):
            np.testing.assert_allclose(o[:, c].numpy(), (luma - mean[c]) / std[c], rtol=1e-5, atol=1e-6)
    kept, none = grey_samples(pixels, 0.0, mean, std)
    assert not none.any() and all(a is b for a, b in zip(kept, pixels))
    half, drawn = grey_samples([pixels[0]] * 400, 0.5, mean, std, torch.Generator().manual_seed(1))
    assert 150 < int(drawn.sum()) < 250


def test_a_grey_tower_step_drops_the_colour_target_of_object_patches_only(one_thread, synth_data,
                                                                         tiny_tokenizer_dir):
    """With grey 1 the step's loss is that of a colour step on grey pixels whose object patches
    have no colour target (background patches keep theirs: 'no object' is still visible)."""
    from llava_st.model import LlavaSTModel
    from llava_st.train.auxiliary import ATTRIBUTE
    from llava_st.train.step import training_loss

    config, batch = _pipeline_batch(synth_data, tiny_tokenizer_dir)
    torch.manual_seed(0)
    model = LlavaSTModel(config).train()
    grey = AuxiliaryHeads(AuxiliaryConfig(attributes=1.0, boxes=0.5, answers=0, grey=1.0), config.text.hidden_size)
    setattr(model, ATTRIBUTE, grey)
    got = training_loss(model, batch).parts

    # the same step without grey, on pixels greyed here and targets with the colour of object
    # patches replaced by the ignore index
    mean, std = torch.tensor(config.vision.image_mean).view(3, 1, 1), torch.tensor(config.vision.image_std).view(3, 1, 1)
    weights = torch.tensor((0.299, 0.587, 0.114)).view(3, 1, 1)
    pixels = [((p * std + mean) * weights).sum(-3, keepdim=True).sub(mean).div(std) for p in batch["pixel_values"]]
    targets = [replace(t, colour=t.colour.masked_fill(t.shape > 0, -100)) for t in batch["dense_targets"]]
    assert all((t.colour == -100).any() for t in targets)
    plain = AuxiliaryHeads(AuxiliaryConfig(attributes=1.0, boxes=0.5, answers=0), config.text.hidden_size)
    plain.load_state_dict(grey.state_dict())
    setattr(model, ATTRIBUTE, plain)
    want = training_loss(model, {**batch, "pixel_values": pixels, "dense_targets": targets}).parts
    assert got["aux_attributes"] == pytest.approx(want["aux_attributes"], rel=1e-5)
    assert got["aux_boxes"] == pytest.approx(want["aux_boxes"], rel=1e-5)


def test_grey_is_a_share_and_only_for_a_tower_only_step():
    from llava_st.errors import ConfigError

    with pytest.raises(ConfigError, match="grey: must be a share"):
        AuxiliaryConfig(attributes=1, answers=0, grey=1.5)
    with pytest.raises(ConfigError, match="grey: only a tower-only step"):
        AuxiliaryConfig(attributes=1, grey=0.5)
    with pytest.raises(ConfigError, match="grey: only a tower-only step"):
        AuxiliaryConfig(boxes=1, answers=0, grey=0.5)
    assert AuxiliaryConfig(attributes=1, answers=0, grey=0.5).grey == 0.5
