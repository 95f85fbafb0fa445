"""The predictor end to end on a tiny random model (12 frames per video), and its answers on known outputs.

Answer JSON and text: tests/infer/test_answer.py; the batch loop:
tests/infer/test_pipeline.py; media dispatch: tests/media/test_load.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import write_test_video
from llava_st.errors import ProtocolError
from llava_st.infer import Answer, BatchError, LlavaST, Request
from llava_st.media import MediaError, MediaKindError, MediaNotFoundError
from llava_st.protocol import answers as A
from llava_st.protocol.timebase import OutOfRangeError
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
    ppm = folder / "photo.ppm"
    Image.fromarray(np.full((30, 50, 3), 200, dtype=np.uint8)).save(ppm)
    bad = folder / "broken.mp4"
    bad.write_bytes(b"this is not a video")
    return {"video": video, "image": image, "ppm": ppm, "bad": bad}


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
    kw = dict(max_new_tokens=5, constrained=False)  # constrained answers: tests/infer/test_constrained.py
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
    st.boxes_in_span(media["video"], "the frame", 0.5, 2.0, max_new_tokens=1, constrained=False)
    s = np.interp(0.5, ts, np.arange(len(ts))) / (len(ts) - 1)
    e = np.interp(2.0, ts, np.arange(len(ts))) / (len(ts) - 1)
    assert "{" + f"{round(s, 3)}, {round(e, 3)}" + "}" in seen["prompt"]
    st.caption_event(media["video"], 1.0, [8, 6, 40, 30], max_new_tokens=1, constrained=False)
    assert f"[{8 / 64}, {6 / 48:.3f}, {40 / 64}, {round(30 / 48, 3)}]" in seen["prompt"]
    assert f"Starts in {round(float(np.interp(1.0, ts, np.arange(len(ts))) / (len(ts) - 1)), 3)}" in seen["prompt"]
    st.boxes_in_span(media["video"], "x", 0.25, 0.75, units="normalised", max_new_tokens=1, constrained=False)
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


def test_loader_processes_give_the_answers_of_loader_threads(st: LlavaST, media) -> None:
    reqs = [Request(media["video"], "What happens?"), Request(media["image"], "What is shown?"),
            Request(media["video"], "Describe it.", time_range=(0.5, 2.5))]
    try:
        by_process = st.ask_batch(reqs, batch_size=2, num_workers=1, processes=True, max_new_tokens=6)
        again = st.ask_batch(reqs, batch_size=2, num_workers=1, processes=True, max_new_tokens=6)  # warm pool
    finally:
        st.close()
    by_thread = st.ask_batch(reqs, batch_size=2, num_workers=1, max_new_tokens=6)
    for p, a, t in zip(by_process, again, by_thread):
        assert p.text == a.text == t.text
        assert p.media.timeline == t.media.timeline and np.array_equal(p.media.frames, t.media.frames)


def test_bad_input_is_named(st: LlavaST, media, tmp_path) -> None:
    with pytest.raises(MediaNotFoundError, match="nope.mp4"):
        st.ask(tmp_path / "nope.mp4", "What?")
    with pytest.raises(MediaError, match="broken.mp4"):
        st.ask(media["bad"], "What?")
    with pytest.raises(ProtocolError, match="question is empty"):
        st.ask(media["video"], "   ")
    with pytest.raises(ProtocolError, match="unknown task"):
        st.ask(media["video"], "What?", task="vqa")
    with pytest.raises(OutOfRangeError, match="outside the frame"):
        st.caption_event(media["video"], 1.0, [10, 10, 70, 20])
    with pytest.raises(OutOfRangeError, match="ends before it starts"):
        st.describe_region(media["image"], [30, 10, 20, 20])
    with pytest.raises(OutOfRangeError, match="outside the sampled clip"):
        st.boxes_in_span(media["video"], "x", 1.0, 9.0)
    with pytest.raises(ProtocolError, match="start before it ends"):
        st.describe_span(media["video"], 2.0, 1.0)
    with pytest.raises(ProtocolError, match="units must be"):
        st.describe_span(media["video"], 0.1, 0.5, units="frames")
    frames = np.zeros((8, 32, 32, 3), np.uint8)
    with pytest.raises(ProtocolError, match="no timestamps"):
        st.describe_span(frames, 0.1, 0.5)  # an array without a frame rate has no seconds
    with pytest.raises(MediaKindError, match="track needs a video"):
        st.track(media["image"], "x")
    with pytest.raises(MediaKindError, match="refer needs an image"):
        st.refer(media["video"], "x")
    with pytest.raises(ProtocolError, match="the query is empty"):
        st.ground_time(media["video"], "")
    with pytest.raises(TypeError, match="unknown generation arguments"):
        st.ask(media["image"], "What?", beams=3)
    with pytest.raises(FileNotFoundError, match="registered model name"):
        LlavaST.from_pretrained(tmp_path / "no-such-model")


def test_a_ppm_image_is_asked_about_as_an_image(st: LlavaST, media) -> None:
    a = st.ask(media["ppm"], "What is this?", max_new_tokens=2)
    assert a.media.kind == "image" and a.media.frames.shape == (1, 30, 50, 3)
    assert st.refer(media["ppm"], "the grey", max_new_tokens=2, constrained=False).task == "rec"


def test_videos_are_sampled_at_the_model_s_own_frame_count(st: LlavaST, media) -> None:
    assert st.num_frames == st.config.num_frames == 12  # the tiny model's, not the release's 100
    assert st.prepare(Request(media["video"], "What?")).media.frames.shape[0] == 12
    assert st.prepare(Request(media["video"], "What?", num_frames=7)).media.frames.shape[0] == 7


def test_one_bad_file_in_a_batch_is_named_and_the_rest_answered(st: LlavaST, media, tmp_path) -> None:
    reqs = [Request(media["video"], "What?"), Request(tmp_path / "gone.mp4", "What?"), Request(media["image"], "What?"),
            Request(media["bad"], "What?")]
    with pytest.raises(BatchError) as info:
        st.ask_batch(reqs, batch_size=2, num_workers=2, max_new_tokens=3)
    err = info.value
    assert sorted(err.failures) == [1, 3]
    assert isinstance(err.failures[1], MediaNotFoundError) and isinstance(err.failures[3], MediaError)
    assert f"request 1 ({tmp_path / 'gone.mp4'})" in str(err) and "broken.mp4" in str(err)
    answered = [a for a in err.results if a is not None]
    assert [a.media.kind for a in answered] == ["video", "image"] and err.results[1] is None
    assert st.last_stats.failed == 2 and st.last_stats.generated_tokens == sum(a.num_tokens for a in answered)


def test_repeated_frames_of_a_short_split_are_preprocessed_once_with_the_same_pixels(st: LlavaST, media) -> None:
    from llava_st.media import preprocess_frames

    short = Request(media["video"], "What?", frame_range=(3, 7), num_frames=12)  # 5 frames sampled 12 times
    prepared = st.prepare(short)
    assert len(set(prepared.media.timeline.frame_ids)) == 5
    v = st.config.vision
    expected = preprocess_frames(prepared.media.frames, v.image_size, v.image_mean, v.image_std)
    assert torch.equal(prepared.encoded.pixel_values, expected)
