"""The inference API end to end on a tiny random model, and the answer plumbing on known outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import write_test_video
from llava_st.protocol import answers as A
from llava_st.protocol.timebase import OutOfRangeError
from llava_st.infer import Answer, LlavaST, Request, load_media, read_answer
from llava_st.media import MediaError, MediaNotFoundError
from llava_st.model.generate import GenerationOutput


@pytest.fixture(scope="module")
def st(tiny_model_dir) -> LlavaST:
    return LlavaST.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("media")
    video = write_test_video(folder / "clip.mp4", num_frames=30, fps=10, size=(64, 48))
    image = folder / "photo.png"
    Image.fromarray(np.full((40, 80, 3), 120, dtype=np.uint8)).save(image)
    bad = folder / "broken.mp4"
    bad.write_bytes(b"this is not a video")
    return {"video": video, "image": image, "bad": bad}


def _fake_generation(st: LlavaST, monkeypatch, texts: list[str]):
    """Make the model 'say' the given texts (each followed by its end-of-turn token)."""
    tok = st.processor.tokenizer
    eos = st.config.token_ids.eos
    rows = [tok.encode(t, add_special_tokens=False) + [eos] for t in texts]
    width = max(len(r) for r in rows)
    seqs = torch.tensor([r + [eos] * (width - len(r)) for r in rows])
    seen = {}

    def generate(input_ids, **kwargs):
        seen.update(kwargs, input_ids=input_ids)
        n = input_ids.shape[0]
        return GenerationOutput(sequences=seqs[:n], lengths=torch.tensor([len(r) for r in rows])[:n],
                                stopped=torch.ones(n, dtype=torch.bool))

    monkeypatch.setattr(st.model, "generate", generate)
    return seen


def test_ask_video_and_image_on_the_tiny_model(st: LlavaST, media) -> None:
    a = st.ask(media["video"], "What happens?", max_new_tokens=6)
    assert isinstance(a, Answer) and 1 <= a.num_tokens <= 6
    assert a.media.kind == "video" and a.media.frames.shape == (st.num_frames, 48, 64, 3)
    assert a.timeline.timestamps[0] == 0.0 and a.timeline.width == 64
    b = st.ask(media["image"], "What is this?", max_new_tokens=4)
    assert b.media.kind == "image" and b.media.frames.shape == (1, 40, 80, 3)
    d = a.to_dict()
    assert d["media"]["frame_ids"] == [int(i) for i in np.asarray(a.media.clip.indices)]
    assert set(d) >= {"question", "answer", "task", "ok", "spans", "boxes", "track", "events", "result"}


def test_every_task_helper_runs_and_returns_its_type(st: LlavaST, media) -> None:
    kw = dict(max_new_tokens=5)
    answers = {
        "tvg": st.ground_time(media["video"], "the screen brightens", **kw),
        "rec": st.refer(media["image"], "the grey area", **kw),
        "stvg": st.track(media["video"], "the bright frame", **kw),
        "svg": st.boxes_in_span(media["video"], "the frame", 0.5, 2.0, **kw),
        "elc": st.caption_event(media["video"], 1.0, [8, 6, 40, 30], **kw),
        "reg": st.describe_region(media["image"], [0, 0, 40, 20], **kw),
        "tr": st.describe_span(media["video"], 0.0, 1.5, **kw),
        "dvc": st.dense_captions(media["video"], **kw),
        "dgc": st.grounded_caption(media["image"], **kw),
    }
    for task, ans in answers.items():
        assert ans.task == task
        assert ans.result is not None  # typed answer or a ParseFailure, never an exception
        assert ans.result.ok == (not isinstance(ans.result, A.ParseFailure))


def test_inputs_in_seconds_and_pixels_become_normalised_prompt_values(st: LlavaST, media, monkeypatch) -> None:
    seen = {}
    original = st.processor.encode

    def spy(prompt, m):
        seen["prompt"] = prompt
        return original(prompt, m)

    monkeypatch.setattr(st.processor, "encode", spy)
    clip = st.load(media["video"])
    ts = np.asarray(clip.timeline.timestamps)
    st.boxes_in_span(media["video"], "the frame", 0.5, 2.0, max_new_tokens=1)
    s = np.interp(0.5, ts, np.arange(len(ts))) / (len(ts) - 1)
    e = np.interp(2.0, ts, np.arange(len(ts))) / (len(ts) - 1)
    assert "{" + f"{round(s, 3)}, {round(e, 3)}" + "}" in seen["prompt"]
    st.caption_event(media["video"], 1.0, [8, 6, 40, 30], max_new_tokens=1)
    assert f"[{8 / 64}, {6 / 48:.3f}, {40 / 64}, {round(30 / 48, 3)}]" in seen["prompt"]
    assert f"Starts in {round(float(np.interp(1.0, ts, np.arange(len(ts))) / (len(ts) - 1)), 3)}" in seen["prompt"]
    st.boxes_in_span(media["video"], "x", 0.25, 0.75, units="normalised", max_new_tokens=1)
    assert "{0.25, 0.75}" in seen["prompt"]


def test_answers_are_read_in_seconds_and_pixels(st: LlavaST, media, monkeypatch) -> None:
    _fake_generation(st, monkeypatch, ["{<TEMP-010><TEMP-050>} then <TEMP-033>:[<WIDTH-010><HEIGHT-020><WIDTH-050><HEIGHT-099>]"])
    ans = st.ask(media["video"], "When and where?", task="stvg")
    tl = ans.timeline
    ts = np.asarray(tl.timestamps)
    span = ans.spans[0]
    assert span.start == pytest.approx(10 / 99) and span.end == pytest.approx(50 / 99)
    pos = np.arange(len(ts))
    assert span.start_s == pytest.approx(np.interp(10 / 99 * (len(ts) - 1), pos, ts))
    frame = ans.track.frames[0]
    k_frame = round(33 / 99 * (len(ts) - 1))
    assert frame.frame == k_frame and frame.seconds == pytest.approx(ts[k_frame])
    assert frame.box.pixels == pytest.approx((10 / 99 * 64, 20 / 99 * 48, 50 / 99 * 64, 48.0))
    assert isinstance(ans.result, A.SpatioTemporalGrounding) and ans.ok


def test_malformed_answer_is_a_parse_failure_not_an_exception(st: LlavaST, media, monkeypatch) -> None:
    _fake_generation(st, monkeypatch, ["somewhere in the middle"])
    ans = st.ground_time(media["video"], "anything")
    assert isinstance(ans.result, A.ParseFailure) and not ans.ok
    assert ans.result.text == "somewhere in the middle"
    assert "could not read it as tvg" in str(ans)


def test_ask_batch_equals_single_asks_and_keeps_order(st: LlavaST, media) -> None:
    reqs = [Request(media["video"], "What happens?"), (media["image"], "What is shown?"),
            Request(media["video"], "Describe it.", time_range=(0.5, 2.5))]
    batch = st.ask_batch(reqs, batch_size=3, num_workers=2, max_new_tokens=6)
    stats = st.last_stats
    assert stats.generated_tokens == sum(a.num_tokens for a in batch)
    assert 0 <= stats.waiting_for_media <= stats.total and stats.model <= stats.total
    for r, got in zip(reqs, batch):
        r = r if isinstance(r, Request) else Request(*r)
        single = st.ask(r.media, r.question, time_range=r.time_range, max_new_tokens=6)
        assert got.text == single.text and got.question == r.question
    assert batch[2].timeline.timestamps[0] == pytest.approx(0.5)


def test_bad_input_is_named(st: LlavaST, media, tmp_path) -> None:
    with pytest.raises(MediaNotFoundError, match="nope.mp4"):
        st.ask(tmp_path / "nope.mp4", "What?")
    with pytest.raises(MediaError, match="broken.mp4"):
        st.ask(media["bad"], "What?")
    with pytest.raises(ValueError, match="question is empty"):
        st.ask(media["video"], "   ")
    with pytest.raises(OutOfRangeError, match="outside the frame"):
        st.caption_event(media["video"], 1.0, [10, 10, 70, 20])
    with pytest.raises(OutOfRangeError, match="ends before it starts"):
        st.describe_region(media["image"], [30, 10, 20, 20])
    with pytest.raises(OutOfRangeError, match="outside the sampled clip"):
        st.boxes_in_span(media["video"], "x", 1.0, 9.0)
    with pytest.raises(ValueError, match="start before it ends"):
        st.describe_span(media["video"], 2.0, 1.0)
    with pytest.raises(ValueError, match="needs a video"):
        st.track(media["image"], "x")
    with pytest.raises(ValueError, match="needs an image"):
        st.refer(media["video"], "x")
    with pytest.raises(ValueError, match="the query is empty"):
        st.ground_time(media["video"], "")
    with pytest.raises(TypeError, match="unknown generation arguments"):
        st.ask(media["image"], "What?", beams=3)
    with pytest.raises(FileNotFoundError, match="registered model name"):
        LlavaST.from_pretrained(tmp_path / "no-such-model")


def test_frame_arrays_and_folders(st: LlavaST, tmp_path) -> None:
    frames = np.arange(20, dtype=np.uint8)[:, None, None, None] * np.ones((1, 32, 32, 3), dtype=np.uint8)
    m = load_media(frames, 12, fps=5)
    assert m.kind == "video" and m.frames.shape[0] == 12 and m.timeline.timestamps[-1] == pytest.approx(19 / 5)
    assert [int(f[0, 0, 0]) for f in m.frames] == [round(i / 11 * 19) for i in range(12)]
    part = load_media(frames, 3, frame_range=(10, 14), fps=5)
    assert part.timeline.frame_ids == (10, 12, 14) and part.timeline.timestamps == pytest.approx((2.0, 2.4, 2.8))
    assert load_media(frames, 2, time_range=(1.0, 2.0), fps=5).timeline.frame_ids == (5, 10)
    with pytest.raises(MediaError, match=r"frame_range \[10, 25\] is outside the array of frames"):
        load_media(frames, 3, frame_range=(10, 25))
    with pytest.raises(ValueError, match="needs their frame rate"):
        load_media(frames, 3, time_range=(0.0, 1.0))
    with pytest.raises(ValueError, match="kind='image'"):
        load_media(frames, 3, kind="image")
    with pytest.raises(ValueError, match="videos only"):
        load_media(frames[0], 3, frame_range=(0, 1))
    with pytest.raises(ValueError, match="fps"):
        folder = tmp_path / "frames"
        folder.mkdir()
        Image.fromarray(frames[0]).save(folder / "0001.png")
        load_media(folder, 12)


def test_read_answer_of_a_free_question_collects_everything(st: LlavaST, media) -> None:
    m = st.load(media["image"])
    ans = read_answer("a cup [0.1, 0.2, 0.5, 0.6] and {0.2, 0.4}", "q", None, m, 100)
    assert ans.result is None and ans.ok
    assert ans.boxes[0].pixels == pytest.approx((8.0, 8.0, 40.0, 24.0))
    assert ans.spans[0].start == 0.2


def test_answer_pictures_and_files(st: LlavaST, media, monkeypatch, tmp_path) -> None:
    import json

    _fake_generation(st, monkeypatch, ["{<TEMP-010><TEMP-090>} <TEMP-040>:[<WIDTH-010><HEIGHT-020><WIDTH-050><HEIGHT-060>], "
                                       "<TEMP-060>:[<WIDTH-020><HEIGHT-020><WIDTH-060><HEIGHT-060>]"])
    ans = st.track(media["video"], "the square")
    fig = ans.plot()
    assert fig.axes
    assert json.loads(ans.save(tmp_path / "a.json").read_text())["task"] == "stvg"
    png = ans.save(tmp_path / "a.png")
    assert Image.open(png).size[0] > 100
    mp4 = ans.save(tmp_path / "a.mp4")
    from llava_st.media import probe_video

    assert probe_video(mp4).num_frames == probe_video(media["video"]).num_frames
    with pytest.raises(ValueError, match="needs a question about a video file"):
        st.refer(media["image"], "x").save(tmp_path / "b.mp4")


def test_repeated_frames_of_a_short_split_are_preprocessed_once_with_the_same_pixels(st: LlavaST, media) -> None:
    from llava_st.media import preprocess_frames

    short = Request(media["video"], "What?", frame_range=(3, 7), num_frames=12)  # 5 frames sampled 12 times
    prepared = st.prepare(short)
    assert len(set(prepared.media.timeline.frame_ids)) == 5
    v = st.config.vision
    expected = preprocess_frames(prepared.media.frames, v.image_size, v.image_mean, v.image_std)
    assert torch.equal(prepared.encoded.pixel_values, expected)
