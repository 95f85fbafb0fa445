"""Answers read from known texts: the JSON schema, reading it back, the printed text, pictures."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import write_test_video
from llava_st.errors import MediaError, ProtocolError
from llava_st.infer.answer import SCHEMA_VERSION, Answer, format_answer, read_answer
from llava_st.media import load_media
from llava_st.protocol import answers as A
from llava_st.protocol.tokens import BinCounts

BINS = BinCounts.uniform(100)
FIELDS = {"schema_version", "question", "answer", "task", "ok", "media", "spans", "boxes", "track", "events",
          "result", "failures", "num_tokens"}


@pytest.fixture(scope="module")
def video():
    """12 frames of a 64x48 video at 5 fps, taken from 30 (frame i shown at i / 5 s)."""
    frames = np.zeros((30, 48, 64, 3), np.uint8)
    return load_media(frames, 12, fps=5)


@pytest.fixture(scope="module")
def image():
    return load_media(np.zeros((40, 80, 3), np.uint8), 1)


BOX = "[<WIDTH-010><HEIGHT-020><WIDTH-050><HEIGHT-060>]"
CASES = [
    ("stvg", "video", "{<TEMP-010><TEMP-050>} then <TEMP-033>:" + BOX + ", <TEMP-044>:" + BOX, None),
    ("tvg", "video", "It happens during {<TEMP-020><TEMP-070>}.", None),
    ("svg", "video", "<TEMP-010>:" + BOX, None),
    ("elc", "video", "Ends in <TEMP-080>, the dog jumps. <TEMP-050>:" + BOX, 0.25),
    ("dvc", "video", "{<TEMP-000><TEMP-040>}, a man walks. {<TEMP-050><TEMP-099>}, he sits down.", None),
    ("tr", "video", "A man walks in.", None),
    ("rec", "image", BOX, None),
    ("dgc", "image", "A dog " + BOX + " next to a cat [<WIDTH-060><HEIGHT-010><WIDTH-090><HEIGHT-050>].", None),
    ("reg", "image", "a red cup", None),
    ("tvg", "video", "somewhere in the middle", None),  # does not follow the grammar
    (None, "video", "a cup [0.1, 0.2, 0.5, 0.6] during {0.2, 0.4} and <TEMP-010>:" + BOX, None),
    (None, "image", "two boxes [0.1, 0.2, 0.5, 0.6] [0.3, 0.3, 0.4, 0.9]", None),
    (None, "video", "a span that ends first {0.5, 0.2}", None),  # a free question's failures
]


@pytest.mark.parametrize("task,kind,text,start", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_json_round_trip(task, kind, text, start, video, image):
    media = video if kind == "video" else image
    a = read_answer(text, "the question?", task, media, BINS, num_tokens=17, start=start)
    data = json.loads(a.to_json())
    assert set(data) == FIELDS and data["schema_version"] == SCHEMA_VERSION
    assert data["media"]["kind"] == kind and data["num_tokens"] == 17
    b = Answer.from_dict(data)
    assert b.to_dict() == a.to_dict()
    assert str(b) == str(a)
    assert (b.result, b.spans, b.boxes, b.track, b.events, b.ok) == (a.result, a.spans, a.boxes, a.track, a.events, a.ok)
    assert b.media.frames is None and b.timeline == a.timeline


def test_schema_units(video):
    a = read_answer("{<TEMP-000><TEMP-099>} <TEMP-099>:" + BOX, "q", "stvg", video, BINS)
    d = a.to_dict()
    ts = list(video.timeline.timestamps)
    assert d["media"] == {"kind": "video", "source": None, "width": 64, "height": 48,
                          "frame_ids": list(video.timeline.frame_ids), "timestamps": ts}
    assert d["spans"] == [{"start": 0.0, "end": 1.0, "start_s": ts[0], "end_s": ts[-1]}]
    frame = d["track"][0]
    assert frame["key"] == 99 and frame["time"] == 1.0 and frame["frame"] == 11
    assert frame["frame_id"] == 29 and frame["seconds"] == pytest.approx(29 / 5)
    assert frame["box"]["xyxy"] == pytest.approx([10 / 99, 20 / 99, 50 / 99, 60 / 99])
    assert frame["box"]["pixels"] == pytest.approx([10 / 99 * 64, 20 / 99 * 48, 50 / 99 * 64, 60 / 99 * 48])
    assert d["result"]["type"] == "SpatioTemporalGrounding" and d["ok"] is True


def test_reading_back_a_bad_object_is_a_protocol_error(video):
    good = read_answer("{<TEMP-000><TEMP-099>}", "q", "tvg", video, BINS).to_dict()
    with pytest.raises(ProtocolError, match="schema_version 2"):
        Answer.from_dict({**good, "schema_version": 2})
    with pytest.raises(ProtocolError, match="media"):
        Answer.from_dict({k: v for k, v in good.items() if k != "media"})
    with pytest.raises(ProtocolError):
        Answer.from_dict({**good, "result": {**good["result"], "type": "NoSuchAnswer"}})


def test_free_question_collects_everything(image):
    ans = read_answer("a cup [0.1, 0.2, 0.5, 0.6] and {0.2, 0.4}", "q", None, image, BINS)
    assert ans.result is None and ans.ok
    assert ans.boxes[0].pixels == pytest.approx((8.0, 8.0, 40.0, 24.0))
    assert ans.spans[0].start == 0.2


def test_printed_text(video):
    a = read_answer("{<TEMP-000><TEMP-099>}", "q", "tvg", video, BINS)
    assert format_answer(a) == str(a)
    assert f"span  0.00s - {29 / 5:.2f}s  (normalised 0.000 - 1.000)" in str(a)
    bad = read_answer("somewhere", "q", "tvg", video, BINS)
    assert not bad.ok and isinstance(bad.result, A.ParseFailure) and "could not read it as tvg" in str(bad)


def test_pictures_and_files(tmp_path):
    path = write_test_video(tmp_path / "clip.mp4", num_frames=30, fps=10, size=(64, 48))
    media = load_media(path, 12)
    ans = read_answer("{<TEMP-010><TEMP-090>} <TEMP-040>:" + BOX + ", <TEMP-060>:[<WIDTH-020><HEIGHT-020><WIDTH-060>"
                      "<HEIGHT-060>]", "the square", "stvg", media, BINS)
    assert ans.plot().axes
    saved = ans.save(tmp_path / "a.json")
    assert json.loads(saved.read_text())["task"] == "stvg"
    assert Image.open(ans.save(tmp_path / "a.png")).size[0] > 100
    from llava_st.media import probe_video

    assert probe_video(ans.save(tmp_path / "a.mp4")).num_frames == 30
    still = read_answer("x", "q", "rec", load_media(np.zeros((8, 8, 3), np.uint8), 1), BINS)
    with pytest.raises(MediaError, match="needs a question about a video file"):
        still.save(tmp_path / "b.mp4")
    back = Answer.from_dict(json.loads(saved.read_text()))
    with pytest.raises(MediaError, match="read back from JSON"):
        back.plot()
    assert back.save(tmp_path / "again.json").read_text() == saved.read_text()
