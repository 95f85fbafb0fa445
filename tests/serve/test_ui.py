"""The web page without a browser: its samples, what its button does, the pictures of an answer."""

from __future__ import annotations

import numpy as np
import pytest

from llava_st.errors import LlavaSTError
from llava_st.media import MediaKindError
from llava_st.serve.errors import TooLarge, UnsupportedType, Unprocessable
from llava_st.serve.samples import bundled_samples, find_samples, render_samples
from llava_st.serve.settings import Limits
from llava_st.serve.ui import PAGE_TASKS, ask_page
from llava_st.serve.views import answer_views


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    return render_samples(tmp_path_factory.mktemp("samples"))


def test_rendered_samples_and_their_hints(samples, st) -> None:
    video, image = samples
    assert (video.kind, image.kind) == ("video", "image") and video.path.is_file() and image.path.is_file()
    assert video.hints["query"].startswith("the ") and image.hints["expression"].startswith("the ")
    media = st.load(video.path)
    assert (media.timeline.width, media.timeline.height) == (96, 96)
    # the hints are valid inputs: the start lies in the clip and the box in the frame
    answer = ask_page(st, video.path, "caption an event", start=float(video.hints["start"]), box=video.hints["box"],
                      max_new_tokens=64)
    assert answer.task == "elc" and answer.ok


def test_shipped_samples_carry_usable_hints(st) -> None:
    shipped = bundled_samples()
    if not shipped:
        pytest.skip("the package ships no samples")
    for sample in shipped:
        assert sample.path.is_file() and sample.hints.get("query") and sample.hints.get("question")
        if sample.kind == "video" and "start" in sample.hints:  # the event to caption lies in the clip and frame
            answer = ask_page(st, sample.path, "caption an event", start=float(sample.hints["start"]),
                              box=sample.hints["box"], max_new_tokens=64)
            assert answer.task == "elc"


def test_samples_come_from_the_package_when_it_ships_some(tmp_path, monkeypatch) -> None:
    from llava_st.serve import samples as module

    shipped = bundled_samples()
    found = find_samples(tmp_path / "rendered")
    if shipped:
        assert found == shipped
    else:
        assert [s.kind for s in found] == ["video", "image"] and all(tmp_path in s.path.parents for s in found)
    monkeypatch.setattr(module, "bundled_samples", lambda: ["shipped"])
    assert module.find_samples(tmp_path / "again") == ["shipped"]


@pytest.mark.parametrize("task, text, helper_task", [
    ("free question", "What happens?", None),
    ("ground in time", "the ring moves", "tvg"),
    ("track", "the ring", "stvg"),
])
def test_page_tasks_on_a_video(st, samples, task, text, helper_task) -> None:
    answer = ask_page(st, samples[0].path, task, text, max_new_tokens=64)
    assert answer.task == helper_task and answer.media.kind == "video" and 1 <= answer.num_tokens <= 64
    assert answer.ok or helper_task is None  # the task helpers decode under the task's grammar


def test_views_of_a_video_and_an_image_answer(st, samples, tmp_path) -> None:
    views = answer_views(ask_page(st, samples[0].path, "track", "the ring", max_new_tokens=64), tmp_path)
    assert views.frames.dtype == np.uint8 and views.frames.ndim == 3 and views.frames.shape[2] == 3
    assert views.timeline is not None and views.timeline.shape[2] == 3
    assert views.video is not None and views.video.is_file() and views.video.suffix == ".mp4"
    assert views.json["task"] == "stvg" and views.text.splitlines()[0]
    image_views = answer_views(ask_page(st, samples[1].path, "refer", "the circle", max_new_tokens=64), tmp_path)
    assert image_views.timeline is None and image_views.video is None and image_views.json["task"] == "rec"


def test_page_errors_name_the_problem(st, samples, tmp_path) -> None:
    video, image = samples
    with pytest.raises(MediaKindError, match="needs an image"):
        ask_page(st, video.path, "refer", "the ring")
    with pytest.raises(Unprocessable, match="needs a query"):
        ask_page(st, video.path, "track", "  ")
    with pytest.raises(Unprocessable, match="needs a start"):
        ask_page(st, video.path, "caption an event", box="1, 2, 3, 4")
    with pytest.raises(Unprocessable, match="box"):
        ask_page(st, video.path, "caption an event", start=0.5, box="1, 2")
    with pytest.raises(Unprocessable, match="unknown task"):
        ask_page(st, video.path, "dance", "x")
    text = tmp_path / "clip.mp4"
    text.write_text("not a clip")
    with pytest.raises(UnsupportedType):
        ask_page(st, text, "track", "x")
    with pytest.raises(TooLarge, match="lasts"):
        ask_page(st, video.path, "track", "x", limits=Limits(max_video_seconds=1))
    # every page error is a library error: the page shows its message
    assert all(issubclass(e, LlavaSTError) for e in (MediaKindError, Unprocessable, UnsupportedType, TooLarge))


def test_the_page_builds(st, samples, tmp_path) -> None:
    pytest.importorskip("gradio")
    from llava_st.serve.ui import build_ui

    page = build_ui(st, samples, tmp_path / "answers")
    assert page.title == "LLaVA-ST"
    assert set(PAGE_TASKS) == {"free question", "ground in time", "track", "refer", "caption an event"}
